"""The chunked moving RMS (detect.running.moving_rms) against a slow twin, where its chunks meet the signal's ends.

Each chunk squares the samples its own windows cover, so chunks next to either end repeat the first or last
sample themselves, and a window may be wider than the whole signal.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose
from test_detect_kernels import moving_rms_twin

from detect.arrays import CHUNK_SAMPLES
from detect.running import moving_rms


@pytest.mark.parametrize(("size", "n_win"), [(1, 1), (1, 7), (5, 12), (40, 200), (CHUNK_SAMPLES - 3, 12),
                                             (CHUNK_SAMPLES, 13), (CHUNK_SAMPLES + 2, 12), (2 * CHUNK_SAMPLES + 5, 24)])
def test_moving_rms_matches_the_twin_at_ends_and_seams(size: int, n_win: int) -> None:
    x = np.random.default_rng(size + n_win).normal(3.0, 1.0, size)
    got = moving_rms(x, n_win)
    seams = [c + d for c in range(0, size, CHUNK_SAMPLES) for d in range(-n_win, n_win)]
    at = np.unique(np.clip(np.r_[0:30, size - 30:size, seams], 0, size - 1))
    assert got.shape == x.shape
    assert_allclose(got[at], moving_rms_twin(x, n_win, at), rtol=1e-12)


def test_moving_rms_of_a_strided_view_equals_that_of_its_copy() -> None:
    x = np.random.default_rng(3).normal(size=3 * (CHUNK_SAMPLES + 11))[::3]
    np.testing.assert_array_equal(moving_rms(x, 12), moving_rms(x.copy(), 12))


def test_moving_rms_writes_no_signal_long_array_besides_its_output() -> None:
    """The squares are made a chunk at a time: the peak of what it allocates stays near its output's size."""
    x = np.random.default_rng(4).normal(size=16 * CHUNK_SAMPLES)
    moving_rms(x, 12)                                   # warm-up (lazy imports, caches)
    tracemalloc.start()
    try:
        moving_rms(x, 12)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * x.nbytes                        # the output, and a few chunks of work space
