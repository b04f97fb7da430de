"""What is scored, read and checked: reported defects (:func:`load_defects`; positions in memory) and detected
impacts (:func:`load_impacts`; times in memory) from JSON, JSON Lines, GeoJSON or CSV, optionally gzip-compressed;
and the checks the truth reader shares (a file's bytes, finite numbers, lat/lon in range). Each problem raises
:class:`~bump.evaluate.errors.EvaluationInputError` naming the file, the item and what is wrong."""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bump.evaluate.errors import EvaluationInputError

_LAT_KEYS = ("lat", "lat_deg", "latitude")
_LON_KEYS = ("lon", "lon_deg", "lng", "longitude")


def read_bytes(path: str | Path) -> bytes:
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise EvaluationInputError(f"is a damaged gzip file ({exc})", source=str(path)) from None
    if not data.strip():
        raise EvaluationInputError("is empty; expected JSON or JSON Lines", source=str(path))
    return data


def number(value: Any, source: str | None, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EvaluationInputError(f"must be a finite number, got {value!r}", source=source, field=field)
    return float(value)


def _json_items(path: str | Path, data: bytes | None = None) -> list[Any]:
    """Top-level items of a JSON document (a list is its elements) or of JSON Lines (one item per line); ``data``:
    the file's bytes when read already."""
    data = read_bytes(path) if data is None else data
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as whole_exc:
        items = []
        for n, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise EvaluationInputError(
                    f"is neither valid JSON ({whole_exc}) nor JSON Lines (line {n}: {exc})", source=str(path)
                ) from None
        return items
    if isinstance(doc, Mapping) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise EvaluationInputError("FeatureCollection without a 'features' list", source=str(path),
                                       field="features")
        return features
    if isinstance(doc, Mapping) and isinstance(doc.get("defects"), list):
        return doc["defects"]
    return doc if isinstance(doc, list) else [doc]


def _csv_items(data: bytes) -> list[dict[str, Any]] | None:
    """The rows of a CSV file's bytes with ``lat`` and ``lon`` columns (``bump defects --format csv``, a crew's
    export), numbers as floats; None when the file is no such CSV."""
    text = data.decode("utf-8-sig", errors="replace")
    head = text.split("\n", 1)[0]
    if head.lstrip().startswith(("{", "[")) or not {"lat", "lon"} <= {c.strip() for c in head.split(",")}:
        return None
    rows = list(csv.DictReader(io.StringIO(text)))
    out = []
    for row in rows:                                    # loop over defects
        rec: dict[str, Any] = {}
        for key, value in row.items():
            try:
                rec[key] = float(value) if key in ("lat", "lon", "confidence", "severity", "priority") else value
            except (TypeError, ValueError):
                rec[key] = value
        out.append(rec)
    return out


def load_defects(path: str | Path) -> list[dict[str, Any]]:
    """Reported defects from a JSON list of ``{lat, lon, kind?, confidence?}``, a GeoJSON FeatureCollection of
    Points (``[lon, lat]``, properties kept), JSON Lines of such objects, or a CSV with ``lat`` and ``lon``
    columns; each returned dict has float lat/lon."""
    data = read_bytes(path)
    items = _csv_items(data)
    records = [_defect_record(item, k, str(path)) for k, item in enumerate(_json_items(path, data) if items is None
                                                                            else items)]
    lat = np.array([r["lat"] for r in records], dtype=np.float64)
    lon = np.array([r["lon"] for r in records], dtype=np.float64)
    check_range(lat, lon, str(path), "item")
    return records


def _defect_record(item: Any, k: int, source: str | None) -> dict[str, Any]:
    where = f"item {k}"
    if not isinstance(item, Mapping):
        raise EvaluationInputError(f"must be an object with lat and lon, got {type(item).__name__}",
                                   source=source, field=where)
    if item.get("type") == "Feature":
        geom = item.get("geometry")
        if not isinstance(geom, Mapping) or geom.get("type") != "Point":
            got = geom.get("type") if isinstance(geom, Mapping) else geom
            raise EvaluationInputError(f"geometry must be a Point, got {got!r}", source=source,
                                       field=f"{where}.geometry")
        coords = geom.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            raise EvaluationInputError(f"coordinates must be [lon, lat], got {coords!r}", source=source,
                                       field=f"{where}.geometry.coordinates")
        props = item.get("properties") or {}
        return {**props, "lon": number(coords[0], source, f"{where}.geometry.coordinates[0]"),
                "lat": number(coords[1], source, f"{where}.geometry.coordinates[1]")}
    lat_key = next((key for key in _LAT_KEYS if key in item), None)
    lon_key = next((key for key in _LON_KEYS if key in item), None)
    if lat_key is None or lon_key is None:
        raise EvaluationInputError(f"has no {'lat' if lat_key is None else 'lon'} field (keys: {sorted(item)})",
                                   source=source, field=where)
    return {**item, "lat": number(item[lat_key], source, f"{where}.{lat_key}"),
            "lon": number(item[lon_key], source, f"{where}.{lon_key}")}


def check_range(lat: np.ndarray, lon: np.ndarray, source: str | None, where: str) -> None:
    bad = np.flatnonzero((np.abs(lat) > 90.0) | (np.abs(lon) > 180.0))
    if bad.size:
        k = int(bad[0])
        raise EvaluationInputError(f"lat/lon ({lat[k]}, {lon[k]}) out of range; expected degrees WGS84 "
                                   "(check for swapped or scaled coordinates)", source=source,
                                   field=where if lat.size == 1 else f"{where} {k}")


def positions(defects: Any) -> tuple[np.ndarray, np.ndarray]:
    """(lat_deg, lon_deg) of reported defects given as dicts, a FeatureCollection, a DataFrame with lat/lon
    columns, or an (n, 2) array of [lat, lon] rows."""
    if isinstance(defects, Mapping) and defects.get("type") == "FeatureCollection":
        defects = defects.get("features", [])
    elif hasattr(defects, "columns") and hasattr(defects, "to_dict"):
        defects = defects.to_dict("records")
    elif isinstance(defects, Mapping):
        lat_key = next((key for key in _LAT_KEYS if key in defects), None)
        lon_key = next((key for key in _LON_KEYS if key in defects), None)
        if lat_key is None or lon_key is None:
            raise EvaluationInputError(f"a mapping of defects needs lat and lon columns (keys: {sorted(defects)})")
        defects = np.column_stack([np.asarray(defects[lat_key], dtype=np.float64).reshape(-1),
                                   np.asarray(defects[lon_key], dtype=np.float64).reshape(-1)])
    if isinstance(defects, Sequence) and not isinstance(defects, str | bytes) and defects \
            and isinstance(defects[0], Mapping):
        records = [_defect_record(item, k, None) for k, item in enumerate(defects)]
        lat = np.array([r["lat"] for r in records], dtype=np.float64)
        lon = np.array([r["lon"] for r in records], dtype=np.float64)
    else:
        arr = np.asarray(defects, dtype=np.float64).reshape(-1, 2) if len(defects) else np.zeros((0, 2))
        if not np.all(np.isfinite(arr)):
            raise EvaluationInputError(f"non-finite position at row {int(np.flatnonzero(~np.isfinite(arr))[0]) // 2}")
        lat, lon = arr[:, 0], arr[:, 1]
    check_range(lat, lon, None, "item")
    return lat, lon


def load_impacts(path: str | Path) -> dict[str | None, list[dict[str, Any]]]:
    """Detected impacts by trip id from ``bump detect --json`` output (JSON Lines or a JSON list of objects with
    ``trip_id`` and ``impacts``) or a plain JSON list / JSON Lines of impacts with ``t`` (key: their ``trip_id``, or
    None when absent). Impacts keep their fields; ``t`` is checked to be a finite number."""
    out: dict[str | None, list[dict[str, Any]]] = {}
    for k, item in enumerate(_json_items(path)):
        if isinstance(item, Mapping) and "impacts" in item:
            found = item["impacts"]
            if not isinstance(found, list):
                raise EvaluationInputError(f"'impacts' must be a list, got {type(found).__name__}",
                                           source=str(path), field=f"item {k}.impacts")
            trip = None if item.get("trip_id") is None else str(item["trip_id"])
            where = f"item {k}.impacts"
        elif isinstance(item, Mapping) and "t" in item:
            found = [item]
            trip = None if item.get("trip_id") is None else str(item["trip_id"])
            where = f"item {k}"
        else:
            raise EvaluationInputError("is neither a trace object with 'impacts' nor an impact with 't'",
                                       source=str(path), field=f"item {k}")
        bucket = out.setdefault(trip, [])
        for n, imp in enumerate(found):
            field = where if where == f"item {k}" else f"{where}[{n}]"
            if not isinstance(imp, Mapping):
                raise EvaluationInputError("must be an object with 't'", source=str(path), field=field)
            bucket.append({**imp, "t": number(imp.get("t"), str(path), f"{field}.t")})
    return out


def impact_times(impacts: Any) -> tuple[np.ndarray, list[str | None]]:
    """(t [s], kinds) of detections given as dicts with ``t`` or as bare times."""
    items = list(impacts)
    if items and isinstance(items[0], Mapping):
        t = np.array([number(r.get("t"), None, f"impacts[{k}].t") for k, r in enumerate(items)])
        return t, [r.get("kind") for r in items]
    t = np.asarray(items, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(t)):
        raise EvaluationInputError("impact times must be finite numbers")
    return t, [None] * t.size
