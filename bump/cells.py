"""Road cells: a square grid in the database's local projection, split by direction of travel.

A cell is ``CELL_SIZE_M`` (20 m) square in local east/north metres (:class:`detect.geo.LocalProjection` around the
database origin) and one of ``N_DIRECTIONS`` (4) sectors of the heading of travel, 90 deg wide and centred on north,
east, south and west, so the two carriageways of a road fall into different cells. A cell is named by one signed
64-bit integer (:func:`cell_keys`), so it can be stored, indexed and looked up anywhere.

Two maps are built from the cells:

- roughness: every valid roughness window of every trip (IRI [m/km] from the detector) counts once in the cell of
  its midpoint; a cell reports its count, mean, standard deviation, a one-sided 95 % upper bound of the mean
  (Student t) and distinct devices, and only when it holds at least ``MIN_READINGS`` (3) readings (SmartRoadSense's
  rule);
- coverage: every trip counts once in every cell its GPS track passes (track sampled every ``TRACK_STEP_M``),
  with its device and time, so passes and distinct devices can be counted over any period.

Defects are indexed by the same encoding on a coarser grid (:data:`DEFECT_GRID_M`, 50 m, no direction): a defect
near a point is found by an indexed look-up of the 3 x 3 grid keys around it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from detect.arrays import unique_sorted
from detect.columns import Columns
from detect.geo import LocalProjection

CELL_SIZE_M = 20.0
N_DIRECTIONS = 4
MIN_READINGS = 3
DEFECT_GRID_M = 50.0
TRACK_STEP_M = 5.0

_OFFSET = 1 << 27          # cell indices in [-2^27, 2^27): +-2,700 km at 20 m
_SPAN = 1 << 28


def _encode(ix: np.ndarray, iy: np.ndarray, d: np.ndarray) -> np.ndarray:
    return ((ix.astype(np.int64) + _OFFSET) * _SPAN + (iy.astype(np.int64) + _OFFSET)) * 8 + d.astype(np.int64)


def decode_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ix, iy, direction) of cell keys."""
    keys = np.asarray(keys, dtype=np.int64)
    d = keys % 8
    rest = keys // 8
    return rest // _SPAN - _OFFSET, rest % _SPAN - _OFFSET, d


def direction_sector(heading_deg: np.ndarray) -> np.ndarray:
    """Sector 0..3 (N, E, S, W; 90 deg wide, centred) of a heading [deg]; unknown heading -> sector 0."""
    h = np.nan_to_num(np.asarray(heading_deg, dtype=np.float64), nan=0.0)
    return (np.floor(np.mod(h + 45.0, 360.0) / 90.0).astype(np.int64)) % N_DIRECTIONS


def cell_keys(x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray, *, size_m: float = CELL_SIZE_M
              ) -> np.ndarray:
    """Road-cell keys of local positions [m] travelled at ``heading_deg``."""
    ix = np.floor(np.asarray(x_m) / size_m)
    iy = np.floor(np.asarray(y_m) / size_m)
    return _encode(ix, iy, direction_sector(heading_deg))


def grid_keys(x_m: np.ndarray, y_m: np.ndarray, *, size_m: float = DEFECT_GRID_M) -> np.ndarray:
    """Direction-less grid keys of local positions [m] (the defect index)."""
    ix = np.floor(np.asarray(x_m) / size_m)
    iy = np.floor(np.asarray(y_m) / size_m)
    return _encode(ix, iy, np.zeros(np.shape(ix), dtype=np.int64))


def grid_keys_around(x_m: np.ndarray, y_m: np.ndarray, radius_m: float, *, size_m: float = DEFECT_GRID_M,
                     directions: bool = False) -> np.ndarray:
    """Unique keys of every grid cell within ``radius_m`` of any of the positions (a square neighbourhood);
    with ``directions`` every direction sector of those cells (road-cell keys)."""
    x = np.asarray(x_m, dtype=np.float64)
    y = np.asarray(y_m, dtype=np.float64)
    if x.size == 0:
        return np.empty(0, dtype=np.int64)
    reach = int(np.ceil(radius_m / size_m))
    cells = _encode(np.floor(x / size_m), np.floor(y / size_m), np.zeros(x.size, dtype=np.int64))
    cells = unique_sorted(cells[np.r_[True, cells[1:] != cells[:-1]]])   # a track's points: mostly the cell before
    bx, by, _ = decode_keys(cells)      # the distinct cells of the positions (a 1-D unique: 10x faster than rows)
    side = np.arange(-reach, reach + 1)         # the offsets of a (2 reach + 1)^2 block (np.meshgrid's, 3x faster)
    dx, dy = np.tile(side, side.size), np.repeat(side, side.size)
    allx = (bx[:, None] + dx).ravel()
    ally = (by[:, None] + dy).ravel()
    dirs = np.arange(N_DIRECTIONS if directions else 1)
    keys = _encode(np.repeat(allx, dirs.size), np.repeat(ally, dirs.size), np.tile(dirs, allx.size))
    return unique_sorted(keys)


def grid_keys_within(x_m: np.ndarray, y_m: np.ndarray, radius_m: float, *, size_m: float = DEFECT_GRID_M
                     ) -> np.ndarray:
    """Unique keys of the grid cells that the squares of half-side ``radius_m`` around the positions meet: every
    cell holding a point within ``radius_m`` of one of them, and fewer than :func:`grid_keys_around` gives when the
    radius is below a cell (a cell either side of each position's, whether the square reaches into it or not)."""
    x = np.asarray(x_m, dtype=np.float64)
    y = np.asarray(y_m, dtype=np.float64)
    if x.size == 0:
        return np.empty(0, dtype=np.int64)
    lo_x, hi_x = np.floor((x - radius_m) / size_m), np.floor((x + radius_m) / size_m)
    lo_y, hi_y = np.floor((y - radius_m) / size_m), np.floor((y + radius_m) / size_m)
    new = np.ones(x.size, dtype=bool)          # a track's points mostly meet the cells of the point before
    new[1:] = (lo_x[1:] != lo_x[:-1]) | (hi_x[1:] != hi_x[:-1]) | (lo_y[1:] != lo_y[:-1]) | (hi_y[1:] != hi_y[:-1])
    lo_x, hi_x, lo_y, hi_y = lo_x[new], hi_x[new], lo_y[new], hi_y[new]
    zero = np.zeros(lo_x.size, dtype=np.int64)
    keys = [_encode(np.minimum(lo_x + i, hi_x), np.minimum(lo_y + j, hi_y), zero)     # loop over cell offsets
            for i in range(int(np.max(hi_x - lo_x)) + 1) for j in range(int(np.max(hi_y - lo_y)) + 1)]
    return unique_sorted(np.concatenate(keys))


def cell_centres(keys: np.ndarray, projection: LocalProjection, *, size_m: float = CELL_SIZE_M) -> Columns:
    """cell_key, lat_deg, lon_deg (centre) and heading_deg (sector centre) of road cells."""
    keys = unique_sorted(np.asarray(keys, dtype=np.int64))
    ix, iy, d = decode_keys(keys)
    lat, lon = projection.to_latlon((ix + 0.5) * size_m, (iy + 0.5) * size_m)
    return Columns({"cell_key": keys, "lat_deg": lat, "lon_deg": lon, "heading_deg": d * (360.0 / N_DIRECTIONS)})


def roughness_rows(rough: Columns, projection: LocalProjection, *, trip_id: str, device_id: str) -> Columns:
    """The storable roughness windows of one trip: valid, positioned, finite IRI; with their cell key."""
    n = len(rough)
    if n == 0 or "lat_deg" not in rough:
        return Columns({k: np.empty(0, dtype=dt) for k, dt in
                        {"trip_id": "U1", "device_id": "U1", "t_start_s": "f8", "t_end_s": "f8", "lat_deg": "f8",
                         "lon_deg": "f8", "heading_deg": "f8", "length_m": "f8", "speed_mps": "f8",
                         "rms_mps2": "f8", "iri_m_per_km": "f8", "cell_key": "i8"}.items()})
    ok = (np.asarray(rough["valid"], dtype=bool) & np.isfinite(rough["lat_deg"]) & np.isfinite(rough["lon_deg"])
          & np.isfinite(rough["iri_m_per_km"]))
    r = rough.select(ok)
    x, y = projection.to_xy(r["lat_deg"], r["lon_deg"])
    m = len(r)
    return Columns({
        "trip_id": np.full(m, trip_id), "device_id": np.full(m, device_id), "t_start_s": r["t_start_s"],
        "t_end_s": r["t_end_s"], "lat_deg": r["lat_deg"], "lon_deg": r["lon_deg"], "heading_deg": r["heading_deg"],
        "length_m": r["length_m"], "speed_mps": r["speed_mps"], "rms_mps2": r["rms_mps2"],
        "iri_m_per_km": r["iri_m_per_km"], "cell_key": cell_keys(x, y, r["heading_deg"]),
    })


def coverage_rows(t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray, *, trip_id: str,
                  device_id: str) -> Columns:
    """One row per road cell a (densified) track passes: cell_key, trip_id, device_id, first time there [s]."""
    keys = cell_keys(x_m, y_m, heading_deg)
    uniq, first = np.unique(keys, return_index=True)
    m = uniq.size
    return Columns({"cell_key": uniq, "trip_id": np.full(m, trip_id), "device_id": np.full(m, device_id),
                    "t_s": np.asarray(t_s, dtype=np.float64)[first]})


def cell_statistics(cells: Columns, *, min_readings: int = MIN_READINGS, confidence: float = 0.95) -> Columns:
    """Per-cell roughness statistics of cells with at least ``min_readings`` readings: iri_mean, iri_sd,
    iri_upper (one-sided ``confidence`` bound of the mean, mean + t(n-1) sd / sqrt(n)) [m/km]."""
    keep = cells["n_readings"] >= min_readings
    c = cells.select(keep)
    n = c["n_readings"].astype(np.float64)
    mean = c["iri_sum"] / np.maximum(n, 1.0)
    var = np.maximum(c["iri_sumsq"] - n * mean**2, 0.0) / np.maximum(n - 1.0, 1.0)
    sd = np.sqrt(var)
    t = stats.t.ppf(confidence, np.maximum(n - 1.0, 1.0))
    return c.with_columns(iri_mean=mean, iri_sd=sd, iri_upper=mean + t * sd / np.sqrt(np.maximum(n, 1.0)))


def cell_records(cells: Columns) -> list[dict[str, Any]]:
    """Plain dicts for output (lat, lon rounded to 6 decimals)."""
    names = ["cell_key", "lat_deg", "lon_deg", "heading_deg", "n_readings", "iri_mean", "iri_sd", "iri_upper",
             "n_rough_devices", "n_traversals", "n_devices", "first_s", "last_s"]
    sub = Columns({k: cells[k] for k in names if k in cells})
    return sub.to_records(decimals={"lat_deg": 6, "lon_deg": 6, "iri_mean": 2, "iri_sd": 2, "iri_upper": 2})
