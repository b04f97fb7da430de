"""Every vectorised kernel of detect/ against a slow, obviously-correct Python twin (ObsPy's habit)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from detect.events import merge, trigger
from detect.motion import _interp_with_gaps
from detect.orientation import find_remounts
from detect.signal import (
    block_means,
    block_reduce,
    interp_regular,
    moving_rms,
    resample_uniform,
    running_background,
    true_runs,
)

rng = np.random.default_rng(42)


def ref_resample(t: np.ndarray, v: np.ndarray, fs: float, gap_s: float) -> tuple[list, list, list]:
    tg, vg, ok = [], [], []
    k = 0
    while t[0] + k / fs <= t[-1] + 1e-12:
        x = t[0] + k / fs
        j = 1
        while j < len(t) - 1 and t[j] <= x:
            j += 1
        frac = (x - t[j - 1]) / (t[j] - t[j - 1])
        tg.append(x)
        vg.append(v[j - 1] + frac * (v[j] - v[j - 1]) if x <= t[j] else v[j])
        ok.append((t[j] - t[j - 1]) <= gap_s or x in set(t.tolist()))
        k += 1
    return tg, vg, ok


def test_resample_uniform_matches_reference_with_jitter_and_a_gap() -> None:
    t = np.cumsum(rng.uniform(0.008, 0.012, 300))
    t[150:] += 0.6                      # a gap
    v = rng.normal(size=300)
    tg, vg, ok = resample_uniform(t, v, 100.0, 0.25)
    rt, rv, rok = ref_resample(t, v, 100.0, 0.25)
    assert_allclose(tg, rt, rtol=0, atol=1e-9)
    assert_allclose(vg, rv, rtol=1e-10, atol=1e-12)
    assert_array_equal(ok, rok)
    assert not ok.all()                 # the gap is marked


def test_resample_uniform_uses_input_already_on_the_grid() -> None:
    t = 1_780_000_000.0 + np.arange(500) / 100.0
    v = rng.normal(size=(500, 3))
    _, on_grid, ok = resample_uniform(t + rng.uniform(-2e-4, 2e-4, 500), v, 100.0, 0.25)   # 2 % of a step
    assert on_grid is v and ok.all()
    _, moved, _ = resample_uniform(t + rng.uniform(-3e-3, 3e-3, 500), v, 100.0, 0.25)       # 30 %: interpolated
    assert moved is not v and not np.allclose(moved[1:-1], v[1:-1])


def test_resample_uniform_decimation_averages() -> None:
    t = np.arange(0, 2, 0.001)
    v = np.sin(2 * np.pi * 300 * t)      # far above the 50 Hz grid's Nyquist: averaged away, not aliased
    _, vg, _ = resample_uniform(t, v, 50.0, 0.25)
    assert np.max(np.abs(vg[1:-1])) < 0.1


@pytest.mark.parametrize("n_win", [1, 2, 5, 12])
def test_moving_rms_matches_reference(n_win: int) -> None:
    x = rng.normal(size=200)
    got = moving_rms(x, n_win)
    half = n_win // 2
    ref = []
    for i in range(x.size):
        vals = [x[min(max(j, 0), x.size - 1)] for j in range(i - half, i - half + n_win)]
        ref.append(math.sqrt(sum(v * v for v in vals) / n_win))
    assert_allclose(got, ref, rtol=1e-10)


@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("func", ["median", "mean", "max"])
def test_block_reduce_matches_reference(func: str, stride: int) -> None:
    x = rng.normal(size=103)
    got = block_reduce(x, 10, func, stride=stride)
    ref = [getattr(np, func)(x[i:i + 10:stride]) for i in range(0, 103, 10)]
    assert_allclose(got, ref)


def test_block_means_match_reference() -> None:
    x = rng.normal(size=(103, 3))
    x[55, 1] = np.nan
    ref = np.array([[np.mean(x[i:i + 10, j]) for j in range(3)] for i in range(0, 103, 10)])
    assert_allclose(block_means(x, 10), ref)
    assert np.isnan(block_means(x, 10)[5, 1]) and np.isfinite(block_means(x, 10)[5, 0])


@pytest.mark.parametrize(("first_x", "step_x", "n_knots", "n"), [(0.5, 10.0, 7, 75), (25.0, 50.0, 3, 90),
                                                               (-3.0, 4.0, 5, 12), (0.0, 1.0, 1, 5)])
def test_interp_regular_matches_numpy(first_x: float, step_x: float, n_knots: int, n: int) -> None:
    knots = rng.normal(size=n_knots)
    want = np.interp(np.arange(n), first_x + step_x * np.arange(n_knots), knots)
    assert_allclose(interp_regular(knots, first_x, step_x, n), want, rtol=1e-12, atol=1e-12)


def test_running_background_ignores_short_bursts() -> None:
    fs = 50.0
    x = np.abs(rng.normal(0, 1.0, 3000))
    x[1000:1010] = 100.0                 # a 0.2 s burst
    bg = running_background(x, fs, 10.0)
    assert bg.shape == x.shape
    assert np.max(bg) < 1.2


def test_true_runs_matches_reference() -> None:
    m = rng.random(500) > 0.6
    starts, stops = true_runs(m)
    ref_s, ref_e, inside = [], [], False
    for i, v in enumerate(m):
        if v and not inside:
            ref_s.append(i)
            inside = True
        if not v and inside:
            ref_e.append(i)
            inside = False
    if inside:
        ref_e.append(m.size)
    assert_array_equal(starts, ref_s)
    assert_array_equal(stops, ref_e)


def test_trigger_hysteresis_matches_reference() -> None:
    cf = np.abs(np.convolve(rng.normal(size=600), np.ones(5) / 5, mode="same")) * 3
    thr = np.full(cf.size, 1.5)
    starts, stops = trigger(cf, thr, release_ratio=0.5)
    ref = []
    s, e = true_runs(cf > 0.75)
    for a, b in zip(s, e, strict=True):
        if any(cf[i] > 1.5 for i in range(a, b)):
            ref.append((a, b))
    assert [tuple(p) for p in zip(starts, stops, strict=True)] == ref
    assert len(ref) > 0


def test_merge_matches_reference() -> None:
    starts = np.sort(rng.choice(5000, 80, replace=False)) * 3
    stops = starts + rng.integers(1, 3, 80)
    gaps = rng.integers(0, 40, 80)
    got_s, got_e = merge(starts, stops, gaps)
    ref = [[starts[0], stops[0]]]
    for i in range(1, starts.size):
        if starts[i] - stops[i - 1] <= gaps[i - 1]:
            ref[-1][1] = stops[i]
        else:
            ref.append([starts[i], stops[i]])
    assert_array_equal(got_s, [r[0] for r in ref])
    assert_array_equal(got_e, [r[1] for r in ref])


def test_interp_with_gaps_never_bridges() -> None:
    t_fix = np.array([0.0, 1.0, 2.0, 30.0, 31.0])
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = _interp_with_gaps(np.array([0.5, 1.5, 10.0, 30.5, 40.0]), t_fix, v, 10.0)
    assert_allclose(out[[0, 1, 3]], [1.5, 2.5, 4.5])
    assert np.isnan(out[2]) and np.isnan(out[4])


def test_find_remounts_finds_a_tilt_change() -> None:
    fs = 50.0
    n = int(120 * fs)
    acc = np.tile([0.0, 0.0, 9.81], (n, 1)) + rng.normal(0, 0.3, (n, 3))
    tilt = np.deg2rad(45)
    acc[n // 2:] = np.column_stack([np.zeros(n - n // 2), 9.81 * np.sin(tilt) * np.ones(n - n // 2),
                                    9.81 * np.cos(tilt) * np.ones(n - n // 2)]) + rng.normal(0, 0.3, (n - n // 2, 3))
    idx = find_remounts(acc, fs, block_s=1.0, context_s=8.0, angle_deg=20.0)
    assert idx.size == 1
    assert abs(idx[0] - n // 2) <= fs * 1.5
    assert find_remounts(acc[: n // 2], fs, block_s=1.0, context_s=8.0, angle_deg=20.0).size == 0


@pytest.mark.parametrize("shape", [(500,), (500, 3), (40,)])
def test_bandpass_matches_scipy_sosfiltfilt(shape: tuple[int, ...]) -> None:
    from scipy import signal as sps

    from detect.signal import _sos, bandpass
    x = rng.normal(size=shape)
    sos = _sos(3.0, 25.0, 100.0, 2)
    ref = sps.sosfiltfilt(sos, x, axis=0, padlen=min(shape[0] - 1, 3 * (2 * sos.shape[0] + 1)))
    assert_allclose(bandpass(x, (3.0, 25.0), 100.0), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("sorted_queries", [True, False])
def test_gap_interp_matches_reference(sorted_queries: bool) -> None:
    from detect.motion import _GapInterp

    t_fix = np.cumsum(rng.uniform(0.5, 1.5, 60))
    t_fix[30:] += 25.0                                   # an outage longer than max_gap
    v = rng.normal(size=60)
    q = np.linspace(t_fix[0] - 8, t_fix[-1] + 8, 2000)
    if not sorted_queries:
        q = rng.permutation(q)
    got = _GapInterp(q, t_fix, 10.0)(v)
    ref = []
    for x in q:
        if x < t_fix[0] - 5 or x > t_fix[-1] + 5:
            ref.append(np.nan)
            continue
        k = int(np.searchsorted(t_fix, x, side="right"))
        left = t_fix[k - 1] if k > 0 else t_fix[0] - 5
        right = t_fix[k] if k < t_fix.size else t_fix[-1] + 5
        ref.append(np.nan if right - left > 10.0 else float(np.interp(x, t_fix, v)))
    assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_grid_interp_matches_gap_interp_on_the_grid() -> None:
    from detect.motion import _GapInterp, _GridInterp

    t0, fs, n = 1_780_000_000.0, 50.0, 6000
    t_fix = t0 + np.cumsum(rng.uniform(0.5, 1.5, 60)) + 4.0
    t_fix[30:] += 25.0                                   # an outage longer than max_gap
    t_fix[45] = t_fix[44]                                # a repeated fix time
    v = rng.normal(size=60)
    grid = t0 + np.arange(n) / fs
    got = _GridInterp(t0, fs, n, t_fix, 10.0)(v)
    ref = _GapInterp(grid, t_fix, 10.0)(v)
    assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(got).any() and np.isfinite(got).any()
    ok = np.isfinite(ref)
    assert_allclose(got[ok], ref[ok], rtol=0, atol=1e-6)    # the reference rounds epoch times to 0.2 us
    assert np.isnan(got).any() and np.isfinite(got).any()
