"""Whether a gyroscope sits on the blocks' clock (detect.roughness._regular_blocks), checked a chunk of blocks at a
time, against a loop over every sample's block: long clocks whose one misplaced sample lies in a later chunk."""

from __future__ import annotations

import numpy as np
import pytest

from detect.arrays import CHUNK_SAMPLES
from detect.roughness import _block_index, _regular_blocks


def regular_twin(t: np.ndarray, t0: float, step: float, n_blocks: int) -> tuple[int, int] | None:
    """Slow twin: every sample's block (:func:`_block_index`), then block ``i`` must hold exactly the samples
    ``lo + i c ... lo + i c + c - 1`` and no sample outside them may fall in a block."""
    k = _block_index(t, t0, step)
    inside = np.flatnonzero((k >= 0) & (k < n_blocks))
    if inside.size == 0 or inside.size % n_blocks:
        return None
    lo, c = int(inside[0]), inside.size // n_blocks
    if inside[-1] != lo + c * n_blocks - 1:
        return None
    return (lo, c) if np.array_equal(k[lo:lo + c * n_blocks], np.repeat(np.arange(n_blocks), c)) else None


@pytest.mark.parametrize("per_block", [1, 4, 8])
@pytest.mark.parametrize("moved", [None, "first_chunk", "later_chunk", "last_block"])
def test_regular_blocks_match_the_twin_over_several_chunks(per_block: int, moved: str | None) -> None:
    fs = 100.0
    n_blocks = 3 * CHUNK_SAMPLES // per_block + 17                    # more than two chunks of blocks
    t = 1_780_000_000.0 + (np.arange(per_block * n_blocks + 5) - 2) / fs
    t += np.random.default_rng(per_block).uniform(-0.2, 0.2, t.size) / fs
    step, t0 = per_block / fs, 1_780_000_000.0 - 0.5 / fs
    if moved is not None:                                              # a block's last sample into the next block
        i = {"first_chunk": 40, "later_chunk": 2 * CHUNK_SAMPLES // per_block + 5, "last_block": n_blocks - 2}[moved]
        j = 2 + i * per_block + per_block - 1
        t[j] = t0 + (i + 1) * step + 1e-4
        t = np.sort(t)
    want = regular_twin(t, t0, step, n_blocks)
    assert _regular_blocks(t, t0, step, n_blocks) == want
    assert (want is None) == (moved is not None)                        # the twin sees what was done
