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
    """Median sample interval [s] over at most ~20,000 evenly spaced intervals (only those are differenced)."""
    step = max(1, (t_s.size - 1) // 20_000)
    return float(np.median(t_s[1::step] - t_s[:-1:step]))


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
    t_grid = np.arange(n_grid, dtype=np.float64)
    t_grid /= fs_hz
    t_grid += t_s[0]
    vals = values.reshape(t_s.size, -1)
    if n_grid == t_s.size:
        off_s = t_s - t_grid                          # each sample's distance from its grid point
        if max(float(off_s.max()), -float(off_s.min())) * fs_hz <= snap_steps:
            return t_grid, values, np.ones(n_grid, dtype=bool)
    rel = t_s - t_s[0]
    rel *= fs_hz                                      # input times in grid steps
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


TF_MAX_SECTIONS = 2   # up to this many sections, filter in transfer-function form (see ``bandpass``)


@lru_cache(maxsize=64)
def _tf(low_hz: float, high_hz: float, fs_hz: float, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b, a, steady-state initial conditions for a unit step) of the cascaded sections of :func:`_sos`."""
    b, a = signal.sos2tf(_sos(low_hz, high_hz, fs_hz, order))
    return b, a, signal.lfilter_zi(b, a)


def bandpass(x: np.ndarray, band_hz: tuple[float, float], fs_hz: float, *, order: int = 2, axis: int = 0,
             start: int = 0) -> np.ndarray:
    """Zero-phase Butterworth band-pass (second-order sections) along ``axis`` [same units as x].

    With ``start`` (0 <= start < length along the axis) only the output from that sample on is returned
    (``bandpass(x, ...)[..., start:]`` along the axis, computed as such: the backward pass stops there).

    The band's upper edge is clipped to 0.9 x Nyquist, so the same call works from 5 to 200 Hz. Forward-backward
    filtering with odd extension at both ends, as ``scipy.signal.sosfiltfilt`` does, with the filter design and
    its initial conditions cached (this runs on many short event windows). Filter along the contiguous axis
    (rows of a C-ordered matrix: ``axis=-1``) rather than on a transposed view: the copies cost more than the
    filter. Designs of at most :data:`TF_MAX_SECTIONS` sections (4 poles) run as one transfer function
    (``lfilter``, a quarter faster than ``sosfilt``), which agrees with the sections to ~1e-9 of the signal's RMS
    even for a 0.4 Hz edge at 200 Hz; longer designs keep the sections.
    """
    axis = axis % x.ndim
    n = x.shape[axis]
    key = (float(band_hz[0]), float(band_hz[1]), design_rate_hz(fs_hz), order)
    sos = _sos(*key)

    def along(*s: int | None) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(*s),)

    if sos is None or n < 16:
        return np.ascontiguousarray((x - np.mean(x, axis=axis, keepdims=True))[along(start, None)])

    padlen = min(n - 1, 3 * (2 * sos.shape[0] + 1))
    head = 2 * x[along(0, 1)] - x[along(padlen, 0, -1)]              # odd extensions at both ends
    tail = 2 * x[along(n - 1, n)] - x[along(-2, -padlen - 2, -1)]
    if sos.shape[0] <= TF_MAX_SECTIONS:
        b, a, zi_tf = _tf(*key)
        shape = [1] * x.ndim
        shape[axis] = zi_tf.size
        zi_t = zi_tf.reshape(shape)                       # (..., order along the axis, ...)
        # each pass runs piece by piece, the state carried over (the same recurrence as over the concatenation,
        # without copying the signal); the backward pass needs only the tail's state and the signal's span
        _, z = signal.lfilter(b, a, head, axis=axis, zi=zi_t * head[along(0, 1)])
        y, z = signal.lfilter(b, a, x, axis=axis, zi=z)
        y_tail, _ = signal.lfilter(b, a, tail, axis=axis, zi=z)
        y_tail = y_tail[along(None, None, -1)]
        _, z = signal.lfilter(b, a, y_tail, axis=axis, zi=zi_t * y_tail[along(0, 1)])
        y, _ = signal.lfilter(b, a, y[along(None, start - 1 if start else None, -1)], axis=axis, zi=z)
        return np.ascontiguousarray(y[along(None, None, -1)])
    ext = np.concatenate([head, x, tail], axis=axis)
    zi = _sos_zi(*key)
    shape = [1] * (x.ndim + 1)
    shape[0], shape[axis + 1] = sos.shape[0], 2
    zi_b = zi.reshape(shape)                              # (sections, ..., 2 along the axis, ...)
    y, _ = signal.sosfilt(sos, ext, axis=axis, zi=zi_b * ext[along(0, 1)])
    y = y[along(None, None, -1)]
    y, _ = signal.sosfilt(sos, y, axis=axis, zi=zi_b * y[along(0, 1)])
    return np.ascontiguousarray(y[along(None, None, -1)][along(padlen + start, padlen + n)])


def moving_rms(x: np.ndarray, n_samples: int) -> np.ndarray:
    """Centred moving RMS over ``n_samples`` (>= 1) samples; same length as ``x``."""
    n = max(1, int(n_samples))
    sq = np.multiply(x, x, dtype=np.float64)
    ndimage.uniform_filter1d(sq, size=n, mode="nearest", output=sq)       # one line at a time: in place is safe
    np.maximum(sq, 0.0, out=sq)
    return np.sqrt(sq, out=sq)


def _row_medians(rows: np.ndarray) -> np.ndarray:
    """``np.median(rows, axis=1)`` of a 2-D array (NaN for a row holding NaN), by one partition of a copy: numpy's
    median also partitions to find NaN, which costs as much again."""
    m = rows.shape[1]
    part = np.partition(rows, m // 2, axis=1)            # one kth: several cost as much as a sort
    med = part[:, m // 2]
    if m % 2 == 0:                                       # and the largest of the lower half, column by column
        below = part[:, 0].copy()                        # (a reduction along short rows costs per row)
        for j in range(1, m // 2):                       # loop over the columns of a block (<= 16)
            np.maximum(below, part[:, j], out=below)
        med = 0.5 * (below + med)
    if np.issubdtype(rows.dtype, np.floating) and np.isnan(part).any():
        med = np.where(np.isnan(part).any(axis=1), np.nan, med)
    return med


def block_reduce(x: np.ndarray, n_block: int, func: str = "median", stride: int = 1) -> np.ndarray:
    """Reduce ``x`` over consecutive blocks of ``n_block`` samples (the last partial block included), using
    every ``stride``-th sample of each block."""
    n_block = max(1, int(n_block))
    n_full = x.size // n_block
    parts = []
    if n_full:
        rows = x[: n_full * n_block].reshape(n_full, n_block)[:, ::stride]
        parts.append(_row_medians(rows) if func == "median" else getattr(np, func)(rows, axis=1))
    if x.size % n_block:
        parts.append(np.array([getattr(np, func)(x[n_full * n_block:][::stride])]))
    return np.concatenate(parts) if parts else np.empty(0)


def block_means(x: np.ndarray, n_block: int) -> np.ndarray:
    """Means of (n, k) rows over consecutive blocks of ``n_block`` (the last partial block included), all columns
    in one pass; NaN in a block gives NaN."""
    n_block = max(1, int(n_block))
    n, k = x.shape
    if n_block < 16 and k > 1:
        starts = np.arange(0, n, n_block)
        counts = np.diff(np.append(starts, n))
        return np.add.reduceat(x, starts, axis=0) / counts[:, None]
    # full blocks as a matrix product with a vector of ones (BLAS: twice as fast as reduceat), then the rest
    n_full = n // n_block
    full = x[: n_full * n_block].reshape(n_full, n_block, k)
    ones = np.ones(n_block)
    sums = (full[..., 0] @ ones)[:, None] if k == 1 else ones @ full
    out = sums / n_block
    if n % n_block:
        out = np.vstack([out, x[n_full * n_block:].mean(axis=0, keepdims=True)])
    return out


def running_max_every(x: np.ndarray, m: int) -> tuple[np.ndarray, float]:
    """``(r[::m], r[-1])`` of the running maximum ``r = np.fmax.accumulate(x)`` (NaN ignored once a number is seen).

    A non-decreasing ``x`` (a cumulative distance) is its own running maximum: one comparison pass. Otherwise the
    running maximum runs over the maxima of the ``m`` samples up to each kept one, found by ``m - 1`` strided
    passes: the (slow, sequential) accumulation runs at 1/m of the rate.
    """
    m = max(1, int(m))
    if x.size > 1 and np.greater_equal(x[1:], x[:-1]).all():        # already non-decreasing (and no NaN)
        return x[::m].astype(np.float64), float(x[-1])
    n_kept = -(-x.size // m)
    kept = np.empty(n_kept)
    kept[0] = x[0]
    if n_kept > 1:
        after = x[1:1 + (n_kept - 1) * m].reshape(n_kept - 1, m)    # row i: the samples (i * m, (i + 1) * m]
        np.copyto(kept[1:], after[:, 0])
        for j in range(1, m):                                        # loop over a block's samples (m, a handful)
            np.fmax(kept[1:], after[:, j], out=kept[1:])
    np.fmax.accumulate(kept, out=kept)
    tail = x[1 + (n_kept - 1) * m:]
    return kept, float(kept[-1] if tail.size == 0 else np.fmax(kept[-1], np.fmax.reduce(tail)))


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
    inner = counts[1:-1]                                 # the runs between two knots
    same = np.flatnonzero(inner != inner[0])
    n_same = int(same[0]) if same.size else inner.size   # leading runs as long as the first
    if inner[0] == 0 or n_same < inner.size - 1:
        return np.repeat(a, counts) + np.arange(n) * np.repeat(b, counts)
    # runs of one length (knots a whole number of samples apart): a matrix of runs, a line per row, in place
    out = np.arange(n, dtype=np.float64)
    lo, hi = int(counts[0]), int(counts[0] + n_same * inner[0])
    rows = out[lo:hi].reshape(n_same, int(inner[0]))
    rows *= b[1:1 + n_same, None]
    rows += a[1:1 + n_same, None]
    for k in range(n_same + 1, counts.size):            # the shorter last run and the run after the last knot
        run = out[hi:hi + counts[k]]
        run *= b[k]
        run += a[k]
        hi += int(counts[k])
    out[:lo] = a[0]
    return out


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and stop (exclusive) indices of runs of True in a boolean array."""
    m = np.concatenate(([False], mask.astype(bool, copy=False), [False]))
    edges = np.flatnonzero(m[1:] != m[:-1])           # rises and falls alternate, a rise first
    return edges[0::2], edges[1::2]
