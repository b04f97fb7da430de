"""Vehicle motion from GPS on the accelerometer grid: speed, longitudinal and centripetal acceleration,
distance travelled, and position at any time.

GPS fix times are shifted back by the known latency first. Doppler speed is preferred; where a trace has
no speed, it is derived from successive positions. Beyond ``max_gap_s`` from the nearest fix nothing is
invented: speed is NaN there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detect.arrays import lines_over_runs
from detect.geo import haversine_m


@dataclass(frozen=True)
class Motion:
    """Motion on a grid of n samples. NaN where GPS cannot tell.

    GPS carries nothing above ~1 Hz, so its derivatives, which only feed per-second statistics, are kept on a
    coarse grid: value j of ``dvdt_mps2`` and ``centripetal_mps2`` is taken at grid position
    ``j * step + (step - 1) / 2``, the centre of the samples ``[j * step, (j + 1) * step)`` (their mean, where the
    motion is linear in time), ``ceil(n / step)`` values.
    """

    speed_mps: np.ndarray         # (n,) [m/s]
    dvdt_mps2: np.ndarray         # (ceil(n / step),) longitudinal acceleration [m/s^2]
    centripetal_mps2: np.ndarray  # (ceil(n / step),) speed x yaw rate [m/s^2]; NaN at <= 3 m/s
    distance_m: np.ndarray        # (n,) cumulative distance from the first sample (speed integrated, NaN as 0) [m]
    has_gps: bool
    step: int = 1                 # grid samples per value of dvdt_mps2 and centripetal_mps2


def coarse_step(fs_hz: float, block_samples: int, min_rate_hz: float = 20.0) -> int:
    """Largest divisor of ``block_samples`` whose coarse rate ``fs_hz / step`` is at least ``min_rate_hz`` [Hz]
    (1 when none): a coarse grid whose steps tile blocks of ``block_samples`` grid samples exactly."""
    n = max(1, int(block_samples))
    return max([d for d in range(1, n + 1) if n % d == 0 and fs_hz / d >= min_rate_hz] or [1])


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
    fix intervals longer than ``max_gap_s`` and beyond the ends by more than ``end_margin_s`` (default half of
    ``max_gap_s``; the end fix's value is held up to there); ``outside`` marks the latter."""

    def __init__(self, t_query: np.ndarray, t_fix: np.ndarray, max_gap_s: float,
                 end_margin_s: float | None = None) -> None:
        self.empty = t_fix.size == 0
        if self.empty:
            self.shape = np.shape(t_query)
            return
        margin_s = 0.5 * max_gap_s if end_margin_s is None else end_margin_s
        i = np.searchsorted(t_fix, t_query, side="right")
        # per interval k = number of fixes before it (0: before the first, size: after the last)
        t_ext = np.concatenate(([t_fix[0] - margin_s], t_fix, [t_fix[-1] + margin_s]))
        bad = (np.diff(t_ext) > max_gap_s)
        self.lo = np.clip(i - 1, 0, t_fix.size - 1)
        self.hi = np.minimum(i, t_fix.size - 1)
        left_t = t_fix[self.lo]
        span = t_fix[self.hi] - left_t
        self.frac = (t_query - left_t) / np.where(span > 0, span, np.inf)
        self.outside = (t_query < t_ext[0]) | (t_query > t_ext[-1])
        self.invalid = bad[i] | self.outside

    def __call__(self, v_fix: np.ndarray) -> np.ndarray:
        if self.empty:
            return np.full(self.shape, np.nan)
        lo = v_fix[self.lo]
        out = lo + self.frac * (v_fix[self.hi] - lo)
        out[self.invalid] = np.nan
        return out


def _grid_pieces(t0_s: float, fs_hz: float, n: int, t_fix: np.ndarray, max_gap_s: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of :class:`_GridInterp` on the grid ``t0_s + i / fs_hz``, i < n: (fix times after ``t0_s`` [s],
    grid samples in each of the ``t_fix.size + 3`` pieces, True for each fix interval longer than ``max_gap_s``)."""
    tau_fix = t_fix - t0_s
    edges = np.concatenate(([tau_fix[0] - 0.5 * max_gap_s], tau_fix,
                            [tau_fix[-1] + 0.5 * max_gap_s])) if t_fix.size else np.empty(0)
    first_at = np.clip(np.ceil(edges * fs_hz - 1e-9), 0, n).astype(np.int64)   # first grid point >= edge
    return tau_fix, np.diff(np.concatenate(([0], first_at, [n]))), np.diff(tau_fix) > max_gap_s


class _GridInterp:
    """:class:`_GapInterp` onto the uniform grid ``t0_s + i / fs_hz``, i < n, at the cost of a few passes: the
    grid points between two fixes form one contiguous run, so each piece of the piecewise-linear result is a
    line ``a + tau b`` (tau: time since ``t0_s``) repeated over its run. Pieces: NaN before the first fix by
    more than half of ``max_gap_s``, constant up to it, one line per fix interval (NaN when longer than
    ``max_gap_s``), constant after the last fix, NaN beyond half of ``max_gap_s`` after it."""

    def __init__(self, t0_s: float, fs_hz: float, n: int, t_fix: np.ndarray, max_gap_s: float) -> None:
        self.n = n
        self.tau_fix, self.counts, self.long = _grid_pieces(t0_s, fs_hz, n, t_fix, max_gap_s)
        self.tau_s = np.arange(n, dtype=np.float64)
        self.tau_s /= fs_hz

    def __call__(self, v_fix: np.ndarray) -> np.ndarray:
        if self.tau_fix.size == 0:
            return np.full(self.n, np.nan)
        span = np.diff(self.tau_fix)
        slope = np.where(span > 0, np.diff(v_fix) / np.where(span > 0, span, 1.0), 0.0)
        line_a = np.where(self.long, np.nan, v_fix[:-1] - self.tau_fix[:-1] * slope)
        a = np.concatenate(([np.nan, v_fix[0]], line_a, [v_fix[-1], np.nan]))
        b = np.concatenate(([0.0, 0.0], np.where(self.long, 0.0, slope), [0.0, 0.0]))
        out = np.repeat(b, self.counts)
        out *= self.tau_s
        out += np.repeat(a, self.counts)
        return out


def _speed_and_distance(t0_s: float, fs_hz: float, n: int, t_fix: np.ndarray, v_fix: np.ndarray,
                        max_gap_s: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """(speed [m/s], distance [m], whether the speed is known everywhere) on the grid ``t0_s + i / fs_hz``, i < n,
    from speeds ``v_fix`` [m/s] at fix times ``t_fix`` [s]: the speed as :class:`_GridInterp` interpolates it (NaN
    where it cannot tell) and its running sum divided by ``fs_hz``, NaN counted as 0, from 0 at the first sample
    (``(np.cumsum(v) - v[0]) / fs_hz``, but summed from the second sample on).

    Each piece of the interpolation is a line in the sample index i, ``a + d i``, evaluated with the index rather
    than the time (no division of the whole grid by ``fs_hz``); NaN is set to 0 for the distance only when a piece
    holding samples is unknown.
    """
    if t_fix.size == 0:
        return np.full(n, np.nan), np.zeros(n), n == 0
    tau_fix, counts, long = _grid_pieces(t0_s, fs_hz, n, t_fix, max_gap_s)
    span = np.diff(tau_fix)
    slope = np.where(span > 0, np.diff(v_fix) / np.where(span > 0, span, 1.0), 0.0)    # [m/s^2]
    d = np.where(long, 0.0, slope / fs_hz)                          # change per sample [m/s]
    # speed at the sample index 0 of each fix interval's line, from its first fix (NaN in an outage)
    line_a = np.where(long, np.nan, v_fix[:-1] - d * (tau_fix[:-1] * fs_hz))
    a = np.concatenate(([np.nan, v_fix[0]], line_a, [v_fix[-1], np.nan]))
    b = np.concatenate(([0.0, 0.0], d, [0.0, 0.0]))
    speed = lines_over_runs(a, b, counts)
    known = bool(np.all(np.isfinite(a) | (counts == 0)))
    distance = np.empty(n)
    if n:                                      # the sum from the second sample on: 0 at the first
        distance[0] = 0.0
        np.cumsum(speed[1:] if known else np.where(np.isnan(speed[1:]), 0.0, speed[1:]), out=distance[1:])
    distance *= 1.0 / fs_hz
    return speed, distance, known


def _interp_with_gaps(t_grid: np.ndarray, t_fix: np.ndarray, v_fix: np.ndarray, max_gap_s: float) -> np.ndarray:
    """np.interp, but NaN inside fix intervals longer than ``max_gap_s`` and beyond the ends by more
    than half of it."""
    return _GapInterp(np.asarray(t_grid, dtype=np.float64), t_fix, max_gap_s)(v_fix)


def motion_on_grid(t0_s: float, fs_hz: float, n: int, gps_t_s: np.ndarray, lat_deg: np.ndarray,
                   lon_deg: np.ndarray, speed_mps: np.ndarray, heading_deg: np.ndarray, *, latency_s: float = 0.0,
                   max_gap_s: float = 10.0, step: int = 1) -> Motion:
    """Interpolate GPS motion onto the uniform grid ``t0_s + i / fs_hz``, i < n: speed and distance on every
    sample, dv/dt and the centripetal term on every ``step``-th (see :class:`Motion`)."""
    step = max(1, int(step))
    n_coarse = -(-n // step)
    if gps_t_s.size < 2:
        nan = np.full(n_coarse, np.nan)
        return Motion(np.full(n, np.nan), nan, nan.copy(), np.zeros(n), has_gps=False, step=step)
    t_fix = gps_t_s - latency_s
    ts, vs = _fix_speed(t_fix, lat_deg, lon_deg, speed_mps)
    if ts.size == 0:
        nan = np.full(n_coarse, np.nan)
        return Motion(np.full(n, np.nan), nan, nan.copy(), np.zeros(n), has_gps=True, step=step)
    speed, distance, speed_known = _speed_and_distance(t0_s, fs_hz, n, ts, vs, max_gap_s)
    # the derivatives on the coarse grid: its points sit at the centres of consecutive runs of `step` samples
    coarse = (t0_s + 0.5 * (step - 1) / fs_hz, fs_hz / step, n_coarse)
    at_coarse = _GridInterp(*coarse, ts, max_gap_s)
    # a coarse value is NaN where any of its samples is: the speed at the first and last sample of each run tells
    first, last = speed[::step], speed[step - 1::step]
    last = np.append(last, speed[-1]) if last.size < n_coarse else last
    dvdt = at_coarse(np.gradient(vs, ts)) if ts.size >= 3 else np.full(n_coarse, np.nan)
    if not speed_known:
        dvdt[np.isnan(first) | np.isnan(last)] = np.nan
    okh = np.isfinite(heading_deg)
    if np.count_nonzero(okh) >= 3:
        th = t_fix[okh]
        psi = np.unwrap(np.deg2rad(heading_deg[okh]))
        speed_c = at_coarse(vs) if step > 1 else speed
        same_fixes = th.shape == ts.shape and np.array_equal(th, ts)       # the pieces of at_coarse
        cent = speed_c * (at_coarse if same_fixes else _GridInterp(*coarse, th, max_gap_s))(np.gradient(psi, th))
        cent[~((first > 3.0) & (last > 3.0) & (speed_c > 3.0))] = np.nan        # heading is noise at low speed
    else:
        cent = np.full(n_coarse, np.nan)
    return Motion(speed, dvdt, cent, distance, has_gps=True, step=step)


def position_at(t_s: np.ndarray, gps_t_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
                accuracy_m: np.ndarray, *, latency_s: float = 0.0, max_gap_s: float = 10.0,
                end_margin_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat_deg, lon_deg, accuracy_m) at times ``t_s``, interpolated between latency-corrected fixes.

    NaN where the nearest fixes are more than ``max_gap_s`` apart, and more than ``end_margin_s`` (default half of
    ``max_gap_s``) before the first or after the last fix, up to where the end fix is held.
    """
    if gps_t_s.size < 2:
        nan = np.full(np.shape(t_s), np.nan)
        return nan, nan.copy(), nan.copy()
    t_fix = gps_t_s - latency_s
    at_fixes = _GapInterp(np.asarray(t_s, dtype=np.float64), t_fix, max_gap_s, end_margin_s)   # one search, three
    acc_ok = np.isfinite(accuracy_m)
    if acc_ok.all():
        acc = at_fixes(accuracy_m)
    else:
        acc = (_interp_with_gaps(t_s, t_fix[acc_ok], accuracy_m[acc_ok], max_gap_s) if acc_ok.any()
               else np.full(np.shape(t_s), np.nan))
        acc[at_fixes.outside] = np.nan
    return at_fixes(lat_deg), at_fixes(lon_deg), acc
