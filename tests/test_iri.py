"""detect.iri.golden_car_iri: the vectorised Golden Car against a slow ASTM E1926 loop and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from detect.iri import ProfileError, golden_car_iri, rectified_slope

V_MPS = 80.0 / 3.6
K1, K2, C, MU = 653.0, 63.3, 6.0, 0.15      # Golden Car per unit sprung mass (Sayers 1995)


def golden_car_ab() -> tuple[np.ndarray, np.ndarray]:
    a = np.array([[0, 1, 0, 0], [-K2, -C, K2, C], [0, 0, 0, 1], [K2 / MU, C / MU, -(K1 + K2) / MU, -C / MU]], float)
    b = np.array([0, 0, 0, K1 / MU], float)
    return a, b


def iri_reference(profile_m: np.ndarray, dx_m: float) -> tuple[float, np.ndarray]:
    """ASTM E1926 written as the standard's loop, one step at a time: slow and obviously the standard."""
    a, b = golden_car_ab()
    st = expm(a * dx_m / V_MPS)
    pr = np.linalg.inv(a) @ (st - np.eye(4)) @ b
    base = max(1, round(0.25 / dx_m))
    i11 = min(round(11.0 / dx_m), len(profile_m) - 1)
    z = np.zeros(4)
    z[0] = z[2] = (profile_m[i11] - profile_m[0]) / (dx_m * i11)
    rs = []
    for i in range(len(profile_m) - base):
        y = (profile_m[i + base] - profile_m[i]) / (dx_m * base)
        z = st @ z + pr * y
        rs.append(abs(z[2] - z[0]))
    rs = np.array(rs)
    return 1000.0 * float(rs.mean()), rs


@pytest.mark.parametrize("dx_m", [0.25, 0.1, 0.05])
def test_fast_matches_the_standard_loop(dx_m: float) -> None:
    rng = np.random.default_rng(3)
    n = int(400 / dx_m)
    profile = np.cumsum(rng.normal(0, 2e-4 * np.sqrt(dx_m / 0.05), n))   # a random-walk road, ~IRI 2-6
    profile += 0.02 * np.sin(np.arange(n) * dx_m * 2 * np.pi / 17.0)      # and a swell near the body mode
    ref, ref_rs = iri_reference(profile, dx_m)
    np.testing.assert_allclose(rectified_slope(profile, dx_m), ref_rs, rtol=1e-8, atol=1e-12)
    assert golden_car_iri(profile, dx_m) == pytest.approx(ref, rel=1e-9)
    assert 0.5 < ref < 20.0


def test_flat_and_constant_grade_give_zero() -> None:
    x = np.arange(0.0, 300.0, 0.05)
    assert golden_car_iri(np.zeros(x.size), 0.05) == 0.0
    assert golden_car_iri(0.04 * x + 1.5, 0.05) == pytest.approx(0.0, abs=1e-9)    # a 4 % grade is not rough


@pytest.mark.parametrize("wavelength_m", [1.5, 2.0, 5.0, 15.0, 40.0])
def test_sinusoid_matches_the_frequency_response(wavelength_m: float) -> None:
    """Steady state on A sin(2 pi x / L): IRI = 1000 (2/pi) |H(i w)| S sinc(0.25 / L), with S = 2 pi A / L the
    slope amplitude, H the Golden Car's transfer from slope to z'_u - z'_s at w = 2 pi V / L and the sinc the
    250 mm moving average."""
    dx, amp = 0.05, 0.004
    x = np.arange(0.0, 4000.0, dx)
    profile = amp * np.sin(2 * np.pi * x / wavelength_m)
    a, b = golden_car_ab()
    w = 2 * np.pi * V_MPS / wavelength_m
    h = abs(np.array([-1, 0, 1, 0]) @ np.linalg.solve(1j * w * np.eye(4) - a, b))
    slope_amp = 2 * np.pi * amp / wavelength_m * abs(np.sinc(0.25 / wavelength_m))
    expected = 1000.0 * 2 / np.pi * h * slope_amp
    assert golden_car_iri(profile, dx) == pytest.approx(expected, rel=0.01)


def test_golden_car_gain_peaks_near_its_two_modes() -> None:
    """Per unit slope, the IRI of a sinusoid is largest near the body (~17 m at 80 km/h, 1.3 Hz) and wheel-hop
    (~2 m, 11 Hz) wavelengths, smaller in between and far outside (Sayers 1995, fig. of the IRI gain)."""
    dx = 0.05
    x = np.arange(0.0, 3000.0, dx)

    def gain(wl: float) -> float:
        return golden_car_iri(1e-3 * np.sin(2 * np.pi * x / wl), dx) / (1000 * 2 * np.pi * 1e-3 / wl)

    g = {wl: gain(wl) for wl in (0.5, 2.0, 5.0, 17.0, 100.0)}
    assert g[17.0] > g[5.0] and g[2.0] > g[5.0] * 0.9
    assert g[17.0] > 3 * g[100.0] and g[2.0] > 2 * g[0.5]


def test_windows_average_to_the_whole_and_see_where_it_is_rough() -> None:
    rng = np.random.default_rng(5)
    dx = 0.1
    smooth = np.cumsum(rng.normal(0, 1e-4, 5000))
    rough = smooth[-1] + np.cumsum(rng.normal(0, 6e-4, 5000))
    profile = np.concatenate((smooth, rough))
    per = golden_car_iri(profile, dx, window_m=100.0)
    assert isinstance(per, np.ndarray) and per.size == (profile.size - 2) // 1000     # base = 2 steps
    assert per[-3:].min() > 3 * per[1:4].max()
    rs = rectified_slope(profile, dx)
    assert per.mean() == pytest.approx(1000 * rs[: per.size * 1000].mean(), rel=1e-12)


@pytest.mark.parametrize("bad, dx, what", [
    (np.zeros(2), 0.25, "points"),
    (np.array([0.0, np.nan, 0.0, 0.0, 0.0]), 0.25, "non-finite"),
    (np.zeros(100), 0.5, "spacing"),
    (np.zeros((10, 2)), 0.05, "1-D"),
])
def test_bad_profiles_are_refused_with_a_reason(bad: np.ndarray, dx: float, what: str) -> None:
    with pytest.raises(ProfileError, match=what):
        golden_car_iri(bad, dx)


def test_read_only_input_is_fine() -> None:
    p = np.linspace(0, 1e-3, 2000)
    p.setflags(write=False)
    assert golden_car_iri(p, 0.05) == pytest.approx(0.0, abs=1e-9)
