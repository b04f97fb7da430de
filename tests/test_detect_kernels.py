"""Every vectorised kernel of detect/ against a slow, obviously-correct Python twin (ObsPy's habit)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage, signal

from detect.arrays import true_runs, unique_sorted
from detect.clock import resample_uniform, sample_clock
from detect.events import LEVEL_BLOCK_S, LOUD_QUANTILE, driving_levels, merge, trigger, vibration_level
from detect.motion import _interp_with_gaps
from detect.orientation import find_remounts
from detect.running import block_means, block_reduce, interp_regular, moving_rms, running_background, running_max_every
from detect.whiten import WHITEN_CLIP_SIGMA, prediction_error_filter, whiten

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
    for _ in range(20):           # whichever way the end samples jitter (a last sample early once lost its point)
        t_grid, on_grid, ok = resample_uniform(t + rng.uniform(-2e-4, 2e-4, 500), v, 100.0, 0.25)   # 2 % of a step
        assert on_grid is v and ok.all() and t_grid.size == 500
    _, moved, _ = resample_uniform(t + rng.uniform(-3e-3, 3e-3, 500), v, 100.0, 0.25)       # 30 %: interpolated
    n = min(moved.shape[0], v.shape[0]) - 1                     # the grid may end a point short of the samples
    assert moved is not v and not np.allclose(moved[1:n], v[1:n])


def test_resample_uniform_decimation_averages() -> None:
    t = np.arange(0, 2, 0.001)
    v = np.sin(2 * np.pi * 300 * t)      # far above the 50 Hz grid's Nyquist: averaged away, not aliased
    _, vg, _ = resample_uniform(t, v, 50.0, 0.25)
    assert np.max(np.abs(vg[1:-1])) < 0.1


def phone_clock(n: int, fs_hz: float, ppm: float, jitter_steps: float, drop: float, seed: int
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """(stamps [s], tick numbers, true rate [Hz]) of a phone clock: ``ppm`` off nominal, Gaussian stamp jitter
    clipped at 0.4 of a period, a fraction ``drop`` of the ticks dropped and a 2-s gap in the middle."""
    g = np.random.default_rng(seed)
    period = (1.0 + ppm * 1e-6) / fs_hz
    ticks = np.arange(n)
    ticks = ticks[(g.random(n) >= drop) & ~((ticks > n // 2) & (ticks < n // 2 + 2 * fs_hz))]
    t = 1_780_000_000.0 + 0.123 + ticks * period + np.clip(g.normal(0.0, jitter_steps * period, ticks.size),
                                                           -0.4 * period, 0.4 * period)
    return t, ticks, 1.0 / period


def clock_twin(t: np.ndarray, ticks: np.ndarray) -> tuple[float, float]:
    """Least-squares line through (tick, stamp) when the ticks are known: (rate [Hz], stamp of tick 0 [s])."""
    k = ticks.astype(float)
    km, tm = k.mean(), t.mean()
    slope = sum((a - km) * (b - tm) for a, b in zip(k, t, strict=True)) / sum((a - km) ** 2 for a in k)
    return 1.0 / slope, float(t.mean() - slope * k.mean())


@pytest.mark.parametrize(("fs_hz", "ppm", "jitter"), [(50.0, -40.0, 0.02), (100.0, 55.0, 0.12), (200.0, 12.0, 0.06)])
def test_sample_clock_locks_the_grid_to_the_phones_clock(fs_hz: float, ppm: float, jitter: float) -> None:
    """Rate and phase as a line fit through the (known) ticks finds them; every sample sits within its jitter of a
    grid point from the first to the last, where a grid at the median interval drifts by whole steps."""
    t, ticks, rate = phone_clock(30_000, fs_hz, ppm, jitter, 0.01, seed=int(fs_hz))
    clock = sample_clock(t, 200.0, 0.25)
    fs, origin = clock.fs_hz, clock.origin_s
    want_fs, tick0_s = clock_twin(t, ticks)
    assert fs == pytest.approx(want_fs, rel=1e-6) and fs == pytest.approx(rate, rel=2e-6)   # < 0.03 steps of drift
    steps = (t - origin) * fs
    off = steps - np.rint(steps)
    assert abs(origin - t[0]) * fs <= 0.5 and abs(((tick0_s - origin) * fs + 0.5) % 1.0 - 0.5) < 0.02
    assert clock.run_starts.size == 2 and np.abs(clock.run_shift_s).max() * fs < 0.02   # the clock ran through the gap
    for part in np.array_split(off, 10):                  # no drift anywhere along the trip
        assert abs(part.mean()) < 0.03 and np.median(np.abs(part)) < 0.8 * jitter + 0.01
    median_fs = 1.0 / np.median(np.diff(t))
    drift = (t[-1] - t[0]) * abs(median_fs - rate)
    assert drift > 0.3 or jitter < 0.05                    # what the median-interval grid did (steps over the trip)


def test_sample_clock_keeps_the_impact_band_on_a_slow_phone() -> None:
    """A 20 Hz ringing sampled at 50 Hz, resampled onto the locked grid, keeps its amplitude (linear interpolation
    half-way between samples would leave cos(pi 20/50) = 0.31 of it, ~0.6 on average over a drifting grid)."""
    t, _, _ = phone_clock(20_000, 50.0, 30.0, 0.03, 0.01, seed=3)
    v = np.sin(2 * np.pi * 20.0 * (t - t[0]))
    clock = sample_clock(t, 200.0, 0.25)
    _, vg, ok = resample_uniform(clock.locked(t), v, clock.fs_hz, 0.25, origin_s=clock.origin_s)
    rms = float(np.sqrt(np.mean(vg[ok] ** 2)))
    assert rms > 0.95 * np.sqrt(0.5)
    _, drifting, ok2 = resample_uniform(t, v, 1.0 / np.median(np.diff(t)), 0.25)
    assert np.sqrt(np.mean(drifting[ok2] ** 2)) < 0.9 * np.sqrt(0.5)     # the grid this replaces


def restarted_clock(fs_hz: float, ppm: float, jitter_steps: float, pause_s: float, jump_steps: float, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stamps [s], run of each stamp, tick numbers within their run) of a recording paused for ``pause_s`` after
    5 minutes and resumed for 7, its clock restarting ``jump_steps`` of a period out of phase."""
    g = np.random.default_rng(seed)
    period = (1.0 + ppm * 1e-6) / fs_hz
    k1, k2 = np.arange(round(300 * fs_hz)), np.arange(round(420 * fs_hz))
    t2_0 = k1[-1] * period + pause_s + jump_steps * period
    t = np.concatenate([k1 * period, t2_0 + k2 * period])
    t = 1_780_000_000.0 + t + np.clip(g.normal(0.0, jitter_steps * period, t.size), -0.4 * period, 0.4 * period)
    return t, np.repeat([0, 1], [k1.size, k2.size]), np.concatenate([k1, k2])


def restarted_twin(t: np.ndarray, run: np.ndarray, ticks: np.ndarray) -> float:
    """Rate [Hz] of the least-squares lines through (tick, stamp), one slope, each run its own intercept."""
    mean_k = {r: float(np.mean(ticks[run == r])) for r in set(run.tolist())}
    mean_t = {r: float(np.mean(t[run == r])) for r in mean_k}
    num = den = 0.0
    for r, k, s in zip(run.tolist(), ticks.tolist(), t.tolist(), strict=True):
        num += (k - mean_k[r]) * (s - mean_t[r])
        den += (k - mean_k[r]) ** 2
    return den / num


@pytest.mark.parametrize(("fs_hz", "pause_s", "jump"), [(50.0, 30.0, 0.5), (100.0, 120.0, 0.3), (50.0, 5.0, -0.4)])
def test_sample_clock_follows_a_clock_restarted_after_a_pause(fs_hz: float, pause_s: float, jump: float) -> None:
    """A recording paused and resumed with its clock at another phase: the rate is the twin's (no drift fitted
    from the jump) and, each run shifted onto the grid, every sample sits within its jitter of a grid point in
    both runs, so a 20 Hz ringing keeps its amplitude after the pause too. One phase for the whole trip put the
    second run (or both) up to half a step off."""
    t, run, ticks = restarted_clock(fs_hz, 35.0, 0.03, pause_s, jump, seed=round(pause_s))
    clock = sample_clock(t, 200.0, 0.25)
    assert clock.fs_hz == pytest.approx(restarted_twin(t, run, ticks), rel=2e-7)
    assert clock.run_starts.tolist() == [0, int(np.argmax(run))]
    period_s = (1.0 + 35e-6) / fs_hz
    moved = (pause_s / period_s + jump) - (clock.run_shift_s[1] - clock.run_shift_s[0]) / period_s   # [steps]
    assert abs(moved - np.rint(moved)) < 0.02                # the second run moved by its phase, whole steps aside
    locked = clock.locked(t)
    steps = (locked - clock.origin_s) * clock.fs_hz
    off = steps - np.rint(steps)
    for part in np.array_split(off, 10):
        assert abs(part.mean()) < 0.02 and np.median(np.abs(part)) < 0.03
    v = np.sin(2 * np.pi * 20.0 * (t - t[0]))
    _, vg, ok = resample_uniform(locked, v, clock.fs_hz, 0.25, origin_s=clock.origin_s)
    assert np.sqrt(np.mean(vg[ok] ** 2)) > 0.95 * np.sqrt(0.5)
    _, one_phase, ok1 = resample_uniform(t, v, clock.fs_hz, 0.25, origin_s=clock.origin_s)
    assert np.sqrt(np.mean(one_phase[ok1] ** 2)) < 0.9 * np.sqrt(0.5) or fs_hz > 50.0


def test_sample_clock_leaves_fast_phones_to_decimation() -> None:
    t = 1_780_000_000.0 + np.arange(5000) / 400.0
    clock = sample_clock(t, 200.0)
    assert (clock.fs_hz, clock.origin_s) == (200.0, t[0]) and clock.locked(t) is t
    t2, _, _ = phone_clock(5000, 200.0, -80.0, 0.02, 0.0, seed=5)        # 80 ppm fast is still a 200 Hz phone
    assert sample_clock(t2, 200.0).fs_hz > 200.0


def moving_rms_twin(x: np.ndarray, n: int, at: np.ndarray) -> list[float]:
    """Slow twin of :func:`moving_rms` at the indices ``at``: the window ``x[i - n // 2 : i - n // 2 + n]``,
    indices clipped to the ends."""
    last = x.size - 1
    return [math.sqrt(math.fsum(float(x[min(max(j, 0), last)]) ** 2 for j in range(i - n // 2, i - n // 2 + n)) / n)
            for i in at.tolist()]


@pytest.mark.parametrize("n_win", [1, 2, 5, 12])
def test_moving_rms_matches_reference(n_win: int) -> None:
    x = rng.normal(size=200)
    got = moving_rms(x, n_win)
    assert_allclose(got, moving_rms_twin(x, n_win, np.arange(x.size)), rtol=1e-10)


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


@pytest.mark.parametrize("seed", range(6))
def test_unique_sorted_is_numpys_unique(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in (0, 1, 2, 7, 300):
        keys = rng.integers(-4, 4, n, dtype=np.int64) * (1 << 40)
        assert unique_sorted(keys).tolist() == np.unique(keys).tolist()
        assert unique_sorted(keys).dtype == np.int64
        x = rng.normal(size=n).round(1)
        x[rng.random(n) < 0.2] = np.nan                       # several NaNs: np.unique keeps one, at the end
        x[rng.random(n) < 0.1] = np.inf
        assert np.array_equal(unique_sorted(x), np.unique(x), equal_nan=True)


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


def test_hard_braking_after_accelerating_is_no_remount_but_a_real_one_is_found() -> None:
    """A car at highway speed accelerates at 2.5 m/s^2 for 8 s, then brakes at 3.5 m/s^2 for 8 s: the mean direction
    of the phone's acceleration tilts by ~31 degrees, which GPS dv/dt explains; a 30-degree re-mount is still one."""
    from detect.orientation import orient

    fs, n = 50.0, 50 * 240
    t = np.arange(n) / fs
    dvdt = np.where((t % 32.0) < 8.0, 2.5, np.where((t % 32.0) < 16.0, -3.5, 0.0))
    car = np.column_stack([dvdt, rng.normal(0.0, 0.2, n), 9.81 + rng.normal(0.0, 0.2, n)])
    centripetal = np.zeros(n)
    blind = find_remounts(car, fs, block_s=1.0, context_s=8.0, angle_deg=20.0)
    assert blind.size > 0                                  # without the car's own acceleration: "re-mounts"
    told = orient(car, fs, dvdt_mps2=dvdt, centripetal_mps2=centripetal)
    assert told.seg_start.tolist() == [0]
    tilt = np.deg2rad(30.0)
    turned = car.copy()
    turned[n // 2:] = car[n // 2:] @ np.array([[1.0, 0.0, 0.0], [0.0, np.cos(tilt), -np.sin(tilt)],
                                               [0.0, np.sin(tilt), np.cos(tilt)]])
    found = orient(turned, fs, dvdt_mps2=dvdt, centripetal_mps2=centripetal).seg_start
    assert found.size == 2 and abs(found[1] - n // 2) <= 2 * fs


def ref_handling_spans(acc: np.ndarray, fs: float, seg_start: np.ndarray, up: np.ndarray, min_mount_s: float,
                       search_s: float, steady_deg: float, excursion_deg: float, car: np.ndarray | None,
                       step: int) -> list[tuple[int, int]]:
    """Slow twin of :func:`detect.orientation.handling_spans`, block by block: excursions of two or more blocks
    from their own mount, and the split of each re-mount episode's blocks into mount before | in neither | mount
    after with the fewest blocks out of place, tried split by split."""
    from detect.orientation import HANDLING_BLOCK_S, STEADY_COST, UNKNOWN_CAR_TILT_DEG
    n = acc.shape[0]
    nb = max(1, round(HANDLING_BLOCK_S * fs))

    def angle(j: int, u: np.ndarray) -> float:
        m = acc[j * nb:(j + 1) * nb].mean(axis=0)
        return math.degrees(math.acos(min(1.0, max(-1.0, float(m @ u / np.linalg.norm(m))))))

    def tilt(j: int) -> float:
        return math.nan if car is None else math.degrees(math.atan(car[min((j * nb + nb // 2) // step,
                                                                           car.size - 1)] / 9.80665))
    out = []
    run = []
    for j in range(n // nb + 1):
        if j < n // nb:
            own = int(np.searchsorted(seg_start, j * nb + nb // 2, side="right")) - 1
            tl = tilt(j)
            if angle(j, up[own]) - (UNKNOWN_CAR_TILT_DEG if math.isnan(tl) else tl) > excursion_deg:
                run.append(j)
                continue
        if len(run) >= 2:
            out.append((run[0] * nb, (run[-1] + 1) * nb))
        run = []
    bounds = [int(b) for b in seg_start[1:]]
    episodes: list[list[int]] = []
    for k, b in enumerate(bounds):
        if episodes and b - bounds[episodes[-1][-1]] < min_mount_s * fs:
            episodes[-1].append(k)
        else:
            episodes.append([k])
    ends = [*bounds, n]
    for ep in episodes:
        k0, k1 = ep[0], ep[-1]
        b0 = max(int(seg_start[k0]), bounds[k0] - round(search_s * fs)) // nb
        b1 = min(ends[k1 + 1], bounds[k1] + round(search_s * fs), (n // nb) * nb) // nb
        steady = [tuple(angle(j, u) - (0.0 if math.isnan(tilt(j)) else tilt(j)) < steady_deg
                        for u in (up[k0], up[k1 + 1])) for j in range(b0, b1)]
        best = None
        for t1 in range(len(steady) + 1):
            for t2 in range(t1, len(steady) + 1):
                cost = (sum(not b for b, _ in steady[:t1]) + STEADY_COST * sum(b or a for b, a in steady[t1:t2])
                        + sum(not a for _, a in steady[t2:]))
                key = (cost, -(t2 - t1), t1)
                if best is None or key < best[0]:
                    best = (key, ((b0 + t1) * nb, (b0 + t2) * nb))
        out.append(best[1])
    return sorted(out, key=lambda sp: sp[0])


def _remounted_phone(fs: float, rng_: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A phone re-mounted twice over 120 s: flat, 3 s in a hand turning about x, 45 degrees about x from 43 s;
    held 8 s (turned 60 degrees about y) from 80 s, put back at 45 degrees. Road noise 0.3 m/s^2."""
    from scipy.spatial.transform import Rotation

    t = np.arange(int(120 * fs)) / fs
    angle = np.interp(t, [40.0, 43.0], [0.0, 45.0]) + np.where((t > 40) & (t < 43), 30 * np.sin(7 * t), 0.0)
    rot = Rotation.from_euler("x", angle[:, None], degrees=True)
    held = (t >= 80) & (t < 88)
    acc = rot.apply(np.tile([0.0, 0.0, 9.80665], (t.size, 1)))
    acc[held] = Rotation.from_euler("y", 60, degrees=True).apply(acc[held])
    return acc + rng_.normal(0, 0.3, acc.shape), [(40.0, 43.0), (80.0, 88.0)]


def test_handling_spans_match_the_slow_twin_and_bracket_the_hand() -> None:
    from detect.orientation import handling_spans, orient

    fs = 50.0
    acc, hands = _remounted_phone(fs, rng)
    ori = orient(acc, fs)
    assert ori.seg_start.size == 4                          # one re-mount, and a brief pose held in between
    car = np.abs(rng.normal(0, 1.0, acc.shape[0] // 5))
    for accel, step in ((None, 1), (car, 5)):
        got = handling_spans(acc, fs, ori.seg_start, ori.up, min_mount_s=15.0, search_s=8.0, steady_deg=10.0,
                             excursion_deg=20.0, car_accel_mps2=accel, car_accel_step=step)
        want = ref_handling_spans(acc, fs, ori.seg_start, ori.up, 15.0, 8.0, 10.0, 20.0, accel, step)
        assert got.tolist() == [list(w) for w in want]
    spans = handling_spans(acc, fs, ori.seg_start, ori.up, min_mount_s=15.0, search_s=8.0, steady_deg=10.0,
                           excursion_deg=20.0)
    assert_allclose(spans[[0, -1]] / fs, hands, atol=0.6)


def test_braking_after_a_remount_does_not_stretch_its_handling_span() -> None:
    """4.5 m/s^2 of braking for 4 s right after the hand tilts the phone's mean direction by ~25 degrees; told the
    car's acceleration, the span ends where the hand did."""
    from detect.orientation import handling_spans, orient

    fs = 50.0
    acc, _ = _remounted_phone(fs, rng)
    t = np.arange(acc.shape[0]) / fs
    braking = (t >= 43.0) & (t < 47.0)
    acc = acc.copy()
    acc[braking, 1] += 4.5 * np.cos(np.radians(45.0))     # the car's forward axis seen by the tilted phone
    acc[braking, 2] += 4.5 * np.sin(np.radians(45.0))
    ori = orient(acc[: int(70 * fs)], fs)
    car = np.where(braking, 4.5, 0.0)[: int(70 * fs)]
    told = handling_spans(acc[: int(70 * fs)], fs, ori.seg_start, ori.up, min_mount_s=15.0, search_s=8.0,
                          steady_deg=10.0, excursion_deg=20.0, car_accel_mps2=car)
    blind = handling_spans(acc[: int(70 * fs)], fs, ori.seg_start, ori.up, min_mount_s=15.0, search_s=8.0,
                           steady_deg=10.0, excursion_deg=90.0)
    assert abs(told[0, 1] / fs - 43.0) < 0.6, (told, blind)
    assert blind[0, 1] / fs > 45.0, (told, blind)


@pytest.mark.parametrize("shape", [(500,), (500, 3), (40,)])
def test_bandpass_matches_scipy_sosfiltfilt(shape: tuple[int, ...]) -> None:
    from scipy import signal as sps

    from detect.filters import _sos, bandpass
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


# --- kernels of the faster signal stages --------------------------------------------------------------------------


@pytest.mark.parametrize("n_block", [10, 25, 100])
@pytest.mark.parametrize("k", [1, 3])
def test_block_means_of_long_blocks_match_reference(n_block: int, k: int) -> None:
    x = rng.normal(size=(1037, k))
    x[333, k - 1] = np.nan
    ref = np.array([[sum(x[i:i + n_block, j].tolist()) / len(x[i:i + n_block]) for j in range(k)]
                    for i in range(0, 1037, n_block)])
    got = block_means(x, n_block)
    assert got.shape == ref.shape
    assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(got).any()
    assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12)


@pytest.mark.parametrize("n_block", [7, 8, 25])
def test_block_median_matches_reference_with_nan(n_block: int) -> None:
    x = rng.normal(size=203)
    x[40] = np.nan
    got = block_reduce(x, n_block, "median")
    ref = []
    for i in range(0, 203, n_block):
        vals = x[i:i + n_block].tolist()
        if any(math.isnan(v) for v in vals):
            ref.append(math.nan)
            continue
        vals.sort()
        m = len(vals)
        ref.append(vals[m // 2] if m % 2 else 0.5 * (vals[m // 2 - 1] + vals[m // 2]))
    assert_array_equal(got, ref)
    assert np.isnan(got).sum() == 1


def test_threshold_matches_reference_with_unknown_speed() -> None:
    from detect.events import speed_floor, threshold

    fs = 50.0
    cf = np.abs(rng.normal(0, 0.3, 2000))
    speed = np.linspace(0.0, 30.0, 2000)
    speed[500:700] = np.nan
    thr, bg = threshold(cf, speed_floor(speed, 0.4, 15.0), fs, background_window_s=5.0, ratio=2.5)
    ref = [max(2.5 * b, 0.4 * (1.0 + (0.0 if math.isnan(v) else v) / 15.0))
           for b, v in zip(bg.tolist(), speed.tolist(), strict=True)]
    assert_allclose(thr, ref, rtol=1e-14)
    assert (thr[600] == max(2.5 * bg[600], 0.4)) and thr[-1] > 0.4 * 2.9


def test_trigger_keeps_a_run_reaching_the_end() -> None:
    cf = np.array([0.0, 2.0, 0.9, 0.0, 0.9, 0.9, 0.0, 0.9, 2.0])
    starts, stops = trigger(cf, np.ones(cf.size), release_ratio=0.5)
    assert_array_equal(starts, [1, 7])               # [4, 6) never reaches the threshold
    assert_array_equal(stops, [3, 9])


def test_coarse_motion_matches_reference() -> None:
    from detect.motion import _GapInterp, coarse_step, motion_on_grid

    t0, fs, n, step = 1_780_000_000.0, 100.0, 12_345, 5
    gps_t = t0 + 0.3 + np.arange(124.0)
    gps_t[60:] += 15.0                                  # an outage longer than max_gap
    speed = 2.0 + 3.0 * np.abs(np.sin(np.arange(124) / 9.0))   # crosses 3 m/s both ways
    heading = np.cumsum(rng.normal(0, 3.0, 124))
    lat = 42.0 + np.arange(124) * 1e-4
    lon = np.full(124, -71.0)
    fine = motion_on_grid(t0, fs, n, gps_t, lat, lon, speed, heading, step=1)
    coarse = motion_on_grid(t0, fs, n, gps_t, lat, lon, speed, heading, step=step)
    assert_array_equal(coarse.speed_mps, fine.speed_mps)
    known = [0.0 if math.isnan(v) else v for v in fine.speed_mps.tolist()]
    dist, acc = [], 0.0
    for v in known:
        acc += v
        dist.append((acc - known[0]) / fs)
    assert_allclose(coarse.distance_m, dist, rtol=1e-12, atol=1e-9)
    m = -(-n // step)
    assert coarse.dvdt_mps2.shape == coarse.centripetal_mps2.shape == (m,) and coarse.step == step
    centre_t = t0 + (np.arange(m) * step + 0.5 * (step - 1)) / fs
    dvdt_ref = _GapInterp(centre_t, gps_t, 10.0)(np.gradient(speed, gps_t))
    psi_rate = _GapInterp(centre_t, gps_t, 10.0)(np.gradient(np.unwrap(np.deg2rad(heading)), gps_t))
    v_centre = _GapInterp(centre_t, gps_t, 10.0)(speed)
    for j in range(m):          # NaN where any sample of the run is unknown (or, for the centripetal term, slow)
        run = fine.speed_mps[j * step:min((j + 1) * step, n)]
        ends = (run[0], run[-1])
        want = math.nan if any(math.isnan(v) for v in ends) else dvdt_ref[j]
        assert (math.isnan(want) and math.isnan(coarse.dvdt_mps2[j])) or abs(want - coarse.dvdt_mps2[j]) < 1e-6
        slow = not all(v > 3.0 for v in ends) or not v_centre[j] > 3.0
        want = math.nan if slow else v_centre[j] * psi_rate[j]
        got = coarse.centripetal_mps2[j]
        assert (math.isnan(want) and math.isnan(got)) or abs(want - got) < 1e-6, j   # epoch times: ~0.2 us
    assert np.isnan(coarse.centripetal_mps2).any() and np.isfinite(coarse.centripetal_mps2).any()
    # block means of the coarse values agree with those of the full-rate ones (exact for lines)
    ok = np.isfinite(block_means(fine.dvdt_mps2[:, None], 100)[:, 0])
    assert_allclose(block_means(coarse.dvdt_mps2[:, None], 100 // step)[ok, 0],
                    block_means(fine.dvdt_mps2[:, None], 100)[ok, 0], atol=2e-3)
    assert [coarse_step(f, round(f)) for f in (50.0, 100.0, 200.0, 99.9, 97.0)] == [2, 5, 10, 4, 1]


@pytest.mark.parametrize("remount_block_s", [1.0, 1.5])
def test_orient_on_coarse_gps_matches_full_rate(remount_block_s: float) -> None:
    from detect.motion import motion_on_grid
    from detect.orientation import orient

    fs, n = 100.0, 60_000
    t = np.arange(n) / fs
    gps_t = np.arange(0.0, 600.0)
    speed = 12.0 + 4.0 * np.sin(gps_t / 7.0)            # braking and accelerating
    heading = 20.0 * np.sin(gps_t / 23.0)               # and turning
    lat, lon = 42.0 + np.cumsum(speed) / 111_195.0, np.full(600, -71.0)
    kw = {"latency_s": 0.0}
    fine = motion_on_grid(0.0, fs, n, gps_t, lat, lon, speed, heading, step=1, **kw)
    coarse = motion_on_grid(0.0, fs, n, gps_t, lat, lon, speed, heading, step=5, **kw)
    car = np.column_stack([np.interp(t, gps_t, np.gradient(speed, gps_t)), rng.normal(0, 0.05, n), 9.81 + 0 * t])
    car[:, 1] += np.nan_to_num(np.repeat(coarse.centripetal_mps2, 5)[:n])
    acc = car @ np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])   # phone turned by 90 degrees
    acc[30_150:] = acc[30_150:] @ np.array([[1.0, 0.0, 0.0], [0.0, 0.8, -0.6], [0.0, 0.6, 0.8]])   # re-mounted
    ref = orient(acc, fs, dvdt_mps2=fine.dvdt_mps2, centripetal_mps2=fine.centripetal_mps2,
                 remount_block_s=remount_block_s)
    got = orient(acc, fs, dvdt_mps2=coarse.dvdt_mps2, centripetal_mps2=coarse.centripetal_mps2, gps_step=5,
                 remount_block_s=remount_block_s)
    assert_array_equal(got.seg_start, ref.seg_start)
    assert got.seg_start.size == 2 and got.forward_method == ref.forward_method == ("gps", "gps")
    assert (got.seg_start[1] % 100 != 0) == (remount_block_s == 1.5)       # 1.5 s blocks: off the 1-s blocks
    assert_allclose(got.up, ref.up, atol=1e-12)
    assert_allclose(got.forward, ref.forward, atol=1e-4)
    assert_allclose(got.forward[0], [0.0, 1.0, 0.0], atol=0.05)      # the car's x is the phone's y


@pytest.mark.parametrize(("band_hz", "fs_hz"), [((3.0, 25.0), 200.0), ((0.4, 3.0), 200.0), ((0.5, 6.0), 50.0),
                                                ((0.0, 10.0), 100.0), ((3.0, 80.0), 100.0)])
@pytest.mark.parametrize("axis", [0, 1])
def test_bandpass_in_one_transfer_function_matches_sections(band_hz: tuple[float, float], fs_hz: float,
                                                             axis: int) -> None:
    from scipy import signal as sps

    from detect.clock import design_rate_hz
    from detect.filters import _sos, bandpass
    x = np.cumsum(rng.normal(size=(3000, 4) if axis == 0 else (4, 3000)), axis=axis) + 9.8
    sos = _sos(band_hz[0], band_hz[1], design_rate_hz(fs_hz), 2)
    ref = sps.sosfiltfilt(sos, x, axis=axis, padlen=3 * (2 * sos.shape[0] + 1))
    got = bandpass(x, band_hz, fs_hz, axis=axis)
    assert got.flags.c_contiguous
    assert_allclose(got, ref, rtol=0, atol=1e-8 * np.std(ref))


def ref_tilt_max_deg(sig, i_peak: np.ndarray, half_width: int) -> list[float]:
    n_avg = max(1, round(0.5 * sig.fs_hz))
    stride = max(1, round(sig.fs_hz / 40.0))
    n = sig.t_s.size
    out = []
    for ip in i_peak.tolist():
        base = ip - half_width - n_avg // 2
        worst = 1.0
        for lo in range(0, 2 * half_width, stride):
            rows = [sig.accel_mps2[min(max(base + lo + k, 0), n - 1)] for k in range(n_avg)]
            mean = [sum(r[c] for r in rows) / n_avg for c in range(3)]
            up = sig.up_axis[sig.segment[min(max(base + lo + n_avg // 2, 0), n - 1)]]
            worst = min(worst, sum(m * u for m, u in zip(mean, up, strict=True)) / math.sqrt(sum(m * m for m in mean)))
        out.append(math.degrees(math.acos(max(-1.0, min(1.0, worst)))))
    return out


@pytest.mark.parametrize(("fs_hz", "turned"), [(100.0, False), (100.0001, False), (50.0, True), (130.0, True)])
def test_tilt_max_deg_matches_reference(fs_hz: float, turned: bool) -> None:
    from test_detect_cases import _trace

    from detect.features import _tilt_max_deg
    from detect.params import DetectorParams
    from detect.pipeline import build_signals

    sig, _ = build_signals(_trace(fs_hz=fs_hz, duration_s=80.0, rotation_deg=(25, 10, 5),
                                  turned_s=(30.0, 60.0) if turned else None), DetectorParams())
    n = sig.t_s.size
    i_peak = np.array([3, round(10 * fs_hz), round(29.8 * fs_hz), round(45 * fs_hz), round(60.2 * fs_hz), n - 2])
    half = round(1.0 * fs_hz)
    got = _tilt_max_deg(sig, i_peak, half)
    assert_allclose(got, ref_tilt_max_deg(sig, i_peak, half), rtol=0, atol=1e-7)
    if turned:
        assert sig.up_axis.shape[0] > 1 and got[2] > 20.0     # straddles the turn: a phone in a hand
    assert got[1] < 3.0


@pytest.mark.parametrize("m", [1, 3, 5])
@pytest.mark.parametrize("kind", ["increasing", "dips", "nan"])
def test_running_max_every_matches_reference(m: int, kind: str) -> None:
    x = np.cumsum(rng.uniform(0.0, 1.0, 103))
    if kind == "dips":
        x[[10, 11, 50]] -= 5.0
        x[70] += 30.0
    elif kind == "nan":
        x[:8] = np.nan                                 # unknown at first, and for a while later
        x[40:44] = np.nan
    ref, best = [], math.nan
    for v in x.tolist():                             # np.fmax.accumulate: NaN ignored once a number is seen
        if not math.isnan(v) and (math.isnan(best) or v > best):
            best = v
        ref.append(best)
    kept, last = running_max_every(x, m)
    assert_array_equal(kept, ref[::m])
    assert last == ref[-1]


@pytest.mark.parametrize(("shape", "axis", "start"),
                         [((300,), 0, 1), ((300,), 0, 120), ((6, 200), 1, 75), ((200, 3), 0, 9), ((6, 12), 1, 4)])
@pytest.mark.parametrize("order", [2, 4])
def test_bandpass_from_start_is_the_tail_of_the_whole(shape: tuple[int, ...], axis: int, start: int,
                                                      order: int) -> None:
    from detect.filters import bandpass
    x = rng.normal(size=shape)
    whole = bandpass(x, (0.5, 20.0), 100.0, axis=axis, order=order)
    part = bandpass(x, (0.5, 20.0), 100.0, axis=axis, order=order, start=start)
    assert_array_equal(part, np.take(whole, np.arange(start, shape[axis]), axis=axis))
    assert part.flags.c_contiguous


@pytest.mark.parametrize(("shape", "band_hz"), [((100,), (0.5, 20.0)), ((7, 100), (0.5, 20.0)),
                                               ((7, 100), (0.4, 3.0)), ((7, 100), (3.0, 25.0)),
                                               ((7, 300), (0.4, 3.0)), ((40, 300), (0.4, 3.0)),
                                               ((70_001,), (3.0, 25.0))])
def test_bandpass_matches_filtfilt_over_the_concatenated_extension(shape: tuple[int, ...],
                                                                   band_hz: tuple[float, float]) -> None:
    """The piecewise passes over rows shorter than BLOCK_MIN_LENGTH or inputs smaller than BLOCK_MIN_SAMPLES (the
    extensions' states from matrices, or lfilter for an ill-conditioned design: to 1e-12 of the RMS) and the block
    form over larger ones (to 1e-10) against lfilter over the concatenation."""
    from scipy import signal as sps

    from detect.filters import BLOCK_MIN_LENGTH, BLOCK_MIN_SAMPLES, _tf, bandpass
    x = np.cumsum(rng.normal(size=shape), axis=-1)
    b, a, zi = _tf(*band_hz, 100.0, 2)
    got = bandpass(x, band_hz, 100.0, axis=-1)
    tol = 1e-12 if shape[-1] < BLOCK_MIN_LENGTH or x.size < BLOCK_MIN_SAMPLES else 1e-10
    for row, want_row in zip(np.atleast_2d(x), np.atleast_2d(got), strict=True):
        pad = 15
        ext = np.concatenate([2 * row[0] - row[pad:0:-1], row, 2 * row[-1] - row[-2:-pad - 2:-1]])
        y, _ = sps.lfilter(b, a, ext, zi=zi * ext[0])
        y, _ = sps.lfilter(b, a, y[::-1], zi=zi * y[-1])
        want = y[::-1][pad:pad + row.size]
        assert_allclose(want_row, want, rtol=0, atol=tol * np.sqrt(np.mean(want * want)))


@pytest.mark.parametrize("n", [2, 5, 20_001, 20_002, 60_007])
def test_median_dt_matches_reference(n: int) -> None:
    import statistics

    from detect.clock import _median_dt_s
    t = 1_780_000_000.0 + np.cumsum(rng.uniform(0.005, 0.015, n))
    step = max(1, (n - 1) // 20_000)
    want = statistics.median([t[i + 1] - t[i] for i in range(0, n - 1, step)])
    assert _median_dt_s(t) == want


# --- kernels of the faster motion, orientation and trigger stages --------------------------------------------------


def ref_trigger(cf: list[float], thr: list[float], release_ratio: float) -> tuple[list[int], list[int]]:
    """Hysteresis runs, one sample at a time: above release_ratio x thr, kept if some sample exceeds thr."""
    starts, stops = [], []
    i, n = 0, len(cf)
    while i < n:
        if cf[i] > release_ratio * thr[i]:
            j, reached = i, False
            while j < n and cf[j] > release_ratio * thr[j]:
                reached = reached or cf[j] > thr[j]
                j += 1
            if reached:
                starts.append(i)
                stops.append(j)
            i = j
        else:
            i += 1
    return starts, stops


@pytest.mark.parametrize("n", [1, 9, 40_003])
def test_trigger_matches_reference(n: int) -> None:
    cf = np.abs(np.convolve(rng.normal(0, 1, n + 30), np.ones(30) / 6, mode="valid"))[:n]   # runs of many samples
    thr = 0.8 + 0.4 * rng.random(n)
    got_s, got_e = trigger(cf, thr, release_ratio=0.5)
    ref_s, ref_e = ref_trigger(cf.tolist(), thr.tolist(), 0.5)
    assert_array_equal(got_s, ref_s)
    assert_array_equal(got_e, ref_e)
    if n > 1000:                                           # many runs, some dropped for never reaching thr
        assert len(ref_s) > 20 and len(true_runs(cf > 0.5 * thr)[0]) > len(ref_s)


@pytest.mark.parametrize(("t_first", "outage"), [(4.3, True), (-6.0, True), (0.0, False)])
def test_speed_and_distance_match_reference(t_first: float, outage: bool) -> None:
    from detect.motion import _GapInterp, _GridInterp, _speed_and_distance

    t0, fs, n = 1_780_000_000.0, 50.0, 6001
    t_fix = t0 + t_first + np.cumsum(rng.uniform(0.9, 1.1, 130))
    if outage:
        t_fix[70:] += 25.0                                   # an outage longer than max_gap: NaN speed
    t_fix[40] = t_fix[39]                                    # a repeated fix time
    v = np.abs(rng.normal(8.0, 4.0, 130))
    v[10:20] = 0.0                                           # a stop: the distance stands still, never goes back
    speed, dist, known = _speed_and_distance(t0, fs, n, t_fix, v, 10.0)
    ref_speed = _GapInterp(t0 + np.arange(n) / fs, t_fix, 10.0)(v)
    assert_array_equal(np.isnan(speed), np.isnan(ref_speed))
    ok = np.isfinite(ref_speed)
    assert_allclose(speed[ok], ref_speed[ok], rtol=0, atol=1e-5)    # the reference rounds epoch times to 0.2 us
    assert_allclose(speed[ok], _GridInterp(t0, fs, n, t_fix, 10.0)(v)[ok], rtol=1e-13, atol=1e-12)
    known_ref = [0.0 if math.isnan(x) else x for x in speed.tolist()]
    ref_dist, acc = [], 0.0
    for x in known_ref[1:]:
        acc += x
        ref_dist.append(acc / fs)
    assert dist[0] == 0.0
    assert_allclose(dist[1:], ref_dist, rtol=1e-12, atol=1e-9)
    assert known == (not np.isnan(speed).any())
    assert known is not outage                                # the grid lies within the fixes but for it
    assert np.all(np.diff(dist) >= 0.0)
    stop = slice(int(np.ceil((t_fix[10] - t0) * fs)) + 1, int((t_fix[19] - t0) * fs))    # between stopped fixes
    assert stop.stop - stop.start > 300 and np.all(speed[stop] == 0.0) and np.all(dist[stop] == dist[stop.start])


def test_unit_vectors_and_gravity_match_reference() -> None:
    from detect.orientation import _gravity, _unit

    v = rng.normal(size=(50, 3))
    v[3] = 0.0
    ref = [[x / max(math.sqrt(sum(c * c for c in row)), 1e-12) for x in row] for row in v.tolist()]
    assert_allclose(_unit(v), ref, rtol=1e-15, atol=1e-300)
    assert_allclose(_unit(v[5]), ref[5], rtol=1e-15)
    means = np.array([0.3, -0.2, 9.8]) + rng.normal(0, 0.05, (40, 3))
    means[[4, 9]] += [0.0, 5.0, 0.0]                        # braking blocks: not steady
    up, g = _gravity(means, 0.6)
    mags = sorted(math.dist(row, (0, 0, 0)) for row in means.tolist())
    typical = 0.5 * (mags[19] + mags[20])
    steady = [row for row in means.tolist() if abs(math.dist(row, (0, 0, 0)) - typical) < 0.6]
    assert len(steady) == 38
    g_ref = sorted(math.dist(row, (0, 0, 0)) for row in steady)
    assert g == pytest.approx(0.5 * (g_ref[18] + g_ref[19]), rel=1e-15)
    _, axes = np.linalg.eigh(np.cov(np.array(steady).T))               # medians along the principal axes
    along = [[sum(a * b for a, b in zip(row, axis, strict=True)) for row in steady] for axis in axes.T.tolist()]
    med = axes @ np.array([sorted(col)[19] * 0.5 + sorted(col)[18] * 0.5 for col in along])
    assert_allclose(up, med / np.linalg.norm(med), rtol=1e-12)


@pytest.mark.parametrize("accuracy_gaps", [False, True])
def test_position_at_matches_reference(accuracy_gaps: bool) -> None:
    from detect.motion import position_at

    gps_t = 100.0 + np.cumsum(rng.uniform(0.8, 1.2, 40))
    gps_t[25:] += 20.0                                        # an outage longer than max_gap
    lat, lon = 42.0 + np.cumsum(rng.uniform(0, 1e-4, 40)), -71.0 + np.cumsum(rng.uniform(0, 1e-4, 40))
    accuracy = rng.uniform(3.0, 9.0, 40)
    if accuracy_gaps:
        accuracy[[3, 4, 30]] = np.nan
    q = np.sort(rng.uniform(gps_t[0] - 8.0, gps_t[-1] + 8.0, 300))
    got = position_at(q, gps_t, lat, lon, accuracy, latency_s=0.3)

    def ref(t_fix: np.ndarray, v: np.ndarray) -> list[float]:
        out = []
        for x in q.tolist():
            k = int(np.searchsorted(t_fix, x, side="right"))
            left = t_fix[k - 1] if k > 0 else t_fix[0] - 5.0
            right = t_fix[k] if k < t_fix.size else t_fix[-1] + 5.0
            out.append(math.nan if right - left > 10.0 or x < t_fix[0] - 5.0 or x > t_fix[-1] + 5.0
                       else float(np.interp(x, t_fix, v)))
        return out

    t_fix = gps_t - 0.3
    ok = np.isfinite(accuracy)
    for g, r in zip(got, (ref(t_fix, lat), ref(t_fix, lon), ref(t_fix[ok], accuracy[ok])), strict=True):
        assert_allclose(g, r, rtol=1e-13, atol=0)          # NaN in the same places (assert_allclose checks that)
        assert np.isnan(g).any() and np.isfinite(g).any()


@pytest.mark.parametrize("m", [1, 2, 5, 3600, 3601])
def test_column_medians_match_reference(m: int) -> None:
    from detect.orientation import _column_medians

    x = rng.normal(size=(m, 3))
    x[m // 3, 1] = x[0, 1]                                   # a tie
    for got, col in zip(_column_medians(x).tolist(), x.T.tolist(), strict=True):
        s = sorted(col)
        assert got == (s[m // 2] if m % 2 else (s[m // 2 - 1] + s[m // 2]) / 2)
    x[m // 2, 2] = np.nan
    assert np.isnan(_column_medians(x)[2]) and not np.isnan(_column_medians(x)[:2]).any()


def ref_lfilter(b: list[float], a: list[float], x: list[float], z: list[float]) -> tuple[list[float], list[float]]:
    """scipy.signal.lfilter's recursion (transposed direct form II), one sample at a time."""
    b = [v / a[0] for v in b]
    a = [v / a[0] for v in a]
    z = list(z)
    y = []
    for xn in x:
        yn = z[0] + b[0] * xn
        for i in range(len(z) - 1):
            z[i] = z[i + 1] + b[i + 1] * xn - a[i + 1] * yn
        z[-1] = b[-1] * xn - a[-1] * yn
        y.append(yn)
    return y, z


def ref_filtfilt_row(row: list[float], b: list[float], a: list[float], zi: list[float], pad: int,
                     start: int) -> list[float]:
    """bandpass's definition: odd extension by ``pad``, forward then backward from steady states, columns from
    ``start`` on."""
    ext = [2 * row[0] - row[k] for k in range(pad, 0, -1)] + row + [2 * row[-1] - row[-2 - k] for k in range(pad)]
    y, _ = ref_lfilter(b, a, ext, [v * ext[0] for v in zi])
    y = y[::-1]
    y, _ = ref_lfilter(b, a, y, [v * y[0] for v in zi])
    return y[::-1][pad + start:pad + len(row)]


@pytest.mark.parametrize(("rows", "n", "start"),
                         [(1, 290, 0), (1, 290, 200), (1, 600, 599), (3, 98, 0), (3, 161, 37), (2, 130, 129)])
@pytest.mark.parametrize(("band_hz", "fs_hz"), [((3.0, 25.0), 100.0), ((0.5, 20.0), 100.0), ((3.0, 25.0), 200.0),
                                                ((0.4, 3.0), 25.0), ((0.5, 6.0), 50.0)])
def test_filtfilt_blocks_matches_reference(rows: int, n: int, start: int, band_hz: tuple[float, float],
                                           fs_hz: float) -> None:
    """The block form (first block partial or, at n = 98, whole; backward pass through the block holding
    ``start``; one row or several) against the sample-by-sample recursion."""
    from detect.clock import design_rate_hz
    from detect.filters import _block_filter, _filtfilt_blocks, _tf

    key = (*band_hz, design_rate_hz(fs_hz), 2)
    bf = _block_filter(*key)
    assert bf is not None                             # well conditioned: the block form is used for it
    b, a, zi = _tf(*key)
    x = np.cumsum(rng.normal(size=(rows, n)), axis=1) + 9.8
    got = _filtfilt_blocks(x, bf, zi, 15, start)
    assert got.shape == (rows, n - start) and got.flags.c_contiguous
    for r in range(rows):
        want = np.array(ref_filtfilt_row(x[r].tolist(), b.tolist(), a.tolist(), zi.tolist(), 15, start))
        assert_allclose(got[r], want, rtol=0, atol=1e-10 * np.sqrt(np.mean(want * want)))


@pytest.mark.parametrize("n_blocks", [1, 10, 37, 300])
def test_block_states_match_the_recursion(n_blocks: int) -> None:
    """Block by block (a few blocks) or by doubling (many), against the recursion one block at a time."""
    from detect.filters import _block_states

    step = np.array([[0.6, 0.3], [-0.3, 0.6]])
    v = rng.normal(size=(3, n_blocks, 2))
    want = v.tolist()
    for r in range(3):
        for k in range(1, n_blocks):                  # the recursion, one block and one state at a time
            prev = want[r][k - 1]
            want[r][k] = [want[r][k][j] + sum(prev[i] * step[i, j] for i in range(2)) for j in range(2)]
    _block_states(v, step)
    assert_allclose(v, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("band_hz", "fs_hz"), [((0.4, 3.0), 200.0), ((0.5, 6.0), 400.0)])
def test_ill_conditioned_designs_keep_lfilter(band_hz: tuple[float, float], fs_hz: float) -> None:
    """Low band edges at a high rate: neither the block form nor the edge maps are trusted, and bandpass still
    matches the sections."""
    from scipy import signal as sps

    from detect.clock import design_rate_hz
    from detect.filters import _block_filter, _edge_states, _sos, bandpass
    key = (*band_hz, design_rate_hz(fs_hz), 2)
    assert _block_filter(*key) is None and _edge_states(*key, 15) is None
    x = np.cumsum(rng.normal(size=(3, 3000)), axis=1)
    ref = sps.sosfiltfilt(_sos(*key), x, axis=1, padlen=15)
    assert_allclose(bandpass(x, band_hz, fs_hz, axis=1), ref, rtol=0, atol=1e-8 * np.std(ref))


@pytest.mark.parametrize(("shape", "start"), [((2, 20_000), 0), ((2, 20_000), 333), ((50_001,), 7)])
@pytest.mark.parametrize("band_hz", [(3.0, 25.0), (0.5, 20.0), (0.4, 3.0)])
def test_bandpass_in_blocks_matches_the_passes_over_the_extension(shape: tuple[int, ...], start: int,
                                                                  band_hz: tuple[float, float]) -> None:
    """Inputs large enough for the block form against lfilter over each row's concatenated extension."""
    from scipy import signal as sps

    from detect.filters import BLOCK_MIN_LENGTH, BLOCK_MIN_SAMPLES, _tf, bandpass
    x = np.cumsum(rng.normal(size=shape), axis=-1)
    assert shape[-1] >= BLOCK_MIN_LENGTH and x.size >= BLOCK_MIN_SAMPLES
    got = np.atleast_2d(bandpass(x, band_hz, 100.0, axis=-1, start=start))
    assert got.flags.c_contiguous and got.shape[-1] == shape[-1] - start
    b, a, zi = _tf(*band_hz, 100.0, 2)
    for row, got_row in zip(np.atleast_2d(x), got, strict=True):
        ext = np.concatenate([2 * row[0] - row[15:0:-1], row, 2 * row[-1] - row[-2:-17:-1]])
        y, _ = sps.lfilter(b, a, ext, zi=zi * ext[0])
        y, _ = sps.lfilter(b, a, y[::-1], zi=zi * y[-1])
        want = y[::-1][15 + start:15 + row.size]
        assert_allclose(got_row, want, rtol=0, atol=1e-10 * np.sqrt(np.mean(want * want)))


def test_modal_basis_makes_the_step_block_diagonal() -> None:
    from detect.clock import design_rate_hz
    from detect.filters import _block_filter

    bf = _block_filter(0.5, 20.0, design_rate_hz(100.0), 2)
    assert bf is not None
    step = bf.step
    assert abs(step[0, 2]) + abs(step[0, 3]) + abs(step[2, 0]) + abs(step[3, 1]) < 1e-9 * np.abs(step).max()
    assert_allclose(abs(step[0, 0]), abs(step[1, 1]), rtol=1e-9)   # a scaled rotation per pole pair


@pytest.mark.parametrize("n_win", [12, 13, 24])
def test_moving_rms_across_chunks_matches_reference(n_win: int) -> None:
    from detect.arrays import CHUNK_SAMPLES
    x = rng.normal(size=CHUNK_SAMPLES + 1000)
    got = moving_rms(x, n_win)
    check = np.r_[0:50, CHUNK_SAMPLES - 30:CHUNK_SAMPLES + 30, x.size - 50:x.size]   # ends and the chunk seam
    assert_allclose(got[check], moving_rms_twin(x, n_win, check), rtol=1e-12)


def test_threshold_across_chunks_matches_reference() -> None:
    from detect.arrays import CHUNK_SAMPLES
    from detect.events import speed_floor, threshold

    n = CHUNK_SAMPLES + 777
    cf = np.abs(rng.normal(0, 0.3, n))
    speed = np.linspace(0.0, 30.0, n)
    speed[CHUNK_SAMPLES - 100:CHUNK_SAMPLES + 100] = np.nan
    thr, bg = threshold(cf, speed_floor(speed, 0.4, 15.0), 100.0, background_window_s=5.0, ratio=2.5)
    ref = [max(2.5 * b, 0.4 * (1.0 + (0.0 if math.isnan(v) else v) / 15.0))
           for b, v in zip(bg.tolist(), speed.tolist(), strict=True)]
    assert_allclose(thr, ref, rtol=1e-14)


def test_resample_uniform_interpolates_when_a_late_chunk_is_off_grid() -> None:
    from detect.arrays import CHUNK_SAMPLES
    n = CHUNK_SAMPLES + 500
    t = 1_780_000_000.0 + np.arange(n) / 100.0
    v = rng.normal(size=n)
    t_off = t.copy()
    t_off[CHUNK_SAMPLES + 10] += 3e-3                 # 30 % of a step, in the second chunk only
    _, same, _ = resample_uniform(t, v, 100.0, 0.25)
    _, moved, _ = resample_uniform(t_off, v, 100.0, 0.25)
    assert same is v and moved is not v                # the one sample off the grid makes it interpolate


@pytest.mark.parametrize("n_runs", [1, 7, 900])
def test_lines_over_runs_match_reference(n_runs: int) -> None:
    """Runs of 0 to ~100 samples (empty ones too), across chunk seams; NaN lines stay NaN."""
    from detect.arrays import lines_over_runs
    counts = rng.integers(0, 100, n_runs)
    a, b = rng.normal(size=n_runs), rng.normal(size=n_runs)
    a[n_runs // 2] = np.nan
    got = lines_over_runs(a, b, counts)
    ref = [float(bk) * i + float(ak) for i, (ak, bk) in enumerate(
        (ak, bk) for ak, bk, c in zip(a.tolist(), b.tolist(), counts.tolist(), strict=True) for _ in range(c))]
    assert_array_equal(got, ref)                      # the same two roundings as numpy's passes


@pytest.mark.parametrize("kind", ["smooth", "ties", "plateau", "odd", "small", "sample_misses"])
def test_median_matches_numpy(kind: str) -> None:
    """The bracketed median against np.median, including a bracket from an unrepresentative sample (fallback)."""
    from detect.running import median
    n = 100_001 if kind == "odd" else 100_000
    x = np.cumsum(rng.normal(size=n)) if kind != "small" else rng.normal(size=501)
    if kind == "ties":
        x = np.round(x / 10.0)
    elif kind == "plateau":
        x[30_000:80_000] = np.median(x)
    elif kind == "sample_misses":                     # every 64th value (the sample) far below the rest
        x = rng.uniform(10.0, 11.0, n)
        x[::64] = 0.0
    assert median(x) == np.median(x)


@pytest.mark.parametrize(("size", "k"), [(1, 5), (4, 5), (3600, 5), (500, 61), (37, 1), (200, 7)])
def test_running_median_matches_ndimage(size: int, k: int) -> None:
    from scipy import ndimage

    from detect.running import running_median
    x = rng.normal(size=size)
    x[size // 3:size // 2] = 1.0                      # ties
    assert_array_equal(running_median(x, k), ndimage.median_filter(x, size=k, mode="nearest"))
    x[size // 2] = np.nan                             # with NaN: ndimage's own order
    assert_array_equal(running_median(x, k), ndimage.median_filter(x, size=k, mode="nearest"))


def test_orientation_helpers_match_numpy() -> None:
    """The set-up-free cross product, covariance and median of detect.orientation against numpy, bit for bit."""
    from detect.orientation import _cov_columns, _cross, _median

    for _ in range(20):
        a, b = rng.normal(size=3), rng.normal(size=3)
        assert_array_equal(_cross(a, b), np.cross(a, b))
        h = rng.normal(size=(int(rng.integers(3, 4000)), 2))
        assert_array_equal(_cov_columns(h), np.cov(h.T))
        x = rng.normal(size=int(rng.integers(1, 4000)))
        assert _median(x) == np.median(x)
    x[0] = np.nan
    assert math.isnan(_median(x))


def _driving_levels_reference(bg: np.ndarray, level: np.ndarray, step: int, speed: np.ndarray, valid: np.ndarray,
                              min_speed_mps: float, still_ratio: float) -> tuple[float, float]:
    """driving_levels one block at a time."""
    rows = [(float(bg[i]), float(level[i // step]), float(speed[i])) for i in range(0, bg.size, step) if valid[i]]
    loud = sorted(lv for _, lv, _ in rows)
    still = still_ratio * float(np.quantile(loud, LOUD_QUANTILE))
    moving = [b for b, lv, v in rows if (v >= min_speed_mps if math.isfinite(v) else lv >= still)]
    return float(np.median(moving or [b for b, _, _ in rows])), still


@pytest.mark.parametrize("fs_hz", [5.0, 100.0, 200.0])
def test_driving_levels_match_reference(fs_hz: float) -> None:
    rng = np.random.default_rng(3)
    n = int(600 * fs_hz)
    bg = np.exp(rng.normal(-1.5, 0.6, n))
    step = max(1, round(fs_hz / 4))
    level = np.exp(rng.normal(-1.0, 0.8, -(-n // step)))
    speed = rng.uniform(0, 15, n)
    speed[: n // 3] = np.nan                                # no fix yet
    valid = rng.random(n) > 0.05
    got = driving_levels(bg, level, step, speed, valid, min_speed_mps=2.5, still_ratio=0.1)
    assert_allclose(got, _driving_levels_reference(bg, level, step, speed, valid, 2.5, 0.1), rtol=1e-12)


def _vibration_level_reference(a: np.ndarray, valid: np.ndarray, fs_hz: float, window_s: float) -> np.ndarray:
    step = max(1, round(fs_hz * LEVEL_BLOCK_S))
    rms = [math.sqrt(sum((float(a[i]) ** 2 if valid[i] else 0.0) for i in range(j, min(j + step, a.size)))
                     / min(step, a.size - j)) for j in range(0, a.size, step)]
    k = max(1, round(window_s / LEVEL_BLOCK_S))
    k += (k + 1) % 2
    return ndimage.median_filter(np.array(rms), size=k, mode="nearest")


@pytest.mark.parametrize("fs_hz", [5.0, 50.0, 200.0])
def test_vibration_level_matches_reference(fs_hz: float) -> None:
    rng = np.random.default_rng(6)
    n = int(90 * fs_hz) + 3                                 # a partial last block
    a = rng.normal(0, 0.3, n) * np.where(np.arange(n) < n // 2, 0.1, 1.0)
    valid = rng.random(n) > 0.02
    level, step = vibration_level(a, valid, fs_hz, 5.0)
    assert step == max(1, round(fs_hz * LEVEL_BLOCK_S))
    assert_allclose(level, _vibration_level_reference(a, valid, fs_hz, 5.0), rtol=1e-10)


def test_parked_minutes_do_not_lower_the_typical_level() -> None:
    # 20 min of engine idle (0.01 m/s^2) before 10 min of driving (~0.3 m/s^2): the typical level is the driving's,
    # with GPS speed and without (by the quiet idle vibration), and the idle is below the still level
    fs, rng = 50.0, np.random.default_rng(4)
    idle, drive = int(1200 * fs), int(600 * fs)
    a = np.concatenate([rng.normal(0, 0.01, idle), rng.normal(0, 0.3, drive)])
    valid = np.ones(a.size, dtype=bool)
    level, step = vibration_level(a, valid, fs, 5.0)
    bg = np.concatenate([rng.uniform(0.008, 0.012, idle), rng.uniform(0.2, 0.4, drive)])   # any background
    for speed in (np.concatenate([np.zeros(idle), np.full(drive, 12.0)]), np.full(a.size, np.nan)):
        typical, still = driving_levels(bg, level, step, speed, valid, min_speed_mps=2.5, still_ratio=0.1)
        assert 0.28 < typical < 0.32
        assert 0.012 < still < 0.04


def _levinson_reference(r: list[float]) -> list[float]:
    """Levinson-Durbin recursion, one coefficient at a time: AR coefficients a_1..a_p from r_0..r_p."""
    a: list[float] = []
    err = r[0]
    for m in range(1, len(r)):
        k = (r[m] - sum(a[j] * r[m - 1 - j] for j in range(len(a)))) / err
        a = [a[j] - k * a[m - 2 - j] for j in range(len(a))] + [k]
        err *= 1.0 - k * k
    return a


def _pef_reference(x: np.ndarray, order: int) -> np.ndarray:
    """prediction_error_filter of a short series (fitted whole), sample by sample."""
    rms = math.sqrt(sum(float(v) ** 2 for v in x) / x.size)
    c = [min(max(float(v), -WHITEN_CLIP_SIGMA * rms), WHITEN_CLIP_SIGMA * rms) for v in x]
    r = [sum(c[i] * c[i + k] for i in range(len(c) - k)) / len(c) for k in range(order + 1)]
    return np.array([1.0] + [-a for a in _levinson_reference(r)])


@pytest.mark.parametrize("order", [1, 4, 8])
def test_prediction_error_filter_matches_levinson_reference(order: int) -> None:
    rng = np.random.default_rng(order)
    x = signal.lfilter([1.0], [1.0, -1.2, 0.8], rng.normal(size=3000))   # a resonance
    x[[500, 1700]] = 40.0                                                # two impacts: clipped
    assert_allclose(prediction_error_filter(x, order), _pef_reference(x, order), rtol=1e-9, atol=1e-12)


def test_prediction_error_filter_finds_the_resonance_and_refuses_too_little() -> None:
    rng = np.random.default_rng(11)
    x = signal.lfilter([1.0], [1.0, -1.2, 0.8], rng.normal(size=200_000))   # longer than the fit's sample
    assert_allclose(prediction_error_filter(x, 2), [1.0, -1.2, 0.8], atol=0.02)
    use = np.ones(x.size, dtype=bool)
    use[::5000] = False                                     # runs with a gap left out of the fit
    assert_allclose(prediction_error_filter(x, 2, use), [1.0, -1.2, 0.8], atol=0.02)
    assert prediction_error_filter(x[:25], 2) is None       # fewer than 10 (p + 1) samples
    assert prediction_error_filter(np.zeros(1000), 2) is None


def _whiten_reference(x: np.ndarray, taps_of: list[np.ndarray], starts: list[int]) -> np.ndarray:
    """FIR per segment, sample by sample, its taps scaled so that a stationary input keeps its power (the
    output's power from the input's autocorrelation: sum_ij t_i t_j r(|i - j|))."""
    out = np.zeros(x.size)
    bounds = [*starts, x.size]
    for s, e, taps in zip(bounds[:-1], bounds[1:], taps_of, strict=True):
        seg = [float(v) for v in x[s:e]]
        r = [sum(seg[i] * seg[i + k] for i in range(len(seg) - k)) for k in range(taps.size)]
        power = sum(taps[i] * taps[j] * r[abs(i - j)] for i in range(taps.size) for j in range(taps.size))
        g = math.sqrt(r[0] / power)
        for i in range(s, e):
            out[i] = g * sum(taps[k] * x[i - k] for k in range(taps.size) if i - k >= s)
    return out


def test_whiten_matches_reference_per_mount_segment() -> None:
    rng = np.random.default_rng(12)
    n = 6000
    fit = np.concatenate([signal.lfilter([1.0], [1.0, -1.2, 0.8], rng.normal(size=n // 2)),
                          signal.lfilter([1.0], [1.0, 0.5, 0.6], rng.normal(size=n // 2))])  # re-mounted at n/2
    x = fit + rng.normal(0, 0.1, n)
    use = rng.random(n) > 0.1
    starts = [0, n // 2]
    got = whiten(x, fit, use, np.array(starts), 4)
    taps = [prediction_error_filter(fit[s:e], 4, use[s:e]) for s, e in ((0, n // 2), (n // 2, n))]
    assert_allclose(got, _whiten_reference(x, taps, starts), rtol=1e-9, atol=1e-12)
    # a segment too short for a model takes the trip's; no model at all leaves the signal as it is
    short = whiten(x, fit, use, np.array([0, 20]), 4)
    assert_allclose(short[:20], _whiten_reference(x[:20], [prediction_error_filter(fit, 4, use)], [0]),
                    rtol=1e-9)
    assert_array_equal(whiten(x[:30], fit[:30], use[:30], np.array([0]), 4), x[:30])


def test_whitening_lifts_an_impact_out_of_a_ringing_mount() -> None:
    """A mount ringing at 12 Hz (Q ~ 5) under road noise, one short knock: after whitening, the knock's short-term
    RMS stands further above the median level (the ringing predicts itself, the knock's onset does not)."""
    fs = 50.0
    rng = np.random.default_rng(13)
    n = int(300 * fs)
    w0, zeta = 2 * np.pi * 12.0 / fs, 0.1
    ring = signal.lfilter([1.0], [1.0, -2 * np.exp(-zeta * w0) * np.cos(w0), np.exp(-2 * zeta * w0)],
                          rng.normal(0, 0.2, n))
    knock = np.zeros(n)
    knock[n // 2] = 2.5
    x = ring + signal.lfilter([1.0], [1.0, -2 * np.exp(-zeta * w0) * np.cos(w0), np.exp(-2 * zeta * w0)], knock)
    x[n // 2] += 2.5                                        # the wheel's own jolt, not only the mount's answer

    def contrast(y: np.ndarray) -> float:
        e = np.convolve(y * y, np.ones(6) / 6, mode="same")
        return float(np.sqrt(e[n // 2 - 3:n // 2 + 6].max() / np.median(e)))

    whitened = whiten(x, x, np.ones(n, dtype=bool), np.array([0]), 8)
    assert contrast(whitened) > 1.2 * contrast(x)


def test_orientation_turns_with_the_phone() -> None:
    """The car frame found in a turned phone is the same car frame turned: no step depends on the axes the phone
    happens to report in (a component-wise median would)."""
    from scipy.spatial.transform import Rotation

    from detect.orientation import orient

    rng = np.random.default_rng(8)
    fs, n = 50.0, 50 * 600
    t = np.arange(n) / fs
    fwd = 0.8 * np.sin(2 * np.pi * t / 40.0) + rng.normal(0, 0.3, n)            # braking and accelerating
    lat = 1.5 * np.sin(2 * np.pi * t / 90.0) ** 3 + rng.normal(0, 0.3, n)       # turns, skewed
    car = np.column_stack([fwd, lat, 9.80665 + rng.normal(0, 0.5, n)])
    dvdt = (0.8 * np.sin(2 * np.pi * t / 40.0))
    base = Rotation.from_euler("xyz", (20, -10, 35), degrees=True).apply(car)
    ref = orient(base, fs, dvdt_mps2=dvdt)
    for angles in ((90, 0, 0), (0, 180, 0), (33, 71, -128)):
        turn = Rotation.from_euler("xyz", angles, degrees=True)
        got = orient(turn.apply(base), fs, dvdt_mps2=dvdt)
        for name in ("up", "forward", "left"):
            assert_allclose(getattr(got, name), turn.apply(getattr(ref, name)), atol=1e-9, err_msg=name)


@pytest.mark.parametrize("step", [1, 4, 5])
def test_car_tilt_deg_matches_reference(step: int) -> None:
    from types import SimpleNamespace

    from detect.features import car_tilt_deg

    n, half = 2_000, 100
    acc = np.abs(rng.normal(0.0, 2.0, -(-n // step)))
    acc[rng.random(acc.size) < 0.2] = np.nan                           # GPS could not tell there
    sig = SimpleNamespace(car_accel_mps2=acc, car_accel_step=step)
    i_peak = np.array([0, 3, 150, 777, 1_000, n - 60, n - 1])
    near = [[acc[min(max(j, 0), n - 1) // step] for j in range(ip - half, ip + half + 1)] for ip in i_peak.tolist()]
    ref = [math.degrees(math.atan(max(0.0 if math.isnan(a) else a for a in row) / 9.80665)) for row in near]
    assert_allclose(car_tilt_deg(sig, i_peak, half), ref, rtol=0, atol=1e-12)
    braking = SimpleNamespace(car_accel_mps2=np.full(10, 3.5), car_accel_step=step)
    assert 19.0 < car_tilt_deg(braking, np.array([5]), 2)[0] < 20.0     # 3.5 m/s^2 reads like a phone in a hand
    assert car_tilt_deg(SimpleNamespace(car_accel_mps2=np.empty(0), car_accel_step=1), i_peak, half).tolist() == \
        [0.0] * i_peak.size                                            # without GPS nothing is explained


def test_quiet_coherence_is_high_only_where_a_mount_rings_every_axis_together() -> None:
    """A cradle ringing at 5 Hz moves the lateral and vertical axes in one narrow band: their correlation over an
    event's window is high by chance there, and low for a firm mount's broadband road noise."""
    from types import SimpleNamespace

    from scipy import signal as sps

    from detect.features import quiet_coherence

    fs, n = 100.0, 60_000
    sos = sps.butter(2, (4.5, 5.5), btype="bandpass", fs=fs, output="sos")
    ring = sps.sosfilt(sos, rng.normal(0.0, 1.0, n))
    firm = SimpleNamespace(fs_hz=fs, a_impact_mps2=rng.normal(0.0, 0.3, n), a_left_mps2=rng.normal(0.0, 0.3, n))
    floppy = SimpleNamespace(fs_hz=fs, a_impact_mps2=ring + rng.normal(0.0, 0.05, n),
                             a_left_mps2=0.5 * ring + rng.normal(0.0, 0.05, n))
    starts = np.arange(1_000, n - 1_000, 900)
    kw = {"motion_band_hz": (0.5, 20.0)}
    assert np.quantile(quiet_coherence(firm, starts, 10, **kw), 0.9) < 0.5
    assert np.quantile(quiet_coherence(floppy, starts, 10, **kw), 0.9) > 0.8


# ------------------------------------------------------------------------------------------------ axle-paired score
def _axle_paired_score_twin(snr_up, horizontal, speed, fs, band, *, window_s, background_window_s, wheelbase_m,
                            spread_m, min_speed_mps):
    """Sample by sample: the three axes' SNRs combined, then the smaller of now and the best of the rear axle's
    lags."""
    from detect.filters import bandpass
    from detect.running import moving_rms, running_background
    n = snr_up.size
    axes = [list(snr_up)]
    for a in horizontal:
        rms = moving_rms(bandpass(a, band, fs), max(2, round(window_s * fs)))
        bg = running_background(rms, fs, background_window_s)
        axes.append([r / max(b, 1e-3) for r, b in zip(rms, bg, strict=True)])
    s = [math.sqrt(sum(ax[i] ** 2 for ax in axes) / len(axes)) for i in range(n)]
    out = []
    for i in range(n):
        known = math.isfinite(speed[i])
        v = max(speed[i] if known else min_speed_mps, min_speed_mps)
        near = max(wheelbase_m - spread_m, 0.5)
        near_s = near / v if known else near / 30.0
        far_s = (wheelbase_m + spread_m) / v
        lags = [near_s + (far_s - near_s) * k / 4 for k in range(5)]
        rear = max(s[min(i + round(lag * fs), n - 1)] for lag in lags)
        out.append(min(s[i], rear))
    return np.array(out)


@pytest.mark.parametrize("fs_hz", [10.0, 100.0])
def test_axle_paired_score_matches_its_twin(fs_hz: float) -> None:
    from detect.events import AxlePairing, three_axis_score
    rng = np.random.default_rng(3)
    n = round(40 * fs_hz)
    snr = np.abs(rng.normal(1.0, 0.5, n))
    horizontal = (rng.normal(0.0, 1.0, n), rng.normal(0.0, 0.5, n))
    speed = np.linspace(1.0, 20.0, n)
    speed[n // 3: n // 2] = np.nan                     # no GPS for a while
    band = (3.0, min(25.0, 0.45 * fs_hz))
    kw = dict(window_s=0.12, background_window_s=5.0, wheelbase_m=2.7, spread_m=0.5, min_speed_mps=2.5)
    pairing = AxlePairing(kw["wheelbase_m"], kw["spread_m"], kw["min_speed_mps"])
    unpaired = three_axis_score(snr, horizontal, fs_hz, band, window_s=kw["window_s"],
                                background_window_s=kw["background_window_s"])
    fast = pairing.paired(unpaired, speed, fs_hz)
    assert_allclose(fast, _axle_paired_score_twin(snr, horizontal, speed, fs_hz, band, **kw), rtol=1e-12)
    assert fast.max() > 0.5


def test_axle_pairing_at_some_samples_is_the_full_pairing_there() -> None:
    from detect.arrays import CHUNK_SAMPLES
    from detect.events import AxlePairing
    rng = np.random.default_rng(5)
    n = 3 * CHUNK_SAMPLES + 17                         # several chunks of samples, and of indices below
    s = np.abs(rng.normal(1.0, 0.5, n))
    speed = rng.uniform(0.0, 25.0, n)
    speed[::7] = np.nan
    pairing = AxlePairing(wheelbase_m=2.7, spread_m=0.5, min_speed_mps=2.5)
    full = pairing.paired(s, speed, 100.0)
    assert (full < s).mean() > 0.1                     # the rear axle's lags lower some samples
    at = np.sort(rng.choice(n, size=2 * CHUNK_SAMPLES + 5, replace=False))
    assert_array_equal(pairing.paired(s, speed, 100.0, at), full[at])
    assert pairing.paired(s, speed, 100.0, np.empty(0, dtype=np.int64)).size == 0
