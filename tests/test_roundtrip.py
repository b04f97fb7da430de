"""bump.trace/1 writing then reading gives back the same arrays, bit for bit."""

from __future__ import annotations

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
