"""Array kernels: uniform resampling with gap masks, zero-phase band-pass filters, moving statistics.

Every function is vectorised (no Python loop over samples); each has a slow reference twin in
``tests/test_detect_kernels.py``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage, signal

SNAP_STEPS = 0.05     # input within this many grid steps of a uniform grid is used as it is (no interpolation)


def _median_dt_s(t_s: np.ndarray) -> float:
    """Median sample interval [s] over at most ~20,000 evenly spaced intervals."""
    dt = np.diff(t_s)
    return float(np.median(dt[:: max(1, dt.size // 20_000)]))


def grid_rate_hz(t_s: np.ndarray, max_rate_hz: float) -> float:
    """Rate of the uniform grid for samples at ``t_s`` [Hz], at most ``max_rate_hz``.

    The median rate (over at most ~20,000 evenly spaced intervals); when the mean rate over the whole trace
    agrees with it within 0.1 % (no drops or gaps to speak of), the mean rate, which is exact to the clock's
    resolution: epoch timestamps quantise single intervals to ~0.2 us, enough to drift a median-rate grid by
    a third of a step over an hour of 100 Hz samples.
    """
    rate = 1.0 / _median_dt_s(t_s)
    if t_s.size > 2:
        mean_rate = (t_s.size - 1) / (t_s[-1] - t_s[0])
        if abs(mean_rate / rate - 1.0) < 1e-3:
            rate = mean_rate
    return float(min(rate, max_rate_hz))


def design_rate_hz(fs_hz: float) -> float:
    """``fs_hz`` rounded to 4 significant digits: the key of cached filter designs and calibrations (a 1e-4
    relative rate error moves a band edge by 1e-4 of itself, and every trace's own clock differs a little)."""
    return float(f"{fs_hz:.4g}")


def resample_uniform(t_s: np.ndarray, values: np.ndarray, fs_hz: float, gap_s: float, *,
                     snap_steps: float = SNAP_STEPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation of ``values`` (n,) or (n, k) onto a uniform grid at ``fs_hz``.

    Returns ``(t_grid_s, values_grid, valid)``; ``valid`` is False for grid points inside an interval of the
    input longer than ``gap_s`` (a gap is never treated as data). Decimating (input faster than ``fs_hz``)
    averages over each grid interval first (box anti-alias via the running integral). Input that already sits
    on the grid (one sample per grid point, every time within ``snap_steps`` grid steps of its grid point) is
    returned as it is: linear interpolation would low-pass it more (up to -3 dB at fs/4 half-way between
    samples) than so small a timing error distorts it (``2 pi f x snap_steps / fs`` relative, 3 % at fs/4).
    """
    n_grid = int(np.floor((t_s[-1] - t_s[0]) * fs_hz + 1e-6)) + 1
    t_grid = t_s[0] + np.arange(n_grid) / fs_hz
    vals = values.reshape(t_s.size, -1)
    rel = (t_s - t_s[0]) * fs_hz                      # input times in grid steps
    if n_grid == t_s.size and np.max(np.abs(rel - np.arange(n_grid))) <= snap_steps:
        return t_grid, values, np.ones(n_grid, dtype=bool)
    # samples at or before each grid time, without a binary search: bin every sample onto the grid, count, sum
    pos = np.ceil(rel - 1e-9).astype(np.int64)
    np.clip(pos, 0, n_grid, out=pos)
    idx = np.cumsum(np.bincount(pos, minlength=n_grid + 1)[:n_grid])
    np.clip(idx, 1, t_s.size - 1, out=idx)
    lo = idx - 1
    left = np.take(rel, lo)
    span = np.take(rel, idx) - left
    valid = span <= gap_s * fs_hz
    if 1.0 / _median_dt_s(t_s) > 1.5 * fs_hz:
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
        frac = (np.arange(n_grid) - left) / span
        np.clip(frac, 0.0, 1.0, out=frac)
        lo_v = np.take(vals, lo, axis=0)
        out = np.take(vals, idx, axis=0)
        out -= lo_v
        out *= frac[:, None]
        out += lo_v
    return t_grid, out.reshape((n_grid, *values.shape[1:])), valid


@lru_cache(maxsize=64)
def _sos(low_hz: float, high_hz: float, fs_hz: float, order: int) -> np.ndarray | None:
    nyq = 0.5 * fs_hz
    high = min(high_hz, 0.9 * nyq)
    low = low_hz
    if low <= 0 and high >= 0.9 * nyq:
        return None
    if low <= 0:
        return signal.butter(order, high, btype="lowpass", fs=fs_hz, output="sos")
    if low >= high:          # the band lies above what this rate can see: high-pass near Nyquist
        return signal.butter(order, 0.5 * nyq, btype="highpass", fs=fs_hz, output="sos")
    if high >= 0.9 * nyq:
        return signal.butter(order, low, btype="highpass", fs=fs_hz, output="sos")
    return signal.butter(order, (low, high), btype="bandpass", fs=fs_hz, output="sos")


@lru_cache(maxsize=64)
def _sos_zi(low_hz: float, high_hz: float, fs_hz: float, order: int) -> np.ndarray | None:
    sos = _sos(low_hz, high_hz, fs_hz, order)
    return None if sos is None else signal.sosfilt_zi(sos)


def bandpass(x: np.ndarray, band_hz: tuple[float, float], fs_hz: float, *, order: int = 2, axis: int = 0
             ) -> np.ndarray:
    """Zero-phase Butterworth band-pass (second-order sections) along ``axis`` [same units as x].

    The band's upper edge is clipped to 0.9 x Nyquist, so the same call works from 5 to 200 Hz. Forward-backward
    filtering with odd extension at both ends, as ``scipy.signal.sosfiltfilt`` does, with the filter design and
    its initial conditions cached (this runs on many short event windows). Filter along the contiguous axis
    (rows of a C-ordered matrix: ``axis=-1``) rather than on a transposed view: the copies cost more than the
    filter.
    """
    axis = axis % x.ndim
    n = x.shape[axis]
    key = (float(band_hz[0]), float(band_hz[1]), design_rate_hz(fs_hz), order)
    sos = _sos(*key)
    if sos is None or n < 16:
        return x - np.mean(x, axis=axis, keepdims=True)

    def along(*s: int | None) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(*s),)

    zi = _sos_zi(*key)
    padlen = min(n - 1, 3 * (2 * sos.shape[0] + 1))
    ext = np.concatenate([2 * x[along(0, 1)] - x[along(padlen, 0, -1)], x,
                          2 * x[along(n - 1, n)] - x[along(-2, -padlen - 2, -1)]], axis=axis)
    shape = [1] * (x.ndim + 1)
    shape[0], shape[axis + 1] = sos.shape[0], 2
    zi_b = zi.reshape(shape)                              # (sections, ..., 2 along the axis, ...)
    y, _ = signal.sosfilt(sos, ext, axis=axis, zi=zi_b * ext[along(0, 1)])
    y = y[along(None, None, -1)]
    y, _ = signal.sosfilt(sos, y, axis=axis, zi=zi_b * y[along(0, 1)])
    return np.ascontiguousarray(y[along(None, None, -1)][along(padlen, padlen + n)])


def moving_rms(x: np.ndarray, n_samples: int) -> np.ndarray:
    """Centred moving RMS over ``n_samples`` (>= 1) samples; same length as ``x``."""
    n = max(1, int(n_samples))
    return np.sqrt(np.maximum(ndimage.uniform_filter1d(x * x, size=n, mode="nearest"), 0.0))


def block_reduce(x: np.ndarray, n_block: int, func: str = "median", stride: int = 1) -> np.ndarray:
    """Reduce ``x`` over consecutive blocks of ``n_block`` samples (the last partial block included), using
    every ``stride``-th sample of each block."""
    n_block = max(1, int(n_block))
    n_full = x.size // n_block
    parts = []
    if n_full:
        parts.append(getattr(np, func)(x[: n_full * n_block].reshape(n_full, n_block)[:, ::stride], axis=1))
    if x.size % n_block:
        parts.append(np.array([getattr(np, func)(x[n_full * n_block:][::stride])]))
    return np.concatenate(parts) if parts else np.empty(0)


def block_means(x: np.ndarray, n_block: int) -> np.ndarray:
    """Means of (n, k) rows over consecutive blocks of ``n_block`` (the last partial block included), all columns
    in one pass; NaN in a block gives NaN."""
    starts = np.arange(0, x.shape[0], max(1, n_block))
    counts = np.diff(np.append(starts, x.shape[0]))
    return np.add.reduceat(x, starts, axis=0) / counts[:, None]


def running_background(x: np.ndarray, fs_hz: float, window_s: float, block_s: float = 1.0,
                       max_per_block: int = 32) -> np.ndarray:
    """Robust local level of ``x``: medians of ``block_s`` blocks (each over at most ``max_per_block`` evenly
    spaced samples: the signals this runs on are smooth or correlated at the sample scale), a running median of
    those over ``window_s``, interpolated back to every sample. Costs O(n), insensitive to short bursts."""
    n_block = max(1, round(block_s * fs_hz))
    stride = -(-n_block // max_per_block)
    blocks = block_reduce(x, n_block, "median", stride=stride)
    k = max(1, round(window_s / block_s))
    k += (k + 1) % 2    # odd
    level = ndimage.median_filter(blocks, size=k, mode="nearest")
    return interp_regular(level, 0.5 * n_block, n_block, x.size)


def interp_regular(knots: np.ndarray, first_x: float, step_x: float, n: int) -> np.ndarray:
    """``np.interp(np.arange(n), first_x + step_x * np.arange(knots.size), knots)`` for regularly spaced knots,
    in a few passes: the samples between two knots are one run, so each piece is a line repeated over its run."""
    if knots.size == 1:
        return np.full(n, float(knots[0]))
    x_knot = first_x + step_x * np.arange(knots.size)
    first_at = np.clip(np.ceil(x_knot - 1e-9), 0, n).astype(np.int64)       # first sample at or after each knot
    counts = np.diff(np.concatenate(([0], first_at, [n])))
    slope = np.diff(knots) / step_x
    a = np.concatenate(([knots[0]], knots[:-1] - x_knot[:-1] * slope, [knots[-1]]))
    b = np.concatenate(([0.0], slope, [0.0]))
    return np.repeat(a, counts) + np.arange(n) * np.repeat(b, counts)


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and stop (exclusive) indices of runs of True in a boolean array."""
    m = np.concatenate(([False], mask.astype(bool), [False]))
    d = np.diff(m.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)
