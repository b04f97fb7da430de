"""bump.trace/1 writing then reading gives back the same arrays, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import T0_S, make_doc
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ingest


def _same(a: ingest.Trace, b: ingest.Trace) -> None:
    for name in ("t_s", "accel_mps2", "gyro_t_s", "gyro_rad_s", "gps_t_s", "lat_deg", "lon_deg", "speed_mps",
                 "heading_deg", "accuracy_m"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert (a.trip_id, a.device_id, a.vehicle, a.phone) == (b.trip_id, b.device_id, b.vehicle, b.phone)


def test_document_round_trip_plain_and_gzip() -> None:
    d = make_doc()
    d["gps"]["speed"][3] = None
    first = ingest.read(orjson.dumps(d))
    for compress in (False, True):
        again = ingest.read(ingest.dumps(first, compress=compress))
        _same(first, again)
    assert np.isnan(first.speed_mps[3])


def test_documents_with_sliced_numpy_arrays_are_written() -> None:
    """A document built from NumPy slices (``a[::2]``: not C-contiguous) is written as the same numbers (orjson
    alone refuses them with a TypeError); what JSON cannot hold is still a TypeError naming the type."""
    d = orjson.loads(orjson.dumps(make_doc()))
    t = np.repeat(np.asarray(d["accel"]["t"]), 2)                   # every value twice: the slice takes one each
    d["accel"]["t"] = t[::2]
    x = np.repeat(np.asarray(d["accel"]["x"]), 3)
    d["accel"]["x"] = x[::3]
    d["vehicle"] = {"wheelbase_m": np.float64(2.7)}
    again = ingest.read(ingest.formats.bump_json.dumps_document(d))
    assert np.array_equal(again.t_s, t[::2])
    assert np.array_equal(again.accel_mps2[:, 0], x[::3])
    assert again.vehicle["wheelbase_m"] == 2.7
    with pytest.raises(TypeError, match="set"):
        ingest.formats.bump_json.dumps_document({**d, "phone": {"model": {1, 2}}})


finite = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=30, max_value=400),
    rate_hz=st.sampled_from([5.0, 10.0, 50.0, 100.0, 200.0]),
    noise=st.data(),
)
def test_any_valid_trace_round_trips(n: int, rate_hz: float, noise: st.DataObject) -> None:
    if n / rate_hz < 1.2:
        n = int(1.2 * rate_hz) + 1
    xyz = noise.draw(arrays(np.float64, (n, 3), elements=finite))
    xyz[:, 2] += 9.81 * 3          # |z| >= 9.4: gravity-like whatever the noise
    jitter = noise.draw(arrays(np.float64, n, elements=st.floats(0.0, 0.3 / rate_hz)))
    t = T0_S + np.arange(n) / rate_hz + jitter
    doc = {"format": "bump.trace/1", "trip_id": "p", "device_id": "d",
           "accel": {"t": t, "x": xyz[:, 0].copy(), "y": xyz[:, 1].copy(), "z": xyz[:, 2].copy()}}
    first = ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))
    assert np.array_equal(first.t_s, t)
    assert np.array_equal(first.accel_mps2, xyz)
    _same(first, ingest.read(ingest.dumps(first)))


def test_written_documents_follow_the_published_json_schema() -> None:
    import json
    from pathlib import Path

    import jsonschema  # installed with the test extra (nbformat depends on it)

    schema = json.loads((Path(ingest.__file__).parent / "schema" / "bump.trace-1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    trace = ingest.read(orjson.dumps(make_doc()))
    doc = json.loads(ingest.dumps(trace))
    jsonschema.validate(doc, schema)
    doc["accel"]["unit"] = "furlongs"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


# --- the reused simdjson parsers of the bump.trace/1 reader ----------------------------------------------------


def _doc_bytes(seed: int, duration_s: float = 10.0) -> bytes:
    return orjson.dumps(make_doc(seed=seed, duration_s=duration_s))


def test_a_reused_parser_leaves_earlier_traces_untouched() -> None:
    """Arrays of one read must not share memory with the parser that the next read reuses."""
    from ingest.formats import bump_json

    first = ingest.read(_doc_bytes(1))
    copy = {k: getattr(first, k).copy() for k in ("t_s", "accel_mps2", "gyro_rad_s", "lat_deg")}
    assert bump_json._pool                            # the parser went back to the pool ...
    second = ingest.read(_doc_bytes(2, duration_s=12.0))
    for k, v in copy.items():                         # ... and parsing another document into it changed nothing
        assert np.array_equal(getattr(first, k), v), k
    assert not np.array_equal(first.accel_mps2[:100], second.accel_mps2[:100])


def test_failed_decodes_do_not_poison_the_parser_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parse or conversion error leaves no document alive in a pooled parser: the next read still works."""
    from ingest.errors import SchemaError
    from ingest.formats import bump_json

    good = _doc_bytes(3)
    expected = ingest.read(good)
    huge_int = good.replace(b'"x":[', b'"x":[1' + b"0" * 30 + b",", 1)
    for bad in (good[:4000], huge_int, good.replace(b'"unit":"m/s2"', b'"unit":"m/s2"}', 1)):
        with pytest.raises(SchemaError, match="not valid JSON"):
            ingest.read(bad, format="bump")
        _same(expected, ingest.read(good))

    def failing_conversion(doc: object) -> None:
        raise KeyError("simulated")

    monkeypatch.setattr(bump_json, "_plain", failing_conversion)
    with pytest.raises(SchemaError, match="simulated") as info:     # the traceback holds the parsed document
        ingest.read(good, format="bump")
    monkeypatch.undo()
    _same(expected, ingest.read(good))
    assert isinstance(info.value.__cause__, KeyError)


def test_parser_pool_is_bounded_in_size_and_document_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.formats import bump_json

    monkeypatch.setattr(bump_json, "_pool", [])
    data = _doc_bytes(4)
    monkeypatch.setattr(bump_json, "_POOL_MAX_BYTES", len(data) - 1)
    ingest.read(data)
    assert bump_json._pool == []                      # too big to keep: its parser was freed after the read
    monkeypatch.setattr(bump_json, "_POOL_MAX_BYTES", len(data))
    for _ in range(3):
        ingest.read(data)
    assert len(bump_json._pool) == 1                  # one reader at a time reuses one parser
    busy = [bump_json._take_parser(len(data)) for _ in range(bump_json._POOL_SIZE + 2)]   # concurrent readers
    assert bump_json._pool == [] and len({id(p) for p in busy}) == len(busy)
    for p in busy:
        bump_json._give_back(p, len(data))
    assert len(bump_json._pool) == bump_json._POOL_SIZE   # the surplus parsers are freed, not kept


def test_concurrent_reads_give_the_serial_traces() -> None:
    from concurrent.futures import ThreadPoolExecutor

    docs = [_doc_bytes(seed, duration_s=20.0) for seed in range(6)]
    serial = [ingest.read(d) for d in docs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            for a, b in zip(serial, pool.map(ingest.read, docs), strict=True):
                _same(a, b)
                assert a.quality == b.quality


# --- documents bump refuses, and how it says so -----------------------------------------------------------------


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_bare_nan_or_infinity_is_named_with_the_fix(token: str) -> None:
    import json

    from ingest.errors import SchemaError

    doc = make_doc()
    doc["gyro"]["y"][7] = float(token.replace("Infinity", "inf"))
    data = json.dumps(doc).encode()                  # Python's json writes NaN / Infinity / -Infinity
    assert f" {token}," in data.decode()
    with pytest.raises(SchemaError) as err:
        ingest.read(data, name="trip.json")
    assert err.value.field == "gyro.y"
    msg = str(err.value)
    assert f"bare {token} at index 7" in msg and "JSON has no NaN or Infinity" in msg and "write null" in msg
    assert "64 bits" not in msg


def test_other_broken_json_is_not_blamed_on_nan() -> None:
    from ingest.errors import SchemaError

    data = orjson.dumps(make_doc() | {"trip_id": "NaN, Infinity]"})[:-2]    # cut short; NaN only inside a string
    with pytest.raises(SchemaError) as err:
        ingest.read(data, format="bump")
    assert "not valid JSON" in str(err.value) and "JSON has no NaN" not in str(err.value)


def test_boolean_wheelbase_is_refused() -> None:
    from ingest.errors import SchemaError

    doc = make_doc()
    doc["vehicle"]["wheelbase_m"] = True             # bool is an int in Python: True would pass 1 <= x <= 10
    with pytest.raises(SchemaError) as err:
        ingest.read(orjson.dumps(doc))
    assert err.value.field == "vehicle.wheelbase_m"


def test_a_column_of_one_element_lists_is_not_flattened() -> None:
    from ingest.errors import SchemaError

    doc = make_doc()
    doc["accel"]["x"] = [[v] for v in doc["accel"]["x"]]      # numpy's (n, 1) .tolist()
    with pytest.raises(SchemaError) as err:
        ingest.read(orjson.dumps(doc))
    assert err.value.field == "accel.x" and "flat list of numbers" in str(err.value)


@pytest.mark.parametrize("container", ["zip", "folder"])
def test_a_zip_or_folder_holding_one_document_reads_as_that_file(tmp_path: Path, container: str) -> None:
    import io
    import zipfile

    data = ingest.dumps(ingest.read(orjson.dumps(make_doc())), compress=True)
    if container == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("trips/trip.json.gz", data)
            zf.writestr(".DS_Store", b"\x00\x00\x00\x01Bud1")
        src: bytes | Path = buf.getvalue()
    else:
        src = tmp_path / "mail"
        src.mkdir()
        (src / "trip.json.gz").write_bytes(data)
    assert ingest.detect_format(ingest.open_source(src)) == "bump"
    _same(ingest.read(src), ingest.read(data))
