"""International Roughness Index (IRI) of a longitudinal road profile: the Golden Car at 80 km/h.

The IRI [m/km] is the accumulated suspension stroke of a reference quarter-car (the "Golden Car") driven
at 80 km/h over the profile, divided by the distance travelled. This is the standard computation of
ASTM E1926 (Sayers 1995, "On the calculation of International Roughness Index from longitudinal road
profile", TRR 1501), vectorised:

* the profile is smoothed by a 250 mm moving average, taken as the slope over a 250 mm base
  ``(p[i + b] - p[i]) / (b * dx)``, which is the input of the slope formulation;
* the Golden Car per unit sprung mass (k_t = 653 s^-2, k_s = 63.3 s^-2, c_s = 6.0 s^-1, m_u/m_s = 0.15)
  is discretised exactly for the step ``dt = dx / V`` (matrix exponential, input held over the step);
* the states start at the mean slope of the first 11 m (so a constant grade gives IRI = 0);
* IRI = mean |z'_u - z'_s| over the steps, in m/m, times 1000.

The linear recursion runs in the modal basis (four first-order complex filters, ``scipy.signal.lfilter``),
which is the same arithmetic as the state recursion, without a Python loop over samples.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg import expm, solve
from scipy.signal import lfilter

from ingest.errors import BumpError

GOLDEN_CAR = {"k_t": 653.0, "k_s": 63.3, "c_s": 6.0, "mu": 0.15}   # per unit sprung mass [s^-2, s^-2, s^-1, -]
IRI_SPEED_MPS = 80.0 / 3.6
BASE_LENGTH_M = 0.25        # moving-average base of the profile
INIT_LENGTH_M = 11.0        # the states start at the mean slope of this leading stretch


class ProfileError(BumpError, ValueError):
    """A road profile cannot be rated: too short, non-finite, or a bad sample spacing."""

    code = "invalid_profile"


def golden_car_matrices() -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time (A, B) of the Golden Car, states (z_s, z_s', z_u, z_u'), input the road elevation."""
    k_t, k_s, c_s, mu = (GOLDEN_CAR[k] for k in ("k_t", "k_s", "c_s", "mu"))
    a = np.array([
        [0.0, 1.0, 0.0, 0.0],
        [-k_s, -c_s, k_s, c_s],
        [0.0, 0.0, 0.0, 1.0],
        [k_s / mu, c_s / mu, -(k_s + k_t) / mu, -c_s / mu],
    ])
    b = np.array([0.0, 0.0, 0.0, k_t / mu])
    return a, b


@lru_cache(maxsize=64)
def golden_car_discrete(dx_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact discretisation (ST, PR) of the Golden Car for one profile step ``dx_m`` at 80 km/h (ASTM E1926)."""
    a, b = golden_car_matrices()
    st = expm(a * (dx_m / IRI_SPEED_MPS))
    pr = solve(a, (st - np.eye(4)) @ b)
    return st, pr


def _check(profile_m: np.ndarray, dx_m: float) -> tuple[np.ndarray, int]:
    p = np.asarray(profile_m, dtype=np.float64)
    if p.ndim != 1:
        raise ProfileError(f"profile must be a 1-D array of elevations [m], got shape {p.shape}")
    if not (np.isfinite(dx_m) and 0.0 < dx_m <= BASE_LENGTH_M):
        raise ProfileError(f"dx_m={dx_m!r}; the sample spacing must be in (0, {BASE_LENGTH_M}] m (ASTM E1926)")
    base = max(1, round(BASE_LENGTH_M / dx_m))
    if p.size < base + 2:
        raise ProfileError(f"profile has {p.size} points; at least {base + 2} are needed at dx={dx_m} m")
    if not np.all(np.isfinite(p)):
        raise ProfileError(f"profile holds {int(np.count_nonzero(~np.isfinite(p)))} non-finite values; "
                           "interpolate or cut the gaps before rating")
    return p, base


def rectified_slope(profile_m: np.ndarray, dx_m: float) -> np.ndarray:
    """Per-step |z'_u - z'_s| [m/m] of the Golden Car over ``profile_m`` (elevations [m] every ``dx_m`` m).

    One value per step of the smoothed slope (``len(profile_m) - base`` values, base = round(0.25 m / dx)).
    Its mean times 1000 is the IRI [m/km].
    """
    p, base = _check(profile_m, dx_m)
    slope = (p[base:] - p[:-base]) / (base * dx_m)
    k11 = min(round(INIT_LENGTH_M / dx_m), p.size - 1)
    z0 = (p[k11] - p[0]) / (k11 * dx_m)
    st, pr = golden_car_discrete(float(dx_m))
    lam, vec = np.linalg.eig(st)
    w = np.linalg.solve(vec, pr.astype(complex))                   # input gain of each mode
    q0 = np.linalg.solve(vec, np.array([z0, 0.0, z0, 0.0], dtype=complex))
    out_row = vec[2] - vec[0]                                         # z'_u - z'_s from modal coordinates
    diff = np.zeros(slope.size)
    for j in range(4):                                                # four modes, not samples
        q = lfilter([1.0], [1.0, -lam[j]], w[j] * slope, zi=np.array([lam[j] * q0[j]]))[0]
        diff += (out_row[j] * q).real
    return np.abs(diff)


def golden_car_iri(profile_m: np.ndarray, dx_m: float, *, window_m: float | None = None) -> float | np.ndarray:
    """IRI [m/km] of a longitudinal profile (elevations [m] sampled every ``dx_m`` m, dx <= 0.25 m).

    With ``window_m`` the simulation runs once over the whole profile and the IRI is reported per
    consecutive window of ``window_m`` metres (an array; a trailing partial window is dropped).
    """
    rs = rectified_slope(profile_m, dx_m)
    if window_m is None:
        return float(1000.0 * rs.mean())
    n_win = round(window_m / dx_m)
    if n_win < 1:
        raise ProfileError(f"window_m={window_m!r} is shorter than one sample spacing ({dx_m} m)")
    n_full = rs.size // n_win
    return 1000.0 * rs[: n_full * n_win].reshape(n_full, n_win).mean(axis=1)
