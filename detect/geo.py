"""Geodesy over arrays: a local tangent-plane projection and great-circle distance.

Local east/north metres around an origin (equirectangular on the WGS84 mean radius): error below 0.1 %
within 50 km of the origin, plenty for a city. One place for this knowledge; bump/ imports it from here (the
Earth's radius and great-circle distance live in :mod:`ingest.geodesy`, which validation uses too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.geodesy import EARTH_RADIUS_M, haversine_m

__all__ = ["EARTH_RADIUS_M", "LocalProjection", "bearing_deg", "haversine_m", "wrap_lon_deg"]


@dataclass(frozen=True)
class LocalProjection:
    """East/north metres around (lat0_deg, lon0_deg)."""

    lat0_deg: float
    lon0_deg: float

    @property
    def _m_per_deg_lat(self) -> float:
        return np.deg2rad(1.0) * EARTH_RADIUS_M

    @property
    def _m_per_deg_lon(self) -> float:
        return np.deg2rad(1.0) * EARTH_RADIUS_M * np.cos(np.deg2rad(self.lat0_deg))

    def to_xy(self, lat_deg: np.ndarray, lon_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(east_m, north_m) of positions in degrees; across the antimeridian east stays near the origin (a point
        at lon 179.9999 is metres west of an origin at -179.9999, not 40,000 km east)."""
        east_m = wrap_lon_deg(np.asarray(lon_deg, dtype=np.float64) - self.lon0_deg) * self._m_per_deg_lon
        north_m = (np.asarray(lat_deg, dtype=np.float64) - self.lat0_deg) * self._m_per_deg_lat
        return east_m, north_m

    def to_latlon(self, east_m: np.ndarray, north_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lat_deg, lon_deg) of positions in local metres; longitudes in [-180, 180]."""
        lat = self.lat0_deg + np.asarray(north_m, dtype=np.float64) / self._m_per_deg_lat
        lon = wrap_lon_deg(self.lon0_deg + np.asarray(east_m, dtype=np.float64) / self._m_per_deg_lon)
        return lat, lon


def wrap_lon_deg(lon_deg: np.ndarray) -> np.ndarray:
    """Longitudes (or differences of them) [deg] into [-180, 180]; values already there are returned unchanged,
    bit for bit."""
    lon = np.asarray(lon_deg, dtype=np.float64)
    return np.where(np.abs(lon) > 180.0, np.mod(lon + 180.0, 360.0) - 180.0, lon)


def bearing_deg(lat1_deg: np.ndarray, lon1_deg: np.ndarray, lat2_deg: np.ndarray,
                lon2_deg: np.ndarray) -> np.ndarray:
    """Initial bearing [deg clockwise from north, 0..360) from point 1 to point 2."""
    p1, p2 = np.deg2rad(lat1_deg), np.deg2rad(lat2_deg)
    dlmb = np.deg2rad(np.asarray(lon2_deg) - np.asarray(lon1_deg))
    y = np.sin(dlmb) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dlmb)
    return np.mod(np.rad2deg(np.arctan2(y, x)), 360.0)
