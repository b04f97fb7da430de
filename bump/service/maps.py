"""The road-cell maps (roughness, coverage) as the public or a crew may see them, and GeoJSON points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bump import cells as cellmap
from bump import pipeline, views
from bump.service.auth import Principal, require_read
from bump.service.defects import parse_bbox
from bump.service.privacy import PrivacyZones
from bump.store import Store
from detect.columns import Columns

_HALF_DIAGONAL_M = cellmap.CELL_SIZE_M / np.sqrt(2.0)      # a cell near a zone may reach into it


def roughness_cells(store: Store, principal: Principal, zones: PrivacyZones, *, public_read: bool,
                    bbox: str | None = None, min_readings: int = cellmap.MIN_READINGS) -> list[dict[str, Any]]:
    """Roughness per road cell from the windows outside the privacy zones: readings, mean, sd and upper 95 %
    bound of IRI [m/km], distinct devices, passes."""
    require_read(principal, public_read)
    proj = pipeline.projection(store)
    win = store.roughness_windows(bbox=parse_bbox(bbox))
    if proj is None or len(win) == 0:
        return []
    centres = cellmap.cell_centres(win["cell_key"], proj)
    pos = np.searchsorted(centres["cell_key"], win["cell_key"])
    win = win.select(~zones.private(store, win["trip_id"], win["lat_deg"], win["lon_deg"])
                     & ~zones.private(store, win["trip_id"], centres["lat_deg"][pos], centres["lon_deg"][pos],
                                      margin_m=_HALF_DIAGONAL_M))
    keys, inv = np.unique(win["cell_key"], return_inverse=True)
    inv = inv.ravel()
    iri = win["iri_m_per_km"]
    cov = _public_coverage(store, zones, proj)
    ck = {int(k): i for i, k in enumerate(cov["cell_key"].tolist())}
    at = np.array([ck.get(int(k), -1) for k in keys.tolist()], dtype=np.int64)
    cells = cellmap.cell_centres(keys, proj).with_columns(
        n_readings=np.bincount(inv, minlength=keys.size), iri_sum=np.bincount(inv, iri, minlength=keys.size),
        iri_sumsq=np.bincount(inv, iri * iri, minlength=keys.size),
        n_rough_devices=_distinct_per_group(inv, win["device_id"], keys.size),
        n_traversals=np.where(at >= 0, cov["n_traversals"][np.maximum(at, 0)], 0) if len(cov) else np.zeros(
            keys.size, dtype=np.int64))
    recs = cellmap.cell_records(cellmap.cell_statistics(cells, min_readings=min_readings))
    return [{**r, "cell_key": str(r["cell_key"])} for r in recs]      # 64-bit keys: strings for JavaScript


def _distinct_per_group(labels: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Number of distinct ``values`` per label 0..n-1."""
    if labels.size == 0:
        return np.zeros(n, dtype=np.int64)
    _, v = np.unique(np.asarray(values).astype(str), return_inverse=True)
    pairs = np.unique(labels.astype(np.int64) * (int(v.max()) + 1) + v.ravel())
    return np.bincount(pairs // (int(v.max()) + 1), minlength=n)


def _public_coverage(store: Store, zones: PrivacyZones, proj: Any, since_s: float | None = None,
                     until_s: float | None = None) -> Columns:
    rows = store.coverage_rows(since_s, until_s)
    names = {"cell_key": np.int64, "n_traversals": np.int64, "n_devices": np.int64, "first_s": np.float64,
             "last_s": np.float64}
    if len(rows) == 0:
        return Columns({k: np.empty(0, dtype=t) for k, t in names.items()})
    centres = cellmap.cell_centres(rows["cell_key"], proj)
    pos = np.searchsorted(centres["cell_key"], rows["cell_key"])
    rows = rows.select(~zones.private(store, rows["trip_id"], centres["lat_deg"][pos], centres["lon_deg"][pos],
                                      margin_m=_HALF_DIAGONAL_M))
    keys, inv = np.unique(rows["cell_key"], return_inverse=True)
    inv = inv.ravel()
    first = np.full(keys.size, np.inf)
    last = np.full(keys.size, -np.inf)
    np.minimum.at(first, inv, rows["t_s"])
    np.maximum.at(last, inv, rows["t_s"])
    return Columns({"cell_key": keys, "n_traversals": np.bincount(inv, minlength=keys.size),
                    "n_devices": _distinct_per_group(inv, rows["device_id"], keys.size), "first_s": first,
                    "last_s": last})


def coverage_cells(store: Store, principal: Principal, zones: PrivacyZones, *, public_read: bool,
                   since_s: float | None = None, until_s: float | None = None) -> list[dict[str, Any]]:
    """Passes and distinct devices per road cell in [since_s, until_s), passes in privacy zones left out."""
    require_read(principal, public_read)
    proj = pipeline.projection(store)
    if proj is None:
        return []
    cov = _public_coverage(store, zones, proj, since_s, until_s)
    if len(cov) == 0:
        return []
    centres = cellmap.cell_centres(cov["cell_key"], proj)
    return [{"cell_key": str(k), "lat": views.round_or_none(la, 6), "lon": views.round_or_none(lo, 6),
             "heading_deg": views.round_or_none(h, 1),
             "passes": int(n), "devices": int(d), "first": views.iso_time(f), "last": views.iso_time(la_s)}
            for k, la, lo, h, n, d, f, la_s in zip(cov["cell_key"].tolist(), centres["lat_deg"].tolist(),
                                                    centres["lon_deg"].tolist(), centres["heading_deg"].tolist(),
                                                    cov["n_traversals"].tolist(), cov["n_devices"].tolist(),
                                                    cov["first_s"].tolist(), cov["last_s"].tolist(), strict=True)]


def points_geojson(records: Sequence[dict[str, Any]], *, lat: str = "lat", lon: str = "lon",
                   id_key: str | None = None) -> dict[str, Any]:
    """RFC 7946 FeatureCollection of Points ([lon, lat], WGS84, 6 decimals) with every other field a property."""
    feats = []
    for r in records:
        if r.get(lat) is None or r.get(lon) is None:
            continue
        f: dict[str, Any] = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [
            round(float(r[lon]), 6), round(float(r[lat]), 6)]},
            "properties": {k: v for k, v in r.items() if k not in (lat, lon)}}
        if id_key is not None:
            f["id"] = r[id_key]
        feats.append(f)
    return {"type": "FeatureCollection", "features": feats}
