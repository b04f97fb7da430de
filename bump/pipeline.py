"""Service functions over the store: what the CLI and the HTTP layer call.

- :func:`ingest_trace` — one trace in: detection, hits, defects (join / new / merge), traversals, status, priority,
  roughness and coverage cells, all in ONE transaction; a trip already stored is skipped (idempotent by trip_id).
- :func:`reprocess` — re-run detection with new :class:`detect.DetectorParams` on every stored raw trace and
  re-cluster everything (:func:`bump.cluster.recluster`); crews' decisions are carried over to the defect at the
  same spot.
- :func:`list_defects`, :func:`get_defect`, :func:`set_status` — the crews' view, ranked by priority.
- :func:`list_cells`, :func:`coverage` — the roughness and coverage maps.
- :func:`defect_record`, :func:`defects_geojson`, :func:`defects_csv` — plain output shapes (RFC 7946 GeoJSON,
  CSV with lat/lon columns, ISO 8601 UTC times).

Per trip, incrementally (nothing else of the city is re-clustered): the trip's hits join the nearest compatible
defect within its gate, the rest form new candidates among themselves; the trip's track is matched against the
defects near it (traversals, hit or not); new defects also get the traversals of earlier trips that passed them
(found through the coverage cells); every defect touched is then re-summarised (position, kind, counts), merged
with a duplicate or its opposite-direction twin if it has one, and its status and priority re-evaluated.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

import ingest
from bump import cells as cellmap
from bump.cluster import (
    DEFAULT_DEFECT_PARAMS,
    DESIGNED_KINDS,
    KINDS,
    LISTED_KINDS,
    SPANNING_KINDS,
    DefectParams,
    LatencyCalibration,
    Track,
    assign_hits,
    close_pairs,
    corrected_xy,
    decide_depth_classes,
    decide_kinds,
    densify,
    device_latency_s,
    device_latency_samples,
    duplicate_pairs,
    find_traversals,
    find_traversals_of_tracks,
    group_hits,
    latency_samples,
    mean_heading,
    merge_forest,
    points_tree,
    recluster,
    robust_centres,
    spanning_labels,
    track_from_fixes,
    twin_pairs,
)
from bump.lifecycle import (
    CREW_STATUSES,
    DEFAULT_LIST_STATUSES,
    REOPEN,
    STATUSES,
    InvalidStatusError,
    Replay,
    Transition,
    check_crew_status,
    evaluate_status,
    replay_passes,
    resume_after_miss,
    resume_json_after_miss,
)
from bump.priority import priority, traversals_per_day
from bump.store import CONFIDENCE_DECIMALS, INDEXED_DEFECT_COLUMNS, DefectQuery, Store, StoreError, ids_in
from detect import Detection, detect
from detect.columns import Columns
from detect.geo import LocalProjection
from detect.params import DetectorParams
from detect.pipeline import IMPACT_DTYPES
from ingest.errors import BumpError
from ingest.source import GZIP_MAGIC, ZIP_MAGIC

_SKIP_FEATURES = {"i_start", "i_stop", "i_peak", "valid", "rejected"}
# what merging reads of the defects around a place (a narrow, faster read)
_MERGE_COLUMNS = ("defect_id", "x_m", "y_m", "heading_deg", "spans", "uncertainty_m", "n_traversals",
                  "n_traversal_hits", "n_hits")
# joining and passes of a trip (~700 rows a trip): no status, counts (read for the few defects that need them)
_TRACK_NEAR_COLUMNS = ("defect_id", "x_m", "y_m", "heading_deg", "spans", "uncertainty_m")


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class IngestSummary:
    """What one :func:`ingest_trace` changed."""

    trip_id: str
    device_id: str
    skipped: bool = False                  # the trip was already stored: nothing changed
    n_impacts: int = 0
    n_hits: int = 0                        # impacts with a position, stored as hits
    n_joined: int = 0                      # hits that joined an existing defect
    new_defects: tuple[int, ...] = ()
    updated_defects: tuple[int, ...] = ()  # existing defects whose hits, traversals or status changed
    merged_defects: tuple[int, ...] = ()   # ids that disappeared into another defect
    n_traversals: int = 0                  # defects this trip passed (hit or not)
    n_roughness: int = 0
    status_changes: tuple[tuple[int, str | None, str], ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"trip_id": self.trip_id, "device_id": self.device_id, "skipped": self.skipped,
                "impacts": self.n_impacts, "hits": self.n_hits, "joined": self.n_joined,
                "new_defects": list(self.new_defects), "updated_defects": list(self.updated_defects),
                "merged_defects": list(self.merged_defects), "traversals": self.n_traversals,
                "roughness_windows": self.n_roughness,
                "status_changes": [{"id": i, "from": a, "to": b} for i, a, b in self.status_changes],
                "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()}}


@dataclass(frozen=True)
class ReprocessSummary:
    n_trips: int
    n_hits: int
    n_defects: int
    by_status: dict[str, int]
    carried_over: int                      # crew decisions moved to the re-clustered defects
    lost_decisions: int                    # crew decisions with no defect at their spot any more
    detector: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"trips": self.n_trips, "hits": self.n_hits, "defects": self.n_defects, "by_status": self.by_status,
                "crew_decisions_carried_over": self.carried_over, "crew_decisions_lost": self.lost_decisions,
                "detector": self.detector}


@dataclass(frozen=True)
class DefectPage:
    defects: list[dict[str, Any]]
    next_cursor: str | None


# ----------------------------------------------------------------------------------------------- conversions


def projection(store: Store, trace: ingest.Trace | None = None) -> LocalProjection | None:
    """The database's local projection; fixed at the first fix of the first trip with GPS."""
    origin = store.get_meta("origin")
    if origin is None:
        if trace is None or not trace.has_gps:
            return None
        lat0, lon0 = round(float(trace.lat_deg[0]), 4), round(float(trace.lon_deg[0]), 4)
        store.set_meta("origin", f"{lat0!r},{lon0!r}")
        return LocalProjection(lat0, lon0)
    lat0, lon0 = (float(v) for v in origin.split(","))
    return LocalProjection(lat0, lon0)


def detector_info(params: DetectorParams) -> dict[str, Any]:
    return {"version": params.version, "params_digest": params.digest(), "params": params.to_dict()}


def _hit_detector(params: DetectorParams) -> dict[str, Any]:
    """``detector_info(params) | {"params": None}`` (what each hit stores) without serialising the parameters."""
    return {"version": params.version, "params_digest": params.digest(), "params": None}


def trace_track(trace: ingest.Trace, params: DetectorParams) -> Track:
    return track_from_fixes(trace.gps_t_s, trace.lat_deg, trace.lon_deg, trace.speed_mps, trace.heading_deg,
                            trace.accuracy_m, latency_s=params.gps_latency_s)


def hit_columns(det: Detection, proj: LocalProjection, trip_id: str, device_id: str
                ) -> tuple[Columns, list[dict[str, Any]]]:
    """The storable hits of a detection (impacts with a position) and their extra features."""
    imp = det.impacts
    ok = np.isfinite(imp["lat_deg"]) & np.isfinite(imp["lon_deg"]) if len(imp) else np.zeros(0, dtype=bool)
    imp = imp.select(ok)
    n = len(imp)
    x, y = proj.to_xy(imp["lat_deg"], imp["lon_deg"]) if n else (np.empty(0), np.empty(0))
    cols = Columns({
        "trip_id": np.full(n, trip_id), "device_id": np.full(n, device_id), "t_s": imp["t_s"],
        "lat_deg": imp["lat_deg"], "lon_deg": imp["lon_deg"], "x_m": x, "y_m": y, "accuracy_m": imp["accuracy_m"],
        "heading_deg": imp["heading_deg"], "kind": imp["kind"].astype(str), "severity": imp["severity"],
        "depth_class": imp["depth_class"].astype(str), "confidence": imp["confidence"], "speed_mps": imp["speed_mps"],
    })
    extra = [k for k in imp if k not in IMPACT_DTYPES and k not in _SKIP_FEATURES]
    features = _records({k: imp[k] for k in extra}, 4) if extra and n else [{} for _ in range(n)]
    return cols, features


def _records(cols: dict[str, Any], decimals: int) -> list[dict[str, Any]]:
    """``Columns(cols).to_records(decimals=...)`` with every float column rounded to ``decimals``: rows as
    plain-Python dicts, NaN and inf -> None; a column at a time, not a value at a time (a trip's hits carry ~20
    features: 5x faster)."""
    lists: dict[str, list[Any]] = {}
    for k, v in cols.items():
        arr = np.asarray(v)
        if arr.dtype.kind == "f":
            arr = np.round(arr, decimals)
            finite = np.isfinite(arr)
            lists[k] = arr.tolist() if finite.all() else [x if f else None for x, f in zip(arr.tolist(),
                                                                                        finite.tolist(),
                                                                                        strict=True)]
        else:
            lists[k] = arr.tolist()
    return [dict(zip(lists, row, strict=True)) for row in zip(*lists.values(), strict=True)]


def _track_xy(track: Track, proj: LocalProjection, params: DefectParams, *,
              box: tuple[float, float, float, float] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = proj.to_xy(track.lat_deg, track.lon_deg)
    return densify((x, y, track.t_s), track.heading_deg, track.accuracy_m, params.track_step_m, box=box)


def _setdiff(a: Any, b: Any) -> np.ndarray:
    """``np.setdiff1d(a, b)`` (sorted unique values of a not in b), by :func:`bump.store.ids_in` for ids."""
    a = np.unique(np.asarray(a))
    return a[~ids_in(a, b)]


def _spans(kinds: np.ndarray) -> np.ndarray:
    return np.isin(np.asarray(kinds).astype(str), SPANNING_KINDS)


# ------------------------------------------------------------------------------------------------- ingestion


def ingest_trace(store: Store, trace: ingest.Trace, params: DetectorParams = DetectorParams(), *,
                 defect_params: DefectParams = DEFAULT_DEFECT_PARAMS, device_id: str | None = None,
                 detection: Detection | None = None, raw: bytes | None = None,
                 clock: Callable[[], float] = time.time) -> IngestSummary:
    """Detect, store and cluster one trace (see the module docstring). ``device_id`` overrides the trace's
    (the HTTP layer passes the authenticated device); ``detection`` reuses a detection already made; ``raw`` is
    the input the trace was read from (any supported format): stored as it came when already gzip or zip
    compressed, so an upload is not serialised again (``ingest.read`` reads it back to the same trace)."""
    device = device_id or trace.device_id
    if store.has_trip(trace.trip_id):
        return IngestSummary(trace.trip_id, device, skipped=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()           # "serialise": everything made from the trace alone, before the write lock
    if raw is None or not raw.startswith((GZIP_MAGIC, ZIP_MAGIC)):
        raw = gzip.compress(raw if raw is not None else ingest.dumps(trace), compresslevel=1, mtime=0)  # level 1:
        # 7x faster than 6, +6 % size
    track = trace_track(trace, params)
    stored = _TripBytes(raw, track)                          # made meanwhile (see _TripBytes)
    serialise = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = detection if detection is not None else detect(trace, params)
    timings["detect"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    info = _trip_info(trace, device, det, params, np.nan)
    proj = projection(store)           # fixed once set: read before the lock (None: this trip's first fix may set it)
    rows = _trip_rows(trace, det, track, proj, device, params, defect_params) if proj is not None else None
    blob, digest = stored.result()
    timings["serialise"] = serialise + time.perf_counter() - t0
    t0 = time.perf_counter()
    with store.transaction(journal_in_memory=True):      # a trip's statements change a few hundred pages at most
        if store.has_trip(trace.trip_id):       # stored by a concurrent writer meanwhile
            return IngestSummary(trace.trip_id, device, skipped=True)
        if proj is None:
            proj = projection(store, trace)
            rows = _trip_rows(trace, det, track, proj, device, params, defect_params) if proj is not None else None
        store.add_trip(info | {"ingested_at_s": clock()}, raw, blob, raw_sha256=digest)  # commit order
        if proj is None or rows is None:
            timings["store"] = time.perf_counter() - t0
            return IngestSummary(trace.trip_id, device, n_impacts=det.n_impacts, timings_s=timings)
        summary = _cluster_trip(store, proj, trace.trip_id, device, rows, defect_params, params, clock())
        n_rough = _update_maps(store, proj, det.roughness, track, trace.trip_id, device, rows=rows.maps)
    timings["store"] = time.perf_counter() - t0                           # commit (fsync) included
    return IngestSummary(trace.trip_id, device, n_impacts=det.n_impacts, n_hits=len(rows.hits),
                         n_roughness=n_rough, timings_s=timings, **summary)


class _TripBytes:
    """The compressed track blob and the SHA-256 (hex) of the raw input a trip stores, made in a worker thread
    while the trace is detected and its rows are made: zlib and hashlib release the GIL while they work, so with
    a second core free they take no time off the upload's path (~1.7 ms for a 10-minute upload of 1.7 MB)."""

    def __init__(self, raw: bytes, track: Track) -> None:
        self._made: tuple[bytes, str] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._make, args=(raw, track), name="bump-trip-bytes", daemon=True)
        self._thread.start()

    def _make(self, raw: bytes, track: Track) -> None:
        try:
            self._made = (track.to_bytes(), hashlib.sha256(raw).hexdigest())
        except BaseException as exc:       # raised again to the caller by result()
            self._error = exc

    def result(self) -> tuple[bytes, str]:
        """(track blob, raw SHA-256 hex), once made."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._made is not None
        return self._made


@dataclass(frozen=True)
class _TripRows:
    """What a trip adds, computed from the trace, its detection and the (fixed) projection alone, so that it is
    ready before the write lock is taken."""

    hits: Columns                                # storable hits (no ids yet) and their extra features
    features: list[dict[str, Any]]
    detector: dict[str, Any]                     # stored with each hit
    dense: tuple[np.ndarray, ...]                # the track densified for matching: t, x, y, heading, accuracy
    track_keys: np.ndarray                       # defect-grid keys within passing reach of the track
    wide_keys: np.ndarray                        # ... and a cell either side (see _cluster_trip)
    tree: Any                                    # search tree of the dense track's points (cluster.points_tree)
    maps: tuple[Columns, Columns, Columns]       # roughness rows, coverage rows, centres of their cells


def _trip_rows(trace: ingest.Trace, det: Detection, track: Track, proj: LocalProjection, device: str,
               params: DetectorParams, dp: DefectParams) -> _TripRows:
    hits, features = hit_columns(det, proj, trace.trip_id, device)
    dense = _track_xy(track, proj, dp)
    reach = dp.max_join_radius_m + dp.max_traversal_radius_m
    rough, cover = _map_rows(proj, det.roughness, track, trace.trip_id, device)
    centres = cellmap.cell_centres(np.concatenate([rough["cell_key"], cover["cell_key"]]), proj)
    return _TripRows(hits, features, _hit_detector(params), dense,
                     cellmap.grid_keys_within(dense[1], dense[2], dp.max_traversal_radius_m),
                     cellmap.grid_keys_around(dense[1], dense[2], reach), points_tree(dense[1], dense[2]),
                     (rough, cover, centres))


def _trip_info(trace: ingest.Trace, device: str, det: Detection, params: DetectorParams, now: float
               ) -> dict[str, Any]:
    length = 0.0
    if trace.gps_t_s.size >= 2:
        p = LocalProjection(float(trace.lat_deg[0]), float(trace.lon_deg[0]))
        x, y = p.to_xy(trace.lat_deg, trace.lon_deg)
        length = float(np.hypot(np.diff(x), np.diff(y)).sum())
    quality = trace.quality.to_dict()
    return {"trip_id": trace.trip_id, "device_id": device, "t_start_s": float(trace.t_s[0]),
            "t_end_s": float(trace.t_s[-1]), "ingested_at_s": now, "source_format": trace.source_format,
            "n_samples": trace.n_samples, "n_impacts": det.n_impacts, "length_m": length,
            "detector": detector_info(params), "quality": quality}


def _stub_defects(store: Store, proj: LocalProjection, x: np.ndarray, y: np.ndarray, heading: np.ndarray,
                  spans: np.ndarray, unc: np.ndarray, kind: np.ndarray, t_s: np.ndarray, now: float,
                  detector: str) -> np.ndarray:
    """Insert new candidate defects with provisional fields (refresh_defects completes them); their ids."""
    n = len(x)
    lat, lon = proj.to_latlon(x, y)
    zeros, nan = np.zeros(n, dtype=np.int64), np.full(n, np.nan)
    return store.insert_defects({
        "status": np.full(n, "candidate"), "crew_status": np.full(n, None), "crew_at_s": nan, "kind": kind,
        "kind_reason": np.full(n, "new"), "lat_deg": lat, "lon_deg": lon, "x_m": x, "y_m": y,
        "grid_key": cellmap.grid_keys(x, y), "heading_deg": heading, "spans": spans.astype(np.int64),
        "uncertainty_m": unc, "severity": nan, "depth_class": np.full(n, ""), "confidence": np.zeros(n),
        "priority": np.zeros(n), "n_hits": zeros, "n_devices": zeros, "n_traversals": zeros,
        "n_traversal_hits": zeros, "hit_rate": nan, "traversals_per_day": np.zeros(n), "first_seen_s": t_s,
        "last_seen_s": t_s, "last_traversal_s": nan, "status_since_s": t_s, "created_at_s": np.full(n, now),
        "updated_at_s": np.full(n, now), "detector": np.full(n, detector),
    })


def _detector_json(params: DetectorParams, defect_params: DefectParams) -> str:
    import orjson

    return orjson.dumps({"detector": params.version, "detector_digest": params.digest(),
                         "defects": defect_params.version, "defects_digest": defect_params.digest()}).decode()


def _cluster_trip(store: Store, proj: LocalProjection, trip_id: str, device: str, trip: _TripRows,
                  dp: DefectParams, params: DetectorParams, now: float) -> dict[str, Any]:
    """Store the trip's hits with the defects they join or found, and its passes; refresh what they touched."""
    reach = dp.max_join_radius_m + dp.max_traversal_radius_m
    raw = hits = trip.hits
    latency = float(hit_latencies_s(store, np.array([device]), dp)[0])
    hits = hits.with_columns(**dict(zip(("x_m", "y_m"), corrected_xy(
        hits["x_m"], hits["y_m"], hits["heading_deg"], hits["speed_mps"], latency), strict=True)))
    hspans = _spans(hits["kind"])
    # the defects the trip may join (around its hits) or pass (near its track), and those _update_latency pairs its
    # raw road-spanning hits with (within two join radii of them, where the track's wider neighbourhood reaches)
    keys = np.union1d(trip.track_keys, cellmap.grid_keys_around(hits["x_m"], hits["y_m"], reach))
    if dp.latency_calibration and hspans.any():
        keys = np.union1d(keys, np.intersect1d(trip.wide_keys, cellmap.grid_keys_around(
            raw["x_m"][hspans], raw["y_m"][hspans], 2 * dp.max_join_radius_m)))
    near = store.defects_in_grid(keys, _TRACK_NEAR_COLUMNS)
    idx = assign_hits(hits["x_m"], hits["y_m"], hits["heading_deg"], hspans, hits["accuracy_m"], near["x_m"],
                      near["y_m"], near["heading_deg"], near["spans"].astype(bool), near["uncertainty_m"], dp)
    hit_defect = np.where(idx >= 0, near["defect_id"][np.maximum(idx, 0)] if len(near) else -1, -1)
    rest = np.flatnonzero(idx < 0)
    new_ids = np.empty(0, dtype=np.int64)
    if rest.size:
        sub = hits.select(rest)
        labels = group_hits(sub["x_m"], sub["y_m"], sub["heading_deg"], hspans[rest], sub["accuracy_m"], dp)
        k = int(labels.max()) + 1
        c = robust_centres(labels, sub["x_m"], sub["y_m"], sub["accuracy_m"], np.zeros(rest.size, np.int64), k, dp)
        gspans = spanning_labels(labels, hspans[rest], k)
        head = mean_heading(labels, sub["heading_deg"], np.ones(rest.size), k, gspans)
        first_t = np.full(k, np.inf)
        np.minimum.at(first_t, labels, sub["t_s"])
        kinds = np.array([sub["kind"][labels == g][0] for g in range(k)])
        new_ids = _stub_defects(store, proj, c.x_m, c.y_m, head, gspans, c.uncertainty_m, kinds, first_t, now,
                                _detector_json(params, dp))
        hit_defect[rest] = new_ids[labels]
    store.add_hits(raw.data | {"defect_id": hit_defect}, trip.features, trip.detector)
    hit_ids = np.unique(hit_defect[hit_defect >= 0])
    recent = None                              # latest hits read for the latency, reused by the refresh
    if dp.latency_calibration and hspans.any():
        recent = _update_latency(store, proj, raw.select(hspans), near, dp, also=hit_ids)
    if dp.device_latency:
        _update_device_latency(store, device, hits, idx, near, latency, dp)

    # traversals of this trip: the defects near its track, and the new ones
    new_cols = store.defects_by_id(new_ids, (*_TRACK_NEAR_COLUMNS, "first_seen_s")) if new_ids.size else None
    allc = near if new_cols is None else Columns({k: np.concatenate([near[k], new_cols[k]]) for k in near})
    rows = _trip_traversals(trip_id, device, trip.dense, allc, hits, hit_defect, dp, tree=trip.tree)
    store.upsert_traversals(rows.data)
    if new_ids.size:
        _backfill(store, proj, trip_id, new_cols, dp)
    touched = np.unique(np.concatenate([rows["defect_id"], new_ids, hit_defect[hit_defect >= 0]]))
    result = refresh_defects(store, touched, proj, dp, now=now, detector=_detector_json(params, dp),
                             new_ids=set(new_ids.tolist()), check_ids=hit_ids, passes=rows, hits_synced=True,
                             recent_hits=recent)
    surviving_new = tuple(sorted(set(new_ids.tolist()) - set(result.merged)))
    updated = tuple(sorted(set(touched.tolist()) - set(new_ids.tolist()) - set(result.merged)))
    # status changes of the defects around the trip (as read before this trip changed them: first in the refresh)
    around = set(near["defect_id"].tolist())
    before = result.status_before
    changes = tuple((i, before[i], s) for i, s in result.final_status.items() if i in around and before[i] != s)
    return {"n_joined": int((idx >= 0).sum()), "new_defects": surviving_new, "updated_defects": updated,
            "merged_defects": tuple(sorted(result.merged)), "n_traversals": len(rows), "status_changes": changes}


_FLEET_LATENCY = "gps_latency"                  # meta key of the fleet's latency histogram
_EVERY_DEVICE_LATENCY = "gps_latency:every_device"
# meta key of the number of devices with latency samples of their own (it only grows). A summary whose hits were
# all corrected by the fleet's latency stores that latency and this number (defects.latency_s, latency_devices):
# while both stand, its hits are corrected as they were (a device without samples of its own takes the fleet's)
_OWN_LATENCY_DEVICES = "gps_latency:devices"


def _device_latency_key(device: str) -> str:
    return f"gps_latency:device:{device}"


def _fleet_latency(store: Store, dp: DefectParams) -> tuple[float, int]:
    """(the fleet's GPS latency [s], the number of devices with samples of their own)."""
    stored = store.get_metas([_FLEET_LATENCY, _OWN_LATENCY_DEVICES])
    return (LatencyCalibration.from_json(stored.get(_FLEET_LATENCY)).estimate_s(dp),
            int(stored.get(_OWN_LATENCY_DEVICES) or 0))


def hit_latencies_s(store: Store, device_ids: np.ndarray, dp: DefectParams) -> np.ndarray:
    """The GPS latency [s] each hit's position is corrected by: its device's own, blended with the fleet's
    (:func:`bump.cluster.device_latency_s`)."""
    return _hit_latencies(store, device_ids, dp)[0]


def _hit_latencies(store: Store, device_ids: np.ndarray, dp: DefectParams) -> tuple[np.ndarray, np.ndarray]:
    """:func:`hit_latencies_s` and, per hit, whether its device has latency samples of its own."""
    return _latencies(store, device_ids, dp)[:2]


def _latencies(store: Store, device_ids: np.ndarray, dp: DefectParams
               ) -> tuple[np.ndarray, np.ndarray, tuple[float, int]]:
    """:func:`_hit_latencies` and :func:`_fleet_latency`, from one read of the stored calibrations."""
    devices, inverse = np.unique(np.asarray(device_ids).astype(str), return_inverse=True)
    keys = [_device_latency_key(d) for d in devices.tolist()]           # loop over devices
    stored = store.get_metas([_FLEET_LATENCY, _OWN_LATENCY_DEVICES, *([_EVERY_DEVICE_LATENCY] if keys else []),
                              *keys])
    fleet = LatencyCalibration.from_json(stored.get(_FLEET_LATENCY)).estimate_s(dp)
    fleet_and_devices = (fleet, int(stored.get(_OWN_LATENCY_DEVICES) or 0))
    if not devices.size:
        return np.empty(0), np.zeros(0, dtype=bool), fleet_and_devices
    every = LatencyCalibration.from_json(stored.get(_EVERY_DEVICE_LATENCY))
    texts = [stored.get(k) for k in keys]
    by_text: dict[str | None, tuple[float, bool]] = {}      # devices without samples (most) share one value
    for text in texts:
        if text not in by_text:
            own = LatencyCalibration.from_json(text)
            by_text[text] = (device_latency_s(own, every, fleet, dp), own.n_pairs > 0)
    latency, own_samples = zip(*(by_text[t] for t in texts), strict=True)
    inverse = inverse.ravel()
    return np.array(latency)[inverse], np.array(own_samples, dtype=bool)[inverse], fleet_and_devices


def _update_device_latency(store: Store, device: str, hits: Columns, idx: np.ndarray, near: Columns,
                           used_latency_s: float, dp: DefectParams) -> None:
    """Add this trip's latency samples: its hits (corrected by ``used_latency_s``) that joined established
    defects (confirmed, ``device_latency_min_hits`` hits) against those defects' centres."""
    joined = np.flatnonzero(idx >= 0)
    if joined.size == 0:
        return
    j = idx[joined]
    state = store.defects_by_id(np.unique(near["defect_id"][j]), ("defect_id", "status", "n_hits"))
    at = np.searchsorted(state["defect_id"], near["defect_id"][j])       # the near defects are read this way
    ok = (state["n_hits"][at] >= dp.device_latency_min_hits) & (state["status"][at].astype(str) == "confirmed")
    if not ok.any():
        return
    h = hits.select(joined[ok])
    samples = device_latency_samples(h["x_m"], h["y_m"], h["heading_deg"], h["speed_mps"], near["x_m"][j[ok]],
                                     near["y_m"][j[ok]], used_latency_s)
    if samples.size:
        for key in (_device_latency_key(device), _EVERY_DEVICE_LATENCY):
            before = LatencyCalibration.from_json(store.get_meta(key))
            after = before.add(samples)
            store.set_meta(key, after.to_json())
            if key != _EVERY_DEVICE_LATENCY and before.n_pairs == 0 < after.n_pairs:     # its own latency now
                store.set_meta(_OWN_LATENCY_DEVICES, str(int(store.get_meta(_OWN_LATENCY_DEVICES) or 0) + 1))


def _latency_input(hits: Columns) -> tuple[np.ndarray, ...]:
    _, trip = np.unique(hits["trip_id"], return_inverse=True)
    return (hits["x_m"], hits["y_m"], hits["heading_deg"], hits["speed_mps"], trip.ravel())


def _update_latency(store: Store, proj: LocalProjection, spanning: Columns, near: Columns, dp: DefectParams, *,
                    also: np.ndarray | None = None) -> tuple[np.ndarray, Columns]:
    """Add the latency estimates of this trip's road-spanning hits paired with stored ones nearby. Returns the
    ids ``also`` (the defects this trip hit) and their latest hits (columns of :data:`_SUMMARY_HIT_COLUMNS`, by
    hit id), read with those of the other defects near: the refresh that follows needs them."""
    close = np.hypot(near["x_m"][:, None] - spanning["x_m"][None, :],
                     near["y_m"][:, None] - spanning["y_m"][None, :]).min(axis=1) <= 2 * dp.max_join_radius_m \
        if len(near) else np.zeros(0, dtype=bool)
    also = np.empty(0, np.int64) if also is None else np.asarray(also, np.int64)
    wide = store.hits_of_defects(also, _SUMMARY_HIT_COLUMNS, recent=dp.summary_hits)
    names = ("hit_id", "x_m", "y_m", "heading_deg", "speed_mps", "trip_id", "kind")
    trip = str(spanning["trip_id"][0])
    narrow = store.hits_of_defects(_setdiff(near["defect_id"][close], also), names, recent=dp.summary_hits,
                                   kinds=SPANNING_KINDS, not_trip=trip)    # only those paired below
    mine = wide.select(ids_in(wide["defect_id"], near["defect_id"][close]))
    other = Columns({k: np.concatenate([mine[k], narrow[k]]) for k in names})
    other = other.select(np.argsort(other["hit_id"], kind="stable"))        # as one read of them gives
    other = other.select(_spans(other["kind"]) & (other["trip_id"] != trip))
    if len(other) == 0:
        return also, wide
    both = Columns({k: np.concatenate([spanning[k], other[k]]) for k in ("x_m", "y_m", "heading_deg", "speed_mps",
                                                                          "trip_id")})
    both_input = _latency_input(both)
    a = tuple(v[: len(spanning)] for v in both_input)
    b = tuple(v[len(spanning):] for v in both_input)
    samples = latency_samples(a, b, dp)
    if samples.size:
        calib = LatencyCalibration.from_json(store.get_meta(_FLEET_LATENCY)).add(samples)
        store.set_meta(_FLEET_LATENCY, calib.to_json())
    return also, wide


def _trip_traversals(trip_id: str, device: str, dense: tuple[np.ndarray, ...], defects: Columns, hits: Columns,
                     hit_defect: np.ndarray, dp: DefectParams, *, tree: Any = None) -> Columns:
    """Traversal rows of one trip: defects its track passes, plus every defect it hit. ``tree``: the search tree of
    the track's points (:func:`bump.cluster.points_tree`) when built before."""
    tt, tx, ty, th, tacc = dense
    j, t_pass, dist = find_traversals(tt, tx, ty, th, tacc, defects["x_m"], defects["y_m"], defects["heading_deg"],
                                      defects["spans"].astype(bool), defects["uncertainty_m"], dp, tree=tree)
    ids = defects["defect_id"][j] if len(defects) else np.empty(0, dtype=np.int64)
    hit_ids = hit_defect[hit_defect >= 0]
    hit_t = hits["t_s"][hit_defect >= 0]
    missing = _setdiff(np.unique(hit_ids), ids)
    first_hit = np.array([hit_t[hit_ids == m].min() for m in missing]) if missing.size else np.empty(0)
    all_ids = np.concatenate([ids, missing]).astype(np.int64)
    n = all_ids.size
    return Columns({"defect_id": all_ids, "trip_id": np.full(n, trip_id), "device_id": np.full(n, device),
                    "t_s": np.concatenate([t_pass, first_hit]),
                    "hit": ids_in(all_ids, hit_ids).astype(np.int64),
                    "distance_m": np.concatenate([dist, np.full(missing.size, np.nan)])})


def _backfill(store: Store, proj: LocalProjection, trip_id: str, new: Columns, dp: DefectParams) -> None:
    """Traversals of other stored trips past new defects (found through the coverage cells): every trip after,
    and those up to ``backfill_days`` before, the first hit (older passes say nothing about the defect's state)."""
    keys = cellmap.grid_keys_around(new["x_m"], new["y_m"], dp.max_traversal_radius_m, size_m=cellmap.CELL_SIZE_M,
                                    directions=True)
    since = float(np.nanmin(new["first_seen_s"])) - dp.backfill_days * 86_400.0
    trips = store.trips_covering(keys, exclude_trip=trip_id, since_s=since)
    reach = dp.max_traversal_radius_m             # the track near the new defects: all find_traversals looks at
    box = (float(np.min(new["x_m"])) - reach, float(np.max(new["x_m"])) + reach, float(np.min(new["y_m"])) - reach,
           float(np.max(new["y_m"])) + reach)
    tracks = [(tid, dev, _track_xy(Track.from_bytes(blob), proj, dp, box=box))
              for tid, (dev, blob) in store.trip_tracks(trips).items()]
    if not tracks:
        return
    # every trip's passes in one search: as each trip's alone (its own rows, none of another trip's)
    track = np.repeat(np.arange(len(tracks)), [dense[0].size for _, _, dense in tracks])
    tt, tx, ty, th, tacc = (np.concatenate([dense[k] for _, _, dense in tracks]) for k in range(5))
    k, j, t_pass, dist = find_traversals_of_tracks(track, tt, tx, ty, th, tacc, new["x_m"], new["y_m"],
                                                   new["heading_deg"], new["spans"].astype(bool),
                                                   new["uncertainty_m"], dp)
    if k.size:
        tids, devs = (np.array([t[c] for t in tracks]) for c in (0, 1))
        store.upsert_traversals({"defect_id": new["defect_id"][j], "trip_id": tids[k], "device_id": devs[k],
                                 "t_s": t_pass, "hit": np.zeros(k.size, dtype=np.int64), "distance_m": dist})


def _map_rows(proj: LocalProjection, rough: Columns, track: Track, trip_id: str, device: str
              ) -> tuple[Columns, Columns]:
    """A trip's storable roughness windows and the road cells its track passed (coverage rows)."""
    rows = cellmap.roughness_rows(rough, proj, trip_id=trip_id, device_id=device)
    x, y = proj.to_xy(track.lat_deg, track.lon_deg)
    t, cx, cy, ch, _ = densify((x, y, track.t_s), track.heading_deg, track.accuracy_m, cellmap.TRACK_STEP_M)
    return rows, cellmap.coverage_rows(t, cx, cy, ch, trip_id=trip_id, device_id=device)


def _update_maps(store: Store, proj: LocalProjection, rough: Columns, track: Track, trip_id: str, device: str,
                 *, refresh: bool = True, rows: tuple[Columns, Columns, Columns] | None = None) -> int:
    """Store a trip's roughness windows and the road cells its track passed; add them to those cells'
    aggregates unless ``refresh`` is False (the caller rebuilds every cell). ``rows``: the roughness rows,
    coverage rows and cell centres made before (:func:`_trip_rows`). Returns the number of roughness readings
    stored."""
    rough_rows, cov = rows[:2] if rows is not None else _map_rows(proj, rough, track, trip_id, device)
    if refresh:
        centres = rows[2] if rows is not None else cellmap.cell_centres(
            np.concatenate([rough_rows["cell_key"], cov["cell_key"]]), proj)
        store.add_trip_cells(rough_rows.data, cov.data, centres)
    else:
        store.add_roughness(rough_rows.data)
        store.add_coverage(cov.data)
    return len(rough_rows)


# ------------------------------------------------------------------------------------------ defect refresh


@dataclass(frozen=True)
class RefreshResult:
    merged: list[int]
    final_status: dict[int, str]
    status_before: dict[int, str] = field(default_factory=dict)   # as first read in the refresh, by id


def _group_quantile(labels: np.ndarray, values: np.ndarray, n_labels: int, q: float) -> np.ndarray:
    """The q-quantile (linear interpolation) of the finite values of each label; NaN where none."""
    ok = np.isfinite(values)
    lab, v = labels[ok], values[ok]
    order = np.lexsort((v, lab))
    lab, v = lab[order], v[order]
    n = np.bincount(lab, minlength=n_labels)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    pos = q * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    out = np.full(n_labels, np.nan)
    has = n > 0
    a, b = v[(start + lo)[has]], v[(start + hi)[has]]
    out[has] = a + (pos - lo)[has] * (b - a)
    return out


def _summaries(defects: Columns, hits: Columns, totals: Columns, pass_totals: Columns, proj: LocalProjection,
               dp: DefectParams, latency_s: np.ndarray | float, *, own: np.ndarray | None = None,
               fleet: tuple[float, int] | None = None) -> dict[str, np.ndarray]:
    """Position, direction, kind, severity and confidence of defects from their (latest) hits, counts from their
    hit ``totals`` (:meth:`Store.hit_totals`, same ids) and ``pass_totals`` (:meth:`Store.traversal_totals`).
    ``latency_s``: per hit (or one for all); ``own``: per hit, whether its device has samples of its own;
    ``fleet``: :func:`_fleet_latency`, stored (``latency_s``, ``latency_devices``) with the defects whose hits
    were all corrected by the fleet's latency (NULL with the others, and when not given).

    Severity: the upper quartile of the hits' severities (a wheel that clipped the edge understates the depth);
    depth class: see :func:`bump.cluster.decide_depth_classes`. Confidence: see
    :func:`bump.priority.device_confidence`."""
    ids = defects["defect_id"]
    k = ids.size
    lab = np.searchsorted(ids, hits["defect_id"])
    _, trip_idx = np.unique(hits["trip_id"], return_inverse=True)
    hx, hy = corrected_xy(hits["x_m"], hits["y_m"], hits["heading_deg"], hits["speed_mps"], latency_s)
    c = robust_centres(lab, hx, hy, hits["accuracy_m"], trip_idx.ravel(), k, dp)
    p = np.searchsorted(pass_totals["defect_id"], ids)
    has = (p < len(pass_totals)) & (pass_totals["defect_id"][np.minimum(p, max(len(pass_totals) - 1, 0))] == ids) \
        if len(pass_totals) else np.zeros(k, dtype=bool)
    pick = np.minimum(p, max(len(pass_totals) - 1, 0))

    def per_defect(name: str, missing: float) -> np.ndarray:
        return np.where(has, pass_totals[name][pick], missing) if len(pass_totals) else np.full(k, missing)

    counts = _counts(per_defect("n_traversals", 0).astype(np.int64), per_defect("n_traversal_hits", 0).astype(
        np.int64), per_defect("first_traversal_s", np.inf), per_defect("last_traversal_s", -np.inf), dp)
    n_trav, n_trav_hit = counts["n_traversals"], counts["n_traversal_hits"]
    kinds, reasons = decide_kinds(lab, k, hits["kind"], hits["confidence"], hits["heading_deg"], n_trav, n_trav_hit,
                                  dp)
    sev = _group_quantile(lab, hits["severity"], k, 0.75)
    depth = decide_depth_classes(lab, k, hits["severity"], hits["depth_class"], sev, kinds, dp)
    _, dev_idx = np.unique(hits["device_id"], return_inverse=True)
    pair = lab * (int(dev_idx.max(initial=0)) + 1) + dev_idx.ravel()
    upair, pinv = np.unique(pair, return_inverse=True)
    best = np.zeros(upair.size)
    np.maximum.at(best, pinv.ravel(), np.clip(np.nan_to_num(hits["confidence"], nan=0.0), 0.0, 1.0 - 1e-12))
    plab = upair // (int(dev_idx.max(initial=0)) + 1)
    confidence = 1.0 - np.exp(np.bincount(plab, np.log1p(-best), minlength=k))
    total = np.searchsorted(totals["defect_id"], ids)            # every defect summarised has hits
    spans = _spans(kinds)
    head = mean_heading(lab, hits["heading_deg"], 1.0 / np.maximum(np.nan_to_num(hits["accuracy_m"], nan=10.0), 1.0)
                        ** 2, k, spans)
    lat, lon = proj.to_latlon(c.x_m, c.y_m)
    stamp_s, stamp_n = np.full(k, np.nan), np.full(k, None, dtype=object)
    if fleet is not None and own is not None:
        by_fleet = np.bincount(lab, np.asarray(own, dtype=np.float64), minlength=k) == 0
        stamp_s[by_fleet], stamp_n[by_fleet] = fleet[0], int(fleet[1])
    return {
        "defect_id": ids, "kind": kinds, "kind_reason": np.array(reasons, dtype=object),
        "lat_deg": lat, "lon_deg": lon, "x_m": c.x_m, "y_m": c.y_m, "grid_key": cellmap.grid_keys(c.x_m, c.y_m),
        "heading_deg": head, "spans": spans.astype(np.int64), "uncertainty_m": c.uncertainty_m,
        "severity": sev, "depth_class": depth.astype(object), "confidence": confidence,
        "n_hits": totals["n_hits"][total], "n_devices": totals["n_devices"][total], **counts,
        "first_seen_s": totals["first_seen_s"][total], "last_seen_s": totals["last_seen_s"][total],
        "latency_s": stamp_s, "latency_devices": stamp_n,
    }


def _sync_traversal_hits(store: Store, hit_trips: Columns, trav: Columns) -> Columns:
    """Make the traversals agree with the hits (a trip with a hit passed the defect, hit=1; others hit=0) after
    hits moved between defects (merges, a re-cluster). ``hit_trips``: :meth:`Store.hit_trips` of the defects."""
    hit_pairs = {(d, t): (ts, dev) for d, t, ts, dev in
                 zip(*(np.asarray(hit_trips[k]).astype(c).tolist() for k, c in
                       (("defect_id", np.int64), ("trip_id", str), ("t_s", np.float64), ("device_id", str))),
                     strict=True)}
    have = {(d, t): h for d, t, h in zip(*(np.asarray(trav[k]).astype(c).tolist() for k, c in
                                           (("defect_id", np.int64), ("trip_id", str), ("hit", np.int64))),
                                         strict=True)}
    fix = [(d, t, hit_pairs[(d, t)][1], hit_pairs[(d, t)][0], 1) for (d, t) in hit_pairs if have.get((d, t)) != 1]
    fix += [(d, t, "", np.nan, 0) for (d, t), h in have.items() if h == 1 and (d, t) not in hit_pairs]
    if not fix:
        return trav
    new_rows = [r for r in fix if (r[0], r[1]) not in have]
    flips = [r for r in fix if (r[0], r[1]) in have]
    if new_rows:
        store.upsert_traversals({"defect_id": [r[0] for r in new_rows], "trip_id": [r[1] for r in new_rows],
                                 "device_id": [r[2] for r in new_rows], "t_s": [r[3] for r in new_rows],
                                 "hit": [1] * len(new_rows), "distance_m": [np.nan] * len(new_rows)})
    if flips:
        store.upsert_traversals({"defect_id": [r[0] for r in flips], "trip_id": [r[1] for r in flips],
                                 "device_id": ["-"] * len(flips), "t_s": [0.0] * len(flips),
                                 "hit": [r[4] for r in flips], "distance_m": [np.nan] * len(flips)})
    return store.traversals_of_defects(np.unique(trav["defect_id"].tolist() + [r[0] for r in fix]))


def _crews(prev: Columns) -> list[tuple[str | None, float | None]]:
    """(crew status, crew decision time [s]) of each row of stored defect columns, None where there is none."""
    return [(status or None, at if math.isfinite(at) else None)
            for status, at in zip(prev["crew_status"].tolist(), prev["crew_at_s"].tolist(), strict=True)]


def _resumable(prev: Columns, passes: Columns, dp: DefectParams) -> tuple[np.ndarray, np.ndarray]:
    """Which defects of ``prev`` (with stored replays) can resume their status replay with ``passes``: all of
    their passes in it come after the last one replayed, under the same crew decision and rules (a dismissed
    defect has no replay to resume); and their stored replays, parsed (None where they cannot resume)."""
    out = np.zeros(len(prev), dtype=bool)
    replays = np.full(len(prev), None, dtype=object)
    order = np.lexsort((passes["trip_id"], passes["t_s"]))
    first: dict[int, tuple[float, str]] = {}
    for d, t, trip in zip(passes["defect_id"][order].tolist(), passes["t_s"][order].tolist(),
                          passes["trip_id"][order].tolist(), strict=True):
        first.setdefault(d, (t, trip))
    crews = _crews(prev)
    for g, did in enumerate(prev["defect_id"].tolist()):
        if did not in first:
            continue
        replay = Replay.from_json(prev["status_replay"][g])
        crew = crews[g]
        if replay is not None and crew[0] != "dismissed" and replay.resumes(*first[did], crew, dp):
            out[g], replays[g] = True, replay
    return out, replays


def _resumed(did: int, old_status: str, old_since_s: float, resume: Replay, passes: tuple[list, ...],
             crew_at_s: float | None, dp: DefectParams, *, now: float, actor: str
             ) -> tuple[str, float, str, list[dict[str, Any]]]:
    """(status, since [s], replay JSON, history rows) of one defect whose stored replay (``resume``, parsed by
    :func:`_resumable`) continues with ``passes`` (t_s, trip_id, device_id, hit lists, all after the last pass
    replayed): one history row when the status changes."""
    if len(passes[0]) == 1 and not passes[3][0]:     # one pass, a miss (most): no status change, mostly
        after = resume_after_miss(resume, passes[0][0], passes[1][0], passes[2][0], dp, start_t_s=crew_at_s)
        if after is not None:
            return old_status, old_since_s, after.to_json(), []
    transitions, replay = replay_passes(*passes, dp, resume=resume, start_t_s=crew_at_s)
    if not transitions:
        return old_status, old_since_s, replay.to_json(), []
    tr = transitions[-1]
    rows = [] if tr.to_status == old_status else [
        _history_row(did, Transition(tr.t_s, old_status, tr.to_status, tr.reason), now, actor)]
    return tr.to_status, tr.t_s, replay.to_json(), rows


# what moves on with the passes of a defect whose summary (what it takes from its hits) is kept (_summary_holds)
_MOVED_ON = ("n_traversals", "n_traversal_hits", "hit_rate", "traversals_per_day", "first_traversal_s",
             "last_traversal_s", "status", "status_since_s", "priority", "updated_at_s", "status_replay", "detector")
# what a full refresh reads of a defect's stored state (the rest comes from its hits and passes)
_LOAD_COLUMNS = ("defect_id", "status", "status_since_s", "crew_status", "crew_at_s", "status_replay",
                 *INDEXED_DEFECT_COLUMNS)
# what summaries read of a defect's latest hits (hit_id: their order)
_SUMMARY_HIT_COLUMNS = ("hit_id", "trip_id", "device_id", "defect_id", "x_m", "y_m", "accuracy_m", "heading_deg",
                        "kind", "severity", "depth_class", "confidence", "speed_mps")


def _load(store: Store, ids: np.ndarray, proj: LocalProjection, dp: DefectParams, *, sync: bool = True,
          passes: Columns | None = None, recent_hits: tuple[np.ndarray, Columns] | None = None
          ) -> tuple[Columns, Columns, dict[str, np.ndarray], np.ndarray]:
    """Stored state (status, crew decision, replay), passes and fresh summaries of defects; also the ids left
    without hits (deleted). Summaries read each defect's latest ``summary_hits`` hits and its hit and pass totals,
    and a defect whose status replay can resume with ``passes`` (this trip's, all later than the last replayed)
    gets only those (``prev["resume"]``): a busy defect costs no more than a quiet one. ``sync``: first make the
    passes agree with the hits (after hits moved; a trip's own ingestion keeps them agreeing). ``recent_hits``:
    (defect ids, their latest hits) read before in this transaction, no hit changed since. (Defects only passed
    whose summary holds keep it without coming here: :func:`_refresh_passed`.)"""
    prev = store.defects_by_id(ids, _LOAD_COLUMNS)
    ids = prev["defect_id"]
    resume, replays = np.zeros(len(prev), dtype=bool), np.full(len(prev), None, dtype=object)
    if passes is not None and not sync:
        passes = passes.select(ids_in(passes["defect_id"], ids))
        resume, replays = _resumable(prev, passes, dp)
    totals = store.hit_totals(ids)
    empty = _setdiff(ids, totals["defect_id"])
    if empty.size:                              # every hit moved elsewhere: nothing left to report
        store.delete_defects(empty)
        keep = ~ids_in(ids, empty)
        prev, resume, replays = prev.select(keep), resume[keep], replays[keep]
        ids = prev["defect_id"]
    read, hits = (np.empty(0, np.int64), None) if recent_hits is None else recent_hits
    have = ids_in(ids, read)
    parts = [] if hits is None else [hits.select(ids_in(hits["defect_id"], ids[have]))]
    if not parts or not have.all():
        parts.append(store.hits_of_defects(ids[~have], _SUMMARY_HIT_COLUMNS, recent=dp.summary_hits))
    hits = parts[0] if len(parts) == 1 else Columns({k: np.concatenate([p[k] for p in parts]) for k in parts[0].names})
    hits = hits.select(np.argsort(hits["hit_id"], kind="stable"))
    trav = store.traversals_of_defects(ids[~resume])
    if sync:
        trav = _sync_traversal_hits(store, store.hit_trips(ids), trav)
    if resume.any():
        mine = passes.select(ids_in(passes["defect_id"], ids[resume]))
        trav = _cat(trav, Columns({n: mine[n] for n in trav.names}))
    prev = prev.with_columns(resume=resume, replay=replays)
    latency_s, own, fleet = _latencies(store, hits["device_id"], dp)
    pass_totals = _pass_totals(trav) if not resume.any() else store.traversal_totals(ids)   # trav: all the passes
    summ = _summaries(prev, hits, totals, pass_totals, proj, dp, latency_s, own=own, fleet=fleet)
    return prev, trav, summ, empty


def _pass_totals(trav: Columns) -> Columns:
    """:meth:`Store.traversal_totals` of the defects of ``trav`` from those rows (every pass of each)."""
    ids = np.asarray(trav["defect_id"], dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    defect, start, n = np.unique(ids[order], return_index=True, return_counts=True)
    if defect.size == 0:
        return Columns({"defect_id": defect, "n_traversals": n.astype(np.int64),
                        "n_traversal_hits": np.zeros(0, dtype=np.int64), "first_traversal_s": np.empty(0),
                        "last_traversal_s": np.empty(0)})
    t_s = np.asarray(trav["t_s"], dtype=np.float64)[order]
    return Columns({"defect_id": defect, "n_traversals": n.astype(np.int64),
                    "n_traversal_hits": np.add.reduceat(np.asarray(trav["hit"], dtype=np.int64)[order], start),
                    "first_traversal_s": np.minimum.reduceat(t_s, start),
                    "last_traversal_s": np.maximum.reduceat(t_s, start)})


def _summary_holds(prev: Columns, passes: Columns, fleet: tuple[float, int], dp: DefectParams) -> np.ndarray:
    """Which defects of ``prev`` (only passed by ``passes``, their replays resuming) would get from their hits the
    summary they have: none of their hits changed since it was made (every change of hits refreshes them from
    the hits), and what else goes into it did not change either:

    - the kind stays the hits' majority (no designed feature before or after): a designed feature needs a hit rate
      of ``designed_hit_rate``; passes without hits lower it, so a stored designed kind below that rate is one the
      last summary gave by majority (a pass with a hit rate above it is refreshed cheaply, :func:`_refresh_passed`);
    - the hits are corrected by the same GPS latency: all were by the fleet's when the summary was made (stored
      with it), the fleet's is the same and no device got a latency of its own since (:func:`_fleet_latency`)."""
    order = np.lexsort((passes["trip_id"], passes["t_s"], passes["defect_id"]))
    p = passes.select(order[ids_in(passes["defect_id"][order], prev["defect_id"])])
    _, start, n_new = np.unique(p["defect_id"], return_index=True, return_counts=True)
    counts = _counts_after(prev, p, start, n_new, dp)
    designed = np.isin(prev["kind"], DESIGNED_KINDS)
    majority_before = ~designed | (prev["hit_rate"] < dp.designed_hit_rate)
    majority_after = (counts["hit_rate"] < dp.designed_hit_rate) | (counts["n_traversals"] < dp.designed_traversals)
    same_latency = (prev["latency_s"] == fleet[0]) & (prev["latency_devices"] == fleet[1])
    return majority_before & majority_after & same_latency


def _drop(cols: Columns | dict[str, np.ndarray], key: str, ids: np.ndarray) -> Columns:
    c = cols if isinstance(cols, Columns) else Columns({k: np.asarray(v) for k, v in cols.items()})
    return c.select(~ids_in(c[key], ids))


def _cat(a: Columns, b: Columns) -> Columns:
    return Columns({k: np.concatenate([np.asarray(a[k], dtype=object if a[k].dtype.kind in "OU" else None),
                                       np.asarray(b[k], dtype=object if b[k].dtype.kind in "OU" else None)])
                    for k in a})


def refresh_defects(store: Store, defect_ids: Sequence[int] | np.ndarray, proj: LocalProjection,
                    dp: DefectParams, *, now: float, detector: str, new_ids: set[int] | None = None,
                    check_ids: Sequence[int] | np.ndarray | None = None, rebuild_history: bool = False,
                    passes: Columns | None = None, hits_synced: bool = False, actor: str = "system",
                    recent_hits: tuple[np.ndarray, Columns] | None = None) -> RefreshResult:
    """Re-summarise defects from their hits and traversals, merge duplicates and twins, re-evaluate status
    and priority, and record status changes.

    ``check_ids``: the defects that may have become a duplicate or a twin (those with new hits; default all);
    a defect only passed cannot move. ``passes``: this trip's traversal rows: defects only passed are refreshed
    from them alone (see :func:`_refresh_passed`), and the others resume their status replay with them where
    they can, those only passed keeping their summary where their hits would give it again (:func:`_load`).
    ``hits_synced``: the traversals agree with the hits already (a trip's own ingestion keeps them so; after hits
    moved they are made to).
    ``rebuild_history``: write the whole replayed timeline (reprocess). ``recent_hits``: (defect ids, their latest
    hits) read in this transaction, no hit changed since (spares reading them again)."""
    ids = np.unique(np.asarray(defect_ids, dtype=np.int64))
    new_ids = set(new_ids or ())
    final_passed: dict[int, str] = {}
    before: dict[int, str] = {}                     # each defect's status as first read here (before any change)
    kept = None
    if passes is not None and not rebuild_history:
        changed = np.union1d(np.asarray(list(new_ids), dtype=np.int64),
                             ids if check_ids is None else np.asarray(check_ids, dtype=np.int64))
        only_passed = ids_in(passes["defect_id"], ids) & ~ids_in(passes["defect_id"], changed)
        done, final_passed, before, kept = _refresh_passed(store, passes.select(only_passed), dp, now=now,
                                                           actor=actor, detector=detector)
        ids = _setdiff(ids, done if kept is None else np.concatenate([done, kept.update["defect_id"]]))
    if ids.size == 0:
        if kept is not None:
            final_passed |= kept.write(store)
            if kept.history:
                store.add_history(kept.history)
        return RefreshResult([], final_passed, before)
    prev, trav, summ, gone = _load(store, ids, proj, dp, sync=not hits_synced,
                                   passes=None if passes is None or rebuild_history else passes.select(
                                       ~ids_in(passes["defect_id"], np.asarray(list(new_ids), dtype=np.int64))),
                                   recent_hits=recent_hits)
    before = dict(zip(prev["defect_id"].tolist(), prev["status"].tolist(), strict=True)) | before
    merged: list[int] = gone.tolist()
    sc = Columns({k: np.asarray(v) for k, v in summ.items()})
    check = sc["defect_id"] if check_ids is None else np.intersect1d(np.asarray(check_ids, np.int64),
                                                                      sc["defect_id"])
    for _ in range(5):
        groups = _merge_groups(store, sc.select(ids_in(sc["defect_id"], check)), dp) if check.size else []
        if not groups:
            break
        status_of = dict(zip(prev["defect_id"].tolist(), prev["status"].tolist(), strict=True))
        removed: list[int] = []
        store.move_defects_rows({o: survivor for survivor, others in groups for o in others})   # groups are disjoint
        unknown = [s for s, _ in groups if s not in status_of]
        if unknown:
            got = store.defects_by_id(unknown, ("defect_id", "status"))
            status_of |= dict(zip(got["defect_id"].tolist(), got["status"].tolist(), strict=True))
        history = []
        for survivor, others in groups:
            store.delete_defects(others)
            st = status_of[survivor]
            history.append({"defect_id": survivor, "t_s": now, "recorded_at_s": now, "from_status": st,
                            "to_status": st,
                            "reason": f"merged defect(s) {', '.join(f'#{o}' for o in others)} into this one",
                            "actor": actor})
            removed += others
            new_ids.discard(survivor)
        store.add_history(history)
        merged += removed
        survivors = np.array(sorted({g[0] for g in groups}), dtype=np.int64)
        out = np.array(removed + survivors.tolist(), dtype=np.int64)
        p2, t2, s2, gone = _load(store, survivors, proj, dp)
        before = dict(zip(p2["defect_id"].tolist(), p2["status"].tolist(), strict=True)) | before
        merged += gone.tolist()
        prev = _cat(_drop(prev, "defect_id", out), p2)
        trav = _cat(_drop(trav, "defect_id", out), t2)
        sc = _cat(_drop(sc, "defect_id", out), Columns({k: np.asarray(v) for k, v in s2.items()}))
        order = np.argsort(sc["defect_id"], kind="stable")
        sc, prev = sc.select(order), prev.select(np.argsort(prev["defect_id"], kind="stable"))
        check = p2["defect_id"]
    if kept is not None:                            # those merged meanwhile: as merges left them
        kept = kept.without(set(merged) | set(sc["defect_id"].tolist()))
    result = _finalise(store, prev, sc.data, trav, dp, now=now, detector=detector, new_ids=new_ids,
                       rebuild_history=rebuild_history, merged=merged, actor=actor, kept=kept)
    return RefreshResult(result.merged, final_passed | result.final_status, before)


def _counts(n_trav: np.ndarray, n_trav_hit: np.ndarray, first_s: np.ndarray, last_s: np.ndarray, dp: DefectParams
            ) -> dict[str, np.ndarray]:
    return {"n_traversals": n_trav, "n_traversal_hits": n_trav_hit,
            "hit_rate": np.where(n_trav > 0, n_trav_hit / np.maximum(n_trav, 1), np.nan),
            "traversals_per_day": traversals_per_day(n_trav, first_s, last_s, dp),
            "first_traversal_s": np.where(np.isfinite(first_s), first_s, np.nan),
            "last_traversal_s": np.where(np.isfinite(last_s), last_s, np.nan)}


def _counts_after(prev: Columns, passes: Columns, start: np.ndarray, n_new: np.ndarray, dp: DefectParams
                  ) -> dict[str, np.ndarray]:
    """:func:`_counts` of defects (``prev``: their stored counts) with ``passes`` added (sorted by defect, time,
    trip; ``start``, ``n_new``: where each defect's passes begin and how many, one per row of ``prev``)."""
    n_trav = prev["n_traversals"] + n_new
    n_hit = prev["n_traversal_hits"] + np.add.reduceat(passes["hit"], start) if len(start) else prev["n_traversal_hits"]
    first = np.fmin(prev["first_traversal_s"], passes["t_s"][start])
    last = np.fmax(prev["last_traversal_s"], np.maximum.reduceat(passes["t_s"], start) if len(start) else first)
    return _counts(n_trav, n_hit, first, last, dp)


_PASSED_COLUMNS = ("defect_id", "status", "status_since_s", "crew_status", "crew_at_s", "kind", "severity",
                   "confidence", "n_traversals", "n_traversal_hits", "first_traversal_s", "last_traversal_s",
                   "status_replay", "priority", "hit_rate", "latency_s", "latency_devices")


@dataclass(frozen=True)
class _KeptSummaries:
    """Designed features only passed, whose kind the miss may change but whose hits still give the summary they
    have (:func:`_summary_holds`): their pass counts, status and priority moved on as a full refresh makes them,
    to be written where it writes them (:func:`_finalise`, after any merges: the defects merged meanwhile read
    them as stored). ``update``: ``defect_id`` and :data:`_MOVED_ON` by id; ``old_priority``: as stored;
    ``history``: status changes, by id."""

    update: dict[str, np.ndarray]
    old_priority: np.ndarray
    history: list[dict[str, Any]]

    def without(self, ids: set[int]) -> _KeptSummaries:
        """These but the defects ``ids`` (merged into another, or refreshed in full as a merge's survivor)."""
        keep = ~np.isin(self.update["defect_id"], np.array(sorted(ids), dtype=np.int64))
        return _KeptSummaries({k: v[keep] for k, v in self.update.items()}, self.old_priority[keep],
                              [r for r in self.history if r["defect_id"] not in ids])

    def write(self, store: Store) -> dict[int, str]:
        """Write them (as :func:`_finalise` writes kept summaries); their final status by id."""
        if self.update["defect_id"].size:
            store.update_defects(self.update, old={"priority": self.old_priority})
        return dict(zip(self.update["defect_id"].tolist(), self.update["status"].tolist(), strict=True))


def _refresh_passed(store: Store, passes: Columns, dp: DefectParams, *, now: float, actor: str, detector: str
                    ) -> tuple[np.ndarray, dict[int, str], dict[int, str], _KeptSummaries | None]:
    """Refresh defects that a trip only passed (``passes``: its traversal rows, no hit): their hits say the same,
    so position, kind, severity and confidence stay; the pass counts move on, and the status replay resumes
    from where it stood (:class:`bump.lifecycle.Replay`) with these passes alone. Neither the hits nor the
    earlier passes are read again, so a pass costs the same on a quiet lane as on a road passed 10,000 times.

    Designed features whose hit rate fell below ``designed_hit_rate`` (the miss may end what made them one; no
    miss can make one) keep their summary while their hits would give it again (:func:`_summary_holds`): those
    are returned apart, to be written after the merges (:class:`_KeptSummaries`). Left to the full refresh (the
    ids returned exclude them): defects with no stored replay or one made under other rules or another crew
    decision, passes older than the last one replayed (a late upload), and the designed features whose summary
    does not hold. Returns (ids done, final status by id, status as read by id, kept summaries)."""
    if len(passes) == 0:
        return np.empty(0, dtype=np.int64), {}, {}, None
    passes = passes.select(np.lexsort((passes["trip_id"], passes["t_s"], passes["defect_id"])))
    ids, start, n_new = np.unique(passes["defect_id"], return_index=True, return_counts=True)
    prev = store.defects_by_id(ids, _PASSED_COLUMNS)
    keep = ids_in(ids, prev["defect_id"])
    ids, start, n_new = ids[keep], start[keep], n_new[keep]
    counts = _counts_after(prev, passes, start, n_new, dp)
    kind_may_change = np.isin(prev["kind"], DESIGNED_KINDS) & (counts["hit_rate"] < dp.designed_hit_rate)
    dismissed = prev["crew_status"] == "dismissed"  # a dismissed defect stays dismissed whatever passes by
    status = prev["status"].astype(object)
    since = prev["status_since_s"].copy()
    replays = prev["status_replay"].astype(object)
    cols = tuple(passes[k].tolist() for k in ("t_s", "trip_id", "device_id", "hit"))
    crews = _crews(prev)
    resume = np.zeros(len(ids), dtype=bool)
    quick = np.zeros(len(ids), dtype=bool)
    parsed = np.full(len(ids), None, dtype=object)
    # each defect's passes in order (by time, then trip): their first one decides whether its replay resumes (as
    # _resumable decides it), a loop over the defects (one pass each, mostly). A pass without a hit that changes
    # no status (most) moves the stored replay on as JSON; the others replay through Replay (_resumed)
    bounds, id_list = np.column_stack([start, start + n_new]).tolist(), ids.tolist()
    for g in np.flatnonzero(~dismissed).tolist():
        s0, s1 = bounds[g]
        if s1 - s0 == 1 and not cols[3][s0]:
            after = resume_json_after_miss(replays[g], cols[0][s0], cols[1][s0], cols[2][s0], crews[g], dp)
            if after is not None:
                resume[g], quick[g], replays[g] = True, True, after
                continue
        replay = Replay.from_json(replays[g])
        if replay is not None and replay.resumes(cols[0][s0], cols[1][s0], crews[g], dp):
            resume[g], parsed[g] = True, replay
    kept = resume & kind_may_change
    if kept.any():
        kept[kept] = _summary_holds(prev.select(kept), passes, _fleet_latency(store, dp), dp)
    history: list[dict[str, Any]] = []
    kept_history: list[dict[str, Any]] = []
    for g in np.flatnonzero(resume & ~quick & (~kind_may_change | kept)).tolist():
        s0, s1 = bounds[g]
        status[g], since[g], replays[g], rows = _resumed(id_list[g], str(status[g]), float(since[g]), parsed[g],
                                                         tuple(c[s0:s1] for c in cols), crews[g][1], dp,
                                                         now=now, actor=actor)
        (kept_history if kept[g] else history).extend(rows)
    done = (resume | dismissed) & ~kind_may_change
    prio = priority(prev["severity"], prev["confidence"], counts["traversals_per_day"], prev["kind"], status, dp)
    update = {"defect_id": ids, **counts, "status": status.astype(str), "status_since_s": since, "priority": prio,
              "updated_at_s": np.full(len(ids), now), "status_replay": replays.astype(str)}
    store.update_defects({k: np.asarray(v)[done] for k, v in update.items()}, old={"priority": prev["priority"][done]})
    if history:
        store.add_history(history)
    update["detector"] = np.full(len(ids), detector)
    held = _KeptSummaries({k: np.asarray(update[k])[kept] for k in ("defect_id", *_MOVED_ON)},
                          prev["priority"][kept], kept_history) if kept.any() else None
    return (ids[done], dict(zip(ids[done].tolist(), status[done].tolist(), strict=True)),
            dict(zip(id_list, prev["status"].tolist(), strict=True)), held)


def _merge_groups(store: Store, summ: dict[str, np.ndarray], dp: DefectParams) -> list[tuple[int, list[int]]]:
    """Groups (survivor = smallest id, others) of duplicates and twins among the refreshed defects and the
    stored defects around them."""
    ids = summ["defect_id"]          # only pairs with one of them count: the others within a join radius of them
    around = store.defects_in_grid(cellmap.grid_keys_within(summ["x_m"], summ["y_m"], dp.max_join_radius_m),
                                   _MERGE_COLUMNS)
    keep = ~ids_in(around["defect_id"], ids)
    names = ("defect_id", "x_m", "y_m", "heading_deg", "spans", "uncertainty_m", "n_traversals", "n_traversal_hits",
             "n_hits")
    cat = {n: np.concatenate([np.asarray(summ[n]), around[n][keep]]) for n in names}
    spans = cat["spans"].astype(bool)
    close = close_pairs(cat["x_m"], cat["y_m"], dp)
    i1, j1, d1 = duplicate_pairs(cat["x_m"], cat["y_m"], cat["heading_deg"], spans, cat["uncertainty_m"], dp,
                                 pairs=close)
    i2, j2, d2 = twin_pairs(cat["x_m"], cat["y_m"], cat["heading_deg"], spans, cat["uncertainty_m"],
                            cat["n_traversals"], cat["n_traversal_hits"], dp, pairs=close)
    i, j, d = np.concatenate([i1, i2]), np.concatenate([j1, j2]), np.concatenate([d1, d2])
    touched = (i < ids.size) | (j < ids.size)
    i, j, d = i[touched], j[touched], d[touched]
    if i.size == 0:
        return []
    # each merges into its nearest larger partner (more hits; ties: the older id): no chaining through strays
    n_hits = np.concatenate([np.asarray(summ["n_hits"]), around["n_hits"][keep]])
    older = -cat["defect_id"].astype(np.float64) * 1e-9           # a tie in hits goes to the lower id
    comp = merge_forest(n_hits + older - older.min(), i, j, d)
    involved = np.unique(np.concatenate([i, j]))
    out = []
    for g in np.unique(comp[involved]):
        members = sorted(int(cat["defect_id"][m]) for m in np.flatnonzero(comp == g))
        if len(members) > 1:
            out.append((members[0], members[1:]))
    return out


def _finalise(store: Store, prev: Columns, summ: dict[str, np.ndarray], trav: Columns, dp: DefectParams, *,
              now: float, detector: str, new_ids: set[int], rebuild_history: bool, merged: list[int],
              actor: str, kept: _KeptSummaries | None = None) -> RefreshResult:
    """Write the refreshed defects (``summ``, ``prev``: their stored state, by id), then the kept summaries of
    defects only passed (:class:`_KeptSummaries`: the rest as stored), and their status changes in the order of
    their ids."""
    ids = summ["defect_id"]
    status, since, replay, history = _statuses(prev, trav, dp, now=now, new_ids=new_ids,
                                               rebuild_history=rebuild_history, actor=actor)
    final = dict(zip(ids.tolist(), status.tolist(), strict=True))
    prio = priority(summ["severity"], summ["confidence"], summ["traversals_per_day"], summ["kind"], status, dp)
    update = {k: v for k, v in summ.items()} | {"status": status.astype(str), "status_since_s": since,
                                                 "priority": prio, "updated_at_s": np.full(ids.size, now),
                                                 "status_replay": replay,
                                                 "detector": np.full(ids.size, detector)}
    if ids.size:
        store.update_defects(update, old={k: prev[k] for k in INDEXED_DEFECT_COLUMNS})
    if kept is not None:
        final = dict(sorted((final | kept.write(store)).items()))
        history = sorted(history + kept.history, key=lambda row: row["defect_id"])   # stable: each one's in order
    if history:
        store.add_history(history)
    return RefreshResult(merged, final)


def _statuses(prev: Columns, trav: Columns, dp: DefectParams, *, now: float, new_ids: set[int],
              rebuild_history: bool, actor: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """(status, since [s], replay (JSON, where it stands), history rows) of the defects of ``prev`` (sorted by
    id; stored status and crew decision) from all their passes ``trav``. New defects (and a rebuild) record the
    whole replayed timeline, others one row per change."""
    ids = prev["defect_id"]
    status = np.empty(ids.size, dtype=object)
    replay = np.full(ids.size, None, dtype=object)
    since = np.zeros(ids.size)
    history: list[dict[str, Any]] = []
    order = np.argsort(trav["defect_id"], kind="stable")
    tids = trav["defect_id"][order]
    bounds = np.searchsorted(tids, ids).tolist(), np.searchsorted(tids, ids, side="right").tolist()
    resume = prev["resume"] if "resume" in prev else np.zeros(ids.size, dtype=bool)
    crews = _crews(prev)
    if resume.any():                         # the passes of resumed replays as Python values, in ``order``
        ordered = tuple(trav[k][order].tolist() for k in ("t_s", "trip_id", "device_id", "hit"))
        old_status, old_since = prev["status"].tolist(), prev["status_since_s"].tolist()
    for g, (did, resumes) in enumerate(zip(ids.tolist(), resume.tolist(), strict=True)):
        b0, b1 = bounds[0][g], bounds[1][g]
        crew, crew_at = crews[g]
        if resumes:                        # ``trav`` holds only the new passes: continue the stored replay
            status[g], since[g], replay[g], rows = _resumed(did, str(old_status[g]), float(old_since[g]),
                                                            prev["replay"][g], tuple(c[b0:b1] for c in ordered),
                                                            crew_at, dp, now=now, actor=actor)
            history += rows
            continue
        m = order[b0:b1]
        res = evaluate_status(trav["t_s"][m], trav["trip_id"][m], trav["device_id"][m], trav["hit"][m], dp,
                              crew_status=crew, crew_at_s=crew_at)
        status[g], since[g] = res.status, res.since_s
        replay[g] = None if res.replay is None else res.replay.to_json()
        old = str(prev["status"][g])
        if did in new_ids or rebuild_history:
            history += [_history_row(did, tr, now, actor) for tr in res.transitions]
        elif old != res.status:
            last = res.transitions[-1] if res.transitions else Transition(res.since_s, old, res.status, "re-evaluated")
            history.append(_history_row(did, Transition(last.t_s, old, res.status, last.reason), now, actor))
    return status, since, replay, history


def _history_row(defect_id: int, tr: Transition, now: float, actor: str) -> dict[str, Any]:
    return {"defect_id": defect_id, "t_s": tr.t_s, "recorded_at_s": now, "from_status": tr.from_status,
            "to_status": tr.to_status, "reason": tr.reason, "actor": actor}


# ------------------------------------------------------------------------------------------------ reprocess


def reprocess(store: Store, params: DetectorParams = DetectorParams(), *,
              defect_params: DefectParams = DEFAULT_DEFECT_PARAMS, progress: Callable[[int], None] | None = None,
              clock: Callable[[], float] = time.time,
              detect_fn: Callable[[ingest.Trace, DetectorParams], Detection] = detect) -> ReprocessSummary:
    """Re-run detection with ``params`` on every stored raw trace and re-cluster all hits from scratch.

    Crew decisions (repaired, dismissed) move to the new defect nearest their old position (compatible direction,
    within the join gate); their history rows move with them. Automatic history is rebuilt from the data.
    ``detect_fn`` replaces the detector (tests, experiments)."""
    dp = defect_params
    trips = store.trips()
    per_trip = []
    for info in trips:
        trace = ingest.read(store.trip_raw(info["trip_id"]), name=f"trip {info['trip_id']}")
        det = detect_fn(trace, params)
        per_trip.append((info, trace, det))
        if progress is not None:
            progress(1)
    now = clock()
    detector = _detector_json(params, dp)
    with store.transaction():
        crew = _crew_snapshot(store)
        store.clear_derived()
        proj = projection(store, per_trip[0][1] if per_trip else None)
        if proj is None:
            return ReprocessSummary(len(trips), 0, 0, {}, 0, len(crew), detector_info(params))
        all_hits: list[Columns] = []
        tracks: dict[str, tuple[str, tuple[np.ndarray, ...]]] = {}
        for info, trace, det in per_trip:
            tid, dev = info["trip_id"], info["device_id"]
            hits, features = hit_columns(det, proj, tid, dev)
            ids = store.add_hits(hits.data, features, _hit_detector(params))
            all_hits.append(hits.with_columns(hit_id=ids))
            track = trace_track(trace, params)
            store.update_trip_detection(tid, detector_info(params), det.n_impacts)
            _update_maps(store, proj, det.roughness, track, tid, dev, refresh=False)
            tracks[tid] = (dev, _track_xy(track, proj, dp))
        hits = Columns({k: np.concatenate([h[k] for h in all_hits]) for k in all_hits[0]}) if all_hits else None
        new_ids = np.empty(0, dtype=np.int64)
        store.set_meta(_FLEET_LATENCY, LatencyCalibration().to_json())
        if hits is not None and len(hits):
            spans = _spans(hits["kind"])
            trip_idx = np.unique(hits["trip_id"], return_inverse=True)[1].ravel()
            if dp.latency_calibration and spans.sum() >= 2:
                sp = _latency_input(hits.select(spans))
                calib = LatencyCalibration().add(latency_samples(sp, sp, dp, same=True))
                store.set_meta(_FLEET_LATENCY, calib.to_json())
            latency = hit_latencies_s(store, hits["device_id"], dp)
            hx, hy = corrected_xy(hits["x_m"], hits["y_m"], hits["heading_deg"], hits["speed_mps"], latency)
            labels = recluster(hx, hy, hits["heading_deg"], spans, hits["accuracy_m"], trip_idx, dp)
            k = int(labels.max()) + 1
            c = robust_centres(labels, hx, hy, hits["accuracy_m"], trip_idx, k, dp)
            gspans = spanning_labels(labels, spans, k)
            head = mean_heading(labels, hits["heading_deg"], np.ones(labels.size), k, gspans)
            first_t = np.full(k, np.inf)
            np.minimum.at(first_t, labels, hits["t_s"])
            kinds = np.empty(k, dtype=object)
            kinds[labels] = hits["kind"]
            new_ids = _stub_defects(store, proj, c.x_m, c.y_m, head, gspans, c.uncertainty_m, kinds.astype(str),
                                    first_t, now, detector)
            hit_defect = new_ids[labels]
            store.set_hit_defects(hits["hit_id"], hit_defect)
            defects = store.defects_by_id(new_ids)
            for tid, (dev, dense) in tracks.items():
                sel = hits["trip_id"] == tid
                rows = _trip_traversals(tid, dev, dense, defects, hits.select(sel), hit_defect[sel], dp)
                if len(rows):
                    store.upsert_traversals(rows.data)
            refresh_defects(store, new_ids, proj, dp, now=now, detector=detector, rebuild_history=True)
        carried, lost = _restore_crew(store, proj, crew, dp, now=now, detector=detector)
        keys = store.roughness_cell_keys()
        store.refresh_cells(None, cellmap.cell_centres(keys, proj))
        by_status: dict[str, int] = {}
        for (st, _kind), n in store.count_defects().items():
            by_status[st] = by_status.get(st, 0) + n
    return ReprocessSummary(len(trips), 0 if hits is None else len(hits), sum(by_status.values()), by_status,
                            carried, lost, {"version": params.version, "params_digest": params.digest()})


def _crew_snapshot(store: Store) -> list[dict[str, Any]]:
    d = store.all_defects()
    keep = np.isin(d["crew_status"], CREW_STATUSES)
    out = []
    for g in np.flatnonzero(keep):
        did = int(d["defect_id"][g])
        out.append({"defect_id": did, "x_m": float(d["x_m"][g]), "y_m": float(d["y_m"][g]),
                    "heading_deg": float(d["heading_deg"][g]), "spans": bool(d["spans"][g]),
                    "uncertainty_m": float(d["uncertainty_m"][g]), "crew_status": str(d["crew_status"][g]),
                    "crew_at_s": float(d["crew_at_s"][g]),
                    "history": [h for h in store.history(did) if h["actor"] != "system"]})
    return out


def _restore_crew(store: Store, proj: LocalProjection, crew: list[dict[str, Any]], dp: DefectParams, *,
                  now: float, detector: str) -> tuple[int, int]:
    carried = lost = 0
    for rec in crew:
        near = store.defects_in_grid(cellmap.grid_keys_around(np.array([rec["x_m"]]), np.array([rec["y_m"]]),
                                                              dp.max_join_radius_m), _TRACK_NEAR_COLUMNS)
        idx = assign_hits(np.array([rec["x_m"]]), np.array([rec["y_m"]]), np.array([rec["heading_deg"]]),
                          np.array([rec["spans"]]), np.array([rec["uncertainty_m"]]), near["x_m"], near["y_m"],
                          near["heading_deg"], near["spans"].astype(bool), near["uncertainty_m"], dp)
        if idx[0] < 0:
            lost += 1
            continue
        did = int(near["defect_id"][idx[0]])
        store.update_defects({"defect_id": [did], "crew_status": [rec["crew_status"]], "crew_at_s": [rec["crew_at_s"]]})
        store.add_history([{**{k: v for k, v in h.items() if k != "history_id"}, "defect_id": did,
                            "reason": f"{h['reason']} (carried over from defect #{rec['defect_id']} by reprocess)"}
                           for h in rec["history"]])
        refresh_defects(store, [did], proj, dp, now=now, detector=detector)
        carried += 1
    return carried, lost


# --------------------------------------------------------------------------------------------- crews' view


def iso_time(t_s: Any) -> str | None:
    """ISO 8601 UTC (seconds, "Z") of an epoch time; None for None or NaN."""
    if t_s is None or not np.isfinite(t_s):
        return None
    return datetime.fromtimestamp(float(t_s), tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
    if "all" in items:
        return None
    bad = [v for v in items if v not in allowed]
    if bad:
        raise error(f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(allowed)} or all "
                    "(comma-separated)", field=what)
    return tuple(items)


def list_defects(store: Store, *, status: str | Sequence[str] | None = None, kind: str | Sequence[str] | None = None,
                 bbox: tuple[float, float, float, float] | None = None, limit: int = 100,
                 cursor: str | None = None) -> DefectPage:
    """Defects ranked by priority. By default every status but repaired and dismissed, and the spot defects
    (pothole, cover, unknown: not rough stretches, which the roughness map shows, nor designed features such as
    speed bumps and joints, nor castings standing proud, which leave nothing to fill); pass "all" (or a list)
    to widen. Keyset pagination: pass ``next_cursor`` back as ``cursor``."""
    statuses = parse_choices(status, STATUSES, DEFAULT_LIST_STATUSES, "status")
    kinds = parse_choices(kind, KINDS, LISTED_KINDS, "kind")
    if bbox is not None:
        w, s, e, n = bbox
        if not (-90 <= s <= n <= 90 and -180 <= w <= 180 and -180 <= e <= 180):
            raise StoreError(f"bbox must be W,S,E,N in degrees with S <= N, got {bbox}", field="bbox")
    cols, nxt = store.list_defects(DefectQuery(statuses, kinds, bbox, int(limit), cursor,
                                               proud_covers=kind is not None))
    rows = [{k: _scalar(cols[k][i]) for k in cols} for i in range(len(cols))]
    return DefectPage([defect_record(r) for r in rows], nxt)


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


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
    with store.transaction():
        row = store.get_defect(defect_id)
        proj = projection(store)
        if proj is None:
            raise StoreError("the database has no projection origin yet; ingest a trip with GPS first")
        old = row["status"]
        crew, crew_at = (None, None) if status == REOPEN else (status, at)
        if status != REOPEN and old == status:
            raise InvalidStatusError(f"defect {defect_id} is already {status}", field="status")
        store.update_defects({"defect_id": [defect_id], "crew_status": [crew], "crew_at_s": [crew_at],
                              "status": [status if status != REOPEN else old], "status_since_s": [at]})
        store.add_history([{"defect_id": defect_id, "t_s": at, "recorded_at_s": now, "from_status": old,
                            "to_status": status if status != REOPEN else "reopened", "reason": reason.strip(),
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
    "IngestSummary",
    "InvalidStatusError",
    "ReprocessSummary",
    "coverage",
    "defect_record",
    "defects_csv",
    "defects_geojson",
    "get_defect",
    "ingest_trace",
    "list_cells",
    "list_defects",
    "refresh_defects",
    "reprocess",
    "set_status",
]
