"""A trip's own GPS latency (detect.latency): against a slow twin, on synthetic drives of known latency, on trips
that cannot tell it, and through detect() and ingestion (impacts, roughness and track placed with it)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest
from scipy.spatial.transform import Rotation

import ingest
from bump import latency as gps_latency
from bump import pipeline
from bump.cluster import DefectParams
from bump.report import detection_summary
from bump.store import Store
from detect import Columns, DetectorParams, detect
from detect.latency import estimate_gps_latency, fix_intervals

T0 = 1_780_000_000.0
M_PER_DEG_LAT = 111_195.0


def _drive(duration_s: float, fs_hz: float, *, varying: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t [s], speed [m/s], distance [m]) of a car in traffic: speed swinging by a few m/s over 7-17 s."""
    t = np.arange(round(duration_s * fs_hz)) / fs_hz
    v = np.full(t.size, 10.0)
    if varying:
        v = v + 3.0 * np.sin(2 * np.pi * t / 17.0) + 1.5 * np.sin(2 * np.pi * t / 7.3 + 1.0)
    s = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1])) / fs_hz])
    return t, v, s


def _fixes(t: np.ndarray, v: np.ndarray, s: np.ndarray, latency_s: float, rng: np.random.Generator, *,
           rate_hz: float = 1.0) -> dict[str, np.ndarray]:
    """GPS fixes reporting at ``t_fix`` the speed and place of ``t_fix - latency_s`` (Doppler noise 0.15 m/s)."""
    t_fix = np.arange(0.0, t[-1], 1.0 / rate_hz)
    t_fix = np.clip(t_fix + rng.normal(0.0, 0.01, t_fix.size), 0.0, t[-1])              # the fixes' own jitter
    when = np.clip(t_fix - latency_s, 0.0, t[-1])
    return {"t": t_fix, "speed": np.interp(when, t, v) + rng.normal(0.0, 0.15, t_fix.size),
            "north_m": np.interp(when, t, s)}


def _estimate(t: np.ndarray, fs_hz: float, a_fwd: np.ndarray, fixes: dict[str, np.ndarray],
              valid: np.ndarray | None = None, **kw: Any):
    valid = np.ones(t.size, dtype=bool) if valid is None else valid
    return estimate_gps_latency(float(t[0]), fs_hz, a_fwd, valid, fixes["t"], fixes["speed"], **kw)


def _slow_latency(t: np.ndarray, a_fwd: np.ndarray, valid: np.ndarray, gps_t: np.ndarray, speed: np.ndarray, *,
                  min_s: float = -1.0, max_s: float = 3.0, step_s: float = 0.2, min_intervals: int = 30,
                  min_corr: float = 0.5) -> float:
    """The estimator written out block by block, shift by shift and interval by interval (np.interp,
    np.corrcoef): the integral of the forward acceleration at the edges of blocks of fs // 20 samples, the
    intervals between fixes that lie on the recording, touch no invalid block and have rates a car can have
    (<= 8 m/s^2) at every shift; the best shift must lie inside the range, not at its ends."""
    fs = 1.0 / (t[1] - t[0])
    m = max(1, int(fs // 20.0))
    edges_t, cum, bad_block = [t[0] - 0.5 / fs], [0.0], []
    for j in range(t.size // m):                                # the reference twin loops over blocks ...
        block = slice(j * m, (j + 1) * m)
        cum.append(cum[-1] + float(np.sum(np.where(valid[block], a_fwd[block], 0.0))) / fs)
        edges_t.append(edges_t[-1] + m / fs)
        bad_block.append(not valid[block].all())
    edges_t, cum = np.array(edges_t), np.array(cum)
    step = max(1, round(step_s * fs / m)) / (fs / m)
    shifts = min_s + step * np.arange(int(np.floor((max_s - min_s) / step + 1e-9)) + 1)
    first, second = fix_intervals(gps_t, speed)
    usable = []
    for k, n in zip(first, second, strict=True):                # ... intervals ...
        earliest, latest = gps_t[k] - shifts[-1], gps_t[n] - shifts[0]
        touched = [b for b in range(len(bad_block)) if edges_t[b + 1] > earliest and edges_t[b] < latest]
        if earliest >= edges_t[0] and latest <= edges_t[-1] and not any(bad_block[b] for b in touched):
            usable.append((k, n))
    if len(usable) < min_intervals:
        return math.nan

    def rates(shift: float, k: int, n: int) -> tuple[float, float]:
        dt = gps_t[n] - gps_t[k]
        return ((np.interp(gps_t[n] - shift, edges_t, cum) - np.interp(gps_t[k] - shift, edges_t, cum)) / dt,
                (speed[n] - speed[k]) / dt)

    car_like = [(k, n) for k, n in usable if all(max(map(abs, rates(shift, k, n))) <= 8.0 for shift in shifts)]
    if len(car_like) < min_intervals:
        return math.nan
    corr = []
    for shift in shifts:                                        # ... and shifts
        xs, ys = zip(*(rates(shift, k, n) for k, n in car_like), strict=True)
        corr.append(np.corrcoef(xs, ys)[0, 1])
    corr = np.array(corr)
    b = int(np.argmax(corr))
    if corr[b] < min_corr or b in (0, shifts.size - 1):
        return math.nan
    c0, c1, c2 = corr[b - 1:b + 2]
    den = c0 - 2 * c1 + c2
    return float(shifts[b] + np.clip(0.5 * (c0 - c2) / den if den < 0 else 0.0, -0.5, 0.5) * step)


def _forward(t: np.ndarray, v: np.ndarray, rng: np.random.Generator, noise_mps2: float = 0.3) -> np.ndarray:
    return np.gradient(v, t) + rng.normal(0.0, noise_mps2, t.size) + 0.15        # a small accelerometer bias


@pytest.mark.parametrize("latency_s", [0.0, 0.45, 1.3, 2.2])
def test_the_latency_of_a_drive_is_found(latency_s: float) -> None:
    rng = np.random.default_rng(1)
    t, v, s = _drive(180.0, 100.0)
    fixes = _fixes(t, v, s, latency_s, rng)
    est = _estimate(t, 100.0, _forward(t, v, rng), fixes)
    assert est.known and est.corr > 0.9
    assert est.latency_s == pytest.approx(latency_s, abs=0.08)


@pytest.mark.parametrize("fs_hz, gps_hz", [(10.0, 1.0), (50.0, 1.0), (200.0, 1.0), (100.0, 10.0)])
def test_rates_of_phone_and_gps(fs_hz: float, gps_hz: float) -> None:
    rng = np.random.default_rng(2)
    t, v, s = _drive(180.0, fs_hz)
    est = _estimate(t, fs_hz, _forward(t, v, rng), _fixes(t, v, s, 0.8, rng, rate_hz=gps_hz))
    assert est.latency_s == pytest.approx(0.8, abs=0.1)


@pytest.mark.parametrize("case", ["plain", "gap", "late"])
def test_the_kernel_agrees_with_its_slow_twin(case: str) -> None:
    rng = np.random.default_rng(3)
    t, v, s = _drive(120.0, 50.0)
    a = _forward(t, v, rng, noise_mps2=0.6)
    valid = np.ones(t.size, dtype=bool)
    if case == "gap":
        valid[(t > 40.0) & (t < 55.5)] = False
    fixes = _fixes(t, v, s, 2.6 if case == "late" else 0.6, rng)
    fast = _estimate(t, 50.0, a, fixes, valid)
    slow = _slow_latency(t, a, valid, fixes["t"], fixes["speed"])
    assert fast.known
    assert fast.latency_s == pytest.approx(slow, abs=1e-9)


def test_intervals_across_a_gap_are_left_out() -> None:
    """The accelerometer stopped for 40 s (a gap: no samples) while the car kept changing speed: counting those
    intervals as no acceleration would pull the estimate; leaving them out keeps it."""
    rng = np.random.default_rng(4)
    t, v, s = _drive(200.0, 100.0)
    a = _forward(t, v, rng)
    valid = (t < 60.0) | (t > 100.0)
    a[~valid] = 0.0
    fixes = _fixes(t, v, s, 1.0, rng)
    est = _estimate(t, 100.0, a, fixes, valid)
    assert est.latency_s == pytest.approx(1.0, abs=0.08)
    assert est.n_intervals < fix_intervals(fixes["t"], fixes["speed"])[0].size - 35


def test_a_phone_in_a_hand_for_a_few_seconds_does_not_move_the_estimate() -> None:
    """Picked up for 4 s, the phone reads metres per second squared forward that no car does: those intervals are
    left out (their rates exceed MAX_CAR_ACCEL_MPS2), not allowed to pull the correlation's peak."""
    rng = np.random.default_rng(9)
    t, v, s = _drive(180.0, 100.0)
    a = _forward(t, v, rng)
    hand = (t > 70.0) & (t < 74.0)
    a[hand] += 11.0 * np.sign(np.sin(2 * np.pi * 0.6 * t[hand]))
    est = _estimate(t, 100.0, a, _fixes(t, v, s, 0.9, rng))
    assert est.latency_s == pytest.approx(0.9, abs=0.08)


@pytest.mark.parametrize("case", ["constant speed", "reversed axis", "few fixes", "beyond the range",
                                  "no doppler speed"])
def test_a_trip_that_cannot_tell_gives_no_estimate(case: str) -> None:
    rng = np.random.default_rng(5)
    t, v, s = _drive(20.0 if case == "few fixes" else 180.0, 100.0, varying=case != "constant speed")
    a = _forward(t, v, rng)
    fixes = _fixes(t, v, s, 3.6 if case == "beyond the range" else 0.7, rng)
    if case == "reversed axis":
        a = -a
    if case == "no doppler speed":
        fixes["speed"] = np.full(fixes["t"].size, np.nan)
    est = _estimate(t, 100.0, a, fixes)
    assert not est.known and math.isnan(est.latency_s)


# ---------------------------------------------------------------------------------------------- through detect()


def _trace_doc(latency_s: float, *, hit_s: float = 90.3, seed: int = 6, varying: bool = True
               ) -> tuple[dict[str, Any], float]:
    """A 3-minute drive north with a pothole hit at ``hit_s`` (a damped 11 Hz wheel hop, one wheel: the body rolls),
    the phone tilted in a cup holder, GPS ``latency_s`` late; and the hit's true distance [m] from the start."""
    rng = np.random.default_rng(seed)
    fs = 100.0
    t, v, s = _drive(180.0, fs, varying=varying)
    up = rng.normal(0.0, 0.15, t.size)
    tau = np.clip(t - hit_s, 0.0, None)
    hop = np.where(t >= hit_s, 8.0 * np.exp(-tau / 0.07) * np.sin(2 * np.pi * 11.0 * tau), 0.0)
    car = np.column_stack([rng.normal(0, 0.1, t.size) + 0.8 * hop, _forward(t, v, rng, 0.1), 9.80665 + up + hop])
    phone = Rotation.from_euler("xyz", (35.0, -10.0, 70.0), degrees=True).apply(car)
    fixes = _fixes(t, v, s, latency_s, rng)
    doc = {"format": "bump.trace/1", "trip_id": f"late-{latency_s:g}", "device_id": "d",
           "accel": {"t": T0 + t, "x": phone[:, 0].copy(), "y": phone[:, 1].copy(), "z": phone[:, 2].copy()},
           "gps": {"t": T0 + fixes["t"], "lat": 42.36 + fixes["north_m"] / M_PER_DEG_LAT,
                   "lon": np.full(fixes["t"].size, -71.06), "speed": fixes["speed"],
                   "heading": np.zeros(fixes["t"].size), "accuracy": np.full(fixes["t"].size, 4.0)}}
    return doc, float(np.interp(hit_s, t, s))


def _read(doc: dict[str, Any]) -> ingest.Trace:
    return ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


def test_detect_places_an_impact_with_the_trips_own_latency() -> None:
    doc, hit_m = _trace_doc(1.4)
    trace = _read(doc)
    det = detect(trace)
    assert det.gps_latency.known and det.gps_latency_s == pytest.approx(1.4, abs=0.1)
    front_m = DetectorParams().phone_to_front_axle_m
    placed_m = (det.impacts["lat_deg"] - 42.36) * M_PER_DEG_LAT - front_m
    assert det.n_impacts == 1
    assert placed_m[0] == pytest.approx(hit_m, abs=1.5)
    # told not to search, the fixes' times are taken as they are: the impact lands ~latency x speed behind
    blind = detect(trace, DetectorParams(latency_min_s=0.0, latency_max_s=0.0))
    assert not blind.gps_latency.known and blind.gps_latency_s == 0.0
    blind_m = (blind.impacts["lat_deg"][0] - 42.36) * M_PER_DEG_LAT - front_m
    assert hit_m - blind_m > 10.0
    # the roughness windows move with the impacts
    assert len(det.roughness) == len(blind.roughness) > 0
    assert np.nanmedian(det.roughness["lat_deg"] - blind.roughness["lat_deg"]) * M_PER_DEG_LAT > 10.0


def test_a_trip_far_later_than_configured_is_oriented_at_its_own_latency() -> None:
    """2.5 s late against the configured 0: the GPS speed on the grid (which fits the forward axis and feeds the car
    acceleration and speed features) is taken again at the trip's own latency; within 1 s of it, not."""
    doc, _ = _trace_doc(2.5)
    trace = _read(doc)
    _, v, _ = _drive(180.0, 100.0)
    det = detect(trace)
    assert det.gps_latency_s == pytest.approx(2.5, abs=0.15)
    inside = slice(1_000, 16_000)                        # away from the ends (fixes held there)
    err = np.nanmax(np.abs(det.signals.speed_mps[inside] - v[inside]))
    assert err < 0.6                                     # Doppler noise 0.15 m/s, the speed swings by 9 m/s
    kept = detect(trace, DetectorParams(latency_refit_s=10.0))
    assert kept.gps_latency_s == det.gps_latency_s
    assert np.nanmax(np.abs(kept.signals.speed_mps[inside] - v[inside])) > 3 * err


def test_a_trip_that_cannot_tell_keeps_the_configured_latency() -> None:
    doc, _ = _trace_doc(0.9, varying=False)          # cruise control: the speed changes are GPS noise
    det = detect(_read(doc), DetectorParams(gps_latency_s=0.5))
    assert not det.gps_latency.known
    assert det.gps_latency_s == 0.5
    summary = detection_summary(det, _read(doc))
    assert summary["quality"]["gps_latency"] == {"latency_s": None, "corr": pytest.approx(det.gps_latency.corr,
                                                                                           abs=1e-3),
                                                  "n_intervals": det.gps_latency.n_intervals, "used_s": 0.5}


def test_ingestion_stores_the_track_with_the_hits_latency(tmp_path) -> None:
    trace = _read(_trace_doc(1.1)[0])
    store = Store.open(tmp_path / "b.db")
    pipeline.ingest_trace(store, trace)
    det = detect(trace)
    stored = store.trip_tracks([trace.trip_id])[trace.trip_id][1]
    assert stored == pipeline.trace_track(trace, det.gps_latency_s).to_bytes()
    assert stored != pipeline.trace_track(trace, 0.0).to_bytes()
    quality = store.get_trip(trace.trip_id)["quality"]
    assert quality["gps_latency"]["latency_s"] == pytest.approx(1.1, abs=0.1)
    store.close()


def test_a_trip_that_told_its_latency_is_not_moved_again_by_the_fleets(tmp_path) -> None:
    """The fleet's latency (from features hit both ways) corrects the trips that did not tell their own; a trip
    that told it keeps its hits where it placed them."""
    store = Store.open(tmp_path / "b.db")
    with store.transaction():
        gps_latency.add_fleet_samples(store, np.full(80, 1.0))          # the fleet: fixes 1 s late
    assert gps_latency.fleet_latency(store, DefectParams())[0] == pytest.approx(1.0, abs=0.05)
    told = _read(_trace_doc(1.1)[0])
    pipeline.ingest_trace(store, told)
    hits = store.hits_of_defects(store.all_defects()["defect_id"], ["trip_id", "x_m", "y_m", "own_latency_s"])
    mine = hits.select(hits["trip_id"] == told.trip_id)
    assert len(mine) == 1 and mine["own_latency_s"][0] == pytest.approx(1.1, abs=0.1)
    d = store.all_defects()
    assert d["y_m"][0] == pytest.approx(mine["y_m"][0], abs=0.01)       # not moved on by the fleet's 1 s
    # a trip at constant speed cannot tell: the fleet's second corrects it (~10 m along its heading, north)
    blind = _read(_trace_doc(1.1, varying=False, seed=8)[0] | {"trip_id": "cruise"})
    pipeline.ingest_trace(store, blind)
    hits = store.hits_of_defects(store.all_defects()["defect_id"], ["trip_id", "y_m", "own_latency_s"])
    cruise = hits.select(hits["trip_id"] == "cruise")
    assert len(cruise) == 1 and np.isnan(cruise["own_latency_s"][0])
    placed = gps_latency.hit_latencies_s(store, np.array(["d", "d"]), DefectParams(),
                                         np.array([mine["own_latency_s"][0], np.nan]))
    assert placed.tolist() == [0.0, pytest.approx(1.0, abs=0.05)]
    store.close()


def test_trips_that_told_their_latency_teach_it_to_those_that_cannot(tmp_path) -> None:
    """A trip's own latency is a sample of the fleet's and its device's: a fleet whose trips mostly tell theirs
    still corrects the few that cannot (at steady speed), after ingestion and after a reprocess."""
    dp = DefectParams(latency_min_pairs=3)
    store = Store.open(tmp_path / "b.db")
    for k in range(4):
        doc, _ = _trace_doc(1.2, seed=20 + k)
        pipeline.ingest_trace(store, _read(doc | {"trip_id": f"told-{k}"}), defect_params=dp)
    fleet_s, _ = gps_latency.fleet_latency(store, dp)
    assert fleet_s == pytest.approx(1.2, abs=0.1)
    blind = gps_latency.hit_latencies_s(store, np.array(["d", "other"]), dp, np.array([np.nan, np.nan]))
    assert blind.tolist() == [pytest.approx(1.2, abs=0.1), pytest.approx(1.2, abs=0.1)]
    pipeline.reprocess(store, defect_params=dp)
    assert gps_latency.fleet_latency(store, dp)[0] == pytest.approx(1.2, abs=0.1)
    store.close()


def test_a_defect_whose_hits_all_told_their_latency_does_not_wait_on_the_fleets(tmp_path) -> None:
    """Its summary carries OWN_LATENCY_STAMP, so a pass without a hit keeps it whatever the fleet's latency does
    meanwhile (each told trip moves the fleet's a little)."""
    from bump.refresh import OWN_LATENCY_STAMP, _summary_holds

    store = Store.open(tmp_path / "b.db")
    pipeline.ingest_trace(store, _read(_trace_doc(1.0)[0]))
    d = store.defects_by_id(store.all_defects()["defect_id"], ["defect_id", "kind", "hit_rate", "latency_s",
                                                                "latency_devices", "n_traversals",
                                                                "n_traversal_hits", "first_traversal_s",
                                                                "last_traversal_s"])
    assert d["latency_devices"].tolist() == [OWN_LATENCY_STAMP]
    a_pass = Columns({"defect_id": d["defect_id"], "trip_id": np.array(["later"]), "device_id": np.array(["e"]),
                      "t_s": d["last_traversal_s"] + 86_400.0, "hit": np.zeros(1, dtype=np.int64),
                      "distance_m": np.ones(1)})
    for fleet in ((0.0, 0), (0.7, 3)):
        assert _summary_holds(d, a_pass, fleet, DefectParams()).tolist() == [True]
    fleet_stamped = d.with_columns(latency_s=np.array([0.0]), latency_devices=np.array([0]))
    assert _summary_holds(fleet_stamped, a_pass, (0.7, 3), DefectParams()).tolist() == [False]
    store.close()
