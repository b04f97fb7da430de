"""The simulator's ground truth (``truth.json``, its format in :mod:`bump.evaluate`): :class:`Truth`,
:func:`load_truth`, the rule that makes a pothole or cover reportable, and the false-positive categories named
after non-reportable truth types."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bump.evaluate.errors import EvaluationInputError
from bump.evaluate.inputs import check_range, number, read_bytes
from detect.geo import LocalProjection

POTHOLE_MIN_DEPTH_M = 0.03        # reportable pothole: depth >= 3 cm
COVER_MIN_SINK_M = 0.025          # reportable cover: sunk by more than 2.5 cm

# Non-reportable truth types -> false-positive category names.
FEATURE_CATEGORY = {"speed_bump": "bump", "hump": "hump", "joint": "joint", "rail": "rail",
                     "cover": "shallow_cover", "pothole": "shallow_pothole"}
FEATURE_CATEGORIES = ("bump", "hump", "joint", "rail", "shallow_cover", "shallow_pothole", "other")
DEFECT_FP_CATEGORIES = (*FEATURE_CATEGORIES, "repaired", "duplicate", "none")
IMPACT_FP_CATEGORIES = (*FEATURE_CATEGORIES, "event", "duplicate", "none")


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
        """Validate a parsed truth document (see the docstring of :mod:`bump.evaluate`)."""
        if not isinstance(doc, Mapping):
            raise EvaluationInputError(f"truth must be a JSON object, got {type(doc).__name__}", source=source)
        origin = doc.get("origin")
        if not isinstance(origin, Mapping):
            raise EvaluationInputError("missing 'origin' object {lat, lon}", source=source, field="origin")
        lat0 = number(origin.get("lat"), source, "origin.lat")
        lon0 = number(origin.get("lon"), source, "origin.lon")
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
            events.append({**r, "t": number(r.get("t"), source, f"events[{k}].t"), "type": str(r.get("type"))})
        roads = tuple(dict(r) for r in _list(doc, "roads", source) if isinstance(r, Mapping))
        passes = tuple(dict(r) for r in _list(doc, "passes", source) if isinstance(r, Mapping))
        return cls(lat0, lon0, defects, impacts, trips, tuple(events), source, roads, passes)


def load_truth(path: str | Path) -> Truth:
    """Read and validate a ``truth.json`` (optionally gzip-compressed)."""
    data = read_bytes(path)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EvaluationInputError(f"is not valid JSON ({exc})", source=str(path)) from None
    return Truth.from_dict(doc, source=str(path))


def as_truth(truth: Truth | Mapping[str, Any]) -> Truth:
    return truth if isinstance(truth, Truth) else Truth.from_dict(truth)


def _list(doc: Mapping[str, Any], key: str, source: str | None) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise EvaluationInputError(f"'{key}' must be a list, got {type(value).__name__}", source=source, field=key)
    return value


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
    lat = number(d.get("lat"), source, f"{where}.lat")
    lon = number(d.get("lon"), source, f"{where}.lon")
    check_range(np.array([lat]), np.array([lon]), source, where)
    reportable = d.get("reportable")
    if reportable is None:
        depth_m = 0.0 if d.get("depth_m") is None else number(d["depth_m"], source, f"{where}.depth_m")
        reportable = ((d["type"] == "pothole" and depth_m >= POTHOLE_MIN_DEPTH_M)
                      or (d["type"] == "cover" and depth_m > COVER_MIN_SINK_M))
    elif not isinstance(reportable, bool):
        raise EvaluationInputError(f"must be true or false, got {reportable!r}", source=source,
                                   field=f"{where}.reportable")
    repaired = d.get("repaired_after")
    if repaired is not None:
        number(repaired, source, f"{where}.repaired_after")
    return {**d, "type": str(d["type"]), "lat": lat, "lon": lon, "reportable": bool(reportable)}


def _truth_impact(r: Any, k: int, ids: set[Any], source: str | None) -> dict[str, Any]:
    where = f"impacts[{k}]"
    r = _with_trip(r, where, source)
    t = number(r.get("t"), source, f"{where}.t")
    if r.get("defect_id") not in ids:
        raise EvaluationInputError(f"defect_id {r.get('defect_id')!r} is not among the truth defects",
                                   source=source, field=f"{where}.defect_id")
    return {**r, "t": t}
