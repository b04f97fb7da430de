"""Resampling a phone's clock onto the grid (detect.clock.resample_uniform) chunk by chunk of grid samples,
against a slow twin and against the whole-signal form of the same interpolation, across chunk seams and gaps."""

from __future__ import annotations

import bisect

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from detect.arrays import CHUNK_SAMPLES
from detect.clock import resample_uniform


def phone_clock(n: int, fs_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Epoch times [s] of ``n`` samples at about ``fs_hz``: jittered, 1 % dropped, and a 2-s gap."""
    t = 1_780_000_000.0 + np.arange(n) / fs_hz + rng.normal(0.0, 0.1 / fs_hz, n)
    t = np.sort(t[rng.random(n) > 0.01])
    return np.delete(t, np.r_[n // 3:n // 3 + int(2 * fs_hz)])


def interp_twin(t_s: np.ndarray, v: np.ndarray, fs_hz: float, at: np.ndarray, gap_s: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Slow twin at the grid samples ``at`` (grid time ``t_s[0] + i / fs_hz``), one at a time in grid steps: the
    straight line between the last sample at or before it and the next (the first or last interval beyond the ends),
    and whether those two are at most ``gap_s`` apart."""
    steps = [(x - t_s[0]) * fs_hz for x in t_s.tolist()]               # sample times in grid steps
    below = [s - 1e-9 for s in steps]
    out, ok = [], []
    for g in at.tolist():
        i = min(max(bisect.bisect_right(below, g), 1), len(steps) - 1)   # samples at or before the grid time
        frac = min(max((g - steps[i - 1]) / (steps[i] - steps[i - 1]), 0.0), 1.0)
        out.append(v[i - 1] + frac * (v[i] - v[i - 1]))
        ok.append(steps[i] - steps[i - 1] <= gap_s * fs_hz)
    return np.array(out), np.array(ok)


@pytest.mark.parametrize("columns", [None, 3])
def test_resampled_phone_clock_matches_the_twin_across_chunk_seams(columns: int | None) -> None:
    rng = np.random.default_rng(41)
    fs = 100.0
    t = phone_clock(2 * CHUNK_SAMPLES + 900, fs, rng)
    v = rng.normal(size=t.size if columns is None else (t.size, columns))
    t_grid, got, valid = resample_uniform(t, v, fs, 0.25)
    assert got.shape == (t_grid.size, *v.shape[1:]) and got.dtype == np.float64
    seams = [c + d for c in range(0, t_grid.size, CHUNK_SAMPLES) for d in range(-3, 3)]
    gap = np.flatnonzero(~valid)
    check = np.unique(np.clip(np.r_[0:20, seams, gap[0] - 2:gap[-1] + 3, t_grid.size - 20:t_grid.size],
                              0, t_grid.size - 1))
    want, want_ok = interp_twin(t, v, fs, check, 0.25)
    assert_allclose(got[check], want, rtol=1e-9, atol=1e-12)
    assert_array_equal(valid[check], want_ok)
    assert 150 <= gap.size <= 250                                        # the 2-s hole, and only it


def test_chunked_interpolation_equals_the_whole_signal_form_bit_for_bit() -> None:
    """The same floats as interpolating the whole signal in one go (the form before the chunks)."""
    rng = np.random.default_rng(42)
    fs = 100.0
    t = phone_clock(CHUNK_SAMPLES + 5000, fs, rng)
    v = rng.normal(size=(t.size, 3))
    t_grid, got, valid = resample_uniform(t, v, fs, 0.25)
    rel = (t - t[0]) * fs
    pos = np.clip(np.ceil(rel - 1e-9).astype(np.int64), 0, t_grid.size)
    idx = np.clip(np.cumsum(np.bincount(pos, minlength=t_grid.size + 1)[:t_grid.size]), 1, t.size - 1)
    left = rel[idx - 1]
    span = rel[idx] - left
    frac = np.clip((np.arange(t_grid.size) - left) / span, 0.0, 1.0)
    want = v[idx - 1] + 0.0
    want += (v[idx] - v[idx - 1]) * frac[:, None]
    whole = v[idx] - v[idx - 1]
    whole *= frac[:, None]
    whole += v[idx - 1]
    assert_array_equal(got, whole)
    assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert_array_equal(valid, span <= 0.25 * fs)


def test_decimation_still_averages_each_grid_interval() -> None:
    """Input three times faster than the grid takes the other branch (box means), untouched by the chunks."""
    t = 1_780_000_000.0 + np.arange(30_000) / 300.0
    v = np.sin(2 * np.pi * 0.5 * (t - t[0]))
    t_grid, got, valid = resample_uniform(t, v, 100.0, 0.25)
    assert valid.all() and t_grid.size == 10_000
    assert_allclose(got[5:-5], np.sin(2 * np.pi * 0.5 * (t_grid[5:-5] - t[0])), atol=1e-4)


def test_an_interval_of_exactly_the_gap_is_still_data() -> None:
    """Times on a 64 Hz clock (exact in binary): an interval of exactly ``gap_s`` keeps its grid samples valid, one
    step longer does not."""
    k = np.delete(np.arange(3 * CHUNK_SAMPLES // 2), np.r_[101:116, CHUNK_SAMPLES + 201:CHUNK_SAMPLES + 217])
    t = 1024.0 + k / 64.0                                               # 16 steps from 100 to 116, 17 from 200 on
    _, got, valid = resample_uniform(t, np.sin(k / 9.0), 64.0, 0.25)
    assert_array_equal(np.flatnonzero(~valid), np.arange(CHUNK_SAMPLES + 200, CHUNK_SAMPLES + 217))
    assert_allclose(got[100:117], np.interp(np.arange(100, 117), [100, 116], np.sin(np.array([100, 116]) / 9.0)),
                    rtol=1e-12)
