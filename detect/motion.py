"""Vehicle motion from GPS on the accelerometer grid: speed, longitudinal and centripetal acceleration,
distance travelled, and position at any time.

GPS fix times are shifted back by the known latency first. Doppler speed is preferred; where a trace has
no speed, it is derived from successive positions. Beyond ``max_gap_s`` from the nearest fix nothing is
invented: speed is NaN there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detect.geo import haversine_m


@dataclass(frozen=True)
class Motion:
    """Motion on a grid of n samples. NaN where GPS cannot tell."""

    speed_mps: np.ndarray
    dvdt_mps2: np.ndarray
    centripetal_mps2: np.ndarray
    distance_m: np.ndarray        # cumulative distance from the first sample (speed integrated, NaN as 0)
    has_gps: bool


def _fix_speed(gps_t_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
               speed_mps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times, speeds) of usable speed values: Doppler where known, else from positions."""
    ok = np.isfinite(speed_mps)
    if np.count_nonzero(ok) >= max(2, gps_t_s.size // 2):
        return gps_t_s[ok], speed_mps[ok]
    if gps_t_s.size < 2:
        return gps_t_s[:0], gps_t_s[:0]
    d_m = haversine_m(lat_deg[:-1], lon_deg[:-1], lat_deg[1:], lon_deg[1:])
    dt = np.diff(gps_t_s)
    return 0.5 * (gps_t_s[1:] + gps_t_s[:-1]), d_m / dt


class _GapInterp:
    """Linear interpolation from fix times onto query times, computed once for several quantities: NaN inside
    fix intervals longer than ``max_gap_s`` and beyond the ends by more than half of it."""

    def __init__(self, t_query: np.ndarray, t_fix: np.ndarray, max_gap_s: float) -> None:
        self.empty = t_fix.size == 0
        if self.empty:
            self.shape = np.shape(t_query)
            return
        # interval of every query: the number of fixes at or before it (query times are usually the sorted grid:
        # count by placing the few fixes among the many queries, then a running sum)
        if t_query.ndim == 1 and t_query.size > 4 * t_fix.size and np.all(np.diff(t_query) >= 0):
            at = np.searchsorted(t_query, t_fix, side="left")
            i = np.cumsum(np.bincount(at, minlength=t_query.size + 1)[:t_query.size])
        else:
            i = np.searchsorted(t_fix, t_query, side="right")
        # per interval k = number of fixes before it (0: before the first, size: after the last)
        t_ext = np.concatenate(([t_fix[0] - 0.5 * max_gap_s], t_fix, [t_fix[-1] + 0.5 * max_gap_s]))
        bad = (np.diff(t_ext) > max_gap_s)
        self.lo = np.clip(i - 1, 0, t_fix.size - 1)
        self.hi = np.minimum(i, t_fix.size - 1)
        left_t = t_fix[self.lo]
        span = t_fix[self.hi] - left_t
        self.frac = (t_query - left_t) / np.where(span > 0, span, np.inf)
        outside = (t_query < t_ext[0]) | (t_query > t_ext[-1])
        self.invalid = bad[i] | outside

    def __call__(self, v_fix: np.ndarray) -> np.ndarray:
        if self.empty:
            return np.full(self.shape, np.nan)
        lo = v_fix[self.lo]
        out = lo + self.frac * (v_fix[self.hi] - lo)
        out[self.invalid] = np.nan
        return out


def _interp_with_gaps(t_grid: np.ndarray, t_fix: np.ndarray, v_fix: np.ndarray, max_gap_s: float) -> np.ndarray:
    """np.interp, but NaN inside fix intervals longer than ``max_gap_s`` and beyond the ends by more
    than half of it."""
    return _GapInterp(np.asarray(t_grid, dtype=np.float64), t_fix, max_gap_s)(v_fix)


def motion_on_grid(t_grid_s: np.ndarray, gps_t_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
                   speed_mps: np.ndarray, heading_deg: np.ndarray, *, latency_s: float = 0.0,
                   max_gap_s: float = 10.0) -> Motion:
    """Interpolate GPS motion onto ``t_grid_s``."""
    n = t_grid_s.size
    if gps_t_s.size < 2:
        nan = np.full(n, np.nan)
        return Motion(nan, nan.copy(), nan.copy(), np.zeros(n), has_gps=False)
    t_fix = gps_t_s - latency_s
    ts, vs = _fix_speed(t_fix, lat_deg, lon_deg, speed_mps)
    at_speed_fixes = _GapInterp(t_grid_s, ts, max_gap_s)
    speed = at_speed_fixes(vs)
    dvdt = at_speed_fixes(np.gradient(vs, ts)) if ts.size >= 3 else np.full(n, np.nan)
    okh = np.isfinite(heading_deg)
    if np.count_nonzero(okh) >= 3:
        th = t_fix[okh]
        psi = np.unwrap(np.deg2rad(heading_deg[okh]))
        yaw_rate = np.gradient(psi, th)
        cent = speed * _interp_with_gaps(t_grid_s, th, yaw_rate, max_gap_s)
        cent[~(speed > 3.0)] = np.nan        # heading is noise at low speed
    else:
        cent = np.full(n, np.nan)
    step = np.diff(t_grid_s, prepend=t_grid_s[0]) * np.nan_to_num(speed, nan=0.0)
    return Motion(speed, dvdt, cent, np.cumsum(step), has_gps=True)


def position_at(t_s: np.ndarray, gps_t_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
                accuracy_m: np.ndarray, *, latency_s: float = 0.0, max_gap_s: float = 10.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat_deg, lon_deg, accuracy_m) at times ``t_s``, interpolated between latency-corrected fixes.

    NaN where the nearest fixes are more than ``max_gap_s`` apart or away.
    """
    if gps_t_s.size < 2:
        nan = np.full(np.shape(t_s), np.nan)
        return nan, nan.copy(), nan.copy()
    t_fix = gps_t_s - latency_s
    lat = _interp_with_gaps(t_s, t_fix, lat_deg, max_gap_s)
    lon = _interp_with_gaps(t_s, t_fix, lon_deg, max_gap_s)
    acc_ok = np.isfinite(accuracy_m)
    acc = (_interp_with_gaps(t_s, t_fix[acc_ok], accuracy_m[acc_ok], max_gap_s) if acc_ok.any()
           else np.full(np.shape(t_s), np.nan))
    return lat, lon, acc
