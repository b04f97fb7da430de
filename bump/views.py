"""The crews' view of the store: ranked defect lists, one defect with its hits, passes and history, crews'
status changes, the roughness and coverage maps, and plain output shapes (RFC 7946 GeoJSON, CSV with lat/lon
columns, ISO 8601 UTC times). What the CLI and the HTTP layer call to read and update defects.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bump import cells as cellmap
from bump.cluster import (
    DEFAULT_DEFECT_PARAMS,
    KINDS,
    LISTED_KINDS,
    MINOR_COVER_CLASSES,
    DefectParams,
)
from bump.lifecycle import (
    DEFAULT_LIST_STATUSES,
    REOPEN,
    REOPENED,
    STATUSES,
    InvalidStatusError,
    StatusConflictError,
    check_crew_status,
)
from bump.pipeline import projection
from bump.refresh import refresh_defects
from bump.store import CONFIDENCE_DECIMALS, DefectQuery, Store, StoreError
from ingest.errors import BumpError

MAX_CLOCK_SKEW_S = 300.0    # a crew's decision may be dated this far after the server's clock (phones run ahead)


@dataclass(frozen=True)
class DefectPage:
    defects: list[dict[str, Any]]
    next_cursor: str | None


# --------------------------------------------------------------------------------------------- crews' view


def iso_time(t_s: Any) -> str | None:
    """ISO 8601 UTC (seconds, "Z") of an epoch time; None for None, NaN or a time no calendar date holds (a
    database written before ingest checked that times are seconds since the epoch)."""
    if t_s is None or not np.isfinite(t_s):
        return None
    try:
        return datetime.fromtimestamp(float(t_s), tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return None


def round_or_none(v: Any, nd: int) -> float | None:
    """``v`` rounded to ``nd`` decimals; None for None or NaN."""
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def defect_record(row: dict[str, Any]) -> dict[str, Any]:
    """The public view of one defect row (plain JSON types, ISO 8601 UTC times, lat/lon with 6 decimals)."""
    return {
        "id": int(row["defect_id"]), "kind": row["kind"], "status": row["status"],
        "severity": round_or_none(row["severity"], 2), "depth_class": row["depth_class"] or None,
        "confidence": round_or_none(row["confidence"], CONFIDENCE_DECIMALS),
        "priority": round_or_none(row["priority"], 2),
        "hits": int(row["n_hits"]), "devices": int(row["n_devices"]), "traversals": int(row["n_traversals"]),
        "hit_rate": round_or_none(row["hit_rate"], 3), "first_seen": iso_time(row["first_seen_s"]),
        "last_seen": iso_time(row["last_seen_s"]), "uncertainty_m": round_or_none(row["uncertainty_m"], 1),
        "lat": round_or_none(row["lat_deg"], 6), "lon": round_or_none(row["lon_deg"], 6),
        "heading_deg": round_or_none(row["heading_deg"], 1),
        "traversals_per_day": round_or_none(row["traversals_per_day"], 3),
        "status_since": iso_time(row["status_since_s"]), "kind_reason": row["kind_reason"],
    }


def parse_choices(value: str | Sequence[str] | None, allowed: Sequence[str], default: Sequence[str], what: str, *,
                  error: type[BumpError] = InvalidStatusError) -> tuple[str, ...] | None:
    """A filter from comma-separated text or a list: ``default`` when empty, None (no filter) for "all";
    anything not in ``allowed`` raises ``error`` naming the choices."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return tuple(default)
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not items:                                   # "," names nothing: the default, as "" does
        return tuple(default)
    if "all" in items:
        return None
    bad = [v for v in items if v not in allowed]
    if bad:
        raise error(f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(allowed)} or all "
                    "(comma-separated)", field=what)
    return tuple(items)


def check_bbox(bbox: tuple[float, float, float, float], *, error: type[BumpError] = StoreError,
               text: str | None = None) -> None:
    """Raise ``error`` unless ``bbox`` is W,S,E,N in degrees within range (W > E crosses the antimeridian)."""
    w, s, e, n = bbox
    if not (all(np.isfinite(bbox)) and -90 <= s <= n <= 90 and -180 <= w <= 180 and -180 <= e <= 180):
        raise error(f"bbox must be W,S,E,N with -180 <= W, E <= 180 and -90 <= S <= N <= 90 (W > E crosses the "
                    f"antimeridian), got {text if text is not None else bbox!r}", field="bbox")


def hidden_covers(kind: str | Sequence[str] | None) -> tuple[str, ...]:
    """Depth classes of covers a list leaves out: castings with nothing to fix (:data:`MINOR_COVER_CLASSES`) unless
    the caller chose the kinds."""
    return () if kind is not None else MINOR_COVER_CLASSES


def list_defects(store: Store, *, status: str | Sequence[str] | None = None, kind: str | Sequence[str] | None = None,
                 bbox: tuple[float, float, float, float] | None = None, limit: int = 100,
                 cursor: str | None = None) -> DefectPage:
    """Defects ranked by priority. By default every status but repaired and dismissed, and the spot defects
    (pothole, cover, unknown: not rough stretches, which the roughness map shows, nor designed features such as
    speed bumps and joints, nor castings standing proud or sunk less than 25 mm, which leave nothing to fix); pass
    "all" (or a list) to widen. Keyset pagination: pass ``next_cursor`` back as ``cursor``."""
    statuses = parse_choices(status, STATUSES, DEFAULT_LIST_STATUSES, "status")
    kinds = parse_choices(kind, KINDS, LISTED_KINDS, "kind")
    if bbox is not None:
        check_bbox(bbox)
    cols, nxt = store.list_defects(DefectQuery(statuses, kinds, bbox, int(limit), cursor,
                                               hidden_cover_classes=hidden_covers(kind)))
    return DefectPage([defect_record(cols.row(i)) for i in range(len(cols))], nxt)


def get_defect(store: Store, defect_id: int) -> dict[str, Any]:
    """One defect with its status history and its passes (newest first)."""
    row = store.get_defect(defect_id)
    rec = defect_record({k: (np.nan if v is None and k.endswith("_s") else v) for k, v in row.items()})
    rec["crew_status"] = row["crew_status"] or None
    rec["history"] = [{"at": iso_time(h["t_s"]), "recorded_at": iso_time(h["recorded_at_s"]), "from": h["from_status"],
                       "to": h["to_status"], "reason": h["reason"], "by": h["actor"]} for h in store.history(defect_id)]
    trav = store.traversals_of_defects([defect_id])
    order = np.argsort(-trav["t_s"], kind="stable")
    rec["passes"] = [{"at": iso_time(trav["t_s"][i]), "trip_id": str(trav["trip_id"][i]),
                      "device_id": str(trav["device_id"][i]), "hit": bool(trav["hit"][i])} for i in order]
    return rec


def set_status(store: Store, defect_id: int, status: str, *, reason: str, actor: str = "crew",
               at_s: float | None = None, defect_params: DefectParams = DEFAULT_DEFECT_PARAMS,
               clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """A crew's decision: ``repaired``, ``dismissed`` or ``reopen`` (back to the automatic status), with a reason
    (recorded in the history with ``actor``). ``at_s``: when it happened (default now). Returns the defect."""
    check_crew_status(status, reason)
    now = clock()
    at = now if at_s is None else float(at_s)
    if not at <= now + MAX_CLOCK_SKEW_S:
        raise InvalidStatusError(f"at is {iso_time(at)}, in the future (now {iso_time(now)}); give the time the "
                                 "decision was made, or leave it out for now", field="at")
    with store.transaction():
        row = store.get_defect(defect_id)
        if at < float(row["first_seen_s"]):
            raise InvalidStatusError(f"at is {iso_time(at)}, before the defect was first seen "
                                     f"({iso_time(float(row['first_seen_s']))}); give the time the decision was "
                                     "made, or leave it out for now", field="at")
        proj = projection(store)
        if proj is None:
            raise StoreError("the database has no projection origin yet; ingest a trip with GPS first")
        old = row["status"]
        crew, crew_at = (None, None) if status == REOPEN else (status, at)
        if status != REOPEN and old == status:
            raise StatusConflictError(f"defect {defect_id} is already {status}", field="status")
        if status == REOPEN and not row["crew_status"]:
            raise StatusConflictError(f"defect {defect_id} has no crew decision to reopen (it is {old}, from the "
                                      "data)", field="status")
        store.update_defects({"defect_id": [defect_id], "crew_status": [crew], "crew_at_s": [crew_at],
                              "status": [status if status != REOPEN else old], "status_since_s": [at]})
        store.add_history([{"defect_id": defect_id, "t_s": at, "recorded_at_s": now, "from_status": old,
                            "to_status": status if status != REOPEN else REOPENED, "reason": reason.strip(),
                            "actor": actor}])
        detector = row["detector"]
        refresh_defects(store, [defect_id], proj, defect_params, now=now, detector=detector, actor="system")
    return get_defect(store, defect_id)


# ------------------------------------------------------------------------------------------------------ maps


def list_cells(store: Store, *, bbox: tuple[float, float, float, float] | None = None,
               min_readings: int = cellmap.MIN_READINGS) -> list[dict[str, Any]]:
    """Roughness cells with at least ``min_readings`` readings: mean IRI, sd, upper 95 % bound, devices,
    passes."""
    return cellmap.cell_records(cellmap.cell_statistics(store.list_cells(bbox=bbox, min_readings=min_readings),
                                                        min_readings=min_readings))


def coverage(store: Store, *, since_s: float | None = None, until_s: float | None = None) -> list[dict[str, Any]]:
    """Per road cell: passes and distinct devices in [since_s, until_s), with the cell's centre."""
    proj = projection(store)
    cov = store.coverage_between(since_s, until_s)
    if proj is None or len(cov) == 0:
        return []
    centres = cellmap.cell_centres(cov["cell_key"], proj)
    cols = cov.with_columns(lat_deg=centres["lat_deg"], lon_deg=centres["lon_deg"],
                            heading_deg=centres["heading_deg"])
    return cols.to_records(decimals={"lat_deg": 6, "lon_deg": 6})


# -------------------------------------------------------------------------------------------------- outputs

CSV_FIELDS = ("id", "kind", "status", "severity", "depth_class", "confidence", "priority", "hits", "devices",
              "traversals", "hit_rate", "first_seen", "last_seen", "uncertainty_m", "lat", "lon", "heading_deg",
              "traversals_per_day", "status_since", "kind_reason")


def defects_geojson(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """RFC 7946 FeatureCollection of Points ([lon, lat], WGS84, 6 decimals); every other field a property."""
    features = []
    for r in records:
        props = {k: v for k, v in r.items() if k not in ("lat", "lon")}
        features.append({"type": "Feature", "id": r["id"],
                         "geometry": {"type": "Point", "coordinates": [round(r["lon"], 6), round(r["lat"], 6)]},
                         "properties": props})
    return {"type": "FeatureCollection", "features": features}


def defects_csv(records: Sequence[dict[str, Any]]) -> str:
    """CSV, one row per defect in the given order, with lat and lon columns."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


__all__ = [
    "DefectPage",
    "InvalidStatusError",
    "coverage",
    "defect_record",
    "defects_csv",
    "defects_geojson",
    "get_defect",
    "list_cells",
    "list_defects",
    "set_status",
]
