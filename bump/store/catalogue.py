"""The stored columns (name -> NumPy dtype code) of each table as the rest of `bump` sees them, and the filters of
a defect list."""

from __future__ import annotations

from dataclasses import dataclass

# a hit's lat_deg/lon_deg are the position its phone reported; x_m/y_m place it in the database's projection, moved
# by its trip's GPS error read at landmarks when there were any (bump.landmarks, defects 0.8 on)
HIT_COLUMNS: dict[str, str] = {
    "hit_id": "i8", "trip_id": "U", "device_id": "U", "defect_id": "i8", "t_s": "f8", "lat_deg": "f8",
    "lon_deg": "f8", "x_m": "f8", "y_m": "f8", "accuracy_m": "f8", "heading_deg": "f8", "kind": "U",
    "severity": "f8", "depth_class": "U", "confidence": "f8", "speed_mps": "f8", "own_latency_s": "f8",
    "spot_kind": "U", "first_motion": "f8",
}
OPTIONAL_HIT_COLUMNS = ("own_latency_s", "first_motion")               # NULL if left out
DEFECT_COLUMNS: dict[str, str] = {
    "defect_id": "i8", "status": "U", "crew_status": "U", "crew_at_s": "f8", "kind": "U", "kind_reason": "U",
    "lat_deg": "f8", "lon_deg": "f8", "x_m": "f8", "y_m": "f8", "grid_key": "i8", "heading_deg": "f8",
    "spans": "i8", "uncertainty_m": "f8", "severity": "f8", "depth_class": "U", "confidence": "f8",
    "priority": "f8", "n_hits": "i8", "n_devices": "i8", "n_traversals": "i8", "n_traversal_hits": "i8",
    "hit_rate": "f8", "traversals_per_day": "f8", "first_seen_s": "f8", "last_seen_s": "f8",
    "last_traversal_s": "f8", "status_since_s": "f8", "created_at_s": "f8", "updated_at_s": "f8", "detector": "U",
    "status_replay": "U", "first_traversal_s": "f8", "latency_s": "f8",
    "latency_devices": "i8",
}
OPTIONAL_DEFECT_COLUMNS = ("status_replay", "first_traversal_s", "latency_s", "latency_devices")  # NULL if left out
INDEXED_DEFECT_COLUMNS = ("priority", "grid_key", "lat_deg")           # columns of the defects' indexes
TRAVERSAL_COLUMNS: dict[str, str] = {"defect_id": "i8", "trip_id": "U", "pass_no": "i8", "device_id": "U",
                                     "t_s": "f8", "hit": "i8", "distance_m": "f8"}
HISTORY_COLUMNS = ("history_id", "defect_id", "t_s", "recorded_at_s", "from_status", "to_status", "reason", "actor")
ROUGHNESS_COLUMNS: dict[str, str] = {
    "trip_id": "U", "device_id": "U", "t_start_s": "f8", "t_end_s": "f8", "lat_deg": "f8", "lon_deg": "f8",
    "heading_deg": "f8", "length_m": "f8", "speed_mps": "f8", "rms_mps2": "f8", "iri_m_per_km": "f8",
    "cell_key": "i8",
}
COVERAGE_COLUMNS: dict[str, str] = {"cell_key": "i8", "trip_id": "U", "device_id": "U", "t_s": "f8"}
TOKEN_COLUMNS = ("token_id", "prefix", "token_sha256", "role", "device_id", "label", "created_at_s", "revoked_at_s")
CELL_COLUMNS: dict[str, str] = {
    "cell_key": "i8", "lat_deg": "f8", "lon_deg": "f8", "heading_deg": "f8", "n_readings": "i8", "iri_sum": "f8",
    "iri_sumsq": "f8", "n_rough_devices": "i8", "n_traversals": "i8", "n_devices": "i8", "first_s": "f8",
    "last_s": "f8",
}
_CELL_COUNTS = ("n_readings", "iri_sum", "iri_sumsq", "n_rough_devices", "n_traversals", "n_devices")   # additive
_TRIP_INFO = ("trip_id", "device_id", "t_start_s", "t_end_s", "ingested_at_s", "source_format", "n_samples",
              "n_impacts", "length_m", "detector", "quality", "raw_sha256")
DERIVED_TABLES = ("defect_history", "traversals", "hits", "defects", "roughness", "coverage", "cells")


CONFIDENCE_DECIMALS = 3                     # confidences are reported to this many decimals


@dataclass(frozen=True)
class DefectQuery:
    """Filters of :meth:`Store.list_defects`. ``None`` means no filter; bbox is (west, south, east, north) [deg]
    (west > east crosses the antimeridian). Results are ordered by priority (descending), then id."""

    statuses: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    bbox: tuple[float, float, float, float] | None = None
    limit: int = 100
    cursor: str | None = None
    min_confidence: float | None = None     # confidence as reported (3 decimals) >= this
    since_s: float | None = None            # last hit or status change at or after this [s since the epoch]
    hidden_cover_classes: tuple[str, ...] = ()   # depth classes of kind "cover" left out unless a crew confirmed
    #                                             them (castings with nothing to fix: bump.cluster.MINOR_COVER_CLASSES)
