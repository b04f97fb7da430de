"""Samples stamped in bursts (apps stamping on arrival, Android sensor batching) and the gyroscope's unit.

Bursts: several samples share one time, or lie a fraction of a millisecond apart, every ~20-100 ms; validation
keeps them and spreads each burst evenly up to the next one (checked against a slow per-burst reference), while
repeated lines are still dropped and ordinary jittered clocks are left exactly as before. Gyroscope: an optional
``"unit"`` ("rad/s" or "deg/s") in the bump.trace/1 ``gyro`` block, and a unit check whose message reads right.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import numpy as np
import orjson
import pytest
from conftest import T0_S, make_doc
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import ingest
from ingest.errors import SampleRateError, SchemaError, UnitError
from ingest.formats.bump_json import dumps, to_document
from ingest.trace import Limits, Trace
from ingest.validate import GYRO_MAX_MEDIAN_RAD_S, build_trace

FS_HZ = 200.0
DT_S = 1.0 / FS_HZ


def _xyz(n: int, seed: int = 0) -> np.ndarray:
    """Distinct accelerometer readings [m/s^2] (gravity on +z, noise on every axis): no two rows equal."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(0.0, 0.2, n), rng.normal(0.0, 0.2, n), 9.81 + rng.normal(0.0, 0.3, n)])


def _build(t_s: np.ndarray, xyz: np.ndarray, **kw: Any) -> Trace:
    return build_trace(source="burst.json", source_format="test", trip_id="trip", device_id="dev",
                       accel_t_s=t_s, accel_xyz=xyz, **kw)


def _arrival(t_s: np.ndarray, k: int) -> np.ndarray:
    """Times stamped on arrival: each group of ``k`` samples gets the time of its last sample."""
    idx = np.arange(t_s.size)
    return t_s[np.minimum((idx // k) * k + k - 1, t_s.size - 1)]


def _respace_reference(t_s: np.ndarray, tight_s: float, gap_factor: float) -> np.ndarray:
    """Slow, obvious re-spacing of sorted times: Python loops over bursts and samples."""
    bursts: list[list[int]] = [[0]]
    for i in range(1, t_s.size):
        if t_s[i] - t_s[i - 1] <= tight_s:
            bursts[-1].append(i)
        else:
            bursts.append([i])
    spacing = [(t_s[b2[0]] - t_s[b1[0]]) / len(b1) for b1, b2 in pairwise(bursts)]
    typical = float(np.median(spacing))
    spacing = [typical if s > gap_factor * typical else s for s in spacing] + [typical]
    out = np.empty(t_s.size)
    for b, s in zip(bursts, spacing, strict=True):
        for m, i in enumerate(b):
            out[i] = t_s[b[0]] + m * s
    return out


# --- bursts -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 5, 20, 400])   # 400: one burst every 2 s
def test_bursts_sharing_one_stamp_keep_every_sample_evenly_spaced(k: int) -> None:
    n = 4000
    t_true = T0_S + np.arange(n) * DT_S
    xyz = _xyz(n)
    trace = _build(_arrival(t_true, k), xyz)
    assert trace.n_samples == n                                  # today: n / k kept, the rest dropped
    np.testing.assert_array_equal(trace.accel_mps2, xyz)          # every reading, in its order
    np.testing.assert_allclose(np.diff(trace.t_s), DT_S, rtol=0, atol=1e-6)
    # stamped with the burst's arrival (its last sample), spread forward: at most one burst late
    assert np.all(trace.t_s - t_true >= -1e-6) and np.all(trace.t_s - t_true <= (k - 1) * DT_S + 1e-6)
    assert trace.quality.accel_rate_hz == pytest.approx(FS_HZ, rel=1e-4)
    assert trace.quality.dropped == {}
    note = next(p for p in trace.quality.problems if p.startswith("accel:"))
    assert f"{n} of {n} samples" in note
    assert "re-spaced" in note and "event time" in note


def test_sub_millisecond_bursts_are_re_spaced_not_refused() -> None:
    """10 samples 0.1 ms apart every 50 ms (a 200 Hz phone): read through the bump.trace/1 reader."""
    doc = make_doc(duration_s=20.0, rate_hz=FS_HZ, gps=False, gyro=False)
    t = np.asarray(doc["accel"]["t"])
    idx = np.arange(t.size)
    doc["accel"]["t"] = (t[(idx // 10) * 10] + (idx % 10) * 1e-4).tolist()
    trace = ingest.read(orjson.dumps(doc), name="batched.json")  # today: SampleRateError at 1e4 Hz
    assert trace.n_samples == t.size
    np.testing.assert_allclose(trace.t_s, t, rtol=0, atol=1e-6)   # the first of a burst carries its true time
    assert trace.quality.accel_rate_hz == pytest.approx(FS_HZ, rel=1e-4)
    assert any(p.startswith(f"accel: {t.size} of {t.size} samples") and "re-spaced" in p
               for p in trace.quality.problems)


def test_gyroscope_bursts_are_re_spaced_too() -> None:
    n = 4000
    t_true = T0_S + np.arange(n) * DT_S
    omega = np.random.default_rng(3).normal(0.0, 0.05, (n, 3))
    trace = _build(t_true, _xyz(n), gyro_t_s=_arrival(t_true, 4), gyro_xyz=omega)
    assert trace.gyro_t_s.size == n
    np.testing.assert_array_equal(trace.gyro_rad_s, omega)
    np.testing.assert_allclose(np.diff(trace.gyro_t_s), DT_S, rtol=0, atol=1e-6)
    assert trace.quality.gyro_rate_hz == pytest.approx(FS_HZ, rel=1e-4)
    assert any(p.startswith("gyro:") and "re-spaced" in p for p in trace.quality.problems)


def test_a_gap_between_bursts_stays_a_gap() -> None:
    n = 4000
    t_true = T0_S + np.arange(n) * DT_S
    t_true[2000:] += 30.0
    trace = _build(_arrival(t_true, 5), _xyz(n))
    dt = np.diff(trace.t_s)
    assert trace.n_samples == n
    assert trace.quality.n_gaps == 1 and trace.quality.gap_total_s == pytest.approx(30.0 + DT_S, abs=1e-5)
    np.testing.assert_allclose(np.delete(dt, 1999), DT_S, rtol=0, atol=1e-6)   # before the gap: typical spacing


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), max_k=st.integers(2, 12))
def test_respacing_matches_a_per_burst_reference(seed: int, max_k: int) -> None:
    """Bursts of 1..max_k samples at irregular intervals, stamped equal or 0.05 ms apart, one 10 s gap."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_k + 1, 400)
    sizes[0] = max(2, sizes[0])                                  # at least one true burst
    arrival_s = T0_S + np.cumsum(sizes * DT_S * rng.uniform(0.7, 1.3, sizes.size))
    arrival_s[250:] += 10.0
    within_s = np.concatenate([np.arange(k) for k in sizes]) * rng.choice([0.0, 5e-5])
    t = np.repeat(arrival_s, sizes) + within_s
    trace = _build(t, _xyz(t.size, seed))
    limits = Limits()
    short = np.diff(t)[np.diff(t) <= limits.gap_factor / limits.min_rate_hz]
    assume(np.count_nonzero(np.diff(t) <= 0.1 * short.mean()) >= 0.2 * (t.size - 1))   # read as bursts
    ref = _respace_reference(t, 0.1 * short.mean(), limits.gap_factor)
    assert trace.n_samples == t.size
    np.testing.assert_allclose(trace.t_s, ref, rtol=0, atol=1e-6)


def test_repeated_lines_are_still_dropped() -> None:
    n = 2000
    t_true = T0_S + np.arange(n) * DT_S
    xyz = _xyz(n)
    # a batched trace whose every line is written twice: the copies go, the bursts stay
    trace = _build(np.repeat(_arrival(t_true, 5), 2), np.repeat(xyz, 2, axis=0))
    assert trace.n_samples == n
    assert trace.quality.dropped == {"accel_duplicate_t": n}
    np.testing.assert_array_equal(trace.accel_mps2, xyz)
    np.testing.assert_allclose(np.diff(trace.t_s), DT_S, rtol=0, atol=1e-6)
    # an ordinary trace whose every line is written twice: the copies go, the times are left as they were
    trace = _build(np.repeat(t_true, 2), np.repeat(xyz, 2, axis=0))
    np.testing.assert_array_equal(trace.t_s, t_true)
    assert trace.quality.dropped == {"accel_duplicate_t": n}
    assert not any("re-spaced" in p or "other values" in p for p in trace.quality.problems)


def test_stray_duplicate_times_are_dropped_and_noted() -> None:
    """A few duplicate times with other values are not bursts: dropped as before, and now said so."""
    n = 2000
    t = T0_S + np.arange(n) * DT_S
    t[[100, 700, 1300]] = t[[99, 699, 1299]]
    trace = _build(t, _xyz(n))
    assert trace.n_samples == n - 3
    assert trace.quality.dropped == {"accel_duplicate_t": 3}
    assert any(p.startswith("accel: 3 samples dropped") and "event time" in p for p in trace.quality.problems)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), jitter=st.sampled_from([0.0, 0.1, 0.3, 1.0, 2.0]),
       n_dup=st.integers(0, 5))
def test_ordinary_jittered_clocks_are_left_as_before(seed: int, jitter: float, n_dup: int) -> None:
    """Jitter up to 2 intervals and a few duplicate times: sorted and deduplicated exactly as before bursts."""
    rng = np.random.default_rng(seed)
    n = 3000
    t = T0_S + (np.arange(n) + rng.normal(0.0, jitter, n)) * DT_S
    dup = rng.choice(np.arange(1, n), n_dup, replace=False)
    t[dup] = t[dup - 1]
    xyz = _xyz(n, seed)
    trace = _build(t, xyz)
    order = np.argsort(t, kind="stable")                          # the rule before bursts: sort, drop later dups
    ts, xs = t[order], xyz[order]
    keep = np.concatenate(([True], np.diff(ts) > 0))
    np.testing.assert_array_equal(trace.t_s, ts[keep])
    np.testing.assert_array_equal(trace.accel_mps2, xs[keep])
    assert not any("re-spaced" in p for p in trace.quality.problems)


def test_a_truly_fast_trace_is_refused_with_the_right_hint() -> None:
    doc = make_doc(rate_hz=2500.0, duration_s=2.0, gps=False)
    with pytest.raises(SampleRateError) as info:
        ingest.read(orjson.dumps(doc), name="fast.json")
    msg = str(info.value)
    assert "outside 4-1000 Hz" in msg and "not bursts" in msg and "resample" in msg
    assert "not ms or ns" not in msg                              # ms read as s makes a trace slow, not fast


def test_bursts_too_far_apart_to_re_space_are_refused_naming_them() -> None:
    """400 samples 1 us apart every 2 s: the stamps give ~1 MHz, the recording averages 200 Hz."""
    n = 8000
    t = T0_S + np.arange(n) * DT_S
    idx = np.arange(n)
    with pytest.raises(SampleRateError) as info:
        _build(t[(idx // 400) * 400] + (idx % 400) * 1e-6, _xyz(n))
    msg = str(info.value)
    mean_hz = float(re.search(r"average ([0-9.]+) Hz", msg).group(1))   # type: ignore[union-attr]
    assert 150.0 < mean_hz < 250.0 and "event time" in msg and "check that t is in seconds" not in msg


# --- gyroscope unit -----------------------------------------------------------------------------------------------

def _gyro_doc(scale: float, unit: str | None, sigma_rad_s: float = 0.05) -> dict[str, Any]:
    doc = make_doc(duration_s=20.0, rate_hz=100.0)
    rng = np.random.default_rng(5)
    for k in "xyz":
        doc["gyro"][k] = (rng.normal(0.0, sigma_rad_s, len(doc["gyro"]["t"])) * scale).tolist()
    if unit is not None:
        doc["gyro"]["unit"] = unit
    return doc


@pytest.mark.parametrize("sigma_rad_s", [0.01, 0.05])
def test_gyro_declared_in_deg_per_s_equals_the_rad_per_s_trace(sigma_rad_s: float) -> None:
    """0.01 rad/s in deg/s passes the median check unconverted (today: accepted 57x too large); 0.05 does not."""
    rad = ingest.read(orjson.dumps(_gyro_doc(1.0, None, sigma_rad_s)))
    deg = ingest.read(orjson.dumps(_gyro_doc(180.0 / np.pi, "deg/s", sigma_rad_s)))
    np.testing.assert_allclose(deg.gyro_rad_s, rad.gyro_rad_s, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(deg.gyro_t_s, rad.gyro_t_s)
    explicit = ingest.read(orjson.dumps(_gyro_doc(1.0, "rad/s", sigma_rad_s)))
    np.testing.assert_array_equal(explicit.gyro_rad_s, rad.gyro_rad_s)


def test_the_writer_keeps_rad_per_s() -> None:
    deg = ingest.read(orjson.dumps(_gyro_doc(180.0 / np.pi, "deg/s")))
    doc = to_document(deg)
    assert doc["gyro"].get("unit", "rad/s") == "rad/s"
    back = ingest.read(dumps(deg))
    np.testing.assert_array_equal(back.gyro_rad_s, deg.gyro_rad_s)


@pytest.mark.parametrize("unit", ["rpm", "deg/sec", 57.3])
def test_an_unknown_gyro_unit_is_refused_naming_the_field(unit: Any) -> None:
    with pytest.raises(SchemaError) as info:
        ingest.read(orjson.dumps(_gyro_doc(1.0, unit)), name="trip.json")
    msg = str(info.value)
    assert "trip.json" in msg and "gyro.unit" in msg and "'deg/s'" in msg and "'rad/s'" in msg
    assert repr(str(unit)) in msg or repr(repr(unit)) in msg


def _median_norm(doc: dict[str, Any]) -> float:
    g = np.column_stack([doc["gyro"][k] for k in "xyz"])
    return float(np.median(np.linalg.norm(g, axis=1)))


@pytest.mark.parametrize("above", [1.003, 1.0004, 1.0 + 1e-9])
def test_the_unit_message_at_the_limit_is_not_contradictory(above: float) -> None:
    doc = _gyro_doc(1.0, None)
    factor = above * GYRO_MAX_MEDIAN_RAD_S / _median_norm(doc)
    for k in "xyz":
        doc["gyro"][k] = [v * factor for v in doc["gyro"][k]]
    assert _median_norm(doc) > GYRO_MAX_MEDIAN_RAD_S
    with pytest.raises(UnitError) as info:
        ingest.read(orjson.dumps(doc), name="trip.json")
    msg = str(info.value)
    shown = float(re.search(r"median \|omega\| is ([0-9.e+-]+) rad/s", msg).group(1))   # type: ignore[union-attr]
    assert shown > GYRO_MAX_MEDIAN_RAD_S                          # today: "is 1 rad/s" while refusing above 1
    assert shown == pytest.approx(above, rel=1e-3)
    assert "looks like deg/s" in msg and '"unit": "deg/s"' in msg and "pi/180" in msg


def test_deg_per_s_declared_but_still_too_fast_is_refused() -> None:
    """Declared deg/s with values 57x too large (rad/s data already multiplied twice) is still caught."""
    with pytest.raises(UnitError, match=r"converted from deg/s"):
        ingest.read(orjson.dumps(_gyro_doc((180.0 / np.pi) ** 2, "deg/s")))


def test_a_genuine_fast_stretch_in_a_slow_trace_keeps_its_times() -> None:
    """4 min at 200 Hz, a pause, then 50 min at 5 Hz (a phone dropping its rate with the screen off): 5 ms is a
    sample spacing, not a stamp, so the fast stretch is no 'burst' to spread over the pause (review of helper 41)."""
    t0 = 1.7e9
    t = np.concatenate([t0 + np.arange(0, 240, 0.005), t0 + 840 + np.arange(0, 3000, 0.2)])
    rng = np.random.default_rng(0)
    xyz = np.column_stack([rng.normal(0, .2, t.size), rng.normal(0, .2, t.size), 9.81 + rng.normal(0, .3, t.size)])
    tr = build_trace(source="x", source_format="t", trip_id="a", device_id="d", accel_t_s=t, accel_xyz=xyz)
    np.testing.assert_array_equal(tr.t_s, t)
    assert not any("bursts" in p for p in tr.quality.problems)


@pytest.mark.parametrize(("rate_hz", "batch"), [(50.0, 10), (100.0, 10), (200.0, 10)])
def test_bursts_on_a_millisecond_clock_are_one_burst_each(rate_hz: float, batch: int) -> None:
    """Arrival stamps from a millisecond clock: a batch handed over 0.3 ms per sample reads 0 and 1 ms steps; a
    1 ms step is a clock tick inside the batch, not a sample spacing (helper 42's review)."""
    n = 6000
    true = np.arange(n) / rate_hz
    arrival = true[batch - 1::batch].repeat(batch)[:n] + np.tile(np.arange(batch) * 3e-4, n // batch + 1)[:n]
    stamps = 1.7e9 + np.round(arrival, 3)
    rng = np.random.default_rng(2)
    xyz = np.column_stack([rng.normal(0, .2, n), rng.normal(0, .2, n), 9.81 + rng.normal(0, .3, n)])
    tr = build_trace(source="x", source_format="t", trip_id="a", device_id="d", accel_t_s=stamps, accel_xyz=xyz)
    assert tr.n_samples == n and tr.quality.accel_rate_hz == pytest.approx(rate_hz, rel=0.01)
    assert np.diff(tr.t_s).min() > 0.5 / rate_hz                      # no squeezed pieces of a batch


def test_equal_readings_within_bursts_are_kept() -> None:
    """A quantised sensor at rest repeats exact values; within arrival-stamped bursts (one stamp each) those
    are readings, not lines written twice (helper 41's review)."""
    n = 2000
    t_true = T0_S + np.arange(n) * DT_S
    xyz = _xyz(n)
    xyz[1::7] = xyz[0::7][: xyz[1::7].shape[0]]          # every 7th sample repeats the one before exactly
    trace = _build(_arrival(t_true, 5), xyz)
    assert trace.n_samples == n and "accel_duplicate_t" not in trace.quality.dropped
    np.testing.assert_array_equal(trace.accel_mps2, xyz)
