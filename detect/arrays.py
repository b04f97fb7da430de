"""Array helpers shared by the kernels: the chunk size of chained elementwise passes, lines over runs of
samples, sorted unique values, runs of True.

Vectorised (no Python loop over samples); each has a slow reference twin in ``tests/test_detect_kernels.py``.
"""

from __future__ import annotations

import numpy as np

CHUNK_SAMPLES = 1 << 15    # chains of elementwise passes run chunk by chunk, their temporaries staying in cache


def lines_over_runs(a: np.ndarray, b: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``b[k] * i + a[k]`` at every sample index ``i`` of run ``k``, the runs (``counts[k]`` samples each) laid
    end to end from i = 0: ``np.arange(n) * np.repeat(b, counts) + np.repeat(a, counts)`` [units of a], computed
    chunk by chunk (:data:`CHUNK_SAMPLES`), the repeated lines and indices staying in cache."""
    counts = np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(counts)
    starts = ends - counts
    n = int(ends[-1]) if ends.size else 0
    out = np.empty(n)
    for c0 in range(0, n, CHUNK_SAMPLES):                # loop over chunks of samples
        c1 = min(c0 + CHUNK_SAMPLES, n)
        k0 = int(np.searchsorted(ends, c0, side="right"))
        k1 = int(np.searchsorted(starts, c1, side="left"))          # runs k0 <= k < k1 overlap [c0, c1)
        cnt = np.minimum(ends[k0:k1], c1) - np.maximum(starts[k0:k1], c0)
        part = out[c0:c1]
        np.multiply(np.arange(c0, c1, dtype=np.float64), np.repeat(b[k0:k1], cnt), out=part)
        part += np.repeat(a[k0:k1], cnt)
    return out


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` (flattened, sorted, one NaN kept at the end) of an integer or float array, by a sort
    and a mask: NumPy 2.4's hash-based ``np.unique`` takes ~5x longer on the thousands of keys of a trip."""
    a = np.sort(np.asarray(values), axis=None)
    if a.size < 2:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    if a.dtype.kind == "f" and np.isnan(a[-1]):          # NaNs sort last: keep the first
        keep[int(np.argmax(np.isnan(a))) + 1:] = False
    return a[keep]


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and stop (exclusive) indices of runs of True in a boolean array."""
    m = np.concatenate(([False], mask.astype(bool, copy=False), [False]))
    edges = np.flatnonzero(m[1:] != m[:-1])           # rises and falls alternate, a rise first
    return edges[0::2], edges[1::2]
