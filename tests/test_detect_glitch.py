"""One-sample sensor glitches are not road impacts: the ``glitch`` rejection on the ``sharpness`` feature
(second-difference energy of the raw vertical acceleration over its energy, within the event; its slow twin is in
test_detect_features.reference_features)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from test_detect_cases import T0, _trace

import ingest
from detect import detect
from detect.pipeline import ringing_sharpness


def _with_spikes(trace: ingest.Trace, times_s: tuple[float, ...], amp_mps2: float = 30.0) -> ingest.Trace:
    """The trace with one sample at each of ``times_s`` (from its start) raised by ``amp_mps2`` on every axis's
    share of vertical (the phone lies flat in :func:`_trace`: z)."""
    acc = trace.accel_mps2.copy()
    for t in times_s:
        acc[int(np.argmin(np.abs(trace.t_s - (trace.t_s[0] + t)))), 2] += amp_mps2
    doc = {"format": "bump.trace/1", "trip_id": "glitch", "device_id": "d",
           "accel": {"t": trace.t_s, "x": acc[:, 0].copy(), "y": acc[:, 1].copy(), "z": acc[:, 2].copy()},
           "gps": {"t": trace.gps_t_s, "lat": trace.lat_deg, "lon": trace.lon_deg, "speed": trace.speed_mps,
                   "heading": trace.heading_deg, "accuracy": trace.accuracy_m}}
    return ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


@pytest.mark.parametrize("fs_hz", [100.0, 200.0])
def test_a_one_sample_glitch_is_no_impact_but_a_wheel_hit_beside_it_is(fs_hz: float) -> None:
    trace = _with_spikes(_trace(fs_hz=fs_hz, hits_s=(40.0,)), (15.0, 25.3, 52.7))
    det = detect(trace)
    assert det.n_impacts == 1
    assert det.impacts["t_s"][0] == pytest.approx(T0 + 40.0, abs=0.1)
    glitches = det.candidates.select(det.candidates["rejected"] == "glitch")
    assert sorted(np.round(glitches["t_s"] - T0).tolist()) == [15.0, 25.0, 53.0]
    assert (glitches["sharpness"] > 5.0).all()


def test_at_50_hz_a_sharp_wheel_hit_is_never_called_a_glitch() -> None:
    """At 50 Hz a wheel's 11 Hz ringing is 4-5 samples a cycle and as sharp as a glitch can look at 100 Hz: the
    bound (a sinusoid at the impact band's top, 25 Hz, is Nyquist there) lets nothing be a glitch."""
    det = detect(_trace(fs_hz=50.0, hits_s=(20.0, 40.0)))
    assert det.n_impacts == 2 and not (det.candidates["rejected"] == "glitch").any()
    assert ringing_sharpness(25.0, 50.0) == 16.0


def test_ringing_sharpness_is_that_of_a_sampled_sinusoid() -> None:
    for f_hz, fs_hz in ((11.0, 100.0), (25.0, 100.0), (20.0, 200.0)):
        x = np.sin(2 * np.pi * f_hz * np.arange(4000) / fs_hz)
        d2 = x[:-2] - 2 * x[1:-1] + x[2:]
        assert ringing_sharpness(f_hz, fs_hz) == pytest.approx((d2 @ d2) / (x[1:-1] @ x[1:-1]), rel=1e-3)
