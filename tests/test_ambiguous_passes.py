"""Passes without a hit close in time to another one-wheel hit of the trip count as neither hit nor miss
(``bump.cluster.ambiguous_passes``): a phone whose GPS is late puts its hits metres behind the defect, and its
passes must not make a pothole that is still being hit look repaired."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_store import DAY_S, POTHOLE, PROJ, T0_S, fake_detection, road_trace, store  # noqa: F401  (fixture)

from bump import pipeline
from bump.cluster import DefectParams, ambiguous_passes

P = DefectParams()          # ambiguous_pass_s 3 s; join gate >= 8 m (join_radius_m)


def _slow(pass_trip, pass_t, pass_xy, pass_unc, pass_spans, hit_trip, hit_t, hit_xy, hit_acc, hit_spans, dp):
    """Reference twin: one loop over passes and hits."""
    out = []
    for tr, t, pxy, pu, sp in zip(pass_trip, pass_t, pass_xy, pass_unc, pass_spans, strict=True):
        near = False
        for ht, hh, hxy, ha, hs in zip(hit_trip, hit_t, hit_xy, hit_acc, hit_spans, strict=True):
            acc = max(ha if np.isfinite(ha) and ha > 0 else dp.default_accuracy_m, dp.min_accuracy_m)
            gate = min(max(dp.gate_sigmas * np.hypot(acc, pu), dp.join_radius_m), dp.max_join_radius_m)
            if (ht == tr and not hs and np.isfinite(hh) and abs(hh - t) <= dp.ambiguous_pass_s
                    and np.hypot(hxy[0] - pxy[0], hxy[1] - pxy[1]) > gate):
                near = True
        out.append(bool(near and not sp and np.isfinite(t)))
    return np.array(out, dtype=bool)


def _one(pass_t: float, hit_t: float, hit_y_m: float, *, hit_trip: str = "a", hit_spans: bool = False,
         pass_spans: bool = False, dp: DefectParams = P) -> bool:
    """Whether one pass at the origin (uncertainty 2 m) is ambiguous with one hit at (0, hit_y_m), accuracy 4 m."""
    got = ambiguous_passes(["a"], [pass_t], [[0.0, 0.0]], [2.0], [pass_spans], [hit_trip], [hit_t],
                           [[0.0, hit_y_m]], [4.0], [hit_spans], dp)
    return bool(got[0])


def test_hand_made_passes() -> None:
    # gate here: clip(2.5 * hypot(4, 2), 8, 25) = 11.2 m
    assert _one(100.0, 98.2, -18.0)                 # a late phone's hit: 1.8 s before, 18 m behind
    assert _one(100.0, 101.0, 15.0)                 # ahead works too (GPS early, or the fix's error)
    assert not _one(100.0, 98.2, -10.0)             # within the gate: it would have joined, or a nearer defect took it
    assert not _one(100.0, 96.9, -18.0)             # more than 3 s away in time
    assert _one(100.0, 97.0, -18.0)                 # the window is inclusive
    assert not _one(100.0, 98.2, -18.0, hit_spans=True)      # a speed bump felt says nothing of a pothole
    assert not _one(100.0, 98.2, -18.0, pass_spans=True)     # road-spanning features keep every pass
    assert not _one(100.0, 98.2, -18.0, hit_trip="b")        # another trip's hit
    assert not _one(np.nan, 98.2, -18.0)
    assert not _one(100.0, np.nan, -18.0)
    assert not _one(100.0, 98.2, -18.0, dp=DefectParams(ambiguous_pass_s=0.0))
    # several passes and hits at once, in any order, each pass judged by its own trip's hits
    got = ambiguous_passes(["b", "a", "a"], [50.0, 100.0, 200.0], [[0, 0], [0, 0], [0, 100]], [2.0, 2.0, 2.0],
                           [False, False, False], ["a", "b", "a"], [199.0, 49.0, 98.0],
                           [[0, 80], [0, -30], [0, -10]], [4.0, 4.0, 4.0], [False, False, False], P)
    assert got.tolist() == [True, False, True]
    assert ambiguous_passes([], np.empty(0), np.empty((0, 2)), [], [], ["a"], [1.0], [[0, 0]], [4.0], [False],
                            P).size == 0


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_pass=st.integers(0, 25), n_hit=st.integers(0, 25),
       window_s=st.sampled_from([0.0, 0.5, 3.0]))
def test_matches_the_reference_twin(seed, n_pass, n_hit, window_s) -> None:
    rng = np.random.default_rng(seed)
    dp = DefectParams(ambiguous_pass_s=window_s)
    trips = np.array(["t1", "t2", "t3"])
    pass_trip, hit_trip = rng.choice(trips, n_pass), rng.choice(trips, n_hit)
    pass_t = T0_S + rng.uniform(0, 60, n_pass).round(1)
    hit_t = T0_S + rng.uniform(0, 60, n_hit).round(1)
    pass_t[rng.random(n_pass) < 0.1] = np.nan
    hit_t[rng.random(n_hit) < 0.1] = np.nan
    pass_xy, hit_xy = rng.uniform(-30, 30, (n_pass, 2)), rng.uniform(-30, 30, (n_hit, 2))
    pass_unc, hit_acc = rng.uniform(1, 8, n_pass), rng.choice([np.nan, 0.0, 3.0, 12.0], n_hit)
    pass_spans, hit_spans = rng.random(n_pass) < 0.2, rng.random(n_hit) < 0.2
    args = (pass_trip, pass_t, pass_xy, pass_unc, pass_spans, hit_trip, hit_t, hit_xy, hit_acc, hit_spans, dp)
    assert ambiguous_passes(*args).tolist() == _slow(*args).tolist()


# ------------------------------------------------------------------------------------------ through ingestion

LATE_M = 18.0          # a phone 1.8 s late at 10 m/s: its hits lie 18 m behind the pothole, out of the join gate


def _ingest(store, trip_id: str, device: str, t0_s: float, impacts: list, dp: DefectParams):  # noqa: F811
    trace = road_trace(trip_id, device, t0_s=t0_s)
    return pipeline.ingest_trace(store, trace, detection=fake_detection(trace, impacts), defect_params=dp,
                                 clock=lambda: t0_s + 3600.0)


def _late_phones_pass(store, dp: DefectParams) -> tuple[str, set[str]]:  # noqa: F811
    """A pothole at the origin confirmed by three phones, then five passes of two late phones that hit it (their
    hits 18 m behind it) and one of a late phone that missed it. Returns the pothole's status and the trips
    counted as its passes."""
    for k, dev in enumerate(["a", "b", "c"]):
        _ingest(store, f"hit{k}", dev, T0_S + k * DAY_S, [POTHOLE], dp)
    late_hit = (0.0, -LATE_M, "pothole", 9.0, 0.9)
    for k in range(5):
        _ingest(store, f"late{k}", ["d", "e"][k % 2], T0_S + (5 + k) * DAY_S, [late_hit], dp)
    _ingest(store, "late-miss", "d", T0_S + 11 * DAY_S, [], dp)
    did, status = _at_origin(store)
    return status, set(store.traversals_of_defects([did])["trip_id"].tolist())


def _at_origin(store) -> tuple[int, str]:  # noqa: F811
    """(id, status) of the defect at the origin."""
    d = store.all_defects()
    dist_m = np.hypot(*PROJ.to_xy(d["lat_deg"], d["lon_deg"]))
    k = int(np.argmin(dist_m))
    assert dist_m[k] < 3.0
    return int(d["defect_id"][k]), str(d["status"][k])


def test_late_phones_that_hit_it_do_not_make_a_pothole_look_repaired(store) -> None:  # noqa: F811
    status, passes = _late_phones_pass(store, DefectParams())
    assert status == "confirmed"
    # their passes with a hit 1.8 s before count as neither; the late pass without any hit is a miss
    assert passes == {"hit0", "hit1", "hit2", "late-miss"}


def test_without_the_rule_the_late_passes_count_as_misses(tmp_path) -> None:
    from bump.store import Store

    with Store.open(tmp_path / "off.db") as s:
        status, passes = _late_phones_pass(s, DefectParams(ambiguous_pass_s=0.0))
    assert status == "likely_repaired"
    assert {f"late{k}" for k in range(5)} <= passes


def test_stored_trips_passing_a_new_defect_near_a_hit_of_theirs_are_not_backfilled(store) -> None:  # noqa: F811
    dp = DefectParams()
    late_hit = (0.0, -LATE_M, "pothole", 9.0, 0.9)
    _ingest(store, "late0", "d", T0_S, [late_hit], dp)              # stored before the pothole is known
    _ingest(store, "quiet", "e", T0_S + DAY_S, [], dp)              # passes it with no hit at all
    _ingest(store, "first", "a", T0_S + 2 * DAY_S, [POTHOLE], dp)   # creates the defect: backfill
    did, _ = _at_origin(store)
    passes = set(store.traversals_of_defects([did])["trip_id"].tolist())
    assert passes == {"first", "quiet"}
