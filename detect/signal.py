"""Array kernels: uniform resampling with gap masks, zero-phase band-pass filters, moving statistics.

Every function is vectorised (no Python loop over samples); each has a slow reference twin in
``tests/test_detect_kernels.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage, signal
from scipy.linalg import LinAlgError, blas, solve_toeplitz, toeplitz

CHUNK_SAMPLES = 1 << 15    # chains of elementwise passes run chunk by chunk, their temporaries staying in cache
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


BLOCK_LEN = 32               # samples per block of the matrix form of a recursion (:class:`_BlockFilter`)
BLOCK_TOLERANCE = 3e-11      # ... used for a design only if it agrees with ``lfilter`` this well [x the output's RMS]
BLOCK_MIN_LENGTH = 4 * BLOCK_LEN  # ... on rows at least this long


@dataclass(frozen=True)
class _BlockFilter:
    """``lfilter(b, a, .)`` over blocks of :data:`BLOCK_LEN` samples as matrix products, in row vectors.

    With ``w_k`` the state before block ``x_k`` (lfilter's transposed-direct-form state ``s`` in a modal basis,
    ``w = s @ to_modal``) and ``h`` the impulse response: ``y_k = x_k @ conv + w_k @ from_state`` (``conv[m, j] =
    h[j - m]``) and ``w_{k+1} = w_k @ step + x_k @ to_state``. The products run over many blocks per BLAS call
    (:func:`_block_outputs`), the recursion from block to block over small (blocks, order) arrays
    (:func:`_block_states`): ``lfilter`` is bound by the latency of its sample-by-sample recursion (~5 ns a
    sample whatever the order up to 4), the products by the machine's throughput (~2 ns a sample and pass). In
    the modal basis ``step`` is a scaled rotation per pole pair, whose powers lose no digits (the companion form's
    powers of a low band edge do). ``partial_step[m]``: the step over ``m`` samples; ``*_rev``: the recursion
    backward through blocks stored forward. Built in long double by :func:`_block_matrices`.
    """

    conv: np.ndarray              # (L, L)
    from_state: np.ndarray        # (order, L)
    to_state: np.ndarray          # (L, order)
    step: np.ndarray              # (order, order)
    to_modal: np.ndarray          # (order, order)
    partial_step: np.ndarray      # (L + 1, order, order)
    conv_rev: np.ndarray
    from_state_rev: np.ndarray
    to_state_rev: np.ndarray


def _modal_basis(step: np.ndarray) -> np.ndarray:
    """Real basis (columns) of eigenvectors of ``step`` (real and imaginary parts for a complex pair), in which
    ``inv(basis) @ step @ basis`` is block diagonal with 2 x 2 scaled rotations."""
    lam, vec = np.linalg.eig(step)
    cols: list[np.ndarray] = []
    for i in np.argsort(-np.abs(lam), kind="stable"):                 # loop over the filter's order
        if lam[i].imag > 0:
            cols += [vec[:, i].real, vec[:, i].imag]
        elif lam[i].imag == 0:
            cols.append(vec[:, i].real)
    basis = np.column_stack(cols) if len(cols) == lam.size else np.eye(lam.size)
    return basis if np.linalg.cond(basis) < 1e8 else np.eye(lam.size)


def _block_matrices(b: np.ndarray, a: np.ndarray, block_len: int) -> _BlockFilter:
    """:class:`_BlockFilter` of ``lfilter(b, a, .)`` (``len(b) == len(a)``), the products in long double."""
    bl = np.asarray(b, dtype=np.longdouble) / a[0]
    al = np.asarray(a, dtype=np.longdouble) / a[0]
    order = al.size - 1
    trans = np.zeros((order, order), dtype=np.longdouble)        # row form of lfilter: s' = s @ trans + x gain
    trans[0, :] = -al[1:]
    trans[np.arange(1, order), np.arange(order - 1)] = 1.0
    gain = bl[1:] - al[1:] * bl[0]
    from_state = np.empty((order, block_len + 1), dtype=np.longdouble)   # column j: trans^j e0
    to_state = np.empty((block_len, order), dtype=np.longdouble)         # row m: gain trans^(L-1-m)
    powers = np.empty((block_len + 1, order, order), dtype=np.longdouble)
    col = np.zeros(order, dtype=np.longdouble)
    col[0] = 1.0
    row = gain.copy()
    powers[0] = np.eye(order, dtype=np.longdouble)
    for j in range(block_len + 1):                                # loop over a block's samples (design)
        from_state[:, j] = col
        col = trans @ col
        if j < block_len:
            to_state[block_len - 1 - j] = row
            row = row @ trans
            powers[j + 1] = powers[j] @ trans
    h = np.concatenate(([bl[0]], gain @ from_state[:, :block_len - 1]))   # impulse response over one block
    conv = np.zeros((block_len, block_len), dtype=np.longdouble)
    for m in range(block_len):                                    # loop over a block's samples (design)
        conv[m, m:] = h[:block_len - m]
    basis = _modal_basis(powers[-1].astype(np.float64))
    inv = np.linalg.inv(basis).astype(np.longdouble)
    bas = basis.astype(np.longdouble)
    f64 = [np.ascontiguousarray(m, dtype=np.float64) for m in
           (conv, inv @ from_state[:, :block_len], to_state @ bas, inv @ powers[-1] @ bas)]
    partial = np.ascontiguousarray(inv @ powers @ bas, dtype=np.float64)
    return _BlockFilter(*f64, to_modal=basis, partial_step=partial,
                        conv_rev=np.ascontiguousarray(f64[0][::-1, ::-1]),
                        from_state_rev=np.ascontiguousarray(f64[1][:, ::-1]),
                        to_state_rev=np.ascontiguousarray(f64[2][::-1]))


SCAN_IN_TURN = 24      # at most this many blocks a row: the block-to-block recursion runs block by block


def _block_states(v: np.ndarray, step: np.ndarray) -> None:
    """In place along axis 1 of ``v`` (rows, blocks, order): ``v[:, k] += v[:, k - 1] @ step`` for k = 1, 2, ...
    in turn (the states before each block from the first state and each block's input term). Over many blocks
    by doubling: after the pass at lag d every entry holds the sum over the 2d entries up to it; it stops once
    ``step^d`` is below 1e-20 in every entry (the terms left out are smaller still). Over a few blocks (rows of
    event windows, at most :data:`SCAN_IN_TURN`) block by block, all rows at once: fewer, smaller products."""
    rows, k, order = v.shape
    if k <= SCAN_IN_TURN:
        by_block = np.ascontiguousarray(v.transpose(1, 0, 2))
        for j in range(1, k):                             # loop over a row's blocks (a few)
            by_block[j] += by_block[j - 1] @ step
        v[...] = by_block.transpose(1, 0, 2)
        return
    power = step
    lag = 1
    while lag < k and np.abs(power).max() > 1e-20:
        v[:, lag:] += (v.reshape(-1, order) @ power).reshape(rows, k, order)[:, :-lag]
        lag *= 2
        power = power @ power


def _filtfilt_blocks(x: np.ndarray, bf: _BlockFilter, zi: np.ndarray, padlen: int, start: int) -> np.ndarray:
    """The forward-backward filter of :func:`bandpass` along the last axis of (rows, n) ``x`` [same units as x],
    columns from ``start`` on, in blocks (:class:`_BlockFilter`); ``zi``: lfilter's steady state for a unit step.

    Each row and its odd extensions fill whole blocks, the data ending at the last one's end after ``o`` zeros, in
    one buffer filtered in place: a block's response to its own samples is a triangular product (BLAS ``trmm``),
    to the state before it a product added on (``gemm``). The forward pass starts from 0 before the zeros and adds
    the response to its initial state at the data's start (linear); the backward pass runs down through the block
    holding ``start`` (the columns before it, computed last, are dropped)."""
    rows, n = x.shape
    L, order = bf.to_state.shape
    n_blocks = -(-(n + 2 * padlen) // L)
    width = n_blocks * L
    o = width - n - 2 * padlen                        # zeros before each row's data
    buf = np.empty((rows, width))
    buf[:, :o] = 0.0
    np.subtract(2 * x[:, :1], x[:, padlen:0:-1], out=buf[:, o:o + padlen])
    buf[:, o + padlen:width - padlen] = x
    np.subtract(2 * x[:, -1:], x[:, -2:-padlen - 2:-1], out=buf[:, width - padlen:])
    blocks = buf.reshape(-1, L)
    # forward: each block's input term moves the state before the next block; the initial state at the data's
    # start (steady for its first sample) enters through the rest of the first block
    w0 = (zi[None, :] * buf[:, o:o + 1]) @ bf.to_modal
    v = np.empty((rows, n_blocks, order))
    np.matmul(blocks, bf.to_state, out=v.reshape(-1, order))
    v[:, 1:] = v[:, :-1].copy()
    if o:
        v[:, 0] = 0.0
        v[:, 1] += w0 @ bf.partial_step[L - o]
    else:
        v[:, 0] = w0
    _block_states(v, bf.step)
    u = _block_outputs(blocks, v.reshape(-1, order), bf.conv, bf.from_state, lower=False, then=bf.to_state_rev)
    if o:                                             # the first block's response to the initial state
        buf[:, o:L] += w0 @ bf.from_state[:, :L - o]
        u.reshape(rows, n_blocks, order)[:, 0] = buf[:, :L] @ bf.to_state_rev
    # backward, from the last block down to the one holding the first column kept
    first = (o + padlen + start) // L
    back = np.empty((rows, n_blocks - first, order))  # the states before each block, from the last one down
    back[:, 0] = (zi[None, :] * buf[:, -1:]) @ bf.to_modal
    back[:, 1:] = u.reshape(rows, n_blocks, order)[:, n_blocks - 1:first:-1]
    _block_states(back, bf.step)
    w = np.zeros((rows, n_blocks, order))            # ... in the blocks' order
    w[:, first:] = back[:, ::-1]
    if rows == 1:                                     # only the blocks needed
        _block_outputs(blocks[first:], w[0, first:], bf.conv_rev, bf.from_state_rev, lower=True)
        return buf[:, o + padlen + start:width - padlen]
    _block_outputs(blocks, w.reshape(-1, order), bf.conv_rev, bf.from_state_rev, lower=True)
    return np.ascontiguousarray(buf[:, o + padlen + start:width - padlen])


def _block_outputs(blocks: np.ndarray, states: np.ndarray, conv: np.ndarray, from_state: np.ndarray, *,
                   lower: bool, then: np.ndarray | None = None) -> np.ndarray | None:
    """``blocks @ conv + states @ from_state`` for C-ordered (blocks, L) ``blocks``, written over them, a chunk of
    blocks at a time: the triangular ``conv`` (upper, or lower with ``lower``) by ``trmm`` on the chunk's
    (Fortran-ordered) transpose, the states' part added by ``gemm`` while the chunk is in cache, and with
    ``then`` (L, order) the product of the outputs with it, returned (the next pass's input terms)."""
    nxt = None if then is None else np.empty((blocks.shape[0], then.shape[1]))
    step = max(1, CHUNK_SAMPLES // blocks.shape[1])
    for c0 in range(0, blocks.shape[0], step):          # loop over chunks of blocks
        chunk = blocks[c0:c0 + step]
        out = blas.dtrmm(1.0, conv.T, chunk.T, side=0, lower=0 if lower else 1, overwrite_b=1)
        out = blas.dgemm(1.0, from_state.T, states[c0:c0 + step].T, beta=1.0, c=out, overwrite_c=1)
        if not np.shares_memory(out, chunk):
            chunk[...] = out.T
        if nxt is not None:
            np.matmul(chunk, then, out=nxt[c0:c0 + step])
    return nxt


@lru_cache(maxsize=64)
def _block_filter(low_hz: float, high_hz: float, fs_hz: float, order: int) -> _BlockFilter | None:
    """:class:`_BlockFilter` of the transfer function :func:`_tf`, or None when the matrix form, run by
    :func:`_filtfilt_blocks` on random walks, differs from ``lfilter`` by more than :data:`BLOCK_TOLERANCE` of
    the output's RMS (transfer functions of low band edges are ill-conditioned)."""
    b, a, zi = _tf(low_hz, high_hz, fs_hz, order)
    if b.size != a.size:
        return None
    bf = _block_matrices(b, a, BLOCK_LEN)
    x = np.cumsum(np.random.default_rng(0).normal(size=(2, 40 * BLOCK_LEN + 7)), axis=1) + 9.8
    pad = 15
    ext = np.concatenate([2 * x[:, :1] - x[:, pad:0:-1], x, 2 * x[:, -1:] - x[:, -2:-pad - 2:-1]], axis=1)
    y, _ = signal.lfilter(b, a, ext, axis=1, zi=zi[None, :] * ext[:, :1])
    y, _ = signal.lfilter(b, a, y[:, ::-1], axis=1, zi=zi[None, :] * y[:, -1:])
    want = y[:, ::-1][:, pad:pad + x.shape[1]]
    err = max(float(np.abs(_filtfilt_blocks(x[r:], bf, zi, pad, start) - want[r:, start:]).max())
              for r, start in ((0, 0), (1, 100)))
    return bf if err <= BLOCK_TOLERANCE * float(np.sqrt(np.mean(want * want))) else None


EDGE_TOLERANCE = 1e-11     # the edge states of a design come from matrices only if they agree with lfilter this well


@lru_cache(maxsize=64)
def _edge_states(low_hz: float, high_hz: float, fs_hz: float, order: int, padlen: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Linear maps onto the states of the transfer function :func:`_tf` that its passes over the odd extensions of
    :func:`bandpass` leave (row vectors of ``padlen`` samples, of the order of the filter):

    * ``from_head`` (padlen, order): the state after the forward pass over the head ``e`` (started in the steady
      state of ``e[0]``);
    * ``from_tail`` (padlen, order) and ``through_tail`` (order, order): the state in which the backward pass
      enters the signal, ``tail @ from_tail + z @ through_tail``, after the forward pass over the tail (from the
      state ``z`` the signal left) and the backward pass back over it (from the steady state of its last output).

    Two small products instead of three ``lfilter`` calls on short pieces (each as costly as a few hundred samples
    on every row of a matrix of event windows). None when, on a random walk, the maps' states move the output by
    more than :data:`EDGE_TOLERANCE` of its RMS from ``lfilter``'s (low band edges: large states that cancel).
    """
    b, a, zi = _tf(low_hz, high_hz, fs_hz, order)
    eye = np.eye(padlen)
    _, from_head = signal.lfilter(b, a, eye, axis=1, zi=zi[None, :] * eye[:, :1])

    def back(y_tail: np.ndarray) -> np.ndarray:
        rev = y_tail[:, ::-1]
        return signal.lfilter(b, a, rev, axis=1, zi=zi[None, :] * rev[:, :1])[1]

    from_tail = back(signal.lfilter(b, a, eye, axis=1, zi=np.zeros((padlen, zi.size)))[0])
    through_tail = back(signal.lfilter(b, a, np.zeros((zi.size, padlen)), axis=1, zi=np.eye(zi.size))[0])
    x = np.cumsum(np.random.default_rng(0).normal(size=(4, 50 * padlen)), axis=1) + 9.8
    head = 2 * x[:, :1] - x[:, padlen:0:-1]
    tail = 2 * x[:, -1:] - x[:, -2:-padlen - 2:-1]
    _, z = signal.lfilter(b, a, head, axis=1, zi=zi[None, :] * head[:, :1])
    y, z = signal.lfilter(b, a, x, axis=1, zi=z)
    z_back = back(signal.lfilter(b, a, tail, axis=1, zi=z)[0])
    y_map, z_map = signal.lfilter(b, a, x, axis=1, zi=head @ from_head)
    z_back_map = tail @ from_tail + z_map @ through_tail
    want = signal.lfilter(b, a, y[:, ::-1], axis=1, zi=z_back)[0]
    got = signal.lfilter(b, a, y_map[:, ::-1], axis=1, zi=z_back_map)[0]
    err = float(np.abs(got - want).max() / np.sqrt(np.mean(want * want)))
    return (from_head, from_tail, through_tail) if err <= EDGE_TOLERANCE else None


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
    even for a 0.4 Hz edge at 200 Hz; longer designs keep the sections. Along the last axis of a vector or matrix
    whose rows are at least :data:`BLOCK_MIN_LENGTH` long, a design whose matrix form agrees with ``lfilter``
    (:func:`_block_filter`) runs in blocks (:func:`_filtfilt_blocks`, about twice as fast); otherwise ``lfilter``
    runs over the signal only, the states the extensions leave coming from small products (:func:`_edge_states`)
    when those agree with it too.
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
        use_blocks = x.ndim <= 2 and axis == x.ndim - 1 and n >= BLOCK_MIN_LENGTH
        bf = _block_filter(*key) if use_blocks else None
        if bf is not None:
            rows = x.reshape(-1, n)
            return _filtfilt_blocks(rows, bf, zi_tf, padlen, start).reshape((*x.shape[:-1], n - start))
        edges = _edge_states(*key, padlen)
        if edges is None:                                 # ill-conditioned: lfilter over the extensions too
            shape = [1] * x.ndim
            shape[axis] = zi_tf.size
            zi_t = zi_tf.reshape(shape)                   # (..., order along the axis, ...)
            _, z = signal.lfilter(b, a, head, axis=axis, zi=zi_t * head[along(0, 1)])
            y, z = signal.lfilter(b, a, x, axis=axis, zi=z)
            y_tail, _ = signal.lfilter(b, a, tail, axis=axis, zi=z)
            y_tail = y_tail[along(None, None, -1)]
            _, z = signal.lfilter(b, a, y_tail, axis=axis, zi=zi_t * y_tail[along(0, 1)])
        else:
            def times(edge: np.ndarray, mat: np.ndarray) -> np.ndarray:   # a state from samples along the axis
                return np.moveaxis(np.tensordot(edge, mat, axes=(axis, 0)), -1, axis)

            y, z = signal.lfilter(b, a, x, axis=axis, zi=times(head, edges[0]))
            z = times(tail, edges[1]) + times(z, edges[2])
        # each pass runs piece by piece, the state carried over (the same recurrence as over the concatenation,
        # without copying the signal); the backward pass needs only the tail's state and the signal's span
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
