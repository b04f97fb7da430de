"""Plain-JSON views of detector results, shared by the CLI, the store and the HTTP API."""

from __future__ import annotations

from typing import Any

import numpy as np

from detect import Columns, Detection
from detect.pipeline import IMPACT_DTYPES
from ingest import Trace

IMPACT_FIELDS = tuple(IMPACT_DTYPES)          # what every impact carries, in the detector's order
_DECIMALS = {"t_s": 3, "lat_deg": 6, "lon_deg": 6, "accuracy_m": 1, "heading_deg": 1, "severity": 2,
             "confidence": 3, "speed_mps": 2, "iri_m_per_km": 2, "rms_mps2": 3, "length_m": 1,
             "distance_start_m": 1, "t_start_s": 3, "t_end_s": 3}


def impact_records(det: Detection) -> list[dict[str, Any]]:
    """Impacts as dicts with short public names: t, lat, lon, kind, severity, confidence, speed_mps, ..."""
    rows = Columns({k: det.impacts[k] for k in IMPACT_FIELDS}).to_records(decimals=_DECIMALS)
    rename = {"t_s": "t", "lat_deg": "lat", "lon_deg": "lon"}
    return [{rename.get(k, k): v for k, v in r.items()} for r in rows]


def roughness_records(det: Detection) -> list[dict[str, Any]]:
    names = [k for k in ("t_start_s", "t_end_s", "lat_deg", "lon_deg", "heading_deg", "distance_start_m", "length_m",
                         "speed_mps", "rms_mps2", "iri_m_per_km", "valid") if k in det.roughness]
    rename = {"lat_deg": "lat", "lon_deg": "lon"}                      # as the impacts'
    rows = Columns({k: det.roughness[k] for k in names}).to_records(decimals=_DECIMALS)
    return [{rename.get(k, k): v for k, v in r.items()} for r in rows]


def gps_latency_record(det: Detection) -> dict[str, Any]:
    """The trip's own GPS latency estimate (``latency_s`` None when the trip did not tell it) and the latency its
    positions were corrected by (``used_s``)."""
    return {**det.gps_latency.to_dict(), "used_s": round(det.gps_latency_s, 3)}


def detection_summary(det: Detection, trace: Trace, *, file: str | None = None) -> dict[str, Any]:
    """The ``bump detect --json`` object of one trace."""
    out: dict[str, Any] = {"trip_id": det.trip_id, "device_id": det.device_id}
    if file is not None:
        out["file"] = file
    out["detector"] = {"version": det.params.version, "params_digest": det.params.digest()}
    out["impacts"] = impact_records(det)
    out["roughness"] = roughness_records(det)
    out["quality"] = trace.quality.to_dict()
    out["quality"]["mount_segments"] = int(det.orientation.seg_start.size)
    out["quality"]["gps_latency"] = gps_latency_record(det)
    reasons, counts = np.unique(det.candidates["rejected"], return_counts=True)   # sorted: the same bytes every run
    out["quality"]["candidates_rejected"] = {str(r): int(n) for r, n in zip(reasons, counts, strict=True) if r}
    return out
