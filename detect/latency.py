"""The GPS latency of one trip, measured from the trip itself.

A fix reported at time t shows the phone's position and Doppler speed at t - latency (phones: 0-1.5 s), so an
impact placed by the fixes lies latency x speed behind the defect: 5-15 m at city speeds. The accelerometer feels
each change of speed at once. Between two fixes ``k`` and ``m`` about a second apart the GPS speed changes by
``v[m] - v[k]``; the forward acceleration integrated over the same interval, shifted back by the latency, changes
the car's speed by as much: ``V(t_m - latency) - V(t_k - latency)`` with ``V`` the running integral of the forward
acceleration. The latency is the shift whose integrated accelerations correlate best with the GPS speed changes
(Pearson over the trip's intervals, the shift searched on a grid of ``step_s`` and refined by a parabola through
the best three: speed changes last seconds, so the peak is broad and a 0.2 s grid loses nothing against 0.05 s).
The correlation removes the constant part of both rates (an accelerometer bias, a steady slope); a trip at
constant speed, whose speed changes are GPS noise, shows no clear peak and gives no estimate. This is the clock
alignment of inertial/GNSS integration on the one axis a phone in a car measures well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyEstimate:
    """A trip's GPS latency [s] (NaN when the trip cannot tell), the correlation at it and the intervals used."""

    latency_s: float
    corr: float
    n_intervals: int

    @property
    def known(self) -> bool:
        return math.isfinite(self.latency_s)

    def latency_or(self, default_s: float) -> float:
        """The latency [s] to place the trip's positions with: this estimate when known, else ``default_s``."""
        return self.latency_s if self.known else default_s

    def to_dict(self) -> dict[str, float | int | None]:
        return {"latency_s": round(self.latency_s, 3) if self.known else None,
                "corr": round(self.corr, 3) if math.isfinite(self.corr) else None, "n_intervals": self.n_intervals}


NO_ESTIMATE = LatencyEstimate(math.nan, math.nan, 0)


def fix_intervals(gps_t_s: np.ndarray, speed_mps: np.ndarray, *, min_s: float = 0.75, max_s: float = 2.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) indices of pairs of fixes with a Doppler speed, the second the first one at least ``min_s``
    after the first, kept when at most ``max_s`` after it (1 Hz fixes: consecutive ones; 10 Hz: ~0.8 s apart)."""
    ok = np.flatnonzero(np.isfinite(speed_mps) & np.isfinite(gps_t_s))
    t = gps_t_s[ok]
    j = np.searchsorted(t, t + min_s)
    keep = j < t.size
    i, j = np.flatnonzero(keep), j[keep]
    near = t[j] - t[i] <= max_s
    return ok[i[near]], ok[j[near]]


MAX_CAR_ACCEL_MPS2 = 8.0       # a car's speed changes by at most ~0.8 g averaged over a second (emergency braking):
#                                an interval the phone reads faster in (a hand, a knock) is left out

BLOCK_RATE_HZ = 20.0    # the integral is kept at block edges this often: it is smooth, and a linear interpolation
#                         between edges 50 ms apart moves it far less than the GPS speed's own noise


def integral_at_block_edges(a_mps2: np.ndarray, valid: np.ndarray, t0_s: float, fs_hz: float
                            ) -> tuple[np.ndarray, np.ndarray | None, float, float]:
    """The running integral [m/s] of ``a_mps2`` (samples at ``t0_s + i / fs_hz``, each standing for 1 / fs_hz
    around it; 0 where not ``valid``) at the edges of blocks of ``m = fs_hz // BLOCK_RATE_HZ`` samples (at least
    1): (integral at each edge, the number of blocks holding an invalid sample before each edge or None when all
    are valid, the first edge's time [s], edges per second). Samples after the last whole block are left out."""
    m = max(1, int(fs_hz // BLOCK_RATE_HZ))
    n_blocks = a_mps2.size // m
    all_valid = bool(valid.all())
    a = a_mps2[:n_blocks * m] if all_valid else np.where(valid, a_mps2, 0.0)[:n_blocks * m]
    cum = np.zeros(n_blocks + 1)
    np.cumsum(a.reshape(n_blocks, m) @ np.ones(m), out=cum[1:])          # block sums by BLAS: 4x a .sum(axis=1)
    cum /= fs_hz
    bad = None
    if not all_valid:
        bad = np.zeros(n_blocks + 1)
        np.cumsum(~valid[:n_blocks * m].reshape(n_blocks, m).all(axis=1), out=bad[1:])
    return cum, bad, t0_s - 0.5 / fs_hz, fs_hz / m


def estimate_gps_latency(t0_s: float, fs_hz: float, a_forward_mps2: np.ndarray, valid: np.ndarray,
                         gps_t_s: np.ndarray, speed_mps: np.ndarray, *, min_s: float = -1.0, max_s: float = 3.0,
                         step_s: float = 0.2, min_intervals: int = 30, min_corr: float = 0.5) -> LatencyEstimate:
    """The trip's GPS latency from its forward acceleration [m/s^2] on the uniform grid ``t0_s + i / fs_hz``
    (``valid`` False inside gaps) and its fixes' times [s] and Doppler speeds [m/s] (see the module docstring).

    The shift is searched in [``min_s``, ``max_s``] over the intervals between fixes that lie inside the recording,
    touch no block holding a gap at any shift, and whose rates a car can have (:data:`MAX_CAR_ACCEL_MPS2`); no
    estimate (NaN) with fewer than ``min_intervals`` of them, a best correlation below ``min_corr``, or the best
    shift at either end of the range (the peak lies beyond it: a clock offset rather than a latency).
    """
    n = a_forward_mps2.size
    if n < 2 or max_s <= min_s or gps_t_s.size < 2:
        return NO_ESTIMATE
    first, second = fix_intervals(gps_t_s, speed_mps)
    if first.size < min_intervals:
        return NO_ESTIMATE
    cum, bad, t_edge0, edge_rate = integral_at_block_edges(a_forward_mps2, valid, t0_s, fs_hz)
    # shifts a whole number of edges apart: each fix falls at the same fraction of an edge interval at every shift
    step_edges = max(1, round(step_s * edge_rate))
    step = step_edges / edge_rate
    back = step_edges * np.arange(int(np.floor((max_s - min_s) / step + 1e-9)) + 1)    # edges back, per shift
    shifts = min_s + back / edge_rate
    pos0 = (gps_t_s - min_s - t_edge0) * edge_rate           # each fix's time at the smallest shift [edges]
    i0 = np.floor(pos0)
    frac = pos0 - i0
    last = cum.size - 2
    on = (i0 - back[-1] >= 0) & (i0 <= last)                 # on the recording at every shift
    use = on[first] & on[second]
    i0 = np.clip(i0, back[-1], last).astype(np.int64)
    if bad is not None:                                      # across no block holding a gap, at any shift
        use &= bad[i0[second] + 1] - bad[i0[first] - back[-1]] < 0.5
    if int(use.sum()) < min_intervals:
        return LatencyEstimate(math.nan, math.nan, int(use.sum()))
    k, m = first[use], second[use]
    step_cum = np.diff(cum)

    def integral_at(fix: np.ndarray) -> np.ndarray:
        """(shifts, len(fix)) integral at the fixes' times moved back by each shift (linear between edges)."""
        idx = i0[fix][None, :] - back[:, None]
        return cum[idx] + frac[fix] * step_cum[idx]

    inv_dt = 1.0 / (gps_t_s[m] - gps_t_s[k])
    x = (integral_at(m) - integral_at(k)) * inv_dt                            # (shifts, intervals) [m/s^2]
    y = (speed_mps[m] - speed_mps[k]) * inv_dt
    car_like = (np.abs(x) <= MAX_CAR_ACCEL_MPS2).all(axis=0) & (np.abs(y) <= MAX_CAR_ACCEL_MPS2)
    count = int(car_like.sum())
    if count < min_intervals:
        return LatencyEstimate(math.nan, math.nan, count)
    if count < car_like.size:
        x, y = x[:, car_like], y[car_like]
    x -= x.mean(axis=1, keepdims=True)
    y = y - y.mean()
    sxx, syy = np.einsum("ij,ij->i", x, x), float(y @ y)
    corr = np.where((sxx > 0) & (syy > 0), (x @ y) / np.sqrt(sxx * syy + 1e-300), -np.inf)
    best = int(np.argmax(corr))
    if not np.isfinite(corr[best]) or corr[best] < min_corr or best in (0, shifts.size - 1):
        return LatencyEstimate(math.nan, float(corr[best]) if np.isfinite(corr[best]) else math.nan, count)
    c0, c1, c2 = corr[best - 1:best + 2]
    den = c0 - 2.0 * c1 + c2
    offset = 0.5 * (c0 - c2) / den if np.isfinite(den) and den < 0 else 0.0
    return LatencyEstimate(float(shifts[best] + np.clip(offset, -0.5, 0.5) * step), float(corr[best]), count)
