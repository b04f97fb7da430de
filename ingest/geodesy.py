"""The Earth's radius and great-circle distance, for validation (GPS jumps) and, through :mod:`detect.geo`, for
everything above it: the lowest layer holds the one copy."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_M = 6_371_008.8   # IUGG mean radius [m]


def haversine_m(lat1_deg: np.ndarray, lon1_deg: np.ndarray, lat2_deg: np.ndarray,
                lon2_deg: np.ndarray) -> np.ndarray:
    """Great-circle distance [m] between positions in degrees (broadcasting)."""
    p1, p2 = np.deg2rad(lat1_deg), np.deg2rad(lat2_deg)
    dphi = p2 - p1
    dlmb = np.deg2rad(np.asarray(lon2_deg) - np.asarray(lon1_deg))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
