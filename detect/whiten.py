"""Pre-whitening: a prediction-error (linear prediction) filter fitted per mount segment, so that a phone's own
ringing does not stand out of the road noise as an impact would.

Vectorised (no Python loop over samples); each has a slow reference twin in ``tests/test_detect_kernels.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, solve_toeplitz, toeplitz

# ------------------------------------------------------------------------------------------------ pre-whitening
WHITEN_CLIP_SIGMA = 3.0      # samples beyond this x their RMS are clipped before the model is fitted (impacts)
WHITEN_FIT_SAMPLES = 1 << 17  # the model is fitted on at most this many samples, in runs spread over the signal
WHITEN_RUN = 4096            # ... of this length (a model of order p ignores p products across two runs)


def prediction_error_filter(x: np.ndarray, order: int, use: np.ndarray | None = None, *,
                            clip_sigma: float = WHITEN_CLIP_SIGMA) -> np.ndarray | None:
    """Taps ``[1, -a_1, ..., -a_p]`` of the prediction-error filter of the order-``p`` autoregressive model of the
    samples ``x`` where ``use`` (default all), by Yule-Walker (the biased autocorrelation solved by Levinson's
    recursion). The samples are first clipped at ``clip_sigma`` x their RMS, so that a few impacts do not shape the
    model of the road's vibration. A long signal is sampled in runs of :data:`WHITEN_RUN` samples all in ``use``,
    spread over it, at most :data:`WHITEN_FIT_SAMPLES` in all (eleven minutes at 200 Hz: the model has a few
    coefficients); a short or broken one takes its samples ``use`` end to end. As a causal FIR it leaves what the
    last ``p`` samples do not predict: a coloured vibration and a mount's ringing predict themselves, an impact's
    onset does not (the innovations; SmartRoadSense's roughness index is their power). None when there are fewer
    than ``10 (p + 1)`` samples or the model is singular."""
    x = np.asarray(x, dtype=float)
    m = x.size // WHITEN_RUN
    runs = x[:m * WHITEN_RUN].reshape(m, WHITEN_RUN)
    if use is not None and m:
        runs = runs[np.asarray(use[:m * WHITEN_RUN], dtype=bool).reshape(m, WHITEN_RUN).all(axis=1)]
    if runs.size >= WHITEN_FIT_SAMPLES // 4:
        rows = np.array(runs[::-(-runs.shape[0] // (WHITEN_FIT_SAMPLES // WHITEN_RUN))])   # a copy: clipped below
    else:
        rows = (x.copy() if use is None else x[np.asarray(use, dtype=bool)])[None, :]
    n = rows.size
    if order < 1 or n < 10 * (order + 1):
        return None
    rms = float(np.sqrt(np.vdot(rows, rows) / n))
    if not np.isfinite(rms) or rms == 0.0:
        return None
    np.minimum(rows, clip_sigma * rms, out=rows)
    np.maximum(rows, -clip_sigma * rms, out=rows)
    r = autocorrelation(rows.ravel(), order) / n    # runs end to end: p products of ~30 boundaries in 2^17
    try:
        a = solve_toeplitz(r[:-1], r[1:])
    except (LinAlgError, ValueError):
        return None
    if not (np.all(np.isfinite(a)) and float(r[0] - a @ r[1:]) > 1e-12 * r[0]):
        return None
    return np.concatenate(([1.0], -a))


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """``sum(x[:n - k] * x[k:])`` for k = 0 ... ``max_lag`` [units of x squared], one BLAS dot product a lag."""
    n = x.size
    return np.array([np.dot(x[:n - k], x[k:]) for k in range(min(max_lag, n - 1) + 1)])   # loop over lags


def whiten(x: np.ndarray, fit_on: np.ndarray, use: np.ndarray, segment_starts: np.ndarray, order: int
           ) -> np.ndarray:
    """``x`` through the prediction-error filter (:func:`prediction_error_filter`) of ``fit_on`` in each mount segment
    (segment ``k`` from index ``segment_starts[k]``), fitted on its samples ``use`` (moving, valid): a re-mounted phone
    rings at another frequency. Fit the model on the full-band signal and filter a band-passed ``x`` of it (the filters
    commute): a model of the band-passed signal would whiten the band's own edges and lift what lies beyond them. Each
    segment's filter is scaled to keep the power of ``x`` over the segment (the output's power from the autocorrelation
    of ``x``), so the output keeps the units and level of ``x``. A segment with too few samples ``use`` takes the trip's
    filter; ``x`` itself is returned when the trip has none. Causal: an output sample depends on its input and the
    ``order`` before it (within the segment), so an onset stays where it was [units of x]."""
    x = np.asarray(x, dtype=float)
    fit_on = np.asarray(fit_on, dtype=float)
    use = np.asarray(use, dtype=bool)
    bounds = np.append(np.asarray(segment_starts, dtype=np.int64), x.size)
    whole = None
    out = np.empty_like(x)
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):     # loop over mount segments
        taps = prediction_error_filter(fit_on[s:e], order, use[s:e])
        if taps is None:
            if whole is None:
                whole = prediction_error_filter(fit_on, order, use)
                if whole is None:
                    return x.copy()
            taps = whole
        # the output's power from the input's autocorrelation: sum_ij t_i t_j r(|i - j|), the gain put in the taps
        r = autocorrelation(x[s:e], taps.size - 1)
        if r.size == taps.size:
            power = float(taps @ toeplitz(r) @ taps)
            taps = taps * np.sqrt(r[0] / power) if power > 0.0 else taps
        out[s:e] = np.convolve(x[s:e], taps)[:e - s]
    return out
