"""The sample clock and uniform resampling: a phone's rate and phase from its jittered timestamps, samples moved
onto that uniform grid with a gap mask.

Vectorised (no Python loop over samples); each has a slow reference twin in ``tests/test_detect_kernels.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detect.arrays import CHUNK_SAMPLES, unique_sorted
from detect.running import median

SNAP_STEPS = 0.05     # input within this many grid steps of a uniform grid is used as it is (no interpolation)


def _median_dt_s(t_s: np.ndarray) -> float:
    """Median sample interval [s] over at most ~20,000 evenly spaced intervals (only those are differenced)."""
    step = max(1, (t_s.size - 1) // 20_000)
    return median(t_s[1::step] - t_s[:-1:step])


@dataclass(frozen=True)
class SampleClock:
    """The phone's sample clock as :func:`sample_clock` found it: the grid's rate [Hz] and the time [s] of one of
    its points, and per run of samples between gaps (``run_starts``: index of each run's first sample) the shift
    [s] that moves the run's own phase onto the grid's (less than half a step; 0 for the run that set the phase)."""

    fs_hz: float
    origin_s: float
    run_starts: np.ndarray
    run_shift_s: np.ndarray

    def locked(self, t_s: np.ndarray) -> np.ndarray:
        """The sample times ``t_s`` (those the clock was found from) with each run moved by its shift: the same
        array when no run moves."""
        if not np.any(self.run_shift_s):
            return t_s
        lengths = np.diff(np.append(self.run_starts, t_s.size))
        return t_s - np.repeat(self.run_shift_s, lengths)


CLOCK_SAMPLES = 1 << 12   # the clock's phase is measured on at most this many evenly spaced samples ...
CLOCK_BLOCK = 32          # ... in blocks of this many (a block's drift before the fit: a small part of a step)


def sample_clock(t_s: np.ndarray, max_rate_hz: float, gap_s: float = np.inf) -> SampleClock:
    """The rate and phase of the uniform grid for samples at ``t_s`` (:class:`SampleClock`).

    A phone samples on a regular clock (its own rate, some ppm off nominal), stamps each sample with some jitter
    and drops one now and then; the grid is locked to that clock, so each sample sits within its jitter of a grid
    point. A grid that drifts through the samples interpolates them half a step apart as often as not, and linear
    interpolation half-way between samples low-passes the impact band: a 20 Hz ringing sampled at 50 Hz loses
    ~40 % of its amplitude there. A median-interval rate is off by the median's jitter, enough to drift by whole
    steps over a trip. A recording paused and resumed (an interval longer than ``gap_s``, at least 2.5 periods)
    may restart the clock at another phase: each run between such gaps has its own.

    1. Rate: the clock periods counted interval by interval (``rint(dt x median rate)``: 1, 2 after a dropped
       sample) over the time they span, gaps left out. The jitter telescopes; an interval miscounted because
       two stamps jittered apart by more than half a period is as often one too many as one too few.
    2. Rate and phases: each sample's phase ``(t - t0) x rate`` on the unit circle, averaged over blocks of
       :data:`CLOCK_BLOCK` within a run (at most :data:`CLOCK_SAMPLES` samples in all); the blocks' mean phases,
       unwrapped, drift by the rate's remaining error, which a weighted straight line fits (one slope, each run
       its own intercept); each run's phase is then the circular mean of its stamps' phases (robust to stamps
       jittered across half a step), the run with the most samples sets the grid's and the others are shifted
       onto it.

    Faster than ``max_rate_hz`` (rounded as :func:`design_rate_hz`): that rate and the first sample's time, no
    shifts (:func:`resample_uniform` averages the samples over each grid interval).
    """
    rate = 1.0 / _median_dt_s(t_s)
    if design_rate_hz(rate) > max_rate_hz or t_s.size < 4 * CLOCK_BLOCK:
        return SampleClock(float(min(rate, max_rate_hz)), float(t_s[0]), np.zeros(1, np.int64), np.zeros(1))
    dt = np.diff(t_s)
    gaps = np.flatnonzero(dt > max(gap_s, 2.5 / rate))
    run_starts = np.concatenate(([0], gaps + 1))
    in_run = np.delete(dt, gaps) if gaps.size else dt
    rate = float(np.sum(np.rint(in_run * rate))) / float(np.sum(in_run))

    def run_of(i: np.ndarray) -> np.ndarray:
        """The run of each sample index ``i`` (only the samples read below are looked up)."""
        return np.searchsorted(run_starts, i, side="right") - 1

    stride = max(1, -(-t_s.size // CLOCK_SAMPLES))
    pick = np.arange(0, t_s.size, stride)
    rel = t_s[pick] - t_s[0]
    nb = rel.size // CLOCK_BLOCK
    run_b = run_of(pick[:nb * CLOCK_BLOCK]).reshape(nb, CLOCK_BLOCK)
    whole = run_b[:, 0] == run_b[:, -1]                            # blocks within one run
    rel_b = rel[:nb * CLOCK_BLOCK].reshape(nb, CLOCK_BLOCK)[whole]
    phase_rad = _phase_rad(rel_b, rate)
    mean_b = np.cos(phase_rad).mean(axis=1) + 1j * np.sin(phase_rad).mean(axis=1)
    weight = np.abs(mean_b)
    drift = np.unwrap(np.angle(mean_b)) / (2.0 * np.pi)          # [steps]; a jump between runs: their intercepts
    t_b = rel_b.mean(axis=1)
    run_w = run_b[whole, 0]
    w_run = np.bincount(run_w, weight, minlength=run_starts.size)
    if w_run.sum() > 0.0:
        def centred(x: np.ndarray) -> np.ndarray:
            return x - (np.bincount(run_w, weight * x, minlength=run_starts.size) / np.maximum(w_run, 1e-300))[run_w]
        tc = centred(t_b)
        var = float(np.sum(weight * tc * tc))
        if var > 0.0:
            rate -= float(np.sum(weight * tc * centred(drift))) / var
    # each run's phase from the picked samples and its own first CLOCK_BLOCK (short runs have few picked)
    at = pick
    if run_starts.size > 1:
        own = (run_starts[:, None] + np.arange(CLOCK_BLOCK)[None, :]).ravel()
        at = unique_sorted(np.concatenate([pick, own[own < t_s.size]]))
    phase_rad = _phase_rad(t_s[at] - t_s[0], rate)
    runs = run_of(at)
    phase = np.arctan2(np.bincount(runs, np.sin(phase_rad), minlength=run_starts.size),
                       np.bincount(runs, np.cos(phase_rad), minlength=run_starts.size)) / (2.0 * np.pi)   # [steps]
    ref = int(np.argmax(np.diff(np.append(run_starts, t_s.size))))
    shift = phase - phase[ref]
    shift -= np.rint(shift)
    shift[ref] = 0.0
    origin = float(t_s[0]) + float(phase[ref]) / rate            # a grid point within half a step of t0
    return SampleClock(float(rate), origin, run_starts, shift / rate)


def _phase_rad(rel_s: np.ndarray, rate_hz: float) -> np.ndarray:
    """Phase [rad] in [-pi, pi] of times ``rel_s`` [s] on a clock of ``rate_hz``: whole periods taken off first
    (the sine of a small argument is several times faster to compute)."""
    cycles = rel_s * rate_hz
    cycles -= np.rint(cycles)
    cycles *= 2.0 * np.pi
    return cycles


def design_rate_hz(fs_hz: float) -> float:
    """``fs_hz`` rounded to 4 significant digits: the key of cached filter designs and calibrations (a 1e-4
    relative rate error moves a band edge by 1e-4 of itself, and every trace's own clock differs a little)."""
    return float(f"{fs_hz:.4g}")


def resample_uniform(t_s: np.ndarray, values: np.ndarray, fs_hz: float, gap_s: float, *,
                     origin_s: float | None = None, snap_steps: float = SNAP_STEPS
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation of ``values`` (n,) or (n, k) onto a uniform grid at ``fs_hz`` whose points are
    ``origin_s + k / fs_hz`` (default origin: the first sample; :func:`sample_clock` gives the phase of the
    phone's clock), from the grid point nearest the first sample to the last sample.

    Returns ``(t_grid_s, values_grid, valid)``; ``valid`` is False for grid points inside an interval of the
    input longer than ``gap_s`` (a gap is never treated as data). Decimating (input faster than ``fs_hz``)
    averages over each grid interval first (box anti-alias via the running integral). Input that already sits
    on the grid (one sample per grid point, every time within ``snap_steps`` grid steps of its grid point) is
    returned as it is: linear interpolation would low-pass it more (up to -3 dB at fs/4 half-way between
    samples) than so small a timing error distorts it (``2 pi f x snap_steps / fs`` relative, 3 % at fs/4).
    """
    origin = float(t_s[0]) if origin_s is None else float(origin_s)
    span_steps = (t_s[-1] - origin) * fs_hz
    n_grid = int(np.floor(span_steps + 1e-6)) + 1
    # on the grid, the last sample may sit up to snap_steps before its grid point: count that point too
    on_grid = int(np.floor(span_steps + snap_steps + 1e-6)) + 1 == t_s.size
    n_check = t_s.size if on_grid else n_grid
    t_grid = np.empty(n_check)
    steps = np.arange(min(CHUNK_SAMPLES, n_check), dtype=np.float64)
    off_s = np.empty(steps.size)
    for c0 in range(0, n_check, CHUNK_SAMPLES):         # loop over chunks of samples (in cache)
        part = t_grid[c0:c0 + CHUNK_SAMPLES]
        np.add(steps[:part.size], c0, out=part)         # the grid indices
        part /= fs_hz
        part += origin
        if on_grid:                                    # each sample's distance from its grid point
            off = np.subtract(t_s[c0:c0 + part.size], part, out=off_s[:part.size])
            on_grid = max(float(off.max()), -float(off.min())) * fs_hz <= snap_steps
    vals = values.reshape(t_s.size, -1)
    if on_grid:
        return t_grid, values, np.ones(n_check, dtype=bool)
    t_grid = t_grid[:n_grid]
    rel = t_s - origin
    rel *= fs_hz                                      # input times in grid steps
    # samples at or before each grid time, without a binary search: bin every sample onto the grid, count, sum
    pos = np.subtract(rel, 1e-9)
    np.ceil(pos, out=pos)
    pos = pos.astype(np.int64)
    np.clip(pos, 0, n_grid, out=pos)
    idx = np.bincount(pos, minlength=n_grid + 1)[:n_grid]
    np.cumsum(idx, out=idx)
    np.clip(idx, 1, t_s.size - 1, out=idx)
    if 1.0 / _median_dt_s(t_s) > 1.5 * fs_hz:
        lo = idx - 1
        left = np.take(rel, lo)
        valid = np.take(rel, idx) - left <= gap_s * fs_hz
        # average over [t - dt/2, t + dt/2] using the trapezoid running integral of each column
        dt = np.diff(t_s)[:, None]
        integral = np.vstack([np.zeros((1, vals.shape[1])), np.cumsum(0.5 * (vals[1:] + vals[:-1]) * dt, axis=0)])
        lo_t = np.clip(t_grid - 0.5 / fs_hz, t_s[0], t_s[-1])
        hi_t = np.clip(t_grid + 0.5 / fs_hz, t_s[0], t_s[-1])
        out = np.column_stack([
            (np.interp(hi_t, t_s, integral[:, j]) - np.interp(lo_t, t_s, integral[:, j]))
            / np.maximum(hi_t - lo_t, 1e-12)
            for j in range(vals.shape[1])
        ])
    else:
        # each grid time between the samples idx - 1 and idx, a chunk of grid samples at a time (in cache): the
        # gap mask, the fraction of the interval and the straight line between the two samples
        valid = np.empty(n_grid, dtype=bool)
        out = np.empty((n_grid, vals.shape[1]), dtype=vals.dtype)
        m = min(CHUNK_SAMPLES, n_grid)
        lo, left, span, frac = np.empty(m, dtype=np.int64), np.empty(m), np.empty(m), np.empty(m)
        lo_v = np.empty((m, vals.shape[1]), dtype=vals.dtype)
        # take(..., out=) copies through a buffer in its default mode; the indices are in range, so "wrap" is plain
        # indexing straight into the chunk's buffers
        for c0 in range(0, n_grid, CHUNK_SAMPLES):      # loop over chunks of grid samples
            part = out[c0:c0 + CHUNK_SAMPLES]
            c = part.shape[0]
            hi_c = idx[c0:c0 + c]
            lo_c = np.subtract(hi_c, 1, out=lo[:c])
            left_c = np.take(rel, lo_c, out=left[:c], mode="wrap")
            span_c = np.take(rel, hi_c, out=span[:c], mode="wrap")
            span_c -= left_c
            np.less_equal(span_c, gap_s * fs_hz, out=valid[c0:c0 + c])
            frac_c = np.add(steps[:c], c0, out=frac[:c])                 # the grid indices
            frac_c -= left_c
            frac_c /= span_c
            np.clip(frac_c, 0.0, 1.0, out=frac_c)
            low = np.take(vals, lo_c, axis=0, out=lo_v[:c], mode="wrap")
            np.take(vals, hi_c, axis=0, out=part, mode="wrap")
            part -= low
            part *= frac_c[:, None]
            part += low
    return t_grid, out.reshape((n_grid, *values.shape[1:])), valid
