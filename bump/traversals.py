"""A trip's track and the defects it passed, hit or not: the traversals that hit rates, repair streaks and traffic
count.

Arrays in, arrays out, in local east/north metres, as :mod:`bump.cluster`; no SQL, no I/O.

Traversals. A trip passes a defect when its track (GPS fixes, latency-corrected, resampled every
``track_step_m``) comes within ``clip(traversal_sigmas * sqrt(u^2 + accuracy^2), traversal_radius_m,
max_traversal_radius_m)`` heading within ``traversal_heading_deg`` of the defect's direction (either way for
road-spanning defects); a trip with a hit on the defect always passed it. A trip that comes by again (a loop round
the block, a delivery round) passes it again: its track left the radius for longer than ``pass_window_s`` in
between. Each pass is one traversal, numbered 0, 1, ... in the trip's time order: the unit of hit rates, of the
repair streak and of traffic (counting trips instead hid ~14 % of the passes of the simulated city).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from bump.cluster import (
    DefectParams,
    angle_diff_deg,
    clean_accuracy,
    nearest_per_row,
    pairs_within,
)
from detect.arrays import unique_sorted
from ingest.validate import GPS_MAX_SPEED_MPS


@dataclass(frozen=True)
class Track:
    """A trip's path: GPS fix times [s] (latency-corrected), positions [deg], course [deg], accuracy [m]."""

    t_s: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    heading_deg: np.ndarray
    accuracy_m: np.ndarray

    def to_bytes(self) -> bytes:
        arr = np.column_stack([self.t_s, self.lat_deg, self.lon_deg, self.heading_deg, self.accuracy_m])
        return zlib.compress(arr.astype("<f8").tobytes(), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> Track:
        arr = np.frombuffer(zlib.decompress(blob), dtype="<f8").reshape(-1, 5)
        return cls(*(np.ascontiguousarray(arr[:, k]) for k in range(5)))


def track_from_fixes(gps_t_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray, speed_mps: np.ndarray,
                     heading_deg: np.ndarray, accuracy_m: np.ndarray, *, latency_s: float = 0.0) -> Track:
    """The track of a trip from its fixes: times moved back by ``latency_s``; course from the fixes' heading where
    the speed is above 2 m/s, else the bearing to the next fix."""
    from detect.geo import bearing_deg

    lat, lon = np.asarray(lat_deg, dtype=np.float64), np.asarray(lon_deg, dtype=np.float64)
    head = np.asarray(heading_deg, dtype=np.float64).copy()
    if lat.size >= 2:
        b = bearing_deg(lat[:-1], lon[:-1], lat[1:], lon[1:])
        b = np.concatenate([b, b[-1:]])
        moving = np.nan_to_num(np.asarray(speed_mps, dtype=np.float64), nan=5.0) > 2.0
        head = np.where(np.isfinite(head) & moving, head, b)
    return Track(np.asarray(gps_t_s, dtype=np.float64) - latency_s, lat, lon, head,
                 np.asarray(accuracy_m, dtype=np.float64))


TRACK_MAX_SPEED_MPS = GPS_MAX_SPEED_MPS   # faster than any road vehicle: a track segment implying more is a GPS error
TRACK_JUMP_SLACK_M = 50.0     # ... beyond this much (fixes a fraction of a second apart, each a few metres off)


def densify(track_xy_t: tuple[np.ndarray, np.ndarray, np.ndarray], heading_deg: np.ndarray, accuracy_m: np.ndarray,
            step_m: float, *, box: tuple[float, float, float, float] | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Resample a track (x [m], y [m], t [s]) every ``step_m`` along its path; heading and accuracy from the
    segment's start fix. Returns t, x, y, heading, accuracy. ``box``: (x_min, x_max, y_min, y_max) [m]: only the
    points of the segments that reach into it (the whole track's points there, and its neighbours on those
    segments, in order: a stored trip matched against a few new defects)."""
    x, y, t = (np.asarray(a, dtype=np.float64) for a in track_xy_t)
    if x.size < 2:
        return t, x, y, np.asarray(heading_deg, dtype=np.float64), np.asarray(accuracy_m, dtype=np.float64)
    seg = np.hypot(np.diff(x), np.diff(y))
    # a segment no car drives (a fix kilometres off) is a jump, not a road: nothing is filled in along it
    seg = np.where(seg <= TRACK_MAX_SPEED_MPS * np.maximum(np.diff(t), 0.0) + TRACK_JUMP_SLACK_M, seg, 0.0)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n_out = int(s[-1] // step_m) + 1
    meets = None if box is None or not np.isfinite(s[-1]) else _segments_in_box(x, y, box)
    if meets is None:
        grid = np.concatenate([np.arange(n_out) * step_m, s])     # keep every fix, add points between
    else:
        grid = _grid_on_segments(np.flatnonzero(meets), s, step_m, n_out)
    grid = unique_sorted(grid)
    k = np.clip(np.searchsorted(s, grid, side="right") - 1, 0, x.size - 2)
    if meets is not None:
        grid, k = grid[meets[k]], k[meets[k]]
    span = np.maximum(s[k + 1] - s[k], 1e-9)
    f = np.clip((grid - s[k]) / span, 0.0, 1.0)
    return (t[k] + f * (t[k + 1] - t[k]), x[k] + f * (x[k + 1] - x[k]), y[k] + f * (y[k + 1] - y[k]),
            np.asarray(heading_deg, dtype=np.float64)[k], np.asarray(accuracy_m, dtype=np.float64)[k])


def _segments_in_box(x: np.ndarray, y: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Per segment of a path: whether its bounding box meets ``box`` (x_min, x_max, y_min, y_max)."""
    x0, x1, y0, y1 = box
    return ((np.minimum(x[:-1], x[1:]) <= x1) & (np.maximum(x[:-1], x[1:]) >= x0)
            & (np.minimum(y[:-1], y[1:]) <= y1) & (np.maximum(y[:-1], y[1:]) >= y0))


def _grid_on_segments(seg: np.ndarray, s: np.ndarray, step_m: float, n_out: int) -> np.ndarray:
    """The distances along a path [m] (``s`` at its fixes) that :func:`densify` resamples on the segments ``seg``,
    and a few around them (the caller keeps those on them): the regular ones ``i * step_m`` from a step before
    each segment to a step after it, and the fixes at its ends."""
    lo = np.clip(np.floor(s[seg] / step_m).astype(np.int64) - 1, 0, n_out - 1)
    hi = np.clip(np.floor(s[seg + 1] / step_m).astype(np.int64) + 1, 0, n_out - 1)
    n = hi - lo + 1
    first = np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
    regular = (first + np.arange(int(n.sum()))) * step_m           # the values np.arange(n_out) * step_m holds
    return np.concatenate([regular, s[seg], s[seg + 1]])


def traversal_reach_m(accuracy_m: np.ndarray, d_uncertainty_m: np.ndarray, params: DefectParams) -> float:
    """How far [m] :func:`find_traversals` looks for track points around defects: the largest matching radius any
    (point, defect) pair of these may have (``accuracy_m``: the points' cleaned accuracies), with a margin far
    above rounding; never more than ``max_traversal_radius_m``. Farther pairs never match, so the search need not
    find them (a trip's track has ~3x fewer pairs with the defects near it than within the largest radius)."""
    acc = np.abs(np.asarray(accuracy_m, dtype=np.float64))
    unc = np.abs(np.asarray(d_uncertainty_m, dtype=np.float64))
    unc = unc[np.isfinite(unc)]                  # a pair with an unknown uncertainty never matches
    if acc.size == 0 or unc.size == 0 or not np.isfinite(acc).all():
        return params.max_traversal_radius_m
    widest = np.clip(params.traversal_sigmas * np.hypot(acc.max(), unc.max()), params.traversal_radius_m,
                     params.max_traversal_radius_m)
    return float(min(params.max_traversal_radius_m, widest * (1.0 + 1e-9) + 1e-9))


def find_traversals(t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray,
                    accuracy_m: np.ndarray, dx_m: np.ndarray, dy_m: np.ndarray, d_heading_deg: np.ndarray,
                    d_spans: np.ndarray, d_uncertainty_m: np.ndarray, params: DefectParams, *,
                    tree: cKDTree | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Passes of a densified track by defects: (defect index, time of closest approach [s], distance [m], pass
    number), one row per pass (see the module docstring), by defect then pass. ``tree``: :func:`points_tree` of
    the track when built before."""
    _, j, t_pass, dist, pass_no = find_traversals_of_tracks(np.zeros(np.shape(x_m)[0], dtype=np.int64), t_s, x_m,
                                                            y_m, heading_deg, accuracy_m, dx_m, dy_m, d_heading_deg,
                                                            d_spans, d_uncertainty_m, params, tree=tree)
    return j, t_pass, dist, pass_no


def find_traversals_of_tracks(track: np.ndarray, t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray,
                              heading_deg: np.ndarray, accuracy_m: np.ndarray, dx_m: np.ndarray, dy_m: np.ndarray,
                              d_heading_deg: np.ndarray, d_spans: np.ndarray, d_uncertainty_m: np.ndarray,
                              params: DefectParams, *, tree: cKDTree | None = None
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`find_traversals` of several densified tracks in one search (stored trips checked against new
    defects): ``track`` numbers each point's track (0, 1, ...; a track's points together, in time order). Returns
    (track, defect index, time of closest approach [s], distance [m], pass number), one row per pass, by track,
    defect and pass: each track's rows as :func:`find_traversals` gives them for it alone."""
    acc = clean_accuracy(accuracy_m, params)
    x_m, y_m, dx_m, dy_m = (np.asarray(v, dtype=np.float64) for v in (x_m, y_m, dx_m, dy_m))
    t_s, track = np.asarray(t_s), np.asarray(track, dtype=np.int64)
    reach = traversal_reach_m(acc, d_uncertainty_m, params)
    if tree is not None:
        i, j, d = pairs_within(np.column_stack([x_m, y_m]), np.column_stack([dx_m, dy_m]), reach, a_tree=tree)
    else:       # only the track near the defects' bounding box (a stored trip checked against a few new defects)
        box = np.flatnonzero((x_m >= np.min(dx_m) - reach) & (x_m <= np.max(dx_m) + reach)
                             & (y_m >= np.min(dy_m) - reach) & (y_m <= np.max(dy_m) + reach)) \
            if len(dx_m) else np.empty(0, dtype=np.int64)
        i, j, d = pairs_within(np.column_stack([x_m[box], y_m[box]]), np.column_stack([dx_m, dy_m]), reach)
        i = box[i]
    radius = np.clip(params.traversal_sigmas * np.hypot(acc[i], d_uncertainty_m[j]), params.traversal_radius_m,
                     params.max_traversal_radius_m)
    diff = angle_diff_deg(heading_deg[i], d_heading_deg[j])
    spans = np.asarray(d_spans, bool)[j]
    diff = np.where(spans, np.minimum(diff, 180.0 - diff), diff)
    ok = (d <= radius) & (np.nan_to_num(diff, nan=0.0) <= params.traversal_heading_deg)
    i, j, d = i[ok], j[ok], d[ok]
    # the points of each (track, defect) in time order; a pass ends where the track left for longer than
    # pass_window_s (a point outside the radius in between, and the time gap)
    key = track[i] * len(dx_m) + j
    order = np.lexsort((i, key))
    i, j, d, key = i[order], j[order], d[order], key[order]
    new_pass = np.ones(i.size, dtype=bool)
    new_pass[1:] = ((key[1:] != key[:-1]) | ((i[1:] > i[:-1] + 1)
                                             & (t_s[i[1:]] - t_s[i[:-1]] > params.pass_window_s)))
    pass_id = np.cumsum(new_pass) - 1
    n_pass = int(pass_id[-1]) + 1 if pass_id.size else 0
    best = nearest_per_row(pass_id, i, d, n_pass)      # the nearest point of each pass; on a tie the first
    starts = np.flatnonzero(new_pass)
    pass_key = key[starts]                  # sorted: a pass's number counts the passes of its key before it
    pass_no = np.arange(n_pass, dtype=np.int64) - np.searchsorted(pass_key, pass_key)
    k, j = track[best], j[starts]
    dist = np.hypot(x_m[best] - dx_m[j], y_m[best] - dy_m[j])
    return k, j, t_s[best], dist, pass_no
