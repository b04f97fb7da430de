"""Score detections against a simulator's ground truth (``truth.json`` written by ``bump.sim``).

Two questions, two functions, each returning a frozen result with ``to_dict()``:

- :func:`evaluate_defects` — are the *reported defects* (positions) the reportable ones in the truth?
  Greedy one-to-one matching by distance in a local tangent plane (:class:`detect.geo.LocalProjection` around the
  truth's origin): all (detection, reportable defect) pairs within ``radius_m`` are sorted by distance once and taken
  closest first, each detection and each defect at most once. Unmatched detections are false positives, broken down
  by the nearest truth defect within the radius: ``bump`` (speed_bump), ``hump``, ``joint``, ``rail``,
  ``shallow_cover`` / ``shallow_pothole`` (a cover or pothole below the reportable depth), ``other`` (an unknown
  non-reportable type), ``repaired`` (a defect repaired before ``as_of_s``), ``duplicate`` (a reportable defect
  already matched to another detection) or ``none`` (no truth defect near).
- :func:`evaluate_impacts` — are a trip's *detected impacts* (times) the passes over reportable defects?
  The truth lists impacts per wheel (FL/FR/RL/RR). A detector reports one impact per defect pass (front and rear axle
  hits are one pass), so a trip's truth impacts on one defect are grouped into ONE expected pass when consecutive hits
  are at most ``group_s`` (1.5 s) apart. A detection matches a pass when it lies within ``tol_s`` of any wheel hit of
  that pass; matching is greedy one-to-one by that |dt|, smallest first. Unmatched detections are broken down by the
  nearest (in time) truth impact on a non-reportable feature (same names as above), a non-road truth event
  (``event``: phone handling, door slam), a reportable pass already matched (``duplicate``) or ``none``. The count of
  ``kind == "pothole"`` detections on designed / harmless features, divided by the number of passes over such
  features, is the false-pothole rate on features. Reportable passes that no phone could feel are left out of
  recall and precision and listed as ``unscored``: every wheel hit of the pass grazed the defect (the truth's
  ``input_m``, the tyre's drop or rise, under 1 cm) or fell while the phone was handled, re-mounted or not recording
  (truth events ``handling``, ``remount``, ``gap``, +- 0.3 s).

Truth file::

    {"origin": {"lat", "lon"},
     "defects": [{"id", "type", "lat", "lon", "depth_m" | "height_m", "length_m", "width_m", "lateral_offset_m",
                  "direction", "reportable", "repaired_after"?}],
     "impacts": [{"trip_id", "t", "defect_id", "type", "wheel", "speed_mps", "input_m"?}],
     "trips": [{"trip_id", "device_id"}], "events": [{"trip_id", "t", "type", "duration_s"?}],
     "roads"?: [{"road_id", "iso_class", ...}],
     "passes"?: [{"trip_id", "defect_id", "t", "in_lane", "hit", "present", ...}]}

Types: pothole, cover, speed_bump, hump, joint, rail. ``reportable`` is true for potholes >= 3 cm deep and covers
sunk > 2.5 cm; when it is missing it is derived by that rule. Truth impact times are trusted as physical events
(``repaired_after`` only matters to :func:`evaluate_defects` through ``as_of_s``). Trip ids compare as strings.

Malformed files raise :class:`EvaluationInputError` (a :class:`ingest.errors.BumpError` and ``ValueError``) naming
the file, the item and what is wrong.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy.spatial import cKDTree

from bump.cluster import greedy_match, pairs_within
from detect.geo import LocalProjection
from ingest.errors import BumpError

POTHOLE_MIN_DEPTH_M = 0.03        # reportable pothole: depth >= 3 cm
MIN_FELT_M = 0.01                 # a wheel hit counts for recall when the tyre dropped (or rose) at least this
UNOBSERVED_EVENTS = ("handling", "remount", "gap")   # the phone was in a hand or recorded nothing
UNOBSERVED_MARGIN_S = 0.3         # ... from this long before such an event to this long after it
COVER_MIN_SINK_M = 0.025          # reportable cover: sunk by more than 2.5 cm

# Non-reportable truth types -> false-positive category names.
_FEATURE_CATEGORY = {"speed_bump": "bump", "hump": "hump", "joint": "joint", "rail": "rail",
                     "cover": "shallow_cover", "pothole": "shallow_pothole"}
FEATURE_CATEGORIES = ("bump", "hump", "joint", "rail", "shallow_cover", "shallow_pothole", "other")
DEFECT_FP_CATEGORIES = (*FEATURE_CATEGORIES, "repaired", "duplicate", "none")
IMPACT_FP_CATEGORIES = (*FEATURE_CATEGORIES, "event", "duplicate", "none")

_LAT_KEYS = ("lat", "lat_deg", "latitude")
_LON_KEYS = ("lon", "lon_deg", "lng", "longitude")


class EvaluationInputError(BumpError, ValueError):
    """A truth, defects or impacts file (or object) cannot be evaluated; the message says where and why."""

    code = "evaluation_input"


# ----------------------------------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class Truth:
    """Ground truth of a simulated run. Defect dicts always carry a boolean ``reportable``."""

    origin_lat_deg: float
    origin_lon_deg: float
    defects: tuple[dict[str, Any], ...]
    impacts: tuple[dict[str, Any], ...] = ()
    trips: tuple[dict[str, Any], ...] = ()
    events: tuple[dict[str, Any], ...] = ()
    source: str | None = None
    roads: tuple[dict[str, Any], ...] = ()     # the simulated roads (road_id, iso_class, ...), as the file has them
    passes: tuple[dict[str, Any], ...] = ()    # every time a trip drove past a defect's spot, as the file has them

    @property
    def projection(self) -> LocalProjection:
        return LocalProjection(self.origin_lat_deg, self.origin_lon_deg)

    @property
    def trip_ids(self) -> tuple[str, ...]:
        """Trip ids listed in ``trips`` or seen in ``impacts``/``events``, in first-seen order."""
        seen = dict.fromkeys(str(r["trip_id"]) for r in (*self.trips, *self.impacts, *self.events))
        return tuple(seen)

    @cached_property
    def _by_trip(self) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        out: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for r in self.impacts:
            out.setdefault(r["trip_id"], ([], []))[0].append(r)
        for e in self.events:
            out.setdefault(e["trip_id"], ([], []))[1].append(e)
        return out

    def trip_records(self, trip_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(truth impacts, non-road events) of one trip."""
        return self._by_trip.get(trip_id, ([], []))

    @classmethod
    def from_dict(cls, doc: Any, *, source: str | None = None) -> Truth:
        """Validate a parsed truth document (see the module docstring)."""
        if not isinstance(doc, Mapping):
            raise EvaluationInputError(f"truth must be a JSON object, got {type(doc).__name__}", source=source)
        origin = doc.get("origin")
        if not isinstance(origin, Mapping):
            raise EvaluationInputError("missing 'origin' object {lat, lon}", source=source, field="origin")
        lat0 = _number(origin.get("lat"), source, "origin.lat")
        lon0 = _number(origin.get("lon"), source, "origin.lon")
        defects = tuple(_truth_defect(d, k, source) for k, d in enumerate(_list(doc, "defects", source)))
        ids = Counter(d["id"] for d in defects)
        dup = [i for i, n in ids.items() if n > 1]
        if dup:
            raise EvaluationInputError(f"defect id {dup[0]!r} appears {ids[dup[0]]} times; ids must be unique",
                                       source=source, field="defects")
        known = set(ids)
        impacts = tuple(_truth_impact(r, k, known, source) for k, r in enumerate(_list(doc, "impacts", source)))
        trips = tuple(_with_trip(r, f"trips[{k}]", source) for k, r in enumerate(_list(doc, "trips", source)))
        events = []
        for k, r in enumerate(_list(doc, "events", source)):
            r = _with_trip(r, f"events[{k}]", source)
            events.append({**r, "t": _number(r.get("t"), source, f"events[{k}].t"), "type": str(r.get("type"))})
        roads = tuple(dict(r) for r in _list(doc, "roads", source) if isinstance(r, Mapping))
        passes = tuple(dict(r) for r in _list(doc, "passes", source) if isinstance(r, Mapping))
        return cls(lat0, lon0, defects, impacts, trips, tuple(events), source, roads, passes)


def load_truth(path: str | Path) -> Truth:
    """Read and validate a ``truth.json`` (optionally gzip-compressed)."""
    data = _read_bytes(path)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EvaluationInputError(f"is not valid JSON ({exc})", source=str(path)) from None
    return Truth.from_dict(doc, source=str(path))


def _as_truth(truth: Truth | Mapping[str, Any]) -> Truth:
    return truth if isinstance(truth, Truth) else Truth.from_dict(truth)


def _list(doc: Mapping[str, Any], key: str, source: str | None) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise EvaluationInputError(f"'{key}' must be a list, got {type(value).__name__}", source=source, field=key)
    return value


def _number(value: Any, source: str | None, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EvaluationInputError(f"must be a finite number, got {value!r}", source=source, field=field)
    return float(value)


def _with_trip(r: Any, where: str, source: str | None) -> dict[str, Any]:
    if not isinstance(r, Mapping) or r.get("trip_id") is None:
        raise EvaluationInputError("must be an object with a 'trip_id'", source=source, field=where)
    return {**r, "trip_id": str(r["trip_id"])}


def _truth_defect(d: Any, k: int, source: str | None) -> dict[str, Any]:
    where = f"defects[{k}]"
    if not isinstance(d, Mapping):
        raise EvaluationInputError("must be an object", source=source, field=where)
    for key in ("id", "type"):
        if d.get(key) is None:
            raise EvaluationInputError(f"missing '{key}'", source=source, field=f"{where}.{key}")
    lat = _number(d.get("lat"), source, f"{where}.lat")
    lon = _number(d.get("lon"), source, f"{where}.lon")
    _check_range(np.array([lat]), np.array([lon]), source, where)
    reportable = d.get("reportable")
    if reportable is None:
        depth_m = 0.0 if d.get("depth_m") is None else _number(d["depth_m"], source, f"{where}.depth_m")
        reportable = ((d["type"] == "pothole" and depth_m >= POTHOLE_MIN_DEPTH_M)
                      or (d["type"] == "cover" and depth_m > COVER_MIN_SINK_M))
    elif not isinstance(reportable, bool):
        raise EvaluationInputError(f"must be true or false, got {reportable!r}", source=source,
                                   field=f"{where}.reportable")
    repaired = d.get("repaired_after")
    if repaired is not None:
        _number(repaired, source, f"{where}.repaired_after")
    return {**d, "type": str(d["type"]), "lat": lat, "lon": lon, "reportable": bool(reportable)}


def _truth_impact(r: Any, k: int, ids: set[Any], source: str | None) -> dict[str, Any]:
    where = f"impacts[{k}]"
    r = _with_trip(r, where, source)
    t = _number(r.get("t"), source, f"{where}.t")
    if r.get("defect_id") not in ids:
        raise EvaluationInputError(f"defect_id {r.get('defect_id')!r} is not among the truth defects",
                                   source=source, field=f"{where}.defect_id")
    return {**r, "t": t}


# ---------------------------------------------------------------------------------------------- input files


def _read_bytes(path: str | Path) -> bytes:
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise EvaluationInputError(f"is a damaged gzip file ({exc})", source=str(path)) from None
    if not data.strip():
        raise EvaluationInputError("is empty; expected JSON or JSON Lines", source=str(path))
    return data


def _json_items(path: str | Path, data: bytes | None = None) -> list[Any]:
    """Top-level items of a JSON document (a list is its elements) or of JSON Lines (one item per line); ``data``:
    the file's bytes when read already."""
    data = _read_bytes(path) if data is None else data
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
    data = _read_bytes(path)
    items = _csv_items(data)
    records = [_defect_record(item, k, str(path)) for k, item in enumerate(_json_items(path, data) if items is None
                                                                            else items)]
    lat = np.array([r["lat"] for r in records], dtype=np.float64)
    lon = np.array([r["lon"] for r in records], dtype=np.float64)
    _check_range(lat, lon, str(path), "item")
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
        return {**props, "lon": _number(coords[0], source, f"{where}.geometry.coordinates[0]"),
                "lat": _number(coords[1], source, f"{where}.geometry.coordinates[1]")}
    lat_key = next((key for key in _LAT_KEYS if key in item), None)
    lon_key = next((key for key in _LON_KEYS if key in item), None)
    if lat_key is None or lon_key is None:
        raise EvaluationInputError(f"has no {'lat' if lat_key is None else 'lon'} field (keys: {sorted(item)})",
                                   source=source, field=where)
    return {**item, "lat": _number(item[lat_key], source, f"{where}.{lat_key}"),
            "lon": _number(item[lon_key], source, f"{where}.{lon_key}")}


def _check_range(lat: np.ndarray, lon: np.ndarray, source: str | None, where: str) -> None:
    bad = np.flatnonzero((np.abs(lat) > 90.0) | (np.abs(lon) > 180.0))
    if bad.size:
        k = int(bad[0])
        raise EvaluationInputError(f"lat/lon ({lat[k]}, {lon[k]}) out of range; expected degrees WGS84 "
                                   "(check for swapped or scaled coordinates)", source=source,
                                   field=where if lat.size == 1 else f"{where} {k}")


def _positions(defects: Any) -> tuple[np.ndarray, np.ndarray]:
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
    _check_range(lat, lon, None, "item")
    return lat, lon


# ---------------------------------------------------------------------------------------------- matching


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _f1(p: float, r: float) -> float:
    if math.isnan(p) or math.isnan(r):
        return math.nan
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _quantile(values: Iterable[float], q: float) -> float:
    arr = np.asarray(list(values), dtype=np.float64)
    return float(np.quantile(arr, q)) if arr.size else math.nan


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 6)
    if isinstance(x, Mapping):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


class _MatchCounts:
    """TP/FP/FN, precision, recall and F1 of a one-to-one matching; subclasses give ``matches``, ``missed``,
    ``false_positives``, ``n_detected`` and ``n_truth`` (what recall is a share of)."""

    matches: tuple
    missed: tuple
    false_positives: tuple
    n_detected: int

    @property
    def n_truth(self) -> int:
        raise NotImplementedError

    @property
    def tp(self) -> int:
        return len(self.matches)

    @property
    def fp(self) -> int:
        return len(self.false_positives)

    @property
    def fn(self) -> int:
        return len(self.missed)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.n_truth)

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)


# ---------------------------------------------------------------------------------------------- defects


@dataclass(frozen=True)
class DefectScore(_MatchCounts):
    """Reported defects vs reportable truth defects. ``matches``: (detection index, defect id, error [m]);
    ``missed``: defect ids; ``false_positives``: (detection index, category, distance to it [m] or NaN)."""

    radius_m: float
    n_reportable: int
    n_detected: int
    matches: tuple[tuple[int, Any, float], ...]
    missed: tuple[Any, ...]
    false_positives: tuple[tuple[int, str, float], ...]

    @property
    def n_truth(self) -> int:
        return self.n_reportable

    @property
    def error_median_m(self) -> float:
        return _quantile((m[2] for m in self.matches), 0.5)

    @property
    def error_p90_m(self) -> float:
        return _quantile((m[2] for m in self.matches), 0.9)

    @property
    def fp_by_kind(self) -> dict[str, int]:
        counts = Counter(c for _, c, _ in self.false_positives)
        return {c: counts.get(c, 0) for c in DEFECT_FP_CATEGORIES}

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "radius_m": self.radius_m, "n_reportable": self.n_reportable, "n_detected": self.n_detected,
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall,
            "f1": self.f1, "error_median_m": self.error_median_m, "error_p90_m": self.error_p90_m,
            "fp_by_kind": self.fp_by_kind,
            "matches": [{"detection": i, "defect_id": d, "error_m": e} for i, d, e in self.matches],
            "missed": list(self.missed),
            "false_positives": [{"detection": i, "nearest": c, "distance_m": e} for i, c, e in self.false_positives],
        })


def evaluate_defects(truth: Truth | Mapping[str, Any], defects: Any, radius_m: float = 10.0, *,
                     as_of_s: float | None = None) -> DefectScore:
    """Score reported defect positions against the truth's reportable defects (greedy one-to-one within
    ``radius_m`` [m], closest pairs first). With ``as_of_s`` [epoch s], defects whose ``repaired_after`` is at or
    before it are no longer reportable and detections on them count as ``repaired`` false positives."""
    if not radius_m > 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    truth = _as_truth(truth)
    proj = truth.projection
    lat, lon = _positions(defects)
    det_xy = np.column_stack(proj.to_xy(lat, lon))
    tlat = np.array([d["lat"] for d in truth.defects], dtype=np.float64)
    tlon = np.array([d["lon"] for d in truth.defects], dtype=np.float64)
    truth_xy = np.column_stack(proj.to_xy(tlat, tlon))
    repaired_after = np.array([d.get("repaired_after", math.inf) for d in truth.defects], dtype=np.float64)
    repaired = repaired_after <= as_of_s if as_of_s is not None else np.zeros(len(truth.defects), dtype=bool)
    reportable = np.array([d["reportable"] for d in truth.defects], dtype=bool) & ~repaired
    rep_idx = np.flatnonzero(reportable)

    i, j, dist = pairs_within(det_xy, truth_xy[rep_idx], radius_m)
    taken = greedy_match(i, j, dist)
    matched_det, matched_truth = i[taken], rep_idx[j[taken]]
    matches = tuple((int(a), truth.defects[b]["id"], float(e))
                    for a, b, e in zip(matched_det, matched_truth, dist[taken], strict=True))
    missed_mask = reportable.copy()
    missed_mask[matched_truth] = False
    missed = tuple(truth.defects[k]["id"] for k in np.flatnonzero(missed_mask))

    unmatched = np.setdiff1d(np.arange(len(det_xy)), matched_det)
    near_d = np.full(unmatched.size, math.inf)
    near_k = np.full(unmatched.size, len(truth.defects))
    if unmatched.size and len(truth.defects):
        near_d, near_k = cKDTree(truth_xy).query(det_xy[unmatched], k=1,
                                                 distance_upper_bound=np.nextafter(radius_m, math.inf))
    fps = []
    for a, e, k in zip(unmatched, near_d, near_k, strict=True):
        if not np.isfinite(e):
            fps.append((int(a), "none", math.nan))
            continue
        d = truth.defects[int(k)]
        # A reportable defect within reach of an unmatched detection must be matched already (greedy).
        cat = ("duplicate" if reportable[k] else "repaired" if repaired[k]
               else _FEATURE_CATEGORY.get(d["type"], "other"))
        fps.append((int(a), cat, float(e)))
    return DefectScore(float(radius_m), int(rep_idx.size), len(det_xy), matches, missed, tuple(fps))


# ---------------------------------------------------------------------------------------------- impacts


@dataclass(frozen=True)
class ImpactScore(_MatchCounts):
    """Detected impacts vs passes over reportable defects, over one or more trips.

    ``matches``: (trip id, detection index, defect id, |dt| [s]); ``missed``: (trip id, defect id, first hit t [s]);
    ``false_positives``: (trip id, detection index, t [s], detected kind, category). ``n_feature_passes`` counts
    passes over non-reportable features (the denominator of :attr:`false_pothole_rate`). ``unscored``: (trip id,
    defect id, first hit t [s], detected) for reportable passes left out of recall and precision because no
    phone could have felt them: every wheel hit grazed (|input_m| < :data:`MIN_FELT_M`) or fell while the
    phone was handled, re-mounted or not recording (:data:`UNOBSERVED_EVENTS`).
    """

    trips: tuple[str, ...]
    tol_s: float
    n_passes: int
    n_detected: int
    n_feature_passes: int
    matches: tuple[tuple[str, int, Any, float], ...]
    missed: tuple[tuple[str, Any, float], ...]
    false_positives: tuple[tuple[str, int, float, str | None, str], ...]
    unscored: tuple[tuple[str, Any, float, bool], ...] = ()

    @property
    def n_truth(self) -> int:
        return self.n_passes

    @property
    def dt_median_s(self) -> float:
        return _quantile((m[3] for m in self.matches), 0.5)

    @property
    def dt_p90_s(self) -> float:
        return _quantile((m[3] for m in self.matches), 0.9)

    @property
    def fp_by_kind(self) -> dict[str, int]:
        counts = Counter(f[4] for f in self.false_positives)
        return {c: counts.get(c, 0) for c in IMPACT_FP_CATEGORIES}

    @property
    def pothole_fp_by_kind(self) -> dict[str, int]:
        """Like :attr:`fp_by_kind`, for detections whose kind is "pothole" only."""
        counts = Counter(f[4] for f in self.false_positives if _is_pothole(f[3]))
        return {c: counts.get(c, 0) for c in IMPACT_FP_CATEGORIES}

    @property
    def n_near_features(self) -> int:
        return sum(self.fp_by_kind[c] for c in FEATURE_CATEGORIES)

    @property
    def n_near_events(self) -> int:
        return self.fp_by_kind["event"]

    @property
    def n_pothole_on_features(self) -> int:
        return sum(self.pothole_fp_by_kind[c] for c in FEATURE_CATEGORIES)

    @property
    def n_pothole_on_events(self) -> int:
        return self.pothole_fp_by_kind["event"]

    @property
    def false_pothole_rate(self) -> float:
        """Pothole-kind detections on non-reportable features per pass over such features."""
        return _ratio(self.n_pothole_on_features, self.n_feature_passes)

    @classmethod
    def combine(cls, scores: Sequence[ImpactScore]) -> ImpactScore:
        """Sum of per-trip scores (same ``tol_s``)."""
        if not scores:
            raise ValueError("nothing to combine")
        return cls(tuple(t for s in scores for t in s.trips), scores[0].tol_s,
                   sum(s.n_passes for s in scores), sum(s.n_detected for s in scores),
                   sum(s.n_feature_passes for s in scores),
                   tuple(m for s in scores for m in s.matches), tuple(m for s in scores for m in s.missed),
                   tuple(f for s in scores for f in s.false_positives), tuple(u for s in scores for u in s.unscored))

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "trips": list(self.trips), "tol_s": self.tol_s, "n_passes": self.n_passes,
            "n_detected": self.n_detected, "tp": self.tp, "fp": self.fp, "fn": self.fn,
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "dt_median_s": self.dt_median_s, "dt_p90_s": self.dt_p90_s,
            "fp_by_kind": self.fp_by_kind, "pothole_fp_by_kind": self.pothole_fp_by_kind,
            "n_near_features": self.n_near_features, "n_near_events": self.n_near_events,
            "n_pothole_on_features": self.n_pothole_on_features, "n_pothole_on_events": self.n_pothole_on_events,
            "n_feature_passes": self.n_feature_passes, "false_pothole_rate": self.false_pothole_rate,
            "matches": [{"trip_id": tr, "detection": i, "defect_id": d, "dt_s": dt}
                        for tr, i, d, dt in self.matches],
            "missed": [{"trip_id": tr, "defect_id": d, "t": t} for tr, d, t in self.missed],
            "unscored": [{"trip_id": tr, "defect_id": d, "t": t, "detected": hit} for tr, d, t, hit in self.unscored],
            "false_positives": [{"trip_id": tr, "detection": i, "t": t, "kind": k, "nearest": c}
                                for tr, i, t, k, c in self.false_positives],
        })


def _is_pothole(kind: Any) -> bool:
    return isinstance(kind, str) and kind.lower() == "pothole"


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
            bucket.append({**imp, "t": _number(imp.get("t"), str(path), f"{field}.t")})
    return out


def _impact_times(impacts: Any) -> tuple[np.ndarray, list[str | None]]:
    """(t [s], kinds) of detections given as dicts with ``t`` or as bare times."""
    items = list(impacts)
    if items and isinstance(items[0], Mapping):
        t = np.array([_number(r.get("t"), None, f"impacts[{k}].t") for k, r in enumerate(items)])
        return t, [r.get("kind") for r in items]
    t = np.asarray(items, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(t)):
        raise EvaluationInputError("impact times must be finite numbers")
    return t, [None] * t.size


def group_passes(t_s: np.ndarray, defect_index: np.ndarray, gap_s: float = 1.5) -> np.ndarray:
    """Pass number of each truth wheel hit: hits on one defect whose consecutive times differ by at most
    ``gap_s`` [s] belong to one pass (front/rear, left/right wheels). Numbers run 0..n_passes-1."""
    t_s = np.asarray(t_s, dtype=np.float64)
    defect_index = np.asarray(defect_index)
    if t_s.size == 0:
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort((t_s, defect_index))
    ts, ds = t_s[order], defect_index[order]
    new = np.ones(t_s.size, dtype=bool)
    new[1:] = (ds[1:] != ds[:-1]) | (np.diff(ts) > gap_s)
    out = np.empty(t_s.size, dtype=np.intp)
    out[order] = np.cumsum(new) - 1
    return out


def _nearest(t_query: np.ndarray, t_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|dt| [s] to and index of the nearest time in ``t_ref`` for each query (inf and -1 when ``t_ref`` is empty)."""
    if t_ref.size == 0:
        return np.full(t_query.size, math.inf), np.full(t_query.size, -1, dtype=np.intp)
    order = np.argsort(t_ref, kind="stable")
    ref = t_ref[order]
    right = np.clip(np.searchsorted(ref, t_query), 0, ref.size - 1)
    left = np.clip(right - 1, 0, ref.size - 1)
    d_left, d_right = np.abs(t_query - ref[left]), np.abs(ref[right] - t_query)
    pick = np.where(d_left <= d_right, left, right)
    return np.minimum(d_left, d_right), order[pick]


def _observed(hits: list[dict[str, Any]], events: list[dict[str, Any]]) -> np.ndarray:
    """Which truth wheel hits a phone could feel: the tyre dropped or rose by >= :data:`MIN_FELT_M` (hits without
    ``input_m`` count as felt) and the phone was neither handled, re-mounted nor silent (:data:`UNOBSERVED_EVENTS`
    +- :data:`UNOBSERVED_MARGIN_S`)."""
    t = np.array([r["t"] for r in hits], dtype=np.float64)
    felt = np.array([abs(float(r.get("input_m", MIN_FELT_M))) >= MIN_FELT_M for r in hits], dtype=bool)
    blind = [(float(e["t"]) - UNOBSERVED_MARGIN_S, float(e["t"]) + float(e.get("duration_s") or 0.0)
              + UNOBSERVED_MARGIN_S) for e in events if e["type"] in UNOBSERVED_EVENTS]
    seen = np.ones(t.size, dtype=bool)
    for lo, hi in blind:                                        # loop over events
        seen &= (t < lo) | (t > hi)
    return felt & seen


def _score_trip(truth: Truth, trip_id: str, impacts: Any, tol_s: float, group_s: float,
                event_tol_s: float) -> ImpactScore:
    t_det, kinds = _impact_times(impacts)
    index = {d["id"]: k for k, d in enumerate(truth.defects)}
    hits, events = truth.trip_records(trip_id)
    hit_t = np.array([r["t"] for r in hits], dtype=np.float64)
    hit_k = np.array([index[r["defect_id"]] for r in hits], dtype=np.intp)
    reportable = np.array([d["reportable"] for d in truth.defects], dtype=bool)
    hit_rep = reportable[hit_k] if hits else np.zeros(0, dtype=bool)
    pass_of_hit = group_passes(hit_t, hit_k, group_s)
    rep_passes = np.unique(pass_of_hit[hit_rep])
    scored = set(np.unique(pass_of_hit[hit_rep & _observed(hits, events)]).tolist()) if hits else set()
    n_feature_passes = int(np.unique(pass_of_hit[~hit_rep]).size)

    rep_hits = np.flatnonzero(hit_rep)
    i, h, dt = pairs_within(t_det[:, None], hit_t[rep_hits, None], tol_s)
    passes = pass_of_hit[rep_hits[h]]
    taken = greedy_match(i, passes, dt)
    matches = tuple((trip_id, int(i[k]), truth.defects[hit_k[rep_hits[h[k]]]]["id"], float(dt[k])) for k in taken
                    if int(passes[k]) in scored)
    matched_passes = set(passes[taken].tolist())
    missed, unscored = [], []
    for p in rep_passes:
        members = np.flatnonzero(pass_of_hit == p)
        first = (trip_id, truth.defects[hit_k[members[0]]]["id"], float(hit_t[members].min()))
        if int(p) not in scored:
            unscored.append((*first, int(p) in matched_passes))
        elif int(p) not in matched_passes:
            missed.append(first)

    unmatched = np.setdiff1d(np.arange(t_det.size), i[taken])
    ev_t = np.array([e["t"] for e in events], dtype=np.float64)
    d_hit, k_hit = _nearest(t_det[unmatched], hit_t)
    d_ev, _ = _nearest(t_det[unmatched], ev_t)
    fps = []
    for a, dh, kh, de in zip(unmatched, d_hit, k_hit, d_ev, strict=True):
        if dh <= tol_s and (de > event_tol_s or dh <= de):
            d = truth.defects[hit_k[kh]]
            # A reportable pass within reach of an unmatched detection must be matched already (greedy).
            cat = "duplicate" if d["reportable"] else _FEATURE_CATEGORY.get(d["type"], "other")
        else:
            cat = "event" if de <= event_tol_s else "none"
        fps.append((trip_id, int(a), float(t_det[a]), kinds[a], cat))
    missed.sort(key=lambda m: m[2])
    return ImpactScore((trip_id,), float(tol_s), len(scored), int(t_det.size), n_feature_passes,
                       matches, tuple(missed), tuple(fps), tuple(unscored))


def evaluate_impacts(truth: Truth | Mapping[str, Any], impacts: Any, trip_id: str | None = None,
                     tol_s: float = 0.5, *, group_s: float = 1.5, event_tol_s: float | None = None) -> ImpactScore:
    """Score detected impacts of one trip (or all) against truth passes over reportable defects.

    ``impacts`` is a list of impacts (dicts with ``t`` [s] and optional ``kind``, or bare times) of trip ``trip_id``,
    or a mapping trip id -> such a list as returned by :func:`load_impacts`; with a mapping and ``trip_id`` None
    (or "all") every trip in it is scored and the scores summed. ``tol_s`` [s]: largest |dt| between a detection
    and a wheel hit of the pass it matches; ``group_s`` [s]: largest gap between wheel hits of one pass;
    ``event_tol_s`` [s] (default ``tol_s``): reach of a non-road event. Times must share the truth's clock.
    """
    if not tol_s >= 0 or not group_s >= 0:
        raise ValueError(f"tol_s and group_s must be >= 0, got {tol_s}, {group_s}")
    truth = _as_truth(truth)
    event_tol_s = tol_s if event_tol_s is None else event_tol_s
    if trip_id == "all":
        trip_id = None
    if isinstance(impacts, Mapping):
        if trip_id is None:
            if None in impacts:
                raise EvaluationInputError("some impacts carry no trip_id; name the trip they belong to "
                                           "(trip_id, --trip ID)")
            selected = list(impacts.items())
        elif trip_id in impacts:
            selected = [(trip_id, impacts[trip_id])]
        elif list(impacts) == [None]:
            selected = [(trip_id, impacts[None])]
        else:
            raise EvaluationInputError(f"no impacts of trip {trip_id!r}; trips found: "
                                       f"{', '.join(sorted(str(k) for k in impacts)) or 'none'}")
    elif trip_id is None:
        raise ValueError("trip_id is required when impacts is a list of one trip's impacts")
    else:
        selected = [(trip_id, impacts)]
    known = set(truth.trip_ids)
    scores = []
    for trip, found in selected:
        if trip not in known:
            raise EvaluationInputError(f"trip {trip!r} is not in the truth (trips: {len(known)}, e.g. "
                                       f"{', '.join(sorted(known)[:3]) or 'none'})", source=truth.source)
        scores.append(_score_trip(truth, str(trip), found, tol_s, group_s, event_tol_s))
    return ImpactScore.combine(scores) if scores else ImpactScore((), float(tol_s), 0, 0, 0, (), (), ())
