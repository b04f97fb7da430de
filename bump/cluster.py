"""Hits of many trips -> defects: direction-aware clustering, robust positions, traversals, kind from hit patterns.

Everything here is arrays in, arrays out, in local east/north metres (:class:`detect.geo.LocalProjection` around the
database origin); no SQL, no I/O. :mod:`bump.pipeline` feeds it from the store.

Direction. A hit's direction is the GPS course when it was detected. A pothole lies in one carriageway, so hits
whose headings differ by more than ``opposite_deg`` (90 deg) belong to different defects, *unless* the defect is of
a kind that spans the road (speed_bump, joint): it takes hits from both directions when their axes agree within
``axis_deg``, whatever kind a single hit looked like (a joint's hits are often taken for potholes). New hits of one
trip group across directions only when both span. Unknown headings are compatible with everything. The price: a
pothole within a gate of a speed bump or joint on the same road is taken as part of it. Two defects of opposite
directions merge (as duplicates, or one absorbing the other) when both span, or when the one-direction defect is hit
as a full-width feature is, on at least ``twin_hit_rate`` of its passes (:func:`spanning_merge_ok`): a pothole hit on
some passes is not half of a speed bump, even when a rough heave in the other lane reads as one.
A defect's direction is a robust circular mean of its hits' (:func:`mean_heading`): started from their most common
direction, so the hit of a car turning at the spot does not turn the defect, and with it the passes that count.

Gates. A hit joins the nearest compatible defect within
``clip(gate_sigmas * sqrt(accuracy_hit^2 + uncertainty_defect^2), join_radius_m, max_join_radius_m)``
(8-25 m by default): a fix is off by its accuracy, the defect by its uncertainty. Two defects are duplicates when
they are compatible and their distance is within the same gate of their two uncertainties. A defect is absorbed by a
larger one when at least half of its hits lie within that one's gate (:func:`absorb_pairs`): joining hit by hit can
cut one cloud in two (a fix just outside the gate starts a candidate, later fixes nearer to it join it), and the two
centres' small uncertainties then keep them apart; ingestion does so unless one pass hit both. Two hits of one pass
metres apart (:func:`same_pass_pairs`) are two defects: they never both join one (the nearer does, the other takes
its next choice) nor start one together.

Position. Iteratively reweighted mean with weights 1/accuracy^2 and Cauchy down-weighting
``1 / (1 + (r / (robust_k * accuracy))^2)`` of a residual r (a multipath fix 40 m off barely counts), started from
the weighted median. Uncertainty
``max(min_uncertainty_m, max(spread, accuracy_typ) / sqrt(n_trips))``: ``spread`` the weighted RMS residual
(Bessel-corrected), ``accuracy_typ`` the weighted mean accuracy (a single hit is as uncertain as its fix), and
hits of one trip count once because their GPS errors are correlated.

Traversals (which defects a trip passed, hit or not) are in :mod:`bump.traversals`; a defect's kind and depth
class from its hits' in :mod:`bump.kinds`.

GPS latency (the samples, their histograms and the correction of hit positions) is in :mod:`bump.latency`.

The full re-cluster is in :mod:`bump.recluster`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from detect.params import NON_NEGATIVE, POSITIVE, UNIT, ParamsError, Range, VersionedParams

DEFECTS_VERSION = "bump-defects/0.9"     # 0.2: the full re-cluster splits clusters that several passes saw apart;
#                                          0.3: ingestion merges a defect into a larger one most of its hits would join;
#                                          0.4: a one-direction defect merges across directions only if hit as a
#                                          full-width feature is; 0.5: a tie in the proud vote lists the cover;
#                                          0.6: a defect's depth class is its severity's, not one hit's;
#                                          0.7: a defect's direction is a robust mean of its hits' (mean_heading);
#                                          0.8: a trip's GPS error read at landmarks moves its hits (bump.landmarks);
#                                          0.9: the proud vote counts every hit's first motion (proud_share 2/3)
SPANNING_KINDS = ("speed_bump", "joint")          # hit by both wheels, from both directions: designed features
DESIGNED_KINDS = SPANNING_KINDS


def spans_road(kinds: np.ndarray) -> np.ndarray:
    """True for kinds that span the road (:data:`SPANNING_KINDS`)."""
    return np.isin(np.asarray(kinds).astype(str), SPANNING_KINDS)
DEFECT_KINDS = ("pothole", "cover", "rough", "unknown")
KINDS = (*DEFECT_KINDS, *DESIGNED_KINDS)
# What a crew's list shows unless asked: spot defects. A "rough" cluster is a point on a rough stretch, which the
# roughness map (bump.cells) shows better; designed features are not defects.
LISTED_KINDS = ("pothole", "cover", "unknown")
# ... and of covers only those a crew would fix: castings standing proud (nothing to fill) and castings sunk less than
# FIELD_NOTES' "low" class (25 mm, the ordinary settling of a casting) stay off the list unless asked by kind.
MINOR_COVER_CLASSES = ("proud", "low")


@dataclass(frozen=True)
class DefectParams(VersionedParams):
    """Clustering, traversal, status and priority rules. Units in the names; serialised next to results."""

    VERSION: ClassVar[str] = DEFECTS_VERSION
    WHAT: ClassVar[str] = "defect parameters"

    # --- clustering
    join_radius_m: float = 8.0             # floor of the join gate
    max_join_radius_m: float = 25.0        # cap of every gate
    gate_sigmas: float = 2.5
    opposite_deg: float = 90.0             # hits further apart in heading are different defects ...
    axis_deg: float = 45.0                 # ... unless both span the road and their axes agree within this
    default_accuracy_m: float = 10.0       # hits and fixes without a reported accuracy
    min_accuracy_m: float = 1.0
    min_uncertainty_m: float = 2.0
    robust_k: float = 1.5                  # Cauchy scale of the position fit, in units of each hit's accuracy
    irls_iterations: int = 5
    latency_calibration: bool = True       # estimate the fleet's GPS latency from features hit both ways
    latency_min_pairs: int = 50            # opposite-direction hit pairs needed before correcting
    latency_lateral_m: float = 4.0         # pairs further apart across the road are different features
    device_latency: bool = True            # correct each device by its own latency once it has samples ...
    device_latency_prior: int = 10         # ... weighted against the fleet's as samples / (samples + this)
    device_latency_min_hits: int = 6       # defects with this many hits (from confirm_devices devices) calibrate
    landmarks: bool = True                 # move a trip's hits and track by its GPS error read at landmarks:
    landmark_min_hits: int = 6             # confirmed defects with this many hits (bump.landmarks)
    gps_error_tau_s: float = 30.0          # correlation time of a phone's GPS error (FIELD_NOTES: tens of seconds)
    landmark_prior_weight: float = 0.3     # a landmark at dt = 0 moves a hit by 1 / (1 + this) of its offset
    summary_hits: int = 100                # a defect's position, kind, severity, confidence: from its latest hits
    recluster_cell_m: float = 2.0
    recluster_link_m: float = 4.0
    recluster_span_hits: int = 3           # a re-cluster cluster spans the road (merges across directions) only with
    #                                        this many hits saying so, and most: as many as confirm a defect
    pass_window_s: float = 30.0            # two hits of one trip this close in time, in one direction, ...
    distinct_hits_m: float = 8.0           # ... and this far apart are two defects (their fixes share their error);
    apart_passes: int = 3                  # a re-cluster cluster is split in two when this many passes say so
    # --- traversals
    traversal_radius_m: float = 6.0
    traversal_sigmas: float = 1.5
    max_traversal_radius_m: float = 20.0
    traversal_heading_deg: float = 45.0
    track_step_m: float = 2.0
    backfill_days: float = 30.0            # a new defect takes the passes of stored trips from this long before it
    # --- status (bump.lifecycle)
    confirm_devices: int = 3               # distinct devices with hits to confirm; one device never confirms
    confirm_hit_rate: float = 0.15         # ... and hits on at least this share of the passes since the first hit
    repaired_traversals: int = 5           # clean passes after the last hit ...
    repaired_devices: int = 2              # ... from at least this many devices -> likely_repaired
    repaired_miss_prob: float = 0.01       # ... and so many that a defect still there, hit at its past hit rate,
    #                                        would miss them all with at most this probability
    # --- kind from the hit pattern
    designed_hit_rate: float = 0.8
    designed_traversals: int = 4
    twin_hit_rate: float = 0.6             # each of two opposite defects at one spot hit this often -> one feature
    proud_share: float = 2 / 3             # a cover whose hits lifted the wheel first more often than this stands up
    #                                        (no hole): a clear majority, as holes lift first on a few passes
    casting_max_depth_cm: float = 4.0      # castings sink at most 4 cm (FIELD_NOTES): a sunken "cover" whose
    #                                        severity is deeper is a pothole
    # --- priority (bump.priority)
    severity_half_cm: float = 5.0          # severity (equivalent depth) giving half the severity factor
    traffic_window_days: float = 7.0       # shortest period over which traversals per day are counted
    kind_weights: tuple[tuple[str, float], ...] = (("pothole", 1.0), ("cover", 0.7), ("rough", 0.5),
                                                   ("unknown", 0.4), ("speed_bump", 0.0), ("joint", 0.0))
    status_weights: tuple[tuple[str, float], ...] = (("confirmed", 1.0), ("candidate", 0.5),
                                                     ("likely_repaired", 0.2), ("repaired", 0.0), ("dismissed", 0.0))

    RANGES: ClassVar[dict[str, Range | str]] = {
        **dict.fromkeys(("join_radius_m", "max_join_radius_m", "gate_sigmas", "default_accuracy_m", "min_accuracy_m",
                         "min_uncertainty_m", "robust_k", "latency_lateral_m", "recluster_cell_m", "recluster_link_m",
                         "distinct_hits_m", "traversal_radius_m", "traversal_sigmas", "max_traversal_radius_m",
                         "track_step_m", "severity_half_cm", "traffic_window_days", "casting_max_depth_cm",
                         "gps_error_tau_s"), POSITIVE),
        **dict.fromkeys(("pass_window_s", "backfill_days", "device_latency_prior", "landmark_prior_weight"),
                        NON_NEGATIVE),
        **dict.fromkeys(("confirm_hit_rate", "designed_hit_rate", "twin_hit_rate", "proud_share"), UNIT),
        **dict.fromkeys(("irls_iterations", "latency_min_pairs", "device_latency_min_hits", "landmark_min_hits",
                         "summary_hits", "recluster_span_hits", "apart_passes", "confirm_devices",
                         "repaired_traversals", "repaired_devices", "designed_traversals"), (1.0, None, True, False)),
        "opposite_deg": (0.0, 180.0, False, True), "axis_deg": (0.0, 90.0, False, True),
        "traversal_heading_deg": (0.0, 180.0, False, True), "repaired_miss_prob": (0.0, 1.0, False, False),
    }

    def __post_init__(self) -> None:
        self.check_values()                         # types and ranges (RANGES); then the rules' own
        if self.confirm_devices < 2:
            raise ParamsError(f"must be >= 2 (one device never confirms), got {self.confirm_devices}",
                              field="confirm_devices")


DEFAULT_DEFECT_PARAMS = DefectParams()


# ------------------------------------------------------------------------------------------------------ angles


def angle_diff_deg(a_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    """Smallest difference between headings [deg], 0..180 (NaN where either is unknown)."""
    return np.abs(np.mod(np.asarray(a_deg) - np.asarray(b_deg) + 180.0, 360.0) - 180.0)


def axis_diff_deg(a_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    """Smallest difference between axes (headings modulo 180) [deg], 0..90."""
    d = angle_diff_deg(a_deg, b_deg)
    return np.minimum(d, 180.0 - d)


def compatible(h1_deg: np.ndarray, h2_deg: np.ndarray, across: np.ndarray, params: DefectParams) -> np.ndarray:
    """Whether two things travelled in compatible directions; elementwise. ``across``: where opposite directions
    are allowed on a common axis (a road-spanning defect; see the module docstring)."""
    d = angle_diff_deg(h1_deg, h2_deg)
    unknown = ~np.isfinite(d)
    same = np.nan_to_num(d, nan=0.0) <= params.opposite_deg
    on_axis = np.asarray(across, bool) & (np.nan_to_num(np.minimum(d, 180.0 - d), nan=0.0) <= params.axis_deg)
    return unknown | same | on_axis


HEADING_SCALE_DEG = 20.0     # Cauchy scale of a hit's course about its defect's direction: cars on one road agree
#                              within ~10 deg (GPS course, lane changes, a bend within a gate); a turn or a crossing
#                              road's car differs by 30-90 deg
HEADING_BINS = 36            # 10-degree bins of the histogram whose mode starts the robust mean
HEADING_ITERATIONS = 3


def mean_heading(labels: np.ndarray, heading_deg: np.ndarray, weights: np.ndarray, n_labels: int,
                 axial: np.ndarray) -> np.ndarray:
    """Robust weighted circular mean heading per label [deg, 0..360); axial labels average axes (result in 0..180).
    NaN where a label has no finite heading.

    Started from the most common direction of each label (the mode of its histogram of headings, counted, not
    weighted: 10-degree bins, each with its two neighbours), then :data:`HEADING_ITERATIONS` reweighted circular
    means, a heading ``d`` away from the current mean weighted ``1 / (1 + (d / HEADING_SCALE_DEG)^2)``: one hit of a
    turning car or of a crossing road's car among five along the road moved the plain mean by ~30 degrees (and with
    it which passes count as traversals); it now moves it by ~1."""
    h = np.deg2rad(np.asarray(heading_deg, dtype=np.float64))
    ok = np.isfinite(h)
    lab, w = np.asarray(labels, dtype=np.int64)[ok], np.asarray(weights, dtype=np.float64)[ok]
    k = np.where(np.asarray(axial, bool)[lab], 2.0, 1.0)
    a = np.mod(k * h[ok], 2.0 * np.pi)                      # on the circle (axes: doubled)
    b = np.minimum((a * (HEADING_BINS / (2.0 * np.pi))).astype(np.int64), HEADING_BINS - 1)
    hist = np.bincount(lab * HEADING_BINS + b, minlength=n_labels * HEADING_BINS).reshape(n_labels, -1)
    hist += np.roll(hist, 1, axis=1) + np.roll(hist, -1, axis=1)
    centre = (np.argmax(hist, axis=1) + 0.5) * (2.0 * np.pi / HEADING_BINS)
    scale = k * np.deg2rad(HEADING_SCALE_DEG)
    cos_a, sin_a = np.cos(a), np.sin(a)
    for _ in range(HEADING_ITERATIONS):
        d = np.mod(a - centre[lab] + np.pi, 2.0 * np.pi) - np.pi
        ww = w / (1.0 + (d / scale) ** 2)
        centre = np.arctan2(np.bincount(lab, ww * sin_a, minlength=n_labels),
                            np.bincount(lab, ww * cos_a, minlength=n_labels))
    out = np.rad2deg(np.mod(centre, 2.0 * np.pi))
    out = np.where(np.asarray(axial, bool), out / 2.0, out)
    return np.where(np.bincount(lab, minlength=n_labels) > 0, out, np.nan)


# --------------------------------------------------------------------------------------------------- positions


def clean_accuracy(accuracy_m: np.ndarray, params: DefectParams) -> np.ndarray:
    a = np.asarray(accuracy_m, dtype=np.float64)
    return np.maximum(np.where(np.isfinite(a) & (a > 0), a, params.default_accuracy_m), params.min_accuracy_m)


def weighted_median_by_label(labels: np.ndarray, values: np.ndarray, weights: np.ndarray, n_labels: int
                             ) -> np.ndarray:
    """Weighted median of ``values`` within each label (NaN for empty labels)."""
    out = np.full(n_labels, np.nan)
    if values.size == 0:
        return out
    order = np.lexsort((values, labels))
    lab, v, w = labels[order], values[order], weights[order]
    total = np.bincount(lab, w, minlength=n_labels)
    before = np.concatenate([[0.0], np.cumsum(total)[:-1]])
    inside = np.cumsum(w) - before[lab]
    ok = inside >= 0.5 * total[lab] - 1e-12 * np.abs(total[lab])
    first_lab, first = np.unique(lab[ok], return_index=True)
    out[first_lab] = v[ok][first]
    return out


@dataclass(frozen=True)
class Centres:
    """Per-label robust position [m], uncertainty [m] and counts."""

    x_m: np.ndarray
    y_m: np.ndarray
    uncertainty_m: np.ndarray
    n_hits: np.ndarray
    n_trips: np.ndarray


def robust_centres(labels: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, accuracy_m: np.ndarray,
                   trip_index: np.ndarray, n_labels: int, params: DefectParams, *, quick: bool = False) -> Centres:
    """Robust weighted centres of labelled hits (see the module docstring). ``trip_index``: an integer per hit
    naming its trip (hits of one trip count once in the uncertainty). ``quick``: start from the weighted mean
    and iterate twice (for merge decisions inside :func:`recluster`)."""
    labels = np.asarray(labels, dtype=np.int64)
    acc = clean_accuracy(accuracy_m, params)
    w0 = 1.0 / acc**2
    if quick:
        sw0 = np.bincount(labels, w0, minlength=n_labels)
        with np.errstate(invalid="ignore", divide="ignore"):
            cx = np.bincount(labels, w0 * x_m, minlength=n_labels) / sw0
            cy = np.bincount(labels, w0 * y_m, minlength=n_labels) / sw0
    else:
        cx = weighted_median_by_label(labels, x_m, w0, n_labels)
        cy = weighted_median_by_label(labels, y_m, w0, n_labels)
    w = w0
    r = np.zeros_like(w0)
    for _ in range(2 if quick else params.irls_iterations):
        r = np.hypot(x_m - cx[labels], y_m - cy[labels])
        w = w0 / (1.0 + (r / (params.robust_k * acc)) ** 2)
        sw = np.bincount(labels, w, minlength=n_labels)
        with np.errstate(invalid="ignore", divide="ignore"):
            cx = np.bincount(labels, w * x_m, minlength=n_labels) / sw
            cy = np.bincount(labels, w * y_m, minlength=n_labels) / sw
    r = np.hypot(x_m - cx[labels], y_m - cy[labels])
    n = np.bincount(labels, minlength=n_labels).astype(np.float64)
    sw = np.bincount(labels, w, minlength=n_labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt(np.bincount(labels, w * r**2, minlength=n_labels) / sw * n / np.maximum(n - 1.0, 1.0))
        acc_typ = np.sqrt(n / np.bincount(labels, w0, minlength=n_labels))
    trips = np.asarray(trip_index, dtype=np.int64)
    if labels.size:
        trips = trips - trips.min()
        span = int(trips.max()) + 1
        key = np.sort(labels * span + trips)
        distinct = np.concatenate([[True], key[1:] != key[:-1]])
        n_trips = np.bincount(key[distinct] // span, minlength=n_labels)
    else:
        n_trips = np.zeros(n_labels, dtype=np.int64)
    unc = np.maximum(params.min_uncertainty_m,
                     np.fmax(np.nan_to_num(spread, nan=0.0), acc_typ) / np.sqrt(np.maximum(n_trips, 1)))
    return Centres(cx, cy, unc, n.astype(np.int64), n_trips.astype(np.int64))


# ----------------------------------------------------------------------------------------------------- joining


def greedy_match(i: np.ndarray, j: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices into the candidate pairs (i, j, cost) taken by greedy one-to-one matching, cheapest first
    (ties broken by i then j). A loop over candidate pairs, not samples."""
    order = np.lexsort((j, i, cost))
    used_i: set[int] = set()
    used_j: set[int] = set()
    taken = []
    for k in order:
        a, b = int(i[k]), int(j[k])
        if a not in used_i and b not in used_j:
            used_i.add(a)
            used_j.add(b)
            taken.append(k)
    return np.asarray(taken, dtype=np.intp)


def continued(new_xy_m: np.ndarray, new_heading_deg: np.ndarray, new_spans: np.ndarray, new_uncertainty_m: np.ndarray,
              old_xy_m: np.ndarray, old_heading_deg: np.ndarray, old_uncertainty_m: np.ndarray,
              params: DefectParams) -> np.ndarray:
    """For each new defect (a re-cluster's) the index of the old defect it continues, -1 for none: within the join
    gate of both uncertainties, in compatible directions, one to one, nearest first. A reprocess gives such a
    defect its old id, so that the ids on crews' work orders still name it."""
    out = np.full(len(new_xy_m), -1, dtype=np.intp)
    if not len(new_xy_m) or not len(old_xy_m):
        return out
    i, j, d = pairs_within(new_xy_m, old_xy_m, params.max_join_radius_m)
    ok = (d <= join_gate_m(new_uncertainty_m[i], old_uncertainty_m[j], params)) & compatible(
        new_heading_deg[i], old_heading_deg[j], np.asarray(new_spans, bool)[i], params)
    i, j, d = i[ok], j[ok], d[ok]
    taken = greedy_match(i, j, d)
    out[i[taken]] = j[taken]
    return out


def join_gate_m(hit_accuracy_m: np.ndarray, uncertainty_m: np.ndarray, params: DefectParams) -> np.ndarray:
    return np.clip(params.gate_sigmas * np.hypot(hit_accuracy_m, uncertainty_m), params.join_radius_m,
                   params.max_join_radius_m)


def pairs_within(a_xy: np.ndarray, b_xy: np.ndarray, radius_m: float, *, a_tree: cKDTree | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of all pairs a[i], b[j] within ``radius_m``, for (n, k) and (m, k) point arrays (in no
    particular order). ``a_tree``: :func:`points_tree` of ``a_xy`` when built before."""
    if len(a_xy) == 0 or len(b_xy) == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e, np.empty(0)
    tree = cKDTree(a_xy) if a_tree is None else a_tree
    m = tree.sparse_distance_matrix(cKDTree(b_xy), radius_m, output_type="ndarray")
    return m["i"].astype(np.int64), m["j"].astype(np.int64), m["v"]


def points_tree(x_m: np.ndarray, y_m: np.ndarray) -> cKDTree:
    """The search tree of points [m] that :func:`pairs_within` and :func:`bump.traversals.find_traversals` take as
    built (a trip's track is indexed before the database is locked). Built without balancing (~1.5x faster for a
    track; any tree gives the same pairs)."""
    return cKDTree(np.column_stack([x_m, y_m]), balanced_tree=False, compact_nodes=False)


def nearest_per_row(i: np.ndarray, j: np.ndarray, d: np.ndarray, n_rows: int) -> np.ndarray:
    """For each row index, the j of its smallest d, the smallest such j on a tie (-1 when it has no pair); d finite.
    Two unbuffered minimum reductions: ~30x faster than sorting the pairs (a track passes ~10,000 of them)."""
    out = np.full(n_rows, -1, dtype=np.int64)
    if i.size:
        best = np.full(n_rows, np.inf)
        np.minimum.at(best, i, d)
        tie = d == best[i]
        none = np.iinfo(np.int64).max
        first = np.full(n_rows, none)
        np.minimum.at(first, i[tie], np.asarray(j, dtype=np.int64)[tie])
        has = first != none
        out[has] = first[has]
    return out


def assign_hits(hx_m: np.ndarray, hy_m: np.ndarray, h_heading_deg: np.ndarray, h_spans: np.ndarray,
                h_accuracy_m: np.ndarray, dx_m: np.ndarray, dy_m: np.ndarray, d_heading_deg: np.ndarray,
                d_spans: np.ndarray, d_uncertainty_m: np.ndarray, params: DefectParams, *,
                apart: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Index of the defect each hit joins (nearest compatible within its gate), -1 when none. ``apart``: hit
    pairs of one pass over two defects (:func:`same_pass_pairs`); when both would join one defect, the one nearer
    to it does, and the other its next choice."""
    acc = clean_accuracy(h_accuracy_m, params)
    n = len(hx_m)
    i, j, d = pairs_within(np.column_stack([hx_m, hy_m]), np.column_stack([dx_m, dy_m]), params.max_join_radius_m)
    ok = (d <= join_gate_m(acc[i], d_uncertainty_m[j], params)) & compatible(
        h_heading_deg[i], d_heading_deg[j], np.asarray(d_spans, bool)[j], params)
    i, j, d = i[ok], j[ok], d[ok]
    out = nearest_per_row(i, j, d, n)
    if apart is None or apart[0].size == 0:
        return out
    a, b = apart
    for _ in range(a.size):                              # each round settles at least one pair
        both = (out[a] >= 0) & (out[a] == out[b])
        if not both.any():
            break
        pa, pb, target = a[both], b[both], out[a[both]]
        da = np.hypot(hx_m[pa] - dx_m[target], hy_m[pa] - dy_m[target])
        db = np.hypot(hx_m[pb] - dx_m[target], hy_m[pb] - dy_m[target])
        loser = np.where(da > db, pa, pb)
        drop = np.isin(i * (len(dx_m) + 1) + j, loser * (len(dx_m) + 1) + target)
        i, j, d = i[~drop], j[~drop], d[~drop]
        out = nearest_per_row(i, j, d, n)
    return out


def group_hits(x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray, spans: np.ndarray, accuracy_m: np.ndarray,
               params: DefectParams, *, t_s: np.ndarray | None = None) -> np.ndarray:
    """Labels 0..k-1 of new candidate defects among one trip's hits that joined nothing: connected components of
    pairs within the gate (two fixes: gate_sigmas x sqrt(a1^2 + a2^2)) and compatible in direction; with the hits'
    times ``t_s`` [s], never two hits of one pass metres apart (:func:`same_pass_pairs`)."""
    n = len(x_m)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    acc = clean_accuracy(accuracy_m, params)
    xy = np.column_stack([x_m, y_m])
    i, j, d = pairs_within(xy, xy, params.max_join_radius_m)
    sp = np.asarray(spans, bool)
    ok = (i < j) & (d <= join_gate_m(acc[i], acc[j], params)) & compatible(
        heading_deg[i], heading_deg[j], sp[i] & sp[j], params)
    if t_s is not None:
        a, b = same_pass_pairs(np.zeros(n, dtype=np.int64), t_s, x_m, y_m, heading_deg, params)
        ok &= ~np.isin(i * n + j, np.minimum(a, b) * n + np.maximum(a, b))
    graph = coo_matrix((np.ones(int(ok.sum())), (i[ok], j[ok])), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def close_pairs(x_m: np.ndarray, y_m: np.ndarray, params: DefectParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every pair of defects (both orders, and each with itself) within
    ``max_join_radius_m``: the candidates of :func:`duplicate_pairs` and :func:`twin_pairs`."""
    xy = np.column_stack([x_m, y_m])
    return pairs_within(xy, xy, params.max_join_radius_m)


def duplicate_pairs(x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray, spans: np.ndarray,
                    uncertainty_m: np.ndarray, params: DefectParams, *,
                    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                    passes: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance), i < j, of defects that are one: within the gate of their uncertainties, compatible.
    ``pairs``: :func:`close_pairs` of the defects when already found (:func:`twin_pairs` needs the same).

    ``passes`` (traversals, traversals with a hit) per defect: a defect of one direction joins a road-spanning one
    from the other only when it is hit as a full-width feature is, on at least ``twin_hit_rate`` of at least two
    passes (a joint's hits misread as potholes); a pothole in its own carriageway is hit on some passes only, and
    a rough heave in the other one, read as a speed bump, must not take it in."""
    i, j, d = close_pairs(x_m, y_m, params) if pairs is None else pairs
    gate = join_gate_m(uncertainty_m[i], uncertainty_m[j], params)
    sp = np.asarray(spans, bool)
    ok = (i < j) & (d <= gate) & compatible(heading_deg[i], heading_deg[j], sp[i] | sp[j], params)
    if passes is not None:
        ok &= spanning_merge_ok(i, j, heading_deg, sp, passes, params)
    return i[ok], j[ok], d[ok]


def spanning_merge_ok(i: np.ndarray, j: np.ndarray, heading_deg: np.ndarray, spans: np.ndarray,
                      passes: tuple[np.ndarray, np.ndarray], params: DefectParams) -> np.ndarray:
    """Whether defects i and j (index arrays) may merge as far as their directions go, once a road-spanning kind
    made them compatible (:func:`compatible`): same direction, both spanning, or the one-direction defect hit as a
    full-width feature is, on at least ``twin_hit_rate`` of at least two of its ``passes`` (traversals, traversals
    with a hit)."""
    n_trav, n_hit = (np.asarray(a) for a in passes)
    frequent = (n_trav >= 2) & (n_hit >= params.twin_hit_rate * np.maximum(n_trav, 1))
    across = np.nan_to_num(angle_diff_deg(heading_deg[i], heading_deg[j]), nan=0.0) > params.opposite_deg
    sp = np.asarray(spans, bool)
    return ~across | (sp[i] & sp[j]) | (sp[i] & frequent[j]) | (sp[j] & frequent[i])


def twin_pairs(x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray, spans: np.ndarray,
               uncertainty_m: np.ndarray, n_traversals: np.ndarray, n_hit_traversals: np.ndarray,
               params: DefectParams, *, pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j), i < j, of opposite-direction defects at one spot that are each hit on nearly every pass: the two
    halves of one road-spanning feature (a speed bump whose hits looked like potholes). ``pairs``: as for
    :func:`duplicate_pairs`."""
    i, j, d = close_pairs(x_m, y_m, params) if pairs is None else pairs
    rate = n_hit_traversals / np.maximum(n_traversals, 1)
    gate = np.clip(params.gate_sigmas * np.hypot(uncertainty_m[i], uncertainty_m[j]), params.join_radius_m,
                   params.max_join_radius_m)
    opposite = np.nan_to_num(angle_diff_deg(heading_deg[i], heading_deg[j]), nan=0.0) > 180.0 - params.axis_deg
    frequent = ((rate[i] >= params.twin_hit_rate) & (rate[j] >= params.twin_hit_rate)
                & (n_traversals[i] >= 2) & (n_traversals[j] >= 2)
                & (n_traversals[i] + n_traversals[j] >= params.designed_traversals)
                & ((n_hit_traversals[i] + n_hit_traversals[j]) / np.maximum(n_traversals[i] + n_traversals[j], 1)
                   >= params.designed_hit_rate))
    ok = (i < j) & (d <= gate) & opposite & frequent
    return i[ok], j[ok], d[ok]


def merge_forest(size: np.ndarray, i: np.ndarray, j: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Group label of each of ``size.size`` clusters when each merges into its nearest partner among the pairs
    (i, j, distance d) that is larger (more hits; ties: the lower index). Unlike connected components this does
    not chain two defects through a stray hit between them."""
    n = size.size
    a, b = np.r_[i, j], np.r_[j, i]
    dd = np.r_[d, d]
    up = (size[b] > size[a]) | ((size[b] == size[a]) & (b < a))
    parent = nearest_per_row(a[up], b[up], dd[up], n)
    parent = np.where(parent < 0, np.arange(n), parent)
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return np.unique(parent, return_inverse=True)[1].ravel()
        parent = nxt


# ------------------------------------------------------------------------ one pass's pairs, absorption


def same_pass_pairs(trip_index: np.ndarray, t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray,
                    heading_deg: np.ndarray, params: DefectParams) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) hit index pairs of one pass over two defects: the same trip, at most ``pass_window_s`` apart in time,
    headings within ``opposite_deg``, and at least ``distinct_hits_m`` apart. Fixes seconds apart share most of
    their error (FIELD_NOTES: correlated over tens of seconds), so the distance between two hits of one pass is
    good to a metre or two even when each fix is 15 m off: two defects 30 m apart that their fixes blur into one
    cloud stay two. A pass gives one hit per defect (the axles' hits are merged)."""
    trip = np.asarray(trip_index, dtype=np.int64)
    t = np.asarray(t_s, dtype=np.float64)
    order = np.lexsort((t, trip))
    tr, ts = trip[order], t[order]
    out_a, out_b = [], []
    for off in range(1, order.size):                       # loop over the hits of a pass (a few)
        near = (tr[off:] == tr[:-off]) & (ts[off:] - ts[:-off] <= params.pass_window_s)
        if not near.any():
            break
        a, b = order[:-off][near], order[off:][near]
        keep = ((np.hypot(x_m[a] - x_m[b], y_m[a] - y_m[b]) >= params.distinct_hits_m)
                & compatible(heading_deg[a], heading_deg[b], np.zeros(a.size, bool), params))
        out_a.append(a[keep])
        out_b.append(b[keep])
    if not out_a:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_a), np.concatenate(out_b)


def absorb_pairs(hit_label: np.ndarray, hx_m: np.ndarray, hy_m: np.ndarray, h_heading_deg: np.ndarray,
                 h_accuracy_m: np.ndarray, cx_m: np.ndarray, cy_m: np.ndarray, c_heading_deg: np.ndarray,
                 c_spans: np.ndarray, c_uncertainty_m: np.ndarray, c_size: np.ndarray, params: DefectParams, *,
                 sources: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, votes): cluster i would have been absorbed by cluster j, hit by hit, had j existed first: at least half
    of i's hits (those given, labelled ``hit_label``) lie within j's join gate and are compatible with it, j being
    the largest such cluster for each (``c_size``: more hits than i). One cloud that incremental joining cut in
    two (a defect started by a fix just outside the gate gathers the hits nearer to it) has two centres whose small
    uncertainties keep them apart, while nearly every hit of the smaller one lies within reach of the larger.
    ``sources``: only these clusters may be absorbed (default: any)."""
    k = len(cx_m)
    acc = clean_accuracy(h_accuracy_m, params)
    i, j, d = pairs_within(np.column_stack([hx_m, hy_m]), np.column_stack([cx_m, cy_m]), params.max_join_radius_m)
    lab = np.asarray(hit_label, dtype=np.int64)
    ok = (lab[i] != j) & (d <= join_gate_m(acc[i], c_uncertainty_m[j], params)) & (c_size[j] > c_size[lab[i]]) & \
        compatible(h_heading_deg[i], c_heading_deg[j], np.asarray(c_spans, bool)[j], params)
    if sources is not None:
        ok &= np.isin(lab[i], sources)
    i, j = i[ok], j[ok]
    e = np.empty(0, np.int64)
    if i.size == 0:
        return e, e, e
    # per hit, the largest such cluster; per cluster, the target most of its hits chose
    best = nearest_per_row(i, j, -np.asarray(c_size, dtype=np.float64)[j], lab.size)
    has = best >= 0
    pair, votes = np.unique(lab[has] * k + best[has], return_counts=True)
    src, dst = pair // k, pair % k
    enough = votes >= 0.5 * np.bincount(lab, minlength=k)[src]
    return src[enough], dst[enough], votes[enough]
