"""A phone whose GPS fixes come late leaves its hits behind established defects, out of their join gate: it learns
its own latency from them (``bump.cluster.shadow_pairs``, ``bump.pipeline._shadow_samples``), so its later hits
and a reprocess land on the real defect instead of a phantom behind it. Phones that hit both a defect and its
neighbour learn nothing from the neighbour."""

from __future__ import annotations

import numpy as np
import pytest
from test_store import DAY_S, PROJ, T0_S, fake_detection, road_trace

from bump import latency as gps_latency
from bump import pipeline
from bump.cluster import LATENCY_EDGES_S, DefectParams, shadow_pairs
from bump.store import Store

P = DefectParams()


def _pairs(hit_xy, heading_deg=0.0, speed_mps=10.0, used_s=0.0, defect_heading_deg=0.0):
    hx, hy = (np.array([v], dtype=float) for v in hit_xy)
    return shadow_pairs(hx, hy, np.array([heading_deg]), np.array([speed_mps]), np.array([0.0]), np.array([0.0]),
                        np.array([defect_heading_deg]), used_s, P)


def test_shadow_pairs_hand_made() -> None:
    i, j, s = _pairs((0.0, -15.0))                    # 15 m behind a defect at 10 m/s: 1.5 s late
    assert (i.tolist(), j.tolist()) == ([0], [0]) and s[0] == pytest.approx(1.5)
    assert _pairs((0.0, -15.0), used_s=0.4)[2][0] == pytest.approx(1.9)      # on top of the latency already used
    assert _pairs((0.0, 5.0))[2][0] == pytest.approx(-0.5)                   # ahead: corrected too much
    assert _pairs((3.9, -15.0))[2].size == 1
    assert _pairs((4.1, -15.0))[2].size == 0           # farther across the road than latency_lateral_m
    assert _pairs((0.0, -15.0), defect_heading_deg=180.0)[2].size == 0       # the other direction's defect
    assert _pairs((0.0, -15.0), speed_mps=3.0)[2].size == 0                  # too slow to tell
    assert _pairs((0.0, -15.0), heading_deg=np.nan)[2].size == 0
    beyond_m = 10.0 * LATENCY_EDGES_S[-1] + 1.0
    assert _pairs((0.0, -beyond_m))[2].size == 0      # later than the calibration's range
    # heading east: "behind" is west
    assert _pairs((-15.0, 0.0), heading_deg=90.0, defect_heading_deg=90.0)[2][0] == pytest.approx(1.5)
    empty = shadow_pairs(np.empty(0), np.empty(0), np.empty(0), np.empty(0), np.zeros(1), np.zeros(1),
                         np.zeros(1), 0.0, P)
    assert all(a.size == 0 for a in empty)


def _ingest(store: Store, trip_id: str, device: str, t0_s: float, impacts: list) -> None:
    trace = road_trace(trip_id, device, t0_s=t0_s)
    pipeline.ingest_trace(store, trace, detection=fake_detection(trace, impacts), clock=lambda: t0_s + 3600.0)


def _at(y_m: float, kind: str = "pothole") -> tuple:
    return (0.0, y_m, kind, 9.0, 0.9)


def _latency_s(store: Store, device: str) -> float:
    return float(gps_latency.hit_latencies_s(store, np.array([device]), P)[0])


def _defects_y(store: Store) -> list[tuple[float, str, int]]:
    d = store.all_defects()
    _, y = PROJ.to_xy(d["lat_deg"], d["lon_deg"])
    return sorted((round(float(y[k]), 1), str(d["status"][k]), int(d["n_hits"][k])) for k in range(len(d)))


def test_late_phones_learn_their_latency_and_a_reprocess_drops_their_phantom(tmp_path) -> None:
    late_m = 15.0                       # 1.5 s late at 10 m/s: out of the join gate (~11 m here)
    impacts: dict[str, list] = {}
    with Store.open(tmp_path / "late.db") as store:
        n = 0
        for k in range(40):             # four phones hit the pothole at the origin on every pass; three late
            trip = f"n{k}"              # phones' hits land 15 m behind it, 12 trips each (fewer phones than
            impacts[trip] = [_at(0.0)]  # the pothole's: the majority of phones says where it is)
            _ingest(store, trip, "abcw"[k % 4], T0_S + n * DAY_S / 8, impacts[trip])
            n += 1
            if k >= 4:
                trip = f"late{k}"
                impacts[trip] = [_at(-late_m)]
                _ingest(store, trip, "def"[k % 3], T0_S + n * DAY_S / 8, impacts[trip])
                n += 1
        for dev in "def":
            assert _latency_s(store, dev) > 0.5, dev            # learnt from the hits behind the pothole
        for dev in "abcw":
            assert abs(_latency_s(store, dev)) < 0.05, dev
        pipeline.reprocess(store, detect_fn=lambda trace, params: fake_detection(trace, impacts[trace.trip_id]),
                           clock=lambda: T0_S + n * DAY_S / 8 + 3600.0)
        defects = _defects_y(store)
    # the late phones' hits, moved forward by their latency, no longer make a confirmed phantom behind the pothole
    assert not [d for d in defects if d[0] < -8.0 and d[1] == "confirmed"], defects
    main = max(defects, key=lambda d: d[2])
    # all 76 hits on one confirmed defect; its centre a few metres behind the pothole, as the learnt latency is
    # still weighted against the fleet's (device_latency_prior) after 12 trips per phone
    assert main[1] == "confirmed" and main[2] == 76 and abs(main[0]) < 5.0, defects


def test_phones_that_hit_a_pothole_and_the_cover_before_it_learn_no_latency_from_the_cover(tmp_path) -> None:
    with Store.open(tmp_path / "pair.db") as store:
        for k in range(10):                 # five phones hit the pothole; three of them hit the cover 15 m before it
            dev = "abcde"[k % 5]
            imp = [_at(0.0)] + ([_at(-15.0, "cover")] if dev in "abc" else [])
            _ingest(store, f"t{k}", dev, T0_S + k * DAY_S, imp)
        for k in range(6):                  # then those three hit only the cover: its hits lie 15 m behind a
            _ingest(store, f"c{k}", "abc"[k % 3], T0_S + (10 + k) * DAY_S, [_at(-15.0, "cover")])   # busier defect
        for dev in "abcde":                 # that they hit too: a defect of its own, not a late phone's shadow
            assert abs(_latency_s(store, dev)) < 0.05, dev
        statuses = {round(y): s for y, s, _ in _defects_y(store)}
    # two defects where they are; the pothole missed on the last six passes looks repaired, as it should
    assert statuses == {-15: "confirmed", 0: "likely_repaired"}
