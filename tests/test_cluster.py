"""Clustering: direction handling, robust positions (fast vs slow reference), traversals, kind from hit patterns,
full re-cluster."""

from __future__ import annotations

import numpy as np
import pytest
from test_store import (  # noqa: F401  (fixture)
    DAY_S,
    POTHOLE,
    PROJ,
    T0_S,
    add_trip,
    block_loop,
    fake_detection,
    road_trace,
    store,
)

from bump import cells as cellmap
from bump import cluster, latency, pipeline, refresh, traversals, views
from bump.cluster import (
    DefectParams,
    angle_diff_deg,
    robust_centres,
    weighted_median_by_label,
)
from bump.kinds import decide_depth_classes, decide_kind, decide_kinds
from bump.latency import LatencyCalibration, corrected_xy, device_latency_s, device_latency_samples, latency_samples
from bump.recluster import recluster, split_apart
from bump.store import Store
from bump.traversals import Track, find_traversals
from detect.params import DetectorParams

P = DefectParams()


# ---------------------------------------------------------------------------------------------- kernels


def _slow_weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    half = 0.5 * w.sum()
    acc = 0.0
    for vi, wi in zip(v, w, strict=True):
        acc += wi
        if acc >= half - 1e-12 * abs(half):
            return float(vi)
    return float(v[-1])


def _slow_centre(x: np.ndarray, y: np.ndarray, acc: np.ndarray, params: DefectParams) -> tuple[float, float]:
    w0 = 1.0 / acc**2
    cx, cy = _slow_weighted_median(x, w0), _slow_weighted_median(y, w0)
    for _ in range(params.irls_iterations):
        num_x = num_y = den = 0.0
        for xi, yi, ai, wi in zip(x, y, acc, w0, strict=True):
            r = float(np.hypot(xi - cx, yi - cy))
            w = wi / (1.0 + (r / (params.robust_k * ai)) ** 2)
            num_x += w * xi
            num_y += w * yi
            den += w
        cx, cy = num_x / den, num_y / den
    return cx, cy


def test_robust_centres_match_the_slow_reference() -> None:
    rng = np.random.default_rng(3)
    n, k = 400, 17
    labels = rng.integers(0, k, n)
    x = rng.normal(0, 5, n) + labels * 100.0
    y = rng.normal(0, 5, n)
    acc = rng.uniform(2, 15, n)
    c = robust_centres(labels, x, y, acc, np.arange(n), k, P)
    for g in range(k):
        m = labels == g
        ref = _slow_centre(x[m], y[m], acc[m], P)
        np.testing.assert_allclose([c.x_m[g], c.y_m[g]], ref, rtol=1e-10, atol=1e-9)
        assert _slow_weighted_median(x[m], 1 / acc[m] ** 2) == weighted_median_by_label(labels, x, 1 / acc**2, k)[g]


def test_centre_resists_an_outlier_and_uncertainty_shrinks_with_trips() -> None:
    x = np.array([0.0, 0.5, -0.5, 0.2, 40.0])
    y = np.zeros(5)
    acc = np.full(5, 4.0)
    c = robust_centres(np.zeros(5, dtype=np.int64), x, y, acc, np.arange(5), 1, P)
    assert abs(c.x_m[0]) < 0.5                       # a plain mean would be 8 m off
    one = robust_centres(np.zeros(1, dtype=np.int64), x[:1], y[:1], acc[:1], np.arange(1), 1, P)
    assert one.uncertainty_m[0] == pytest.approx(4.0)   # a single hit is as uncertain as its fix
    same_trip = robust_centres(np.zeros(4, dtype=np.int64), x[:4], y[:4], acc[:4], np.zeros(4), 1, P)
    many_trips = robust_centres(np.zeros(4, dtype=np.int64), x[:4], y[:4], acc[:4], np.arange(4), 1, P)
    assert many_trips.uncertainty_m[0] < same_trip.uncertainty_m[0]


def test_angle_difference() -> None:
    np.testing.assert_allclose(angle_diff_deg(np.array([350.0, 10.0, 90.0]), np.array([10.0, 190.0, 270.0])),
                               [20.0, 180.0, 180.0])


def _mean_heading_reference(heading_deg: np.ndarray, weights: np.ndarray, axial: bool) -> float:
    """One label of :func:`bump.cluster.mean_heading`, value by value: the start is the 10-degree bin whose count,
    with its neighbours', is largest (the first such), then reweighted circular means."""
    k = 2.0 if axial else 1.0
    pairs = [(np.mod(k * np.deg2rad(h), 2 * np.pi), w) for h, w in zip(heading_deg, weights, strict=True)
             if np.isfinite(h)]
    if not pairs:
        return float("nan")
    counts = [0] * cluster.HEADING_BINS
    for a, _ in pairs:
        counts[min(int(a * cluster.HEADING_BINS / (2 * np.pi)), cluster.HEADING_BINS - 1)] += 1
    n_bins = cluster.HEADING_BINS
    smooth = [counts[(b - 1) % n_bins] + counts[b] + counts[(b + 1) % n_bins] for b in range(n_bins)]
    centre = (smooth.index(max(smooth)) + 0.5) * 2 * np.pi / n_bins
    for _ in range(cluster.HEADING_ITERATIONS):
        c = s = 0.0
        for a, w in pairs:
            d = np.mod(a - centre + np.pi, 2 * np.pi) - np.pi
            ww = w / (1.0 + (d / (k * np.deg2rad(cluster.HEADING_SCALE_DEG))) ** 2)
            c, s = c + ww * np.cos(a), s + ww * np.sin(a)
        centre = np.arctan2(s, c)
    return float(np.rad2deg(np.mod(centre, 2 * np.pi)) / k)


@pytest.mark.parametrize("seed", range(6))
def test_mean_heading_matches_the_slow_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_labels = 40
    labels = rng.integers(0, n_labels, 400)
    road_deg = rng.uniform(0.0, 360.0, n_labels)
    heading = road_deg[labels] + rng.normal(0.0, 6.0, labels.size)
    stray = rng.random(labels.size) < 0.15                       # turning cars, the crossing road
    heading[stray] += rng.uniform(30.0, 330.0, stray.sum())
    heading[rng.random(labels.size) < 0.05] = np.nan
    heading = np.mod(heading, 360.0)
    weights = rng.uniform(0.05, 1.0, labels.size)
    axial = rng.random(n_labels) < 0.3
    got = cluster.mean_heading(labels, heading, weights, n_labels, axial)
    want = np.array([_mean_heading_reference(heading[labels == j], weights[labels == j], bool(axial[j]))
                     for j in range(n_labels)])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(angle_diff_deg(got[ok], want[ok]), 0.0, atol=1e-7)


def test_one_turning_cars_hit_does_not_turn_a_defect() -> None:
    # five hits on a road heading 163 deg, one of a car turning off it (298 deg): the plain circular mean read 198
    heading = np.array([165.0, 164.0, 159.0, 298.0, 165.0])
    got = cluster.mean_heading(np.zeros(5, dtype=np.int64), heading, np.ones(5), 1, np.array([False]))
    assert angle_diff_deg(got[0], np.mean(heading[heading < 200])) < 2.0
    # the stray hit even with four times the weight of each other hit: the direction is the hits' most common one
    got = cluster.mean_heading(np.zeros(3, dtype=np.int64), np.array([358.0, 357.0, 282.0]), np.array([1, 1, 4.0]),
                               1, np.array([False]))
    assert angle_diff_deg(got[0], 357.5) < 12.0
    # a speed bump's axis from both directions, with a stray: the axis of the road (0..180)
    got = cluster.mean_heading(np.zeros(5, dtype=np.int64), np.array([10.0, 190.0, 12.0, 188.0, 100.0]),
                               np.ones(5), 1, np.array([True]))
    assert angle_diff_deg(got[0], 10.0) < 3.0


def test_traversals_respect_radius_and_direction() -> None:
    track = Track(np.arange(41.0), np.zeros(41), np.zeros(41), np.zeros(41), np.full(41, 4.0))
    t, x, y = np.arange(41.0), np.zeros(41), np.arange(41.0) * 10 - 200     # northbound along x = 0
    head, acc = np.zeros(41), np.full(41, 4.0)
    dx = np.array([1.0, 1.0, 1.0, 60.0])
    dy = np.array([0.0, 50.0, 100.0, 0.0])
    dh = np.array([0.0, 180.0, 90.0, 0.0])          # same way, opposite way, opposite but spans, far away
    spans = np.array([False, False, True, False])
    idx, t_pass, dist, pass_no = find_traversals(t, x, y, head, acc, dx, dy, dh, spans, np.full(4, 2.0), P)
    assert idx.tolist() == [0] and pass_no.tolist() == [0]
    assert t_pass[0] == pytest.approx(20.0) and dist[0] == pytest.approx(1.0)
    dh[2] = 0.0                                      # spanning feature across... on the road axis
    idx, _, _, _ = find_traversals(t, x, y, head, acc, dx, dy, dh, spans, np.full(4, 2.0), P)
    assert idx.tolist() == [0, 2]
    assert Track.from_bytes(track.to_bytes()).t_s.tolist() == track.t_s.tolist()


def test_a_trip_that_comes_by_again_passes_again() -> None:
    """A loop round the block passes a defect twice (two passes, each at its closest approach); leaving the radius
    for less than pass_window_s, or standing inside it however long, is one pass."""
    # northbound along x = 0 through the defect at (0.5, 0), then away, and back northbound again
    leg = np.arange(-30.0, 31.0, 2.0)
    y = np.concatenate([leg, leg - 0.4])
    x = np.zeros(y.size)
    gap_s = P.pass_window_s + 60.0                                # the loop round the block
    t = np.concatenate([np.arange(leg.size) * 0.2, np.arange(leg.size) * 0.2 + leg.size * 0.2 + gap_s])
    head, acc = np.zeros(y.size), np.full(y.size, 3.0)
    d = (np.array([0.5]), np.array([0.0]), np.array([0.0]), np.array([False]), np.array([2.0]))
    idx, t_pass, dist, pass_no = find_traversals(t, x, y, head, acc, *d, P)
    assert idx.tolist() == [0, 0] and pass_no.tolist() == [0, 1]
    assert t_pass.tolist() == [t[15], t[leg.size + 15]]       # y = 0 and y = -0.4: each pass's nearest point
    assert dist.tolist() == pytest.approx([0.5, float(np.hypot(0.5, 0.4))])
    t_quick = np.arange(y.size) * 0.2                            # back within seconds: the same pass
    assert find_traversals(t_quick, x, y, head, acc, *d, P)[3].tolist() == [0]
    t_stop = np.concatenate([t[:16], t[16:] + 10 * P.pass_window_s])     # a long stop at the defect, no loop
    one = find_traversals(t_stop[:leg.size], x[:leg.size], y[:leg.size], head[:leg.size], acc[:leg.size], *d, P)
    assert one[0].tolist() == [0] and one[3].tolist() == [0]
    # 1 Hz fixes round a 100 m x 400 m block, densified whole and only near the defect (a stored trip checked
    # against a new defect): the same two passes
    fx, fy, fh, s_fix = block_loop(10.0)
    r = P.max_traversal_radius_m
    got = [find_traversals(*traversals.densify((fx, fy, s_fix / 10.0), fh, np.full(fx.size, 3.0), P.track_step_m,
                                            box=box), *d, P)
           for box in (None, (0.5 - r, 0.5 + r, -r, r))]
    for whole, part in zip(*got, strict=True):
        assert whole.tolist() == part.tolist()
    assert got[0][3].tolist() == [0, 1] and got[0][1].tolist() == pytest.approx([20.0, 120.0])


# ----------------------------------------------------------------------------------------------- direction


def test_opposite_directions_make_two_potholes(store) -> None:  # noqa: F811
    # one pothole in each carriageway, 2 m apart; wheels miss each on some passes (lane wander)
    for k, dev in enumerate(["a", "b", "c", "d", "e", "f"]):
        hit = k % 2 == 0
        add_trip(store, f"n{k}", dev, T0_S + k * DAY_S, [(1.0, 0.0, "pothole", 9.0, 0.9)] if hit else [],
                 heading_deg=0.0)
        add_trip(store, f"s{k}", dev, T0_S + k * DAY_S + 600, [(-1.0, 1.0, "pothole", 9.0, 0.9)] if hit else [],
                 heading_deg=180.0)
    d = store.all_defects()
    assert len(d) == 2
    assert sorted(np.round(d["heading_deg"]).tolist()) == [0.0, 180.0]
    assert d["n_hits"].tolist() == [3, 3] and set(d["kind"].tolist()) == {"pothole"}
    assert d["n_traversals"].tolist() == [6, 6]
    assert set(d["status"].tolist()) == {"confirmed"}


def test_speed_bump_from_both_directions_is_one_defect(store) -> None:  # noqa: F811
    for k, dev in enumerate(["a", "b", "c"]):
        add_trip(store, f"n{k}", dev, T0_S + k * DAY_S, [(1.0, 0.0, "speed_bump", 8.0, 0.9)], heading_deg=0.0)
        add_trip(store, f"s{k}", dev, T0_S + k * DAY_S + 600, [(-1.0, 1.0, "speed_bump", 8.0, 0.9)],
                 heading_deg=180.0)
    d = store.all_defects()
    assert len(d) == 1
    assert d["kind"][0] == "speed_bump" and int(d["n_hits"][0]) == 6 and int(d["n_traversals"][0]) == 6
    # a designed feature is not in the crews' default list, and ranks at zero
    assert views.list_defects(store).defects == []
    assert views.list_defects(store, kind="all").defects[0]["priority"] == 0.0


def test_a_pothole_hit_on_some_passes_is_not_merged_into_a_bump_in_the_other_lane(store) -> None:  # noqa: F811
    """A southbound pothole hit on every other pass is a defect; then a heave 6 m away in the northbound lane lifts
    every northbound car (read as a speed bump, a kind that spans the road). Within each other's gate, yet two
    defects: a pothole lies in one carriageway, and one hit on some passes is no half of a road-spanning feature.
    (A hit that meets the bump's defect first joins it: the known price of road-spanning kinds, module docstring.)"""
    for k, dev in enumerate("abcdef"):
        add_trip(store, f"s{k}", dev, T0_S + k * DAY_S,
                 [(-1.5, 0.0, "pothole", 9.0, 0.9)] if k % 2 == 0 else [], heading_deg=180.0)
    for k, dev in enumerate("abcdef"):
        add_trip(store, f"n{k}", dev, T0_S + (6 + k) * DAY_S, [(1.5, 6.0, "speed_bump", 4.0, 0.9)], heading_deg=0.0)
    d = store.all_defects()
    assert sorted(zip(d["kind"].tolist(), d["n_hits"].tolist(), strict=True)) == [("pothole", 3), ("speed_bump", 6)]
    pothole = int(np.flatnonzero(d["kind"] == "pothole")[0])
    assert abs(float(d["heading_deg"][pothole]) - 180.0) < 1.0


def test_a_joints_hits_misread_as_potholes_on_every_pass_join_it(store) -> None:  # noqa: F811
    """The southbound hits of a joint read as potholes, on every pass, come first; then northbound hits read as a
    joint: the two halves are one road-spanning feature."""
    for k, dev in enumerate("abc"):
        add_trip(store, f"s{k}", dev, T0_S + k * DAY_S, [(-1.0, 0.0, "pothole", 5.0, 0.9)], heading_deg=180.0)
    for k, dev in enumerate("def"):
        add_trip(store, f"n{k}", dev, T0_S + (3 + k) * DAY_S, [(1.0, 1.0, "joint", 3.0, 0.9)], heading_deg=0.0)
    d = store.all_defects()
    assert len(d) == 1 and int(d["n_hits"][0]) == 6 and d["kind"][0] == "joint"


def test_hits_far_apart_are_different_defects(store) -> None:  # noqa: F811
    add_trip(store, "t0", "a", T0_S, [(0.0, -100.0, "pothole", 9.0, 0.9), (0.0, 100.0, "pothole", 9.0, 0.9)])
    add_trip(store, "t1", "b", T0_S + DAY_S, [(0.5, -99.0, "pothole", 9.0, 0.9), (0.5, 101.0, "pothole", 9.0, 0.9)])
    d = store.all_defects()
    assert len(d) == 2 and d["n_hits"].tolist() == [2, 2]


# -------------------------------------------------------------------------------------------------- kind


def test_kind_from_hit_pattern() -> None:
    both = np.array([0.0, 180.0] * 5)
    pothole = np.full(10, "pothole")
    conf = np.full(10, 0.8)
    kind, why = decide_kind(pothole, conf, both, 10, 10, P)
    assert kind == "joint" and "designed feature" in why
    bumpy = np.array(["speed_bump"] * 6 + ["pothole"] * 4)
    assert decide_kind(bumpy, conf, both, 10, 9, P)[0] == "speed_bump"
    # the same hits on half the passes: a pothole after all
    assert decide_kind(pothole, conf, both, 20, 10, P)[0] == "pothole"
    # one direction only, nearly every pass: still a pothole (one carriageway, narrow lane)
    assert decide_kind(pothole, conf, np.zeros(10), 10, 10, P)[0] == "pothole"
    # too few passes to call it a feature
    assert decide_kind(pothole[:3], conf[:3], both[:3], 3, 3, P)[0] == "pothole"


def test_rough_hits_at_one_spot_from_enough_devices_are_the_spot_they_would_be_off_the_rough_stretch() -> None:
    # four clusters of four rough hits (one direction, a quarter of 16 passes): 0 and 1 one-wheel drops (spot kind
    # pothole) from 3 and 2 devices; 2 both wheels (spot kind joint) from 3 devices; 3 excitation too long to be one
    # impact (spot kind rough); 4: pothole hits, a rough hit among them
    labels = np.repeat(np.arange(5), 4)
    kind = np.array(["rough"] * 16 + ["pothole"] * 3 + ["rough"])
    spot = np.array(["pothole"] * 8 + ["joint"] * 4 + ["rough"] * 4 + ["pothole"] * 3 + ["cover"])
    conf = np.full(20, 0.5)
    n_trav, n_hit = np.full(5, 16), np.full(5, 4)
    devices = np.array([3, 2, 3, 3, 3])
    kinds, why = decide_kinds(labels, 5, kind, conf, np.zeros(20), n_trav, n_hit, P, hit_spot_kind=spot,
                              n_devices=devices)
    assert kinds.tolist() == ["pothole", "rough", "rough", "rough", "pothole"]
    assert "hit at one spot by at least 3 devices" in why[0] and "pothole 2.0" in why[0]
    assert "one spot" not in why[1] + why[4]
    # without the spot kinds (a caller that has none) the rough majority stands
    assert decide_kinds(labels, 5, kind, conf, np.zeros(20), n_trav, n_hit, P)[0].tolist() == [
        "rough", "rough", "rough", "rough", "pothole"]


def test_a_spot_on_a_rough_stretch_is_listed_once_a_third_device_hits_it(store) -> None:  # noqa: F811
    # each car's hit barely stood out from the rough stretch (kind rough), but would have been a pothole off it
    rough_hole = (0.0, 0.0, "rough", 5.0, 0.4, "pothole")
    for k, dev in enumerate(["a", "b", "c"]):
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, [rough_hole])
        d = store.all_defects()
        assert len(d) == 1 and d["n_devices"].tolist() == [k + 1]
        assert d["kind"].tolist() == ["rough" if k < 2 else "pothole"], k
    assert "hit at one spot by at least 3 devices" in d["kind_reason"][0]
    assert [r["id"] for r in views.list_defects(store, status="confirmed").defects] == d["defect_id"].tolist()


def test_a_cover_is_proud_by_the_vote_of_its_hits_not_by_one_hit() -> None:
    # defect 0: a sunken cover; the hit nearest its severity happens to lift first; one hit's motion is unknown
    # defect 1: a casting standing up, three of its four hits lifted the wheel first (whatever their swing)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    first_motion = np.array([-1, 1, -1, np.nan, 1, 1, -1, 1])
    defect_severity = np.array([4.0, 3.0])
    kinds = np.array(["cover", "cover"])
    out = decide_depth_classes(labels, 2, first_motion, defect_severity, kinds, P)
    assert out.tolist() == ["moderate", "proud"]
    # a pothole is never proud, whatever its hits' first motion; a vote short of the share is not
    pothole = decide_depth_classes(labels, 2, first_motion, defect_severity, np.array(["pothole"] * 2), P)
    assert pothole.tolist() == ["moderate", "moderate"]
    strict = DefectParams(proud_share=0.8)
    assert decide_depth_classes(labels, 2, first_motion, defect_severity, kinds, strict)[1] == "moderate"
    # a hole lifts first on a few passes (a deep one's far wall can dwarf the drop): 5 of 8 is no clear majority,
    # nor is 2 of 3 (the share must be exceeded), and unknown motions (NaN: stored before it was kept) are not up
    for motions in ([1, 1, 1, 1, 1, -1, -1, -1], [1, 1, -1], [1, 1, np.nan, np.nan]):
        n = len(motions)
        assert decide_depth_classes(np.zeros(n, np.int64), 1, np.array(motions, dtype=float), np.array([3.0]),
                                    np.array(["cover"]), P).tolist() == ["moderate"], motions


def test_a_defects_depth_class_is_its_severitys() -> None:
    """A cover read 3.7 cm deep is "moderate", though the hit nearest that severity, a speed-bump reading of 3.7 cm
    of lift, was classed "low" by its own depth; the classes' edges are FIELD_NOTES' 25 and 50 mm."""
    labels = np.array([0, 0, 0, 1, 2, 3])
    first_motion = np.array([-1, -1, 0, -1, -1, 1])
    out = decide_depth_classes(labels, 4, first_motion, np.array([3.7, 2.4, 5.2, np.nan]),
                               np.array(["cover", "cover", "pothole", "pothole"]), P)
    assert out.tolist() == ["moderate", "low", "high", ""]


def test_spot_hit_on_every_pass_both_ways_is_a_feature_not_a_pothole(store) -> None:  # noqa: F811
    for k, dev in enumerate(["a", "b", "c", "d"]):
        add_trip(store, f"n{k}", dev, T0_S + k * DAY_S, [(1.0, 0.0, "pothole", 12.0, 0.9)], heading_deg=0.0)
        add_trip(store, f"s{k}", dev, T0_S + k * DAY_S + 600, [(-1.0, 0.5, "pothole", 12.0, 0.9)],
                 heading_deg=180.0)
    d = store.all_defects()
    assert len(d) == 1, "the two directions' halves of one feature were not merged"
    assert d["kind"][0] in ("joint", "speed_bump") and "designed feature" in d["kind_reason"][0]
    assert all(r["kind"] != "pothole" for r in views.list_defects(store, status="all", kind="all").defects)


def _assert_a_full_refresh_agrees(store, did: int, dp: DefectParams, fast, names: tuple[str, ...]) -> None:  # noqa: F811
    """A full refresh of defect ``did`` (every hit and pass read again) leaves ``names`` as ``fast`` has them."""
    refresh.refresh_defects(store, [did], pipeline.projection(store), dp, now=T0_S + 20 * DAY_S,
                             detector=pipeline._detector_json(DetectorParams(), dp))
    full = store.all_defects()
    for n in names:
        assert full[n].tolist() == pytest.approx(fast[n].tolist()) if full[n].dtype.kind == "f" \
            else full[n].tolist() == fast[n].tolist(), n


def test_a_defect_only_passed_is_refreshed_from_its_passes_as_a_full_refresh_would(store, monkeypatch) -> None:  # noqa: F811
    summarised: list[int] = []
    real = refresh._summaries
    monkeypatch.setattr(refresh, "_summaries", lambda d, *a, **k: summarised.extend(d["defect_id"].tolist())
                        or real(d, *a, **k))
    for k, dev in enumerate(["a", "b", "c"]):
        add_trip(store, f"hit{k}", dev, T0_S + k * DAY_S, [POTHOLE])
    did = int(store.all_defects()["defect_id"][0])
    summarised.clear()
    for k in range(3):                                  # passes without a hit, in time order: hits not re-read
        add_trip(store, f"clean{k}", ["d", "e"][k % 2], T0_S + (5 + k) * DAY_S, [])
    assert summarised == []
    add_trip(store, "late", "f", T0_S + 4 * DAY_S, [])  # a pass before the last one: the full replay
    assert summarised == [did]
    add_trip(store, "clean3", "d", T0_S + 9 * DAY_S, [])
    names = ("n_traversals", "n_traversal_hits", "hit_rate", "traversals_per_day", "last_traversal_s", "status",
             "status_since_s", "priority")
    fast = store.all_defects()
    assert fast["n_traversals"][0] == 8 and fast["n_traversal_hits"][0] == 3
    _assert_a_full_refresh_agrees(store, did, P, fast, names)


def test_a_defect_hit_again_resumes_its_replay_and_reads_only_its_latest_hits(store, monkeypatch) -> None:  # noqa: F811
    dp = DefectParams(summary_hits=4)
    read: list[int] = []
    real = store.traversals_of_defects
    monkeypatch.setattr(store, "traversals_of_defects", lambda ids: read.extend(int(i) for i in ids) or real(ids))

    def trip(name: str, dev: str, day: float, impacts: list) -> None:
        trace = road_trace(name, dev, t0_s=T0_S + day * DAY_S)
        pipeline.ingest_trace(store, trace, detection=fake_detection(trace, impacts), defect_params=dp,
                              clock=lambda: T0_S + day * DAY_S + 3600.0)

    for k, dev in enumerate(["a", "b", "c", "d", "e", "f"]):
        trip(f"hit{k}", dev, k, [POTHOLE])
    did = int(store.all_defects()["defect_id"][0])
    read.clear()
    trip("hit6", "g", 6, [(0.0, 0.0, "pothole", 14.0, 0.9)])                    # in time order: resumes
    assert did not in read
    trip("late", "h", 3.5, [POTHOLE])                                         # before the last pass: replays all
    assert did in read
    fast = store.all_defects()
    assert fast["n_hits"][0] == 8 and fast["n_devices"][0] == 8 and fast["n_traversals"][0] == 8
    # severity from the latest 4 hits (one deeper), counts and first seen from all of them
    assert fast["severity"][0] == pytest.approx(np.quantile([9.0, 9.0, 14.0, 9.0], 0.75))
    assert fast["first_seen_s"][0] < T0_S + DAY_S
    names = ("n_traversals", "n_traversal_hits", "hit_rate", "traversals_per_day", "last_traversal_s", "status",
             "status_since_s", "priority", "n_hits", "n_devices", "severity", "first_seen_s", "last_seen_s")
    _assert_a_full_refresh_agrees(store, did, dp, fast, names)


# ------------------------------------------------------------------------------------------- full re-cluster


def _synthetic_hits(rng: np.random.Generator, n_defects: int, hits_each: int):
    cx = rng.uniform(0, 3000, n_defects)
    cy = np.arange(n_defects) * 60.0               # well apart
    head = rng.choice([0.0, 180.0], n_defects)
    k = np.repeat(np.arange(n_defects), hits_each)
    x = cx[k] + rng.normal(0, 3, k.size)
    y = cy[k] + rng.normal(0, 3, k.size)
    h = head[k] + rng.normal(0, 5, k.size)
    return k, x, y, h


def test_recluster_recovers_separated_defects() -> None:
    rng = np.random.default_rng(7)
    truth, x, y, h = _synthetic_hits(rng, 40, 12)
    labels = recluster(x, y, h, np.zeros(x.size, bool), np.full(x.size, 4.0), np.arange(x.size), P)
    # no cluster holds two truth defects; each truth defect has one main cluster with nearly all its hits
    # (a hit beyond the gate, ~1 % at 3 sigma, may stand alone as a single-hit candidate)
    for lab in np.unique(labels):
        assert np.unique(truth[labels == lab]).size == 1
    main = [np.bincount(labels[truth == g]).max() for g in range(40)]
    assert sum(main) >= 0.97 * x.size and min(main) >= 9
    sizes = np.bincount(labels)
    assert (sizes >= 3).sum() == 40


def _two_defects_one_cloud(seed: int, n_both: int = 4) -> tuple[np.ndarray, ...]:
    """Hits of two defects 35 m apart along an eastbound road, fixes 8 m off (accuracy 12 m): one cloud. The first
    ``n_both`` trips hit both in one pass, their two fixes sharing their error (to 1 m)."""
    rng = np.random.default_rng(seed)
    n = 12
    truth = np.repeat([0, 1], n)
    trip = np.arange(2 * n)
    trip[n:n + n_both] = trip[:n_both]
    err = rng.normal(0, 8.0, (2 * n, 2))
    err[n:n + n_both] = err[:n_both] + rng.normal(0, 1.0, (n_both, 2))
    x, y = truth * 35.0 + err[:, 0], err[:, 1]
    t = T0_S + trip * 1000.0 + truth * 3.5                    # 35 m at 10 m/s
    h = 90.0 + rng.normal(0, 5, 2 * n)
    return truth, x, y, h, np.full(2 * n, 12.0), trip, t


def _both_found(truth: np.ndarray, x: np.ndarray, y: np.ndarray, acc: np.ndarray, trip: np.ndarray,
                labels: np.ndarray) -> bool:
    """No cluster holds 3 hits of each defect, and each has a cluster of >= 4 hits within 8 m of it."""
    k = int(labels.max()) + 1
    c = robust_centres(labels, x, y, acc, trip, k, P)
    mixed = any(min(np.sum(truth[labels == g] == 0), np.sum(truth[labels == g] == 1)) >= 3 for g in range(k))
    near = [np.any((c.n_hits >= 4) & (np.hypot(c.x_m - 35.0 * g, c.y_m) < 8.0)) for g in (0, 1)]
    return not mixed and all(near)


def test_recluster_splits_two_defects_that_one_pass_saw_apart() -> None:
    found = {False: 0, True: 0}
    for seed in range(40):
        truth, x, y, h, acc, trip, t = _two_defects_one_cloud(seed)
        for with_t in found:
            labels = recluster(x, y, h, np.zeros(x.size, bool), acc, trip, P, t_s=t if with_t else None)
            found[with_t] += _both_found(truth, x, y, acc, trip, labels)
    assert found[False] <= 30                                  # the positions alone often blur them into one
    assert found[True] >= found[False] + 5                     # 26 -> 32 of 40 when written


def test_one_trips_pair_does_not_split_a_defect() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 4, 20), rng.normal(0, 4, 20)
    x[0], x[1] = -12.0, 12.0                                   # hits 0 and 1: one pass, 24 m apart
    labels = np.zeros(20, dtype=np.int64)
    one = split_apart(labels, x, y, (np.array([0]), np.array([1])), np.r_[0, 0, np.arange(2, 20)], 3)
    assert np.unique(one).size == 1
    trips = np.r_[0, 0, 1, 1, 2, 2, np.arange(6, 20)]          # three passes saw two defects: a split
    x[2:6] = [-12.0, 12.0, -11.0, 13.0]
    two = split_apart(labels, x, y, (np.array([0, 2, 4]), np.array([1, 3, 5])), trips, 3)
    assert np.unique(two).size == 2
    assert np.all(two[[0, 2, 4]] == two[0]) and np.all(two[[1, 3, 5]] == two[1]) and two[0] != two[1]


def test_two_hits_of_one_pass_do_not_join_one_defect() -> None:
    """A pass hits two spots 8 m apart, both nearest to the known defect at 0 and within its gate: the nearer
    joins it, the other its next choice (the defect at 24 m), or nothing when there is none."""
    hx, hy, h, acc = np.array([2.0, 10.0]), np.zeros(2), np.full(2, 90.0), np.full(2, 8.0)
    pair = (np.array([0]), np.array([1]))

    def assign(dx: list[float], apart: tuple[np.ndarray, np.ndarray] | None) -> list[int]:
        n = len(dx)
        return cluster.assign_hits(hx, hy, h, np.zeros(2, bool), acc, np.array(dx), np.zeros(n), np.full(n, 90.0),
                                   np.zeros(n, bool), np.full(n, 3.0), P, apart=apart).tolist()

    assert assign([0.0], None) == [0, 0]
    assert assign([0.0], pair) == [0, -1]
    assert assign([0.0, 24.0], None) == [0, 0]
    assert assign([0.0, 24.0], pair) == [0, 1]


def test_new_hits_of_one_pass_start_two_candidates() -> None:
    x, y, h, acc = np.array([0.0, 15.0]), np.zeros(2), np.full(2, 90.0), np.full(2, 8.0)

    def groups(dt_s: float | None) -> int:
        t = None if dt_s is None else T0_S + np.array([0.0, dt_s])
        return np.unique(cluster.group_hits(x, y, h, np.zeros(2, bool), acc, P, t_s=t)).size

    assert groups(None) == 1
    assert groups(1.5) == 2                                     # one pass: two defects 15 m apart
    assert groups(300.0) == 1                                   # the same spot passed twice, minutes apart


def _cut_cloud(store: Store, second_pass_hits: list[float]) -> None:  # noqa: F811
    """One pothole at y = 0 hit by five phones, then a fix 11.5 m ahead (just outside its gate: a candidate of its
    own) and three more 8.5 m ahead, nearer the candidate; the first of those passes also hits
    ``second_pass_hits``."""
    for k, dev in enumerate("abcde"):
        add_trip(store, f"a{k}", dev, T0_S + k * DAY_S, [(0.0, 0.2 * (k - 2), "pothole", 9.0, 0.9)])
    add_trip(store, "b0", "f", T0_S + 5 * DAY_S, [(0.0, 11.5, "pothole", 9.0, 0.9)])
    assert len(store.all_defects()) == 2
    for k, dev in enumerate("ghi"):
        extra = second_pass_hits if k == 0 else []
        add_trip(store, f"b{k + 1}", dev, T0_S + (6 + k) * DAY_S,
                 [(0.0, y, "pothole", 9.0, 0.9) for y in extra] + [(0.0, 8.5, "pothole", 9.0, 0.9)])


def test_a_defect_cut_from_one_cloud_is_absorbed_by_the_larger_one(store) -> None:  # noqa: F811
    """Their centres end up ~9 m apart, beyond the duplicate gate of two defects 2 m uncertain, yet most of the
    candidate's hits lie within reach of the larger defect: it is absorbed, as the full re-cluster would."""
    _cut_cloud(store, [])
    d = store.all_defects()
    assert len(d) == 1 and d["n_hits"].tolist() == [9]
    _, y = PROJ.to_xy(d["lat_deg"], d["lon_deg"])
    assert abs(float(y[0])) < 6.0
    assert any(h["reason"].startswith("merged defect(s)") for h in store.history(int(d["defect_id"][0])))


def test_a_pass_that_hit_both_keeps_a_cut_defect_apart(store) -> None:  # noqa: F811
    """The same cloud, but one pass hit the pothole and the spot 9 m ahead seconds apart: two defects."""
    _cut_cloud(store, [0.1])
    d = store.all_defects()
    assert len(d) == 2 and sorted(d["n_hits"].tolist()) == [4, 6]


def test_same_pass_pairs_match_reference() -> None:
    rng = np.random.default_rng(5)
    n = 300
    trip = rng.integers(0, 20, n)
    t = T0_S + rng.uniform(0, 600, n)
    x, y = rng.uniform(0, 200, n), rng.uniform(0, 200, n)
    h = rng.choice([0.0, 10.0, 180.0, np.nan], n)
    a, b = cluster.same_pass_pairs(trip, t, x, y, h, P)
    got = {(min(i, j), max(i, j)) for i, j in zip(a.tolist(), b.tolist(), strict=True)}
    want = set()
    for i in range(n):                                         # slow reference twin
        for j in range(i + 1, n):
            d_h = abs((h[i] - h[j] + 180.0) % 360.0 - 180.0)
            if (trip[i] == trip[j] and abs(t[i] - t[j]) <= P.pass_window_s
                    and np.hypot(x[i] - x[j], y[i] - y[j]) >= P.distinct_hits_m and not d_h > P.opposite_deg):
                want.add((i, j))
    assert got == want and len(want) > 10


def test_recluster_splits_directions_unless_the_kind_spans() -> None:
    rng = np.random.default_rng(1)
    n = 20
    x = rng.normal(0, 2, 2 * n)
    y = rng.normal(0, 2, 2 * n)
    h = np.r_[np.zeros(n), np.full(n, 180.0)]
    acc = np.full(2 * n, 4.0)
    trips = np.arange(2 * n)
    pot = recluster(x, y, h, np.zeros(2 * n, bool), acc, trips, P)
    assert np.unique(pot).size == 2 and np.unique(pot[:n]).size == 1
    bump = recluster(x, y, h, np.ones(2 * n, bool), acc, trips, P)
    assert np.unique(bump).size == 1


def test_reprocess_rebuilds_the_same_defects(store) -> None:  # noqa: F811
    impacts = {}
    for k, dev in enumerate(["a", "b", "c"]):
        impacts[f"t{k}"] = [POTHOLE, (0.5, 120.0, "cover", 4.0, 0.6)]
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, impacts[f"t{k}"], length_m=600.0)
    before = views.list_defects(store, status="all").defects

    from test_store import fake_detection

    summary = pipeline.reprocess(store, detect_fn=lambda tr, _p: fake_detection(tr, impacts[tr.trip_id]),
                                 clock=lambda: T0_S + 10 * DAY_S)
    after = views.list_defects(store, status="all").defects
    assert summary.n_defects == 2 and summary.n_hits == 6
    key = ("kind", "status", "hits", "devices", "traversals", "lat", "lon")
    assert [tuple(d[k] for k in key) for d in after] == [tuple(d[k] for k in key) for d in before]
    assert [d["id"] for d in after] == [d["id"] for d in before]      # their ids too (once all new)


def test_a_trip_uploaded_while_reprocess_runs_keeps_its_hits(store) -> None:  # noqa: F811
    """Reprocess detects outside the write lock; a trip stored meanwhile was wiped by its clear_derived (its trip
    row stayed, so re-ingesting it said 'already stored': the hits were lost for good)."""
    from test_store import fake_detection

    impacts = {f"t{k}": [POTHOLE] for k in range(4)}
    for k, dev in enumerate(["a", "b", "c"]):
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, impacts[f"t{k}"])

    def detect_and_meanwhile_upload(trace, _p):
        if trace.trip_id == "t0" and store.get_trip("t3") is None:     # an upload between detection and commit
            add_trip(store, "t3", "d", T0_S + 3 * DAY_S, impacts["t3"])
        return fake_detection(trace, impacts[trace.trip_id])

    summary = pipeline.reprocess(store, detect_fn=detect_and_meanwhile_upload, clock=lambda: T0_S + 10 * DAY_S)
    assert summary.n_trips == 4 and summary.n_hits == 4
    assert len(store.hits_of_trip("t3")) == 1
    d = store.all_defects()
    assert int(d["n_hits"][0]) == 4 and int(d["n_devices"][0]) == 4


def test_new_defect_takes_the_passes_of_trips_stored_before_it(store) -> None:  # noqa: F811
    add_trip(store, "early-clean", "z", T0_S - DAY_S, [])                   # passed before anyone hit it
    for k, dev in enumerate(["a", "b", "c"]):
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, [POTHOLE])
    d = store.all_defects()
    assert int(d["n_traversals"][0]) == 4 and int(d["n_traversal_hits"][0]) == 3
    assert d["hit_rate"][0] == pytest.approx(0.75)


# ------------------------------------------------------------------------------------------------ GPS latency


def test_latency_is_estimated_from_features_hit_both_ways() -> None:
    rng = np.random.default_rng(5)
    latency, n = 0.4, 60
    heading = np.where(np.arange(n) % 2 == 0, 0.0, 180.0)
    speed = rng.uniform(6.0, 14.0, n)
    # a joint at (0, 0): every hit lies latency x speed behind it along its own direction, plus GPS noise
    behind = latency * speed
    x = rng.normal(0, 1.0, n)
    y = np.where(heading == 0.0, -behind, behind) + rng.normal(0, 1.0, n)
    trips = np.arange(n)
    samples = latency_samples((x, y, heading, speed, trips), (x, y, heading, speed, trips), P, same=True)
    calib = LatencyCalibration().add(samples)
    assert calib.n_pairs > P.latency_min_pairs
    assert calib.estimate_s(P) == pytest.approx(latency, abs=0.08)
    assert LatencyCalibration.from_json(calib.to_json()) == calib
    assert LatencyCalibration().add(samples[:3]).estimate_s(P) == 0.0      # too little evidence: no correction
    cx, cy = corrected_xy(x, y, heading, speed, calib.estimate_s(P))
    assert np.abs(cx - x).max() < 1e-9                                     # north/south travel: no east shift
    assert np.abs(cy).mean() < 0.3 * np.abs(y).mean()                      # the two directions now agree


def test_device_latency_from_its_hits_around_established_defects() -> None:
    rng = np.random.default_rng(3)
    n = 40
    heading = rng.choice([0.0, 90.0, 200.0], n)
    v = rng.uniform(6.0, 14.0, n)
    cx, cy = rng.uniform(-500, 500, n), rng.uniform(-500, 500, n)
    # the phone lags 0.7 s; positions were corrected by the fleet's 0.3 s: each hit still lies 0.4 s x v behind
    h = np.deg2rad(heading)
    back = 0.4 * v + rng.normal(0.0, 1.0, n)
    x, y = cx - back * np.sin(h), cy - back * np.cos(h)
    samples = device_latency_samples(x, y, heading, v, cx, cy, used_latency_s=0.3)
    assert samples.size == n and np.median(samples) == pytest.approx(0.7, abs=0.05)
    slow = device_latency_samples(x, y, heading, np.full(n, 2.0), cx, cy, used_latency_s=0.3)
    assert slow.size == 0                                       # too slow to tell latency from GPS error
    p = DefectParams()
    calib = LatencyCalibration().add(samples)
    every = LatencyCalibration().add(np.full(200, 0.45))        # the fleet's devices lag 0.45 s in the middle
    blended = device_latency_s(calib, every, 0.3, p)
    assert 0.3 < blended < 0.55                                 # 0.25 s later than the middle, shrunk ...
    assert blended == pytest.approx(0.3 + 40 / (40 + p.device_latency_prior) * (calib.median_s() - every.median_s()))
    assert device_latency_s(LatencyCalibration(), every, 0.3, p) == 0.3      # ... the fleet's without samples
    assert device_latency_s(calib, every, 0.3, DefectParams(device_latency=False)) == 0.3


def test_a_late_phone_is_corrected_by_its_own_latency(store) -> None:  # noqa: F811
    p = DefectParams()
    for k in range(18):                                     # six punctual phones establish a pothole at y = 0 ...
        add_trip(store, f"on{k}", f"dev{k % 6}", T0_S + k * DAY_S, [(0.0, rng_offset(k), "pothole", 9.0, 0.9)])
        if k >= 8:                                          # ... and a phone whose fixes lag 0.8 s (8 m behind
            add_trip(store, f"late{k}", "late", T0_S + (k + 0.5) * DAY_S,             # at 10 m/s) hits it too
                     [(0.0, -8.0 + rng_offset(k), "pothole", 9.0, 0.9)])
    late, punctual = latency.hit_latencies_s(store, np.array(["late", "dev0"]), p)
    assert 0.3 < late - punctual < 0.8                      # half the 0.8 s with 10 samples against a prior of 10
    assert store.all_defects()["defect_id"].size == 1       # its hits joined the pothole, not a twin behind it


def rng_offset(k: int) -> float:
    """Small, deterministic GPS scatter [m]."""
    return float(np.sin(1.7 * k + 0.3))


def test_a_hit_or_two_read_as_a_speed_bump_do_not_make_a_recluster_cluster_span_the_road() -> None:
    from bump.recluster import spanning_labels
    labels = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3])
    spans = np.array([True, True, True, True, True, True, True, True, False, False, False])
    # one or two spanning hits: a rumour; three of three: spans; two of five: the directional hits win
    at_least = DefectParams().recluster_span_hits
    assert spanning_labels(labels, spans, 4, min_spanning=at_least).tolist() == [False, False, True, False]
    assert spanning_labels(labels, spans, 4).tolist() == [True, True, True, False]


# ----------------------------------------------------------------------------------- fast kernels, one trip's reads


def _slow_nearest_per_row(i: np.ndarray, j: np.ndarray, d: np.ndarray, n_rows: int) -> np.ndarray:
    out = np.full(n_rows, -1, dtype=np.int64)
    for r in range(n_rows):
        mine = np.flatnonzero(i == r)
        if mine.size:
            out[r] = min(zip(d[mine].tolist(), j[mine].tolist(), strict=True))[1]
    return out


@pytest.mark.parametrize("n_pairs", [0, 1, 7, 3000])
def test_nearest_per_row_matches_the_slow_reference(n_pairs: int) -> None:
    rng = np.random.default_rng(n_pairs)
    i, j = rng.integers(0, 40, n_pairs), rng.permutation(max(n_pairs, 1))[:n_pairs]
    d = rng.integers(0, 6, n_pairs) * 0.5                         # many ties: the smaller j wins
    assert cluster.nearest_per_row(i, j, d, 45).tolist() == _slow_nearest_per_row(i, j, d, 45).tolist()


def test_traversals_of_a_long_track_past_a_few_defects_match_the_whole_track() -> None:
    rng = np.random.default_rng(2)
    n = 4000                                                       # a 8 km zig-zag, 2 m steps
    s = np.arange(n) * 2.0
    x, y = np.where((s // 500) % 2 == 0, s % 500, 500 - s % 500), (s // 500) * 40.0
    head = np.where((s // 500) % 2 == 0, 90.0, 270.0)
    t, acc = 1000.0 + s / 10.0, rng.uniform(3, 12, n)
    dx, dy = np.array([100.0, 104.0, 300.0, 2000.0]), np.array([1.0, 39.0, 80.0, 2000.0])
    dh, spans, unc = np.array([90.0, 270.0, 90.0, 0.0]), np.array([False, False, True, False]), np.full(4, 2.0)
    got = find_traversals(t, x, y, head, acc, dx, dy, dh, spans, unc, P)
    # reference: every pair of the whole track, the nearest compatible point per defect by brute force
    d = np.hypot(x[:, None] - dx[None, :], y[:, None] - dy[None, :])
    radius = np.clip(P.traversal_sigmas * np.hypot(cluster.clean_accuracy(acc, P)[:, None], unc[None, :]),
                     P.traversal_radius_m, P.max_traversal_radius_m)
    diff = angle_diff_deg(head[:, None], dh[None, :])
    diff = np.where(spans[None, :], np.minimum(diff, 180.0 - diff), diff)
    ok = (d <= radius) & (diff <= P.traversal_heading_deg)
    want = [k for k in range(4) if ok[:, k].any()]
    best = [int(np.flatnonzero(ok[:, k])[np.argmin(d[ok[:, k], k])]) for k in want]
    assert got[0].tolist() == want == [0, 1, 2]
    assert got[1].tolist() == t[best].tolist() and got[2].tolist() == pytest.approx(d[best, want].tolist())


def _slow_grid_keys_around(x: np.ndarray, y: np.ndarray, radius_m: float, size_m: float, directions: bool
                           ) -> np.ndarray:
    reach = int(np.ceil(radius_m / size_m))
    cells = {(int(np.floor(a / size_m)), int(np.floor(b / size_m))) for a, b in zip(x, y, strict=True)}
    keys = {cellmap._encode(np.array([cx + ox]), np.array([cy + oy]), np.array([d]))[0]
            for cx, cy in cells for ox in range(-reach, reach + 1) for oy in range(-reach, reach + 1)
            for d in range(cellmap.N_DIRECTIONS if directions else 1)}
    return np.array(sorted(keys), dtype=np.int64)


@pytest.mark.parametrize(("n", "radius_m", "size_m", "directions"),
                         [(0, 45.0, 50.0, False), (1, 0.0, 50.0, False), (300, 45.0, 50.0, False),
                          (300, 20.0, 20.0, True), (50, 120.0, 50.0, False)])
def test_grid_keys_around_match_the_slow_reference(n: int, radius_m: float, size_m: float, directions: bool) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.uniform(-3000, 3000, n), rng.uniform(-3000, 3000, n)
    if n:
        x[0], y[0] = -0.0, 49.999999                                  # on cell edges
    got = cellmap.grid_keys_around(x, y, radius_m, size_m=size_m, directions=directions)
    assert got.dtype == np.int64
    assert got.tolist() == _slow_grid_keys_around(x, y, radius_m, size_m, directions).tolist()


def test_a_trip_reads_the_latest_hits_of_the_defects_it_hits_once(store, monkeypatch) -> None:  # noqa: F811
    read: list[int] = []
    real = store.hits_of_defects
    monkeypatch.setattr(store, "hits_of_defects", lambda ids, *a, **k: read.extend(int(i) for i in ids)
                        or real(ids, *a, **k))
    bump_n, bump_s, hole = (1.0, 0.0, "speed_bump", 8.0, 0.9), (-1.0, 1.0, "speed_bump", 8.0, 0.9), \
        (0.5, 120.0, "pothole", 9.0, 0.9)
    for k, dev in enumerate(["a", "b", "c", "d"]):   # a bump hit both ways feeds the latency; a pothole nearby
        add_trip(store, f"n{k}", dev, T0_S + k * DAY_S, [bump_n, hole], heading_deg=0.0)
        add_trip(store, f"s{k}", dev, T0_S + k * DAY_S + 600, [bump_s], heading_deg=180.0)
    assert store.get_meta("gps_latency") is not None
    read.clear()
    add_trip(store, "n9", "e", T0_S + 9 * DAY_S, [bump_n, hole], heading_deg=0.0)
    d = store.all_defects()
    assert sorted(d["kind"].tolist()) == ["pothole", "speed_bump"]
    assert sorted(read) == sorted(d["defect_id"].tolist())            # each once: the refresh reuses them
    fast = store.all_defects()
    names = ("kind", "x_m", "y_m", "heading_deg", "severity", "confidence", "n_hits", "n_traversals", "status",
             "priority")
    for did in fast["defect_id"].tolist():
        _assert_a_full_refresh_agrees(store, int(did), P, fast, names)


def _slow_grid_keys_within(x: np.ndarray, y: np.ndarray, radius_m: float, size_m: float) -> np.ndarray:
    keys = set()
    for a, b in zip(x, y, strict=True):
        for cx in range(int(np.floor((a - radius_m) / size_m)), int(np.floor((a + radius_m) / size_m)) + 1):
            for cy in range(int(np.floor((b - radius_m) / size_m)), int(np.floor((b + radius_m) / size_m)) + 1):
                keys.add(int(cellmap._encode(np.array([cx]), np.array([cy]), np.array([0]))[0]))
    return np.array(sorted(keys), dtype=np.int64)


@pytest.mark.parametrize(("n", "radius_m", "size_m"), [(0, 20.0, 50.0), (1, 0.0, 50.0), (300, 20.0, 50.0),
                                                       (200, 25.0, 50.0), (50, 120.0, 50.0)])
def test_grid_keys_within_match_the_slow_reference(n: int, radius_m: float, size_m: float) -> None:
    rng = np.random.default_rng(n + 1)
    x, y = rng.uniform(-3000, 3000, n), rng.uniform(-3000, 3000, n)
    if n:
        x[0], y[0] = 30.0, 49.999999                                  # the square ends on a cell edge
    got = cellmap.grid_keys_within(x, y, radius_m, size_m=size_m)
    assert got.dtype == np.int64
    assert got.tolist() == _slow_grid_keys_within(x, y, radius_m, size_m).tolist()
    around = cellmap.grid_keys_around(x, y, radius_m, size_m=size_m)
    assert np.isin(got, around).all()
    if n > 1 and radius_m < size_m:
        assert got.size < around.size                               # fewer cells to read than the 3 x 3 blocks
    # every point within the radius lies in one of them
    px = np.repeat(x, 8) + rng.uniform(-radius_m, radius_m, 8 * n)
    py = np.repeat(y, 8) + rng.uniform(-radius_m, radius_m, 8 * n)
    assert np.isin(cellmap.grid_keys(px, py, size_m=size_m), got).all()


@pytest.mark.parametrize("seed", range(40))
def test_a_track_densified_near_a_box_is_the_whole_track_there(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 80))
    x, y = np.cumsum(rng.normal(0, 15, n)), np.cumsum(rng.normal(0, 15, n))
    if n > 3:
        x[2], y[2] = x[1], y[1]                                        # a fix repeated: a segment of length 0
    t, head, acc = T0_S + np.cumsum(rng.uniform(0.5, 2.0, n)), rng.uniform(0, 360, n), rng.uniform(2, 9, n)
    step = float(rng.choice([2.0, 0.7, 5.0]))
    whole = traversals.densify((x, y, t), head, acc, step)
    dx, dy = rng.uniform(x.min(), x.max(), 3), rng.uniform(y.min(), y.max(), 3)
    r = P.max_traversal_radius_m
    box = (dx.min() - r, dx.max() + r, dy.min() - r, dy.max() + r)
    part = traversals.densify((x, y, t), head, acc, step, box=box)
    on = {tuple(p) for p in np.column_stack(whole).tolist()}
    assert all(tuple(p) in on for p in np.column_stack(part).tolist())    # points of the whole track, in order
    assert np.all(np.diff(part[0]) >= 0)
    inside = [(w[1] >= box[0]) & (w[1] <= box[1]) & (w[2] >= box[2]) & (w[2] <= box[3]) for w in (whole, part)]
    for a, b in zip(whole, part, strict=True):
        assert a[inside[0]].tolist() == b[inside[1]].tolist()
    dh, spans, unc = rng.uniform(0, 360, 3), rng.random(3) < 0.5, np.full(3, 3.0)
    got = find_traversals(*part, dx, dy, dh, spans, unc, P)
    want = find_traversals(*whole, dx, dy, dh, spans, unc, P)
    indexed = find_traversals(*whole, dx, dy, dh, spans, unc, P, tree=cluster.points_tree(whole[1], whole[2]))
    for a, b, c in zip(got, want, indexed, strict=True):
        assert a.tolist() == b.tolist() == c.tolist()


def test_duplicates_and_twins_from_pairs_found_once_are_those_found_each() -> None:
    rng = np.random.default_rng(4)
    n = 300
    x, y, h = rng.uniform(0, 400, n), rng.uniform(0, 400, n), rng.choice([0.0, 90.0, 180.0, 270.0], n)
    spans, unc = rng.random(n) < 0.3, rng.uniform(2, 8, n)
    n_trav = rng.integers(0, 12, n)
    n_hit = np.minimum(n_trav, rng.integers(0, 12, n))
    pairs = cluster.close_pairs(x, y, P)
    shared = (cluster.duplicate_pairs(x, y, h, spans, unc, P, pairs=pairs),
              cluster.twin_pairs(x, y, h, spans, unc, n_trav, n_hit, P, pairs=pairs))
    each = (cluster.duplicate_pairs(x, y, h, spans, unc, P), cluster.twin_pairs(x, y, h, spans, unc, n_trav, n_hit, P))
    for a, b in zip(shared, each, strict=True):
        assert len(a[0]) > 0
        for u, v in zip(a, b, strict=True):
            assert u.tolist() == v.tolist()


def test_a_speed_bump_missed_keeps_its_summary_while_its_hits_would_give_it(store, monkeypatch) -> None:  # noqa: F811
    summarised: list[int] = []
    real = refresh._summaries
    monkeypatch.setattr(refresh, "_summaries", lambda d, *a, **k: summarised.extend(d["defect_id"].tolist())
                        or real(d, *a, **k))
    bump_n, bump_s = (1.0, 0.0, "speed_bump", 8.0, 0.9), (-1.0, 0.5, "speed_bump", 8.0, 0.9)
    for k, dev in enumerate(["a", "b", "c"]):                  # hit on every pass both ways: a designed feature
        add_trip(store, f"n{k}", dev, T0_S + k * DAY_S, [bump_n], heading_deg=0.0)
        add_trip(store, f"s{k}", dev.upper(), T0_S + k * DAY_S + 600, [bump_s], heading_deg=180.0)
    assert store.get_meta("gps_latency:devices") is None        # no device has a latency of its own
    d = store.all_defects()
    did = int(d["defect_id"][0])
    assert len(d) == 1 and d["kind"][0] == "speed_bump" and "designed feature" in d["kind_reason"][0]
    names = ("kind", "kind_reason", "x_m", "y_m", "lat_deg", "grid_key", "heading_deg", "spans", "uncertainty_m",
             "severity", "depth_class", "confidence", "n_hits", "n_devices", "n_traversals", "n_traversal_hits",
             "hit_rate", "traversals_per_day", "first_traversal_s", "last_traversal_s", "status", "status_since_s",
             "priority", "latency_s", "latency_devices")
    day = 5.0
    for k in range(2):                                          # 6 of 8 passes: below 80 %, the hits decide the
        summarised.clear()                                      # kind by majority (read once, on the second miss)
        add_trip(store, f"miss{k}", "e", T0_S + day * DAY_S, [], heading_deg=0.0)
        assert summarised == ([did] if k == 1 else []), k
        day += 1.0
    summarised.clear()
    add_trip(store, "miss2", "f", T0_S + day * DAY_S, [], heading_deg=0.0)    # the summary holds: kept
    assert summarised == []
    kept = store.all_defects()
    assert kept["hit_rate"][0] < P.designed_hit_rate and "majority" in kept["kind_reason"][0]
    assert kept["latency_devices"][0] >= 0                      # made when every hit took the fleet's latency
    _assert_a_full_refresh_agrees(store, did, P, kept, names)
    # the fleet's latency moves: the hits would be corrected otherwise, so they are read again
    store.set_meta("gps_latency", LatencyCalibration().add(np.full(60, 1.2)).to_json())
    summarised.clear()
    add_trip(store, "miss4", "f", T0_S + (day + 1) * DAY_S, [], heading_deg=0.0)
    assert summarised == [did]
    moved = store.all_defects()
    assert moved["y_m"][0] != kept["y_m"][0] and moved["latency_s"][0] == pytest.approx(1.2, abs=0.05)
    summarised.clear()
    add_trip(store, "miss5", "f", T0_S + (day + 2) * DAY_S, [], heading_deg=0.0)
    assert summarised == []                                     # and kept again while it stays
    store.set_meta("gps_latency:devices", "7")                  # a device got a latency of its own
    summarised.clear()
    add_trip(store, "miss6", "f", T0_S + (day + 3) * DAY_S, [], heading_deg=0.0)
    assert summarised == [did]
    _assert_a_full_refresh_agrees(store, did, P, store.all_defects(), names)


def _slow_traversals(t, x, y, head, acc, dx, dy, dh, spans, unc
                     ) -> tuple[list[int], list[float], list[float], list[int]]:
    """Every (point, defect) pair; per defect its passes (runs of compatible points, a new one after a point
    outside and more than pass_window_s), the nearest point of each pass (the first on a tie)."""
    d = np.hypot(x[:, None] - dx[None, :], y[:, None] - dy[None, :])
    radius = np.clip(P.traversal_sigmas * np.hypot(cluster.clean_accuracy(acc, P)[:, None], unc[None, :]),
                     P.traversal_radius_m, P.max_traversal_radius_m)
    diff = angle_diff_deg(head[:, None], dh[None, :])
    diff = np.where(spans[None, :], np.minimum(diff, 180.0 - diff), diff)
    ok = (d <= radius) & (np.nan_to_num(diff, nan=0.0) <= P.traversal_heading_deg)
    found, when, dist, number = [], [], [], []
    for k in range(dx.size):
        runs: list[list[int]] = []
        for r in np.flatnonzero(ok[:, k]).tolist():
            if not runs or (r > runs[-1][-1] + 1 and t[r] - t[runs[-1][-1]] > P.pass_window_s):
                runs.append([])
            runs[-1].append(r)
        for n, rows in enumerate(runs):
            best = rows[int(np.argmin(d[rows, k]))]
            found.append(k)
            when.append(float(t[best]))
            dist.append(float(np.hypot(x[best] - dx[k], y[best] - dy[k])))
            number.append(n)
    return found, when, dist, number


def _random_track_and_defects(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(0, 600)), int(rng.integers(0, 60))
    step = rng.uniform(0.5, 3.0)
    x, y = np.cumsum(rng.normal(0, step, n)), np.cumsum(rng.normal(0, step, n))
    t, head = 1000.0 + np.arange(n), rng.uniform(0, 360, n)
    acc = rng.choice([np.nan, 0.0, 3.0, 5.0, 25.0, 60.0], n, p=[0.1, 0.05, 0.4, 0.3, 0.1, 0.05])
    dx, dy = rng.uniform(-40, 40, m) + (x.mean() if n else 0.0), rng.uniform(-40, 40, m) + (y.mean() if n else 0.0)
    dh, spans = rng.uniform(0, 360, m), rng.random(m) < 0.3
    unc = rng.choice([np.nan, 2.0, 3.0, 8.0, 30.0], m, p=[0.1, 0.4, 0.3, 0.15, 0.05])
    if n > 5 and m > 2:                                        # exact ties: the same spot twice on the track
        x[5], y[5], x[2], y[2] = x[1], y[1], x[1], y[1]
        dx[0], dy[0], dh[0], spans[0] = x[1] + 3.0, y[1], head[1], False
    return t, x, y, head, acc, dx, dy, dh, spans, unc


@pytest.mark.parametrize("seed", range(30))
def test_traversals_searched_within_the_widest_radius_of_the_pairs_are_those_of_every_pair(seed: int) -> None:
    t, x, y, head, acc, dx, dy, dh, spans, unc = _random_track_and_defects(seed)
    want = _slow_traversals(t, x, y, head, acc, dx, dy, dh, spans, unc)
    for tree in (None, cluster.points_tree(x, y) if x.size else None):
        idx, t_pass, dist, pass_no = find_traversals(t, x, y, head, acc, dx, dy, dh, spans, unc, P, tree=tree)
        assert idx.tolist() == want[0] and t_pass.tolist() == want[1] and dist.tolist() == want[2]
        assert pass_no.tolist() == want[3]
    reach = traversals.traversal_reach_m(cluster.clean_accuracy(acc, P), unc, P)
    assert P.traversal_radius_m <= reach <= P.max_traversal_radius_m


def test_the_reach_of_a_search_is_the_widest_radius_a_pair_may_have() -> None:
    acc, unc = np.array([3.0, 5.0]), np.array([2.0, np.nan, 3.0])
    widest = P.traversal_sigmas * np.hypot(5.0, 3.0)
    assert traversals.traversal_reach_m(acc, unc, P) == pytest.approx(widest, rel=1e-8)
    assert traversals.traversal_reach_m(acc, unc, P) >= widest
    assert traversals.traversal_reach_m(acc, np.array([np.nan]), P) == P.max_traversal_radius_m   # nothing known
    assert traversals.traversal_reach_m(np.array([500.0]), unc, P) == P.max_traversal_radius_m
    assert traversals.traversal_reach_m(np.array([0.1]), np.array([0.1]), P) == pytest.approx(P.traversal_radius_m)


@pytest.mark.parametrize("seed", range(12))
def test_traversals_of_many_tracks_in_one_search_are_each_tracks_own(seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [_random_track_and_defects(seed * 100 + k) for k in range(int(rng.integers(1, 6)))]
    _, _, _, _, _, dx, dy, dh, spans, unc = parts[0]
    for p in parts[1:]:                                       # every track near the first one's defects
        p[1][:] += (dx.mean() if dx.size else 0.0) - (p[1].mean() if p[1].size else 0.0)
        p[2][:] += (dy.mean() if dy.size else 0.0) - (p[2].mean() if p[2].size else 0.0)
    track = np.repeat(np.arange(len(parts)), [p[0].size for p in parts])
    cat = [np.concatenate([p[k] for p in parts]) for k in range(5)]
    got = traversals.find_traversals_of_tracks(track, *cat, dx, dy, dh, spans, unc, P)
    want: list[list] = [[], [], [], [], []]
    for k, p in enumerate(parts):
        idx, t_pass, dist, pass_no = find_traversals(*p[:5], dx, dy, dh, spans, unc, P)
        for out, v in zip(want, ([k] * idx.size, idx.tolist(), t_pass.tolist(), dist.tolist(), pass_no.tolist()),
                          strict=True):
            out += v
    assert [g.tolist() for g in got] == want


def test_grid_keys_of_a_dense_track_match_the_slow_reference() -> None:
    s = np.arange(0.0, 3000.0, 2.0)                           # points 2 m apart: mostly the cells of the one before
    x, y = np.where(s < 1500, s, 1500.0) - 0.3, np.where(s < 1500, 49.9, 49.9 + s - 1500)
    for radius_m in (0.0, 20.0, 60.0):
        got = cellmap.grid_keys_within(x, y, radius_m)
        assert got.tolist() == _slow_grid_keys_within(x, y, radius_m, cellmap.DEFECT_GRID_M).tolist()
        for size_m, directions in ((cellmap.DEFECT_GRID_M, False), (cellmap.CELL_SIZE_M, True)):
            got = cellmap.grid_keys_around(x, y, radius_m, size_m=size_m, directions=directions)
            assert got.tolist() == _slow_grid_keys_around(x, y, radius_m, size_m, directions).tolist()


def test_a_latency_histogram_read_back_is_the_one_written() -> None:
    calib = LatencyCalibration().add(np.array([0.2, 0.25, 0.9, -0.4, 1.7, np.nan]))
    assert LatencyCalibration.from_json(calib.to_json()) == calib and calib.n_pairs == 5
    assert LatencyCalibration.from_json(calib.to_json()).counts == tuple(
        int(c) for c in __import__("json").loads(calib.to_json())["counts"])
    assert LatencyCalibration.from_json(None) == LatencyCalibration() == LatencyCalibration.from_json("")
    assert LatencyCalibration.from_json('{"counts": [1, 2]}') == LatencyCalibration()     # other bins: none


def _ingest_bumps_missed(store, kept_rows: list[tuple[int, int]]) -> list:  # noqa: F811
    """Two speed bumps hit both ways by three phones (designed features), a pothole on the same road, then trips
    that miss the bumps (their kind falls to the majority of their hits: summaries kept while they hold), some of
    them hitting the pothole, some passing alone, on to likely_repaired. ``kept_rows``: (rows written, status
    changes) of each batch of kept summaries. Returns every trip's status changes."""
    bumps_n = [(1.0, 0.0, "speed_bump", 8.0, 0.9), (1.0, 100.0, "speed_bump", 7.0, 0.8)]
    bumps_s = [(-1.0, 0.5, "speed_bump", 8.0, 0.9), (-1.0, 100.5, "speed_bump", 7.0, 0.8)]
    pothole = (1.5, -100.0, "pothole", 9.0, 0.9)
    changes = []
    for k, dev in enumerate(["a", "b", "c"]):
        changes.append(add_trip(store, f"n{k}", dev, T0_S + k * DAY_S, [*bumps_n, pothole]).status_changes)
        changes.append(add_trip(store, f"s{k}", dev.upper(), T0_S + k * DAY_S + 600, bumps_s,
                                heading_deg=180.0).status_changes)
    for k in range(14):
        hits = [pothole] if k % 3 == 0 else []
        changes.append(add_trip(store, f"miss{k}", "efg"[k % 3], T0_S + (5 + k) * DAY_S, hits).status_changes)
    return changes


def test_kept_summaries_written_after_the_merges_are_those_of_a_full_refresh(tmp_path, monkeypatch) -> None:
    written: list[tuple[int, int]] = []
    real_write = refresh._KeptSummaries.write

    def counted(self, store):  # noqa: F811
        written.append((int(self.update["defect_id"].size), len(self.history)))
        return real_write(self, store)

    monkeypatch.setattr(refresh._KeptSummaries, "write", counted)
    fast = Store.open(tmp_path / "fast.db")
    fast_changes = _ingest_bumps_missed(fast, written)
    assert sum(n for n, _ in written) >= 4 and any(h for _, h in written)       # kept ones, one going repaired
    # the twin: no summary kept, every defect only passed and not done quickly refreshed from its hits
    monkeypatch.setattr(refresh, "_summary_holds", lambda prev, *a, **k: np.zeros(len(prev), dtype=bool))
    slow = Store.open(tmp_path / "slow.db")
    slow_changes = _ingest_bumps_missed(slow, [])
    assert fast_changes == slow_changes and any(fast_changes)
    a, b = fast.all_defects(), slow.all_defects()
    assert a.names == b.names and len(a) == 3
    for n in a.names:
        if n in ("latency_s", "latency_devices"):              # stamped by a full refresh only
            continue
        assert np.array_equal(a[n], b[n], equal_nan=a[n].dtype.kind == "f"), n
    assert fast.all_history() == slow.all_history()
    assert "likely_repaired" in a["status"].tolist()
    fast.close()
    slow.close()


def test_totals_added_pass_by_pass_are_those_counted_from_every_hit_and_pass(store) -> None:  # noqa: F811
    """A defect's hit and pass totals grow with each trip's hits and passes (stored totals plus the trip's), not
    by counting its whole history again; they must stay what a count of every hit and pass gives: devices that
    come back, new ones, trips that pass without a hit, a trip hitting it twice."""
    plan = [("a", 1), ("b", 1), ("a", 1), ("c", 0), ("d", 2), ("b", 0), ("e", 1), ("a", 1), ("f", 0), ("c", 1)]
    for k, (dev, n_hits) in enumerate(plan):
        impacts = [POTHOLE] if n_hits == 1 else [POTHOLE, (0.0, 150.0, "pothole", 9.0, 0.9)] if n_hits == 2 else []
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, impacts)
        d = store.all_defects()
        d = d.select(np.argsort(d["defect_id"]))
        hits, passes = store.hit_totals(d["defect_id"]), store.traversal_totals(d["defect_id"])
        for name in ("n_hits", "n_devices", "first_seen_s", "last_seen_s"):
            assert d[name].tolist() == hits[name].tolist(), (k, name)
        at = np.searchsorted(passes["defect_id"], d["defect_id"])
        for name in ("n_traversals", "n_traversal_hits", "first_traversal_s", "last_traversal_s"):
            assert d[name].tolist() == passes[name][at].tolist(), (k, name)
    main = store.all_defects()
    main = main.select(main["n_hits"] == main["n_hits"].max())
    assert main["n_devices"].tolist() == [5] and main["n_hits"].tolist() == [7]     # a, b, c, d, e


def test_a_sunken_cover_deeper_than_castings_sink_is_a_pothole() -> None:
    from bump.kinds import deeper_than_castings

    kinds = np.array(["cover", "cover", "cover", "pothole", "speed_bump"])
    severity = np.array([5.2, 3.1, 6.0, 1.0, 8.0])
    depth = np.array(["high", "moderate", "proud", "low", "high"])
    out, why = deeper_than_castings(kinds, ["r"] * 5, severity, depth, DefectParams())
    # deep sunken cover -> pothole; a shallow one and a proud casting stay covers; other kinds untouched
    assert out.tolist() == ["pothole", "cover", "cover", "pothole", "speed_bump"]
    assert "deeper than castings" in why[0] and why[1:] == ["r"] * 4
    assert deeper_than_castings(kinds, ["r"] * 5, severity, depth, DefectParams(casting_max_depth_cm=5.5)
                                )[0].tolist()[0] == "cover"


# ------------------------------------------------------------------------------------------ GPS error at landmarks


def _slow_offsets(t, obs_t, obs_dx, obs_dy, tau, prior, key=None, obs_key=None):
    out = []
    for i, ti in enumerate(t):
        num_x = num_y = den = 0.0
        for k, tk in enumerate(obs_t):
            if key is not None and key[i] == obs_key[k]:
                continue
            w = np.exp(-abs(ti - tk) / tau)
            num_x, num_y, den = num_x + w * obs_dx[k], num_y + w * obs_dy[k], den + w
        out.append((num_x / (den + prior), num_y / (den + prior)))
    return np.array(out).reshape(len(t), 2)


@pytest.mark.parametrize("n_obs", [0, 1, 9])
def test_landmark_offsets_match_the_slow_reference(n_obs: int) -> None:
    from bump.landmarks import offsets_at
    rng = np.random.default_rng(n_obs)
    t, obs_t = rng.uniform(0, 300, 40), rng.uniform(0, 300, n_obs)
    dx, dy = rng.normal(0, 8, n_obs), rng.normal(0, 8, n_obs)
    key, obs_key = rng.integers(-1, 4, 40), rng.integers(0, 4, n_obs)
    got = np.column_stack(offsets_at(t, obs_t, dx, dy, tau_s=30.0, prior_weight=0.3, key=key, obs_key=obs_key))
    assert np.allclose(got, _slow_offsets(t, obs_t, dx, dy, 30.0, 0.3, key, obs_key))
    plain = np.column_stack(offsets_at(t, obs_t, dx, dy, tau_s=30.0, prior_weight=0.3))
    assert np.allclose(plain, _slow_offsets(t, obs_t, dx, dy, 30.0, 0.3))
    if n_obs:
        assert not np.allclose(got, plain)                        # a position's own landmark is left out


def test_a_landmarks_offset_fades_with_time_and_never_moves_its_own_hits() -> None:
    from bump.landmarks import offsets_at
    kw = {"tau_s": 30.0, "prior_weight": 0.3}
    dx, _ = offsets_at(np.array([100.0, 110.0, 160.0, 400.0]), np.array([100.0]), np.array([-6.0]), np.array([0.0]),
                       **kw)
    assert dx[0] == pytest.approx(-6.0 / 1.3)                    # at the landmark: its offset, shrunk by the prior
    assert dx[0] < dx[1] < dx[2] < dx[3] <= 0.0 and dx[3] > -0.01  # fading towards no move minutes away
    own, _ = offsets_at(np.array([100.0]), np.array([100.0]), np.array([-6.0]), np.array([0.0]), key=np.array([3]),
                        obs_key=np.array([3]), **kw)
    assert own[0] == 0.0


def test_a_trips_gps_error_read_at_a_landmark_places_its_new_pothole(tmp_path) -> None:
    """Six phones establish a pothole at the origin; a seventh, its fixes 6 m east of the truth, hits it and a new
    pothole 50 m (5 s) further north. Its error read at the first moves its second hit towards the truth; the hits
    keep the positions the phone reported."""
    places, replaced = {}, {}
    impacts = {f"on{k}": [(rng_offset(k), 0.0, "pothole", 9.0, 0.9)] for k in range(18)}
    impacts["off"] = [(6.0, 0.0, "pothole", 9.0, 0.9), (6.0, 50.0, "pothole", 9.0, 0.9)]
    for on in (True, False):
        s = Store.open(tmp_path / f"landmarks-{on}.db")
        for k in range(18):
            add_trip(s, f"on{k}", f"dev{k % 6}", T0_S + k * DAY_S, impacts[f"on{k}"])
        lm = s.all_defects()
        assert lm["status"].tolist() == ["confirmed"] and lm["n_hits"][0] >= DefectParams().landmark_min_hits
        dp = DefectParams(landmarks=on)
        trace = road_trace("off", "dev7", t0_s=T0_S + 20 * DAY_S, offset_m=6.0)
        pipeline.ingest_trace(s, trace, detection=fake_detection(trace, impacts["off"]), defect_params=dp,
                              clock=lambda: T0_S + 21 * DAY_S)
        d = s.all_defects()
        new = int(np.flatnonzero(d["defect_id"] != lm["defect_id"][0])[0])
        places[on] = float(d["x_m"][new])
        assert d["n_hits"][d["defect_id"] == lm["defect_id"][0]][0] == lm["n_hits"][0] + 1   # joined the landmark
        hits = s.hits_of_trip("off")
        second = int(np.argmax(hits["t_s"]))
        assert PROJ.to_xy(hits["lat_deg"][second], hits["lon_deg"][second])[0] == pytest.approx(6.0, abs=0.01)
        # a full re-cluster reads the trip's error at the same landmark
        pipeline.reprocess(s, detect_fn=lambda tr, _p: fake_detection(tr, impacts[tr.trip_id]), defect_params=dp,
                           clock=lambda: T0_S + 22 * DAY_S)
        d = s.all_defects()
        assert len(d) == 2
        replaced[on] = float(d["x_m"][int(np.argmax(d["y_m"]))])
        s.close()
    w = np.exp(-5.0 / DefectParams().gps_error_tau_s)
    assert places[False] == pytest.approx(6.0, abs=0.01)
    assert places[True] == pytest.approx(6.0 - 6.0 * w / (w + DefectParams().landmark_prior_weight), abs=0.3)
    assert replaced[False] == pytest.approx(6.0, abs=0.01)
    assert replaced[True] == pytest.approx(places[True], abs=0.3)
