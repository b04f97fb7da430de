"""The lever-arm fit (detect.roughness._lever_arm_fit_rows) when every sample of a segment is used: the rows are
read in place, not copied, and give the least squares of the used samples exactly as a copy of them does."""

from __future__ import annotations

import numpy as np
import pytest

from detect.roughness import _lever_arm_fit_rows


def _band(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rows (a_up, roll acc., pitch acc.) of a phone 0.4 m left and 1.1 m ahead of mid-wheelbase, with heave."""
    band = rng.normal(size=(3, n))
    band[0] += 0.4 * band[1] - 1.1 * band[2]
    return band


def fit_of_the_used_copy(band: np.ndarray, use: np.ndarray) -> tuple[float, float]:
    """Twin: the normal equations from dot products of a compressed copy of the used samples, then least squares."""
    used = np.compress(use, band, axis=1)
    gram = np.array([[np.dot(used[i], used[j]) for j in range(3)] for i in range(3)])
    beta, *_ = np.linalg.lstsq(gram[1:, 1:], gram[1:, 0], rcond=None)
    return float(-beta[1]), float(beta[0])


def test_fit_with_every_sample_used_is_least_squares_on_all_of_them() -> None:
    rng = np.random.default_rng(31)
    band = _band(rng, 3000)
    use = np.ones(3000, dtype=bool)
    beta, *_ = np.linalg.lstsq(band[1:].T, band[0], rcond=None)      # twin: least squares on the samples
    ahead, left = _lever_arm_fit_rows(band, use, 1.0, min_fit_s=10.0)
    assert (left, -ahead) == pytest.approx(tuple(beta), rel=1e-9)
    assert (ahead, left) == pytest.approx((1.1, 0.4), abs=0.1)


def test_fit_of_a_segment_view_equals_the_fit_of_a_copy_bit_for_bit() -> None:
    """A mount segment's columns (a view whose rows are a whole trip apart) and a mask with every sample: the same
    floats as the fit of the compressed copy the general path makes, and a mask with one sample out differs."""
    rng = np.random.default_rng(32)
    trip = _band(rng, 5000)
    segment = trip[:, 1200:4200]
    use = np.ones(segment.shape[1], dtype=bool)
    got = _lever_arm_fit_rows(segment, use, 1.0, min_fit_s=10.0)
    assert got == fit_of_the_used_copy(segment, use)
    one_out = use.copy()
    one_out[1777] = False
    segment[:, 1777] *= 1e3                                             # a loud sample, left out by the mask
    assert _lever_arm_fit_rows(segment, one_out, 1.0, min_fit_s=10.0) == pytest.approx(got, rel=1e-2)
    assert _lever_arm_fit_rows(segment, use, 1.0, min_fit_s=10.0) != pytest.approx(got, rel=1e-2)
