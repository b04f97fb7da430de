"""Validation of bump.trace/1 input: a table of malformed inputs, each with its exact error and message,
and the repairs validation is allowed to make (sorting, dropping, counting) checked on tiny cases."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from conftest import T0_S, make_doc, zip_of
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ingest
from ingest.errors import (
    FormatError,
    GpsError,
    SampleRateError,
    SchemaError,
    SizeError,
    TimestampError,
    TraceError,
    UnitError,
)
from ingest.trace import Limits

Doc = dict[str, Any]


def _walk(d: Doc, path: str) -> tuple[Any, Any]:
    """(container, key) of a dotted path; numeric parts index lists."""
    *parents, last = (int(p) if p.isdigit() else p for p in path.split("."))
    node: Any = d
    for p in parents:
        node = node[p]
    return node, last


def _set(path: str, value: Any) -> Callable[[Doc], Any]:
    def edit(d: Doc) -> None:
        node, key = _walk(d, path)
        node[key] = value
    return edit


def _del(path: str) -> Callable[[Doc], Any]:
    def edit(d: Doc) -> None:
        node, key = _walk(d, path)
        del node[key]
    return edit


def _scale_t(factor: float) -> Callable[[Doc], None]:
    def edit(d: Doc) -> None:
        t = np.asarray(d["accel"]["t"])
        d["accel"]["t"] = (t[0] + (t - t[0]) * factor).tolist()
    return edit


def _accel(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Doc], None]:
    def edit(d: Doc) -> None:
        for k in "xyz":
            d["accel"][k] = fn(np.asarray(d["accel"][k])).tolist()
    return edit


def _gyro_deg_per_s(d: Doc) -> None:
    """A car's rotation (~0.05 rad/s, turning up to 0.5) written in deg/s."""
    rng = np.random.default_rng(7)
    for k in "xyz":
        d["gyro"][k] = np.degrees(rng.normal(0.0, 0.05, len(d["gyro"]["t"]))).tolist()


def _backwards(d: Doc) -> None:
    t = d["accel"]["t"]
    t[300] = t[300] - 2.5


def _nulls(frac: float) -> Callable[[Doc], None]:
    def edit(d: Doc) -> None:
        n = len(d["accel"]["x"])
        for i in range(0, n, max(1, round(1 / frac))):
            d["accel"]["x"][i] = None
    return edit


def _unequal(d: Doc) -> None:
    d["accel"]["y"] = d["accel"]["y"][:-3]


def _gps_all(key: str, value: Any) -> Callable[[Doc], None]:
    def edit(d: Doc) -> None:
        d["gps"][key] = [value] * len(d["gps"]["t"])
    return edit


def _gps_far_in_time(d: Doc) -> None:
    d["gps"]["t"] = [t - 86_400.0 for t in d["gps"]["t"]]


def _empty_accel(d: Doc) -> None:
    d["accel"].update(t=[], x=[], y=[], z=[])


def _shift_t(offset_s: float, factor: float = 1.0) -> Callable[[Doc], None]:
    """Every block's times ``t * factor + offset_s`` (one clock, e.g. ms since the epoch written as seconds)."""
    def edit(d: Doc) -> None:
        for block in ("accel", "gyro", "gps"):
            d[block]["t"] = [t * factor + offset_s for t in d[block]["t"]]
    return edit


# (id, edit of a valid document or raw bytes, expected class, fragment of the message)
CASES: list[tuple[str, Any, type[Exception], str]] = [
    ("not-a-format", b"hello, this is not a trace", FormatError, "not a format bump knows"),
    ("json-array", b"[1, 2, 3]", FormatError, "not a format bump knows"),
    ("wrong-version", _set("format", "bump.trace/2"), FormatError, "expected 'bump.trace/1'"),
    ("truncated-json", "truncate", SchemaError, "not valid JSON"),
    ("bad-gzip", b"\x1f\x8b\x08\x00garbage", FormatError, "not valid gzip"),
    ("huge-integer", orjson.dumps(make_doc()).replace(b'"x":[', b'"x":[1' + b"0" * 30 + b",", 1), SchemaError,
     "numbers fit in 64 bits"),
    ("nul-in-key", _set("x\u0000y", 1), SchemaError, "not valid JSON"),
    ("missing-accel", _del("accel"), SchemaError, "needs an 'accel' object"),
    ("accel-not-object", _set("accel", [1, 2, 3]), SchemaError, "must be an object"),
    ("missing-accel-z", _del("accel.z"), SchemaError, "is missing"),
    ("accel-x-string", _set("accel.x", "1,2,3"), SchemaError, "must be a list of numbers"),
    ("accel-nested", _set("accel.t", [[1, 2]] * 500), SchemaError, "flat list"),
    ("unequal-lengths", _unequal, SchemaError, "differ in length"),
    ("non-numeric", _set("accel.z.7", "nine"), SchemaError, "non-numeric value at index 7"),
    ("boolean-sample", _set("accel.x.3", True), SchemaError, "holds true at index 3"),
    ("too-many-nulls", _nulls(0.2), SchemaError, "are NaN, inf or null"),
    ("empty-accel", _empty_accel, SchemaError, "has no samples"),
    ("missing-trip-id", _del("trip_id"), SchemaError, "non-empty string"),
    ("empty-trip-id", _set("trip_id", "  "), SchemaError, "non-empty string"),
    ("numeric-device-id", _set("device_id", 42), SchemaError, "non-empty string"),
    ("newline-in-trip-id", _set("trip_id", "morning\ndrive"), SchemaError, "control character U+000A at position 7"),
    ("nul-in-device-id", _set("device_id", "phone\u0000"), SchemaError, "control character U+0000 at position 5"),
    ("absurd-wheelbase", _set("vehicle.wheelbase_m", 50), SchemaError, "wheelbase in metres"),
    ("unknown-unit", _set("accel.unit", "ft/s2"), SchemaError, "unknown unit 'ft/s2'"),
    ("clock-backwards", _backwards, TimestampError, "clock runs backwards by 2.48"),
    ("too-short", _scale_t(0.05), TimestampError, "shorter than 1 s"),
    ("too-long", _scale_t(10_000.0), TimestampError, "longer than 24 h"),
    ("rate-too-low", _scale_t(20.0), SampleRateError, "outside 4-1000 Hz"),
    ("rate-too-high", lambda d: d.update(make_doc(rate_hz=2500.0, duration_s=2.0)), SampleRateError,
     "outside 4-1000 Hz"),
    ("g-labelled-mps2", _accel(lambda a: a / 9.81), UnitError, "looks like g"),
    ("mps2-labelled-g", _set("accel.unit", "g"), UnitError, "looks like m/s2"),
    ("gravity-free", _accel(lambda a: a - np.median(a)), UnitError, "gravity is missing"),
    ("cm-per-s2", _accel(lambda a: a * 100.0), UnitError, "cm/s2: divide by 100"),
    ("ms-epoch-as-s", _shift_t(0.0, 1000.0), TimestampError, "after the year 2100: are the times in ms"),
    ("negative-times", _shift_t(-T0_S - 100.0), TimestampError, "before 1970"),
    ("gyro-in-deg-per-s", _gyro_deg_per_s, UnitError, "looks like deg/s"),
    ("lat-out-of-range", _set("gps.lat.2", 95.0), GpsError, "lat=95.0"),
    ("all-zero-zero", lambda d: (_gps_all("lat", 0.0)(d), _gps_all("lon", 0.0)(d)), GpsError, "(0, 0)"),
    ("gps-missing-lon", _del("gps.lon"), SchemaError, "needs t, lat and lon"),
    ("gps-other-clock", _gps_far_in_time, TimestampError, "one clock"),
    ("gps-non-numeric", _set("gps.speed.1", "fast"), SchemaError, "non-numeric value at index 1"),
]


def _input(edit: Any) -> bytes:
    if isinstance(edit, bytes):
        return edit
    d = make_doc()
    if edit == "truncate":
        return orjson.dumps(d)[:5000]
    edit(d)
    return orjson.dumps(d)


@pytest.mark.parametrize(("edit", "cls", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_is_rejected_with_a_precise_message(edit: Any, cls: type[Exception], fragment: str) -> None:
    with pytest.raises(cls) as info:
        ingest.read(_input(edit), name="upload.json")
    assert type(info.value) is cls
    assert isinstance(info.value, ValueError) and isinstance(info.value, TraceError)
    assert fragment in str(info.value)
    assert "upload.json" in str(info.value)


def test_malformed_table_is_large_enough() -> None:
    assert len(CASES) >= 25


def test_sample_limit_is_configurable() -> None:
    data = orjson.dumps(make_doc())
    with pytest.raises(SizeError, match="more than the limit of 100"):
        ingest.read(data, limits=Limits(max_samples=100))
    assert ingest.read(data).n_samples == 500


def test_small_reorderings_are_sorted_and_duplicates_dropped() -> None:
    d = make_doc()
    t = d["accel"]["t"]
    t[10], t[11] = t[11], t[10]                 # a swapped pair
    x10, x11 = d["accel"]["x"][10], d["accel"]["x"][11]
    t[20] = t[19]                               # an exact duplicate time
    trace = ingest.read(orjson.dumps(d))
    assert np.all(np.diff(trace.t_s) > 0)
    assert trace.n_samples == 499
    assert trace.quality.dropped == {"accel_duplicate_t": 1}
    assert any("out-of-order" in p for p in trace.quality.problems)
    # the sample that came first in time is now first, with its own values
    assert trace.accel_mps2[10, 0] == x11 and trace.accel_mps2[11, 0] == x10


def test_a_few_nulls_are_dropped_and_counted_never_zero_filled() -> None:
    d = make_doc()
    d["accel"]["z"][5] = None
    d["accel"]["x"][9] = None
    trace = ingest.read(orjson.dumps(d))
    assert trace.n_samples == 498
    assert trace.quality.dropped["accel_nonfinite"] == 2
    assert not np.any(trace.accel_mps2 == 0.0)
    assert T0_S + 5 / 50 not in trace.t_s


def test_a_corrupt_sample_beyond_any_phone_range_is_dropped_and_counted() -> None:
    """1e308 in one cell once overflowed the detector's filters and lost an impact; 100 g is beyond any phone."""
    d = make_doc()
    d["accel"]["y"][42] = 1e308
    d["gyro"]["x"][7] = -5e3
    trace = ingest.read(orjson.dumps(d))
    assert trace.n_samples == 499 and trace.quality.dropped == {"accel_out_of_range": 1, "gyro_nonfinite": 1}
    assert np.abs(trace.accel_mps2).max() < 100.0 and np.abs(trace.gyro_rad_s).max() < 100.0


def test_a_gyroscope_on_another_clock_is_ignored_with_a_note() -> None:
    d = make_doc()
    d["gyro"]["t"] = [t - T0_S for t in d["gyro"]["t"]]          # elapsed seconds, the rest epoch seconds
    trace = ingest.read(orjson.dumps(d))
    assert trace.gyro_t_s.size == 0 and trace.has_gps
    assert any(p.startswith("gyro: its times span") and p.endswith("ignored") for p in trace.quality.problems)


def test_elapsed_seconds_are_read_and_noted() -> None:
    """Exports without an absolute start (a plain CSV whose t counts from 0) are dated 1970, with a note."""
    trace = ingest.read(_input(_shift_t(-T0_S)))
    assert trace.t_s[0] == pytest.approx(0.0, abs=1e-6)
    assert any("before 2000" in p for p in trace.quality.problems)


def test_gps_sentinels_become_unknown_or_dropped() -> None:
    d = make_doc()
    d["gps"]["speed"][0] = -1.0
    d["gps"]["accuracy"][1] = None
    d["gps"]["lat"][2] = 0.0
    d["gps"]["lon"][2] = 0.0
    d["gps"]["lat"][3] = None
    trace = ingest.read(orjson.dumps(d))
    assert trace.quality.gps_fixes == 8
    assert trace.quality.dropped == {"gps_zero_zero": 1, "gps_no_fix": 1}
    assert np.isnan(trace.speed_mps[0]) and trace.speed_mps[1] == 11.1
    assert np.isnan(trace.accuracy_m[1])


def test_g_unit_is_converted_once() -> None:
    d = make_doc(gps=False, gyro=False)
    for k in "xyz":
        d["accel"][k] = [v / 9.80665 for v in d["accel"][k]]
    d["accel"]["unit"] = "g"
    trace = ingest.read(orjson.dumps(d))
    np.testing.assert_allclose(np.median(trace.accel_mps2[:, 2]), 9.81, atol=0.05)
    assert not trace.has_gps and trace.gps_t_s.shape == (0,) and trace.gyro_rad_s.shape == (0, 3)


def test_five_hz_recording_is_read() -> None:
    trace = ingest.read(orjson.dumps(make_doc(rate_hz=5.0, duration_s=60.0)))
    assert trace.quality.accel_rate_hz == pytest.approx(5.0)
    assert trace.n_samples == 300


def test_gzip_and_plain_give_the_same_trace() -> None:
    raw = orjson.dumps(make_doc())
    a, b = ingest.read(raw), ingest.read(gzip.compress(raw))
    assert np.array_equal(a.accel_mps2, b.accel_mps2) and np.array_equal(a.t_s, b.t_s)


def test_arrays_are_read_only() -> None:
    trace = ingest.read(orjson.dumps(make_doc()))
    with pytest.raises(ValueError, match="read-only"):
        trace.accel_mps2[0, 0] = 1.0


@pytest.mark.parametrize("inflate", ["isal", "zlib"])
def test_gunzip_joins_members_and_refuses_bombs_and_truncation(inflate: str, monkeypatch) -> None:
    import zlib

    from ingest import source
    from ingest.errors import SizeError

    if inflate == "zlib":                          # the fallback when ISA-L is not installed
        monkeypatch.setattr(source, "_zlib", zlib)
    else:
        pytest.importorskip("isal")
        assert source._zlib.__name__ == "isal.isal_zlib"
    two = gzip.compress(b"a" * 5000) + gzip.compress(b"b" * 7)
    assert source.gunzip(two, name="x") == b"a" * 5000 + b"b" * 7
    assert source.gunzip(two, name="x", max_bytes=5007) == b"a" * 5000 + b"b" * 7
    with pytest.raises(SizeError, match="decompresses to more than 5006 bytes"):
        source.gunzip(two, name="x", max_bytes=5006)
    with pytest.raises(FormatError, match="ends early"):
        source.gunzip(two[: len(two) // 3], name="x")
    with pytest.raises(FormatError, match="not valid gzip"):
        source.gunzip(b"\x1f\x8b\x08\x00" + b"garbage" * 10, name="x")


@pytest.mark.parametrize("inflate", ["isal", "zlib"])
def test_zip_members_unpack_as_zipfile_unpacks_them_and_damage_is_named(inflate: str, monkeypatch) -> None:
    import zipfile
    import zlib

    from ingest import source

    if inflate == "zlib":
        monkeypatch.setattr(source, "_zlib", zlib)
    else:
        pytest.importorskip("isal")
    rng = np.random.default_rng(3)
    members = {"rec/Accelerometer.csv": "\n".join(f"{t},{x:.6f}" for t, x in enumerate(rng.normal(size=4000))).encode(),
               "rec/Empty.csv": b"", "rec/Metadata.csv": b"version,1\n"}
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2):
        got = source._from_bytes(zip_of(members, method), "rec.zip").members
        assert dict(got) == members, method
    good = zip_of(members, zipfile.ZIP_DEFLATED)
    central = good.index(b"PK\x01\x02")                  # the first member's central directory entry
    local = good.index(b"PK\x03\x04")
    start = local + 30 + int.from_bytes(good[local + 26:local + 28], "little") + int.from_bytes(
        good[local + 28:local + 30], "little")

    def edited(at: int, value: bytes) -> bytes:
        return good[:at] + value + good[at + len(value):]

    first = "rec/Accelerometer.csv"
    size = int.from_bytes(good[central + 24:central + 28], "little")
    crc = int.from_bytes(good[central + 16:central + 20], "little")
    second = good.index(b"PK\x03\x04", local + 4)            # the second member's local header
    cases = {    # (the archive, the member named)
        "crc": (edited(central + 16, ((crc + 1) % 2**32).to_bytes(4, "little")), first),   # CRC-32 in the directory
        "short": (edited(central + 24, (size - 1).to_bytes(4, "little")), first),           # one byte fewer declared
        "data": (edited(start + 8, b"\xa5" * 32), first),                                 # the deflate stream itself
        "header": (edited(second, b"PK\x05\x06"), "rec/Empty.csv"),                       # a local header's signature
        "name": (edited(local + 30, b"sec"), first),          # the local header names another file than the directory
    }
    if inflate == "isal":        # zipfile reads a member shorter than it declares without a word
        cases["long"] = (edited(central + 24, (size + 1).to_bytes(4, "little")), first)
    for what, (data, member) in cases.items():
        with pytest.raises(FormatError) as err:
            source._from_bytes(data, "rec.zip")
            pytest.fail(f"{what}: read without an error")
        assert "is a damaged zip archive" in str(err.value) and "export it again" in str(err.value), what
        assert err.value.field == member, what


# --- the fast kernels of build_trace against their slow, obvious twins -------------------------------------------

_values = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 60), elements=_values),
       dup=arrays(np.float64, st.integers(1, 60), elements=st.sampled_from([0.0, 0.01, 0.02, np.inf])))
def test_exact_median_is_numpys_median_bit_for_bit(x: np.ndarray, dup: np.ndarray) -> None:
    from ingest.validate import _exact_median

    with np.errstate(over="ignore"):                    # two middle values near 1.8e308 overflow in both alike
        for a in (x, dup, np.abs(x)):
            assert np.array_equal(_exact_median(a), np.median(a), equal_nan=True), a
        for a in (np.abs(x), dup):                      # a monotonic map applied to the middle elements only
            assert np.array_equal(_exact_median(a, np.sqrt), np.median(np.sqrt(a)), equal_nan=True), a


def test_exact_median_on_quantised_time_steps() -> None:
    from ingest.validate import _exact_median

    rng = np.random.default_rng(3)
    for n in (59_317, 59_318):                      # odd and even: the mean of the two middle elements
        dt = np.round(0.01 + rng.normal(0, 0.0005, n), 4)
        assert _exact_median(dt) == np.median(dt)
        assert _exact_median(dt, np.sqrt) == np.median(np.sqrt(dt))
    for n in (20_000, 20_001):                      # epoch stamps every 10 ms: 96 % of the intervals one value
        dt = np.diff(1.782e9 + 0.01 * np.arange(n + 1))
        assert np.unique(dt).size == 2
        assert _exact_median(dt) == np.median(dt)
        assert _exact_median(np.abs(dt - np.median(dt))) == np.median(np.abs(dt - np.median(dt)))


@pytest.mark.parametrize("n", [2, 3, 1000, 65_535, 200_001])
def test_norm_median_is_the_median_of_the_stacked_norms(n: int) -> None:
    from ingest.validate import _norm_median, _stride

    rng = np.random.default_rng(n)
    xyz = rng.normal(0, 3, (n, 3)) * rng.choice([1e-3, 1.0, 1e3], (n, 3))
    sub = xyz[:: _stride(n)]                        # long arrays: an evenly strided subsample, as documented
    ref = np.median(np.sqrt(np.einsum("ij,ij->i", sub, sub)))
    np.testing.assert_allclose(_norm_median([xyz[:, 0], xyz[:, 1], xyz[:, 2]]), ref, rtol=1e-15)


def test_quality_statistics_match_their_definitions_after_repairs() -> None:
    """Rate, jitter and gaps come from the intervals of the final (sorted, deduplicated) times."""
    d = make_doc(duration_s=60.0, rate_hz=100.0)
    rng = np.random.default_rng(11)
    t = np.asarray(d["accel"]["t"]) + rng.uniform(0, 0.003, 6000)   # jittered clock
    t[3000:] += 0.4                                 # one gap
    t[100], t[101] = t[101], t[100]                 # a reordering
    t[[200, 300, 400]] = t[[199, 299, 399]]         # duplicates
    d["accel"]["t"] = t.tolist()
    gt = np.round(np.asarray(d["gyro"]["t"]) + rng.uniform(0, 0.002, 6000), 3)   # a quantised clock
    gt[50] = gt[49]
    d["gyro"]["t"] = gt.tolist()
    trace = ingest.read(orjson.dumps(d))
    q = trace.quality
    assert q.dropped == {"accel_duplicate_t": 3, "gyro_duplicate_t": 1}
    assert any("out-of-order" in p for p in q.problems)
    dt = np.diff(trace.t_s)
    med = np.median(dt)
    assert q.accel_rate_hz == 1.0 / med
    assert q.jitter_s == 1.4826 * np.median(np.abs(dt - med))
    gaps = dt > Limits().gap_factor * med
    assert (q.n_gaps, q.gap_total_s, q.longest_gap_s) == (1, float(dt[gaps].sum()), float(dt.max()))
    assert q.gyro_rate_hz == 1.0 / np.median(np.diff(trace.gyro_t_s))


def test_accel_in_g_is_scaled_exactly_and_stacked_by_axis() -> None:
    d = make_doc(gps=False)
    for k in "xyz":
        d["accel"][k] = [v / 9.80665 for v in d["accel"][k]]
    d["accel"]["unit"] = "g"
    trace = ingest.read(orjson.dumps(d))
    raw = np.column_stack([np.asarray(d["accel"][k]) for k in "xyz"])
    assert np.array_equal(trace.accel_mps2, raw * 9.80665)
    assert np.array_equal(trace.gyro_rad_s, np.column_stack([d["gyro"][k] for k in "xyz"]))
    assert trace.accel_mps2.flags.c_contiguous and trace.gyro_rad_s.flags.c_contiguous
