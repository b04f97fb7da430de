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


def _interp_with_gaps(t_grid: np.ndarray, t_fix: np.ndarray, v_fix: np.ndarray, max_gap_s: float) -> np.ndarray:
    """np.interp, but NaN inside fix intervals longer than ``max_gap_s`` and beyond the ends by more
    than half of it."""
    if t_fix.size == 0:
        return np.full(np.shape(t_grid), np.nan)
    out = np.interp(t_grid, t_fix, v_fix)
    i = np.searchsorted(t_fix, t_grid, side="right")
    left = np.where(i > 0, t_fix[np.maximum(i - 1, 0)], t_fix[0] - 0.5 * max_gap_s)
    right = np.where(i < t_fix.size, t_fix[np.minimum(i, t_fix.size - 1)], t_fix[-1] + 0.5 * max_gap_s)
    outside = (t_grid < t_fix[0] - 0.5 * max_gap_s) | (t_grid > t_fix[-1] + 0.5 * max_gap_s)
    out[(right - left > max_gap_s) | outside] = np.nan
    return out


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
    speed = _interp_with_gaps(t_grid_s, ts, vs, max_gap_s)
    if ts.size >= 3:
        dv = np.gradient(vs, ts)
        dvdt = _interp_with_gaps(t_grid_s, ts, dv, max_gap_s)
    else:
        dvdt = np.full(n, np.nan)
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
