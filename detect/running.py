"""Moving and block statistics: moving RMS, medians of blocks, running maxima, medians and the local background,
linear interpolation of block values back onto samples.

Vectorised (no Python loop over samples); each has a slow reference twin in ``tests/test_detect_kernels.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from detect.arrays import CHUNK_SAMPLES


def _window_sums(x: np.ndarray, n: int, out: np.ndarray, work: np.ndarray) -> None:
    """``out[i] = x[i] + ... + x[i + n - 1]`` for ``i < out.size`` (``x.size == out.size + n - 1``), by doubling:
    sums over 1, 2, 4, ... samples (in ``work``, at least ``2 x.size`` long), those of the binary digits of ``n``
    added up (4 passes for n = 12). Exact sums rounded pairwise: no running sum whose error grows along the
    signal."""
    m = out.size
    width, offset, cur, started = 1, 0, x, False
    spare = (work[:x.size], work[x.size:2 * x.size])
    while True:
        if n & width:
            if started:
                out += cur[offset:offset + m]
            else:
                np.copyto(out, cur[offset:offset + m])
                started = True
            offset += width
        if 2 * width > n:
            return
        nxt = spare[0][:cur.size - width]                 # sums over 2 x width samples
        np.add(cur[:-width], cur[width:], out=nxt)
        cur, spare = nxt, (spare[1], spare[0])
        width *= 2


def moving_rms(x: np.ndarray, n_samples: int) -> np.ndarray:
    """Centred moving RMS over ``n_samples`` (>= 1) samples, the ends repeated; same length as ``x``.

    Output ``i`` covers ``x[i - n // 2 : i - n // 2 + n]``. Squares, window sums (:func:`_window_sums`), the
    scaling and the square root run over chunks of :data:`CHUNK_SAMPLES` at a time, in cache: each chunk squares
    the samples its windows cover (``n - 1`` more than the chunk), so no signal-long array of squares is written
    and read back.
    """
    n = max(1, int(n_samples))
    size = x.size
    lo = n // 2
    out = np.empty(size)
    sq = np.empty(min(CHUNK_SAMPLES, size) + n - 1)     # a chunk's squares, the first and last sample repeated
    work = np.empty(2 * sq.size)
    for c0 in range(0, size, CHUNK_SAMPLES):             # loop over chunks of samples
        part = out[c0:c0 + CHUNK_SAMPLES]
        first, stop = c0 - lo, c0 - lo + part.size + n - 1          # the samples the chunk's windows cover
        a, b = max(first, 0), min(stop, size)
        squares = sq[:stop - first]
        np.multiply(x[a:b], x[a:b], out=squares[a - first:b - first])
        squares[:a - first] = squares[a - first]
        squares[b - first:] = squares[b - first - 1]
        _window_sums(squares, n, part, work)
        part *= 1.0 / n
        np.sqrt(part, out=part)
    return out


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


def median(x: np.ndarray, *, sample_step: int = 64, margin: float = 0.015) -> float:
    """``np.median(x)`` of a 1-D float array without NaN [units of x], exactly, at a fraction of a partition of the
    whole: the middle quantiles ``0.5 +- margin`` of every ``sample_step``-th value bracket the median, one pass
    counts the values below the bracket and gathers those inside it (a few percent), and a partition of those
    finds the middle order statistics. Falls back to a partition of a copy when the bracket misses them."""
    n = x.size
    ranks = [(n - 1) // 2, n // 2]                      # the middle order statistics (one when n is odd)
    if n < 64 * sample_step:
        part = np.partition(x, ranks)
        return float(0.5 * (part[ranks[0]] + part[ranks[1]]))
    sample = x[::sample_step]
    k_lo = max(0, int((0.5 - margin) * sample.size))
    k_hi = min(sample.size - 1, int((0.5 + margin) * sample.size) + 1)
    lo, hi = np.partition(sample, [k_lo, k_hi])[[k_lo, k_hi]]
    below = 0
    inside = []
    for c0 in range(0, n, CHUNK_SAMPLES):                # loop over chunks of samples (in cache)
        part = x[c0:c0 + CHUNK_SAMPLES]
        below += int(np.count_nonzero(part < lo))
        inside.append(part[(part >= lo) & (part <= hi)])
    mid = np.concatenate(inside)
    if below <= ranks[0] and ranks[1] < below + mid.size:
        part = np.partition(mid, [r - below for r in ranks])
        return float(0.5 * (part[ranks[0] - below] + part[ranks[1] - below]))
    part = np.partition(x, ranks)
    return float(0.5 * (part[ranks[0]] + part[ranks[1]]))


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
    level = running_median(blocks, k)
    return interp_regular(level, 0.5 * n_block, n_block, x.size)


SHORT_MEDIAN = 9    # running medians over at most this many values partition a matrix of windows


def running_median(x: np.ndarray, k: int) -> np.ndarray:
    """``scipy.ndimage.median_filter(x, size=k, mode="nearest")`` of a 1-D array (block values), odd ``k``: for
    a short window (at most :data:`SHORT_MEDIAN`) one partition of the matrix of its windows (ndimage's set-up
    costs more on a few thousand values); ndimage itself for longer windows or when ``x`` holds NaN (its order of
    NaN is its own)."""
    if k <= 1 or k > SHORT_MEDIAN or x.size == 0 or np.isnan(x).any():
        return ndimage.median_filter(x, size=k, mode="nearest")
    half = k // 2
    padded = np.concatenate((np.full(half, x[0]), x, np.full(half, x[-1])))
    windows = np.lib.stride_tricks.sliding_window_view(padded, k)
    return np.partition(windows, half, axis=1)[:, half]


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
    # runs of one length (knots a whole number of samples apart): a matrix of runs, a line per row, in place,
    # a chunk of rows at a time (in cache)
    out = np.empty(n)
    run = int(inner[0])
    lo, hi = int(counts[0]), int(counts[0] + n_same * run)
    rows = out[lo:hi].reshape(n_same, run)
    per = max(1, CHUNK_SAMPLES // run)
    offsets = np.arange(min(per, n_same) * run, dtype=np.float64).reshape(-1, run)
    for r0 in range(0, n_same, per):                     # loop over chunks of runs
        part = rows[r0:r0 + per]
        np.add(offsets[:part.shape[0]], lo + r0 * run, out=part)        # the sample indices
        part *= b[1 + r0:1 + r0 + part.shape[0], None]
        part += a[1 + r0:1 + r0 + part.shape[0], None]
    out[hi:] = np.arange(hi, n, dtype=np.float64)
    for k in range(n_same + 1, counts.size):            # the shorter last run and the run after the last knot
        piece = out[hi:hi + counts[k]]
        piece *= b[k]
        piece += a[k]
        hi += int(counts[k])
    out[:lo] = a[0]
    return out
