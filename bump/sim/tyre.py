"""What a tyre feels of a road profile: the rigid-wheel envelope plus contact-patch smoothing.

A wheel of radius R rolling over a profile p(x) cannot touch a hole narrower than its footprint allows:
its centre rides at max_k [p(x + k) + sqrt(R^2 - k^2)] (a grey-scale morphological dilation of the profile
by a disc). We return that centre height minus R, the *effective* road input of the quarter-car, so a flat
road stays at 0. A hole of length L is reached only to the depth R - sqrt(R^2 - L^2/4); the far edge of a
hole or the face of a bump is met as the arc of the wheel, not as a vertical wall. The tyre's contact patch
(~0.1-0.2 m long) then averages the input over its length (Gillespie, *Fundamentals of Vehicle Dynamics*,
1992, ch. 5 "tyre enveloping").
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import grey_dilation, uniform_filter1d


def disc_structure(radius_m: float, dx_m: float) -> np.ndarray:
    """Heights [m] of the lower half of a wheel of ``radius_m`` relative to its bottom point, every ``dx_m``."""
    k = int(np.floor(radius_m / dx_m))
    x = np.arange(-k, k + 1) * dx_m
    return np.sqrt(np.maximum(radius_m**2 - x**2, 0.0)) - radius_m


def tyre_envelope_m(profile_m: np.ndarray, dx_m: float, *, radius_m: float = 0.3,
                    patch_m: float = 0.12) -> np.ndarray:
    """Effective road input [m] of a tyre of ``radius_m`` and contact-patch length ``patch_m``.

    ``profile_m`` are surface heights every ``dx_m`` metres along the wheel's path.
    """
    p = np.asarray(profile_m, dtype=np.float64)
    env = grey_dilation(p, structure=disc_structure(radius_m, dx_m), mode="nearest")
    n_patch = max(1, round(patch_m / dx_m))
    if n_patch > 1:
        env = uniform_filter1d(env, size=n_patch | 1, mode="nearest")
    return env
