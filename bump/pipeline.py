"""Trips into the store: what the CLI and the HTTP layer call to add trips and to reprocess them.

- :func:`ingest_trace` — one trace in: detection, hits, defects (join / new / merge), traversals, status, priority,
  roughness and coverage cells, all in ONE transaction; a trip already stored is skipped (idempotent by trip_id).
- :func:`reprocess` — re-run detection with new :class:`detect.DetectorParams` on every stored raw trace and
  re-cluster everything (:func:`bump.recluster.recluster`); crews' decisions are carried over to the defect at the
  same spot.

Per trip, incrementally (nothing else of the city is re-clustered): the trip's hits join the nearest compatible defect
within its gate, the rest form new candidates among themselves; the trip's track is matched against the defects near it
(traversals, hit or not); new defects also get the traversals of earlier trips that passed them (found through the
coverage cells); every defect touched is then re-summarised (position, kind, counts), merged with a duplicate, its
opposite-direction twin, or a larger defect most of its hits would have joined, and its status and priority re-evaluated
(:mod:`bump.refresh`). The GPS latency calibrations are :mod:`bump.latency`'s; the crews' view of the result is
:mod:`bump.views`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

import ingest
from bump import cells as cellmap
from bump import latency as gps_latency
from bump.cluster import (
    DEFAULT_DEFECT_PARAMS,
    SPANNING_KINDS,
    DefectParams,
    assign_hits,
    continued,
    group_hits,
    mean_heading,
    points_tree,
    robust_centres,
    same_pass_pairs,
    spans_road,
)
from bump.landmarks import trip_moves
from bump.lifecycle import (
    CREW_STATUSES,
)
from bump.recluster import recluster, spanning_labels
from bump.refresh import SUMMARY_HIT_COLUMNS, refresh_defects
from bump.report import gps_latency_record
from bump.store import Store, ids_in, setdiff_ids
from bump.traversals import Track, densify, find_traversals, find_traversals_of_tracks, track_from_fixes
from detect import Detection, detect
from detect.arrays import unique_sorted
from detect.columns import Columns
from detect.geo import LocalProjection
from detect.params import DetectorParams
from detect.pipeline import IMPACT_DTYPES
from ingest.source import GZIP_MAGIC, ZIP_MAGIC

_SKIP_FEATURES = {"i_start", "i_stop", "i_peak", "valid", "rejected", "first_motion"}   # first_motion: a column
# joining and passes of a trip (~700 rows a trip): no status, counts (read for the few defects that need them)
_TRACK_NEAR_COLUMNS = ("defect_id", "x_m", "y_m", "heading_deg", "spans", "uncertainty_m")
_NEAR_COLUMNS = (*_TRACK_NEAR_COLUMNS, "status", "n_hits")         # ... and what makes a landmark


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
    n_traversals: int = 0                  # defects this trip passed (hit or not; once however often)
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


PARAMS_META_KEY = "detector_params"   # the detector parameters of the database's last reprocess (JSON)


def database_params(store: Store) -> DetectorParams:
    """The detector parameters new trips of this database are detected with: those of its last ``reprocess``
    (so that its trips stay comparable), else the defaults."""
    return _params_from_json(store.get_meta(PARAMS_META_KEY))


@functools.lru_cache(maxsize=8)
def _params_from_json(text: str | None) -> DetectorParams:
    return DetectorParams() if text is None else DetectorParams.from_dict(orjson.loads(text))


def detector_info(params: DetectorParams, *, with_params: bool = True) -> dict[str, Any]:
    """Which detector made a result: version, parameter digest and (``with_params``; each hit stores None there,
    its trip the whole set) the parameters."""
    return {"version": params.version, "params_digest": params.digest(),
            "params": dict(_params_dict(params)) if with_params else None}


@functools.lru_cache(maxsize=8)
def _params_dict(params: DetectorParams) -> dict[str, Any]:
    """``params.to_dict()``, made once per parameter set (frozen; ~50 us each time, once a trip); callers copy it
    (its values are numbers, strings and tuples)."""
    return params.to_dict()


def trace_track(trace: ingest.Trace, latency_s: float) -> Track:
    """The trip's GPS track, its fixes moved back by ``latency_s`` (its detection's ``gps_latency_s``, so that the
    track and the hits agree)."""
    return track_from_fixes(trace.gps_t_s, trace.lat_deg, trace.lon_deg, trace.speed_mps, trace.heading_deg,
                            trace.accuracy_m, latency_s=latency_s)


def hit_columns(impacts: Columns, proj: LocalProjection, trip_id: str, device_id: str,
                own_latency_s: float = np.nan) -> tuple[Columns, list[dict[str, Any]]]:
    """The storable hits of a detection's impacts (those with a position) and their extra features;
    ``own_latency_s``: the trip's own GPS latency its positions were corrected by (NaN: it did not tell it)."""
    imp = impacts
    ok = np.isfinite(imp["lat_deg"]) & np.isfinite(imp["lon_deg"]) if len(imp) else np.zeros(0, dtype=bool)
    imp = imp.select(ok)
    n = len(imp)
    x, y = proj.to_xy(imp["lat_deg"], imp["lon_deg"]) if n else (np.empty(0), np.empty(0))
    cols = Columns({
        "trip_id": np.full(n, trip_id), "device_id": np.full(n, device_id), "t_s": imp["t_s"],
        "lat_deg": imp["lat_deg"], "lon_deg": imp["lon_deg"], "x_m": x, "y_m": y, "accuracy_m": imp["accuracy_m"],
        "heading_deg": imp["heading_deg"], "kind": imp["kind"].astype(str), "severity": imp["severity"],
        "depth_class": imp["depth_class"].astype(str), "confidence": imp["confidence"], "speed_mps": imp["speed_mps"],
        "own_latency_s": np.full(n, own_latency_s),
        **({"spot_kind": imp["spot_kind"].astype(str)} if "spot_kind" in imp else {}),   # else the store's default
        **({"first_motion": imp["first_motion"]} if "first_motion" in imp else {}),      # else unknown (NULL)
    })
    extra = [k for k in imp if k not in IMPACT_DTYPES and k not in _SKIP_FEATURES]
    features = Columns({k: imp[k] for k in extra}).to_records(decimals={k: 4 for k in extra}) if extra and n \
        else [{} for _ in range(n)]
    return cols, features


def _track_xy(track: Track, proj: LocalProjection, params: DefectParams, *,
              box: tuple[float, float, float, float] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = proj.to_xy(track.lat_deg, track.lon_deg)
    return densify((x, y, track.t_s), track.heading_deg, track.accuracy_m, params.track_step_m, box=box)


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
    digest = _RawDigest(raw)                                 # made meanwhile (see _RawDigest)
    serialise = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = detection if detection is not None else detect(trace, params)
    timings["detect"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    track = trace_track(trace, det.gps_latency_s)            # placed as the hits are: with the trip's own latency
    info = _trip_info(trace, device, det, params, np.nan)
    proj = projection(store)           # fixed once set: read before the lock (None: this trip's first fix may set it)
    rows = _trip_rows(trace, det, track, proj, device, params, defect_params) if proj is not None else None
    blob = track.to_bytes()
    timings["serialise"] = serialise + time.perf_counter() - t0
    t0 = time.perf_counter()
    with store.transaction(journal_in_memory=True):      # a trip's statements change a few hundred pages at most
        if store.has_trip(trace.trip_id):       # stored by a concurrent writer meanwhile
            return IngestSummary(trace.trip_id, device, skipped=True)
        if proj is None:
            proj = projection(store, trace)
            rows = _trip_rows(trace, det, track, proj, device, params, defect_params) if proj is not None else None
        store.add_trip(info | {"ingested_at_s": clock()}, raw, blob, raw_sha256=digest.result())  # commit order
        if proj is None or rows is None:
            timings["store"] = time.perf_counter() - t0
            return IngestSummary(trace.trip_id, device, n_impacts=det.n_impacts, timings_s=timings)
        summary = _cluster_trip(store, proj, trace.trip_id, device, rows, defect_params, params, clock())
        n_rough = _update_maps(store, proj, det.roughness, track, trace.trip_id, device, rows=rows.maps)
    timings["store"] = time.perf_counter() - t0                           # commit (fsync) included
    return IngestSummary(trace.trip_id, device, n_impacts=det.n_impacts, n_hits=len(rows.hits),
                         n_roughness=n_rough, timings_s=timings, **summary)


class _RawDigest:
    """The SHA-256 (hex) of the raw input a trip stores, made in a worker thread while the trace is detected:
    hashlib releases the GIL while it works, so with a second core free it takes no time off the upload's path
    (~1.5 ms for a 10-minute upload of 1.7 MB)."""

    def __init__(self, raw: bytes) -> None:
        self._made: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._make, args=(raw,), name="bump-raw-digest", daemon=True)
        self._thread.start()

    def _make(self, raw: bytes) -> None:
        try:
            self._made = hashlib.sha256(raw).hexdigest()
        except BaseException as exc:       # raised again to the caller by result()
            self._error = exc

    def result(self) -> str:
        """The raw input's SHA-256 hex, once made."""
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
    own_latency_s: float                         # the trip's own GPS latency (NaN: it did not tell it)


def _trip_rows(trace: ingest.Trace, det: Detection, track: Track, proj: LocalProjection, device: str,
               params: DetectorParams, dp: DefectParams) -> _TripRows:
    hits, features = hit_columns(det.impacts, proj, trace.trip_id, device, det.gps_latency.latency_s)
    dense = _track_xy(track, proj, dp)
    reach = dp.max_join_radius_m + dp.max_traversal_radius_m
    rough, cover = _map_rows(proj, det.roughness, track, trace.trip_id, device)
    centres = cellmap.cell_centres(np.concatenate([rough["cell_key"], cover["cell_key"]]), proj)
    return _TripRows(hits, features, detector_info(params, with_params=False), dense,
                     cellmap.grid_keys_within(dense[1], dense[2], dp.max_traversal_radius_m),
                     cellmap.grid_keys_around(dense[1], dense[2], reach), points_tree(dense[1], dense[2]),
                     (rough, cover, centres), det.gps_latency.latency_s)


def _trip_info(trace: ingest.Trace, device: str, det: Detection, params: DetectorParams, now: float
               ) -> dict[str, Any]:
    length = 0.0
    if trace.gps_t_s.size >= 2:
        p = LocalProjection(float(trace.lat_deg[0]), float(trace.lon_deg[0]))
        x, y = p.to_xy(trace.lat_deg, trace.lon_deg)
        length = float(np.hypot(np.diff(x), np.diff(y)).sum())
    quality = trace.quality.to_dict() | {"gps_latency": gps_latency_record(det)}
    return {"trip_id": trace.trip_id, "device_id": device, "t_start_s": float(trace.t_s[0]),
            "t_end_s": float(trace.t_s[-1]), "ingested_at_s": now, "source_format": trace.source_format,
            "n_samples": trace.n_samples, "n_impacts": det.n_impacts, "length_m": length,
            "detector": detector_info(params), "quality": quality}


def _stub_defects(store: Store, proj: LocalProjection, x: np.ndarray, y: np.ndarray, heading: np.ndarray,
                  spans: np.ndarray, unc: np.ndarray, kind: np.ndarray, t_s: np.ndarray, now: float,
                  detector: str, ids: np.ndarray | None = None) -> np.ndarray:
    """Insert new candidate defects with provisional fields (refresh_defects completes them); their ids (``ids``:
    those to give them, -1 fresh)."""
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
    }, ids=ids)


def _detector_json(params: DetectorParams, defect_params: DefectParams) -> str:
    import orjson

    return orjson.dumps({"detector": params.version, "detector_digest": params.digest(),
                         "defects": defect_params.version, "defects_digest": defect_params.digest()}).decode()


def _assign(hits: Columns, spans: np.ndarray, near: Columns, dp: DefectParams) -> np.ndarray:
    """Index into ``near`` of the defect each hit joins (-1: none; :func:`bump.cluster.assign_hits`)."""
    apart = same_pass_pairs(np.zeros(len(hits), np.int64), hits["t_s"], hits["x_m"], hits["y_m"],
                            hits["heading_deg"], dp)
    return assign_hits(hits["x_m"], hits["y_m"], hits["heading_deg"], spans, hits["accuracy_m"], near["x_m"],
                       near["y_m"], near["heading_deg"], near["spans"].astype(bool), near["uncertainty_m"], dp,
                       apart=apart)


def _cluster_trip(store: Store, proj: LocalProjection, trip_id: str, device: str, trip: _TripRows,
                  dp: DefectParams, params: DetectorParams, now: float) -> dict[str, Any]:
    """Store the trip's hits with the defects they join or found, and its passes; refresh what they touched."""
    reach = dp.max_join_radius_m + dp.max_traversal_radius_m
    raw = hits = trip.hits
    # a trip that told its own GPS latency placed its hits with it, and its latency is a sample of its device's and
    # the fleet's; those estimates correct the trips that did not tell theirs, and learn from their hits too
    told = bool(np.isfinite(trip.own_latency_s))
    latency = 0.0 if told else float(gps_latency.hit_latencies_s(store, np.array([device]), dp)[0])
    if told:
        _add_trip_latency(store, device, trip.own_latency_s, dp)
    hits = hits.with_columns(**dict(zip(("x_m", "y_m"), gps_latency.corrected_xy(
        hits["x_m"], hits["y_m"], hits["heading_deg"], hits["speed_mps"], latency), strict=True)))
    hspans = spans_road(hits["kind"])
    learn = dp.latency_calibration and hspans.any() and not told
    # the defects the trip may join (around its hits) or pass (near its track), and those _update_latency pairs its
    # raw road-spanning hits with (within two join radii of them, where the track's wider neighbourhood reaches)
    keys = [trip.track_keys, cellmap.grid_keys_around(hits["x_m"], hits["y_m"], reach)]
    if learn:
        wide = trip.wide_keys                    # unique: those of it around the spanning hits
        keys.append(wide[ids_in(wide, cellmap.grid_keys_around(raw["x_m"][hspans], raw["y_m"][hspans],
                                                               2 * dp.max_join_radius_m))])
    keys = unique_sorted(np.concatenate(keys))
    near = store.defects_in_grid(keys, _NEAR_COLUMNS)
    idx = _assign(hits, hspans, near, dp)
    placed, idx_placed, dense, tree = hits, idx, trip.dense, trip.tree     # as the GPS placed them
    moves = None
    if dp.landmarks and len(near):               # landmarks: confirmed defects with landmark_min_hits hits
        landmark = (near["status"] == "confirmed") & (near["n_hits"] >= dp.landmark_min_hits)
        moves = trip_moves(hits["t_s"], hits["x_m"], hits["y_m"], idx, near["x_m"], near["y_m"], landmark, dense[0],
                           tau_s=dp.gps_error_tau_s, prior_weight=dp.landmark_prior_weight)
    if moves is not None:                        # the trip's GPS error read at landmarks, taken off (bump.landmarks)
        (hdx, hdy), (tdx, tdy) = moves
        hits = hits.with_columns(x_m=hits["x_m"] + hdx, y_m=hits["y_m"] + hdy)
        raw = raw.with_columns(x_m=raw["x_m"] + hdx, y_m=raw["y_m"] + hdy)
        dense = (dense[0], dense[1] + tdx, dense[2] + tdy, *dense[3:])
        tree = points_tree(dense[1], dense[2])
        idx = _assign(hits, hspans, near, dp)
    hit_defect = np.where(idx >= 0, near["defect_id"][np.maximum(idx, 0)] if len(near) else -1, -1)
    rest = np.flatnonzero(idx < 0)
    new_ids = np.empty(0, dtype=np.int64)
    if rest.size:
        sub = hits.select(rest)
        labels = group_hits(sub["x_m"], sub["y_m"], sub["heading_deg"], hspans[rest], sub["accuracy_m"], dp,
                            t_s=sub["t_s"])
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
    if learn:                                  # latencies learn from positions as the GPS gave them
        recent = _update_latency(store, proj, trip.hits.select(hspans), near, dp, also=hit_ids)
    if dp.device_latency and not told:
        _update_device_latency(store, device, placed, idx_placed, near, latency, dp)

    # traversals of this trip: the defects near its track, and the new ones
    new_cols = store.defects_by_id(new_ids, (*_TRACK_NEAR_COLUMNS, "first_seen_s")) if new_ids.size else None
    allc = Columns({k: near[k] if new_cols is None else np.concatenate([near[k], new_cols[k]])
                    for k in _TRACK_NEAR_COLUMNS})
    rows = _trip_traversals(trip_id, device, dense, allc, hits, hit_defect, dp, tree=tree)
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
            "merged_defects": tuple(sorted(result.merged)), "n_traversals": int(np.unique(rows["defect_id"]).size),
            "status_changes": changes}


def _add_trip_latency(store: Store, device: str, latency_s: float, dp: DefectParams) -> None:
    """A trip's own GPS latency [s] as one sample of the fleet's histogram and of its device's."""
    if dp.latency_calibration:
        gps_latency.add_fleet_samples(store, np.array([latency_s]))
    if dp.device_latency:
        gps_latency.add_device_samples(store, device, np.array([latency_s]))


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
    samples = gps_latency.device_latency_samples(h["x_m"], h["y_m"], h["heading_deg"], h["speed_mps"],
                                                 near["x_m"][j[ok]], near["y_m"][j[ok]], used_latency_s)
    if samples.size:
        gps_latency.add_device_samples(store, device, samples)


def _latency_input(hits: Columns) -> tuple[np.ndarray, ...]:
    _, trip = np.unique(hits["trip_id"], return_inverse=True)
    return (hits["x_m"], hits["y_m"], hits["heading_deg"], hits["speed_mps"], trip.ravel())


def _update_latency(store: Store, proj: LocalProjection, spanning: Columns, near: Columns, dp: DefectParams, *,
                    also: np.ndarray | None = None) -> tuple[np.ndarray, Columns]:
    """Add the latency estimates of this trip's road-spanning hits paired with stored ones nearby. Returns the
    ids ``also`` (the defects this trip hit) and their latest hits (columns of :data:`SUMMARY_HIT_COLUMNS`, by
    hit id), read with those of the other defects near: the refresh that follows needs them."""
    close = np.hypot(near["x_m"][:, None] - spanning["x_m"][None, :],
                     near["y_m"][:, None] - spanning["y_m"][None, :]).min(axis=1) <= 2 * dp.max_join_radius_m \
        if len(near) else np.zeros(0, dtype=bool)
    also = np.empty(0, np.int64) if also is None else np.asarray(also, np.int64)
    wide = store.hits_of_defects(also, SUMMARY_HIT_COLUMNS, recent=dp.summary_hits)
    names = ("hit_id", "x_m", "y_m", "heading_deg", "speed_mps", "trip_id", "kind", "own_latency_s")
    trip = str(spanning["trip_id"][0])
    narrow = store.hits_of_defects(setdiff_ids(near["defect_id"][close], also), names, recent=dp.summary_hits,
                                   kinds=SPANNING_KINDS, not_trip=trip)    # only those paired below
    mine = wide.select(ids_in(wide["defect_id"], near["defect_id"][close]))
    other = Columns({k: np.concatenate([mine[k], narrow[k]]) for k in names})
    other = other.select(np.argsort(other["hit_id"], kind="stable"))        # as one read of them gives
    other = other.select(spans_road(other["kind"]) & (other["trip_id"] != trip) & np.isnan(other["own_latency_s"]))
    if len(other) == 0:
        return also, wide
    both = Columns({k: np.concatenate([spanning[k], other[k]]) for k in ("x_m", "y_m", "heading_deg", "speed_mps",
                                                                          "trip_id")})
    both_input = _latency_input(both)
    a = tuple(v[: len(spanning)] for v in both_input)
    b = tuple(v[len(spanning):] for v in both_input)
    samples = gps_latency.latency_samples(a, b, dp)
    if samples.size:
        gps_latency.add_fleet_samples(store, samples)
    return also, wide


def _trip_traversals(trip_id: str, device: str, dense: tuple[np.ndarray, ...], defects: Columns, hits: Columns,
                     hit_defect: np.ndarray, dp: DefectParams, *, tree: Any = None) -> Columns:
    """Traversal rows of one trip: each pass of its track by a defect (:func:`bump.traversals.find_traversals`), hit
    when one of the trip's hits on that defect is nearer in time to it than to the trip's other passes; plus a
    pass at the first hit of every defect it hit where the track search found none. ``tree``: the search tree of
    the track's points (:func:`bump.cluster.points_tree`) when built before."""
    tt, tx, ty, th, tacc = dense
    j, t_pass, dist, pass_no = find_traversals(tt, tx, ty, th, tacc, defects["x_m"], defects["y_m"],
                                               defects["heading_deg"], defects["spans"].astype(bool),
                                               defects["uncertainty_m"], dp, tree=tree)
    ids = defects["defect_id"][j] if len(defects) else np.empty(0, dtype=np.int64)
    hit_ids = hit_defect[hit_defect >= 0]
    hit_t = hits["t_s"][hit_defect >= 0]
    hit = np.zeros(ids.size, dtype=np.int64)
    for d, t in zip(hit_ids.tolist(), hit_t.tolist(), strict=True):     # loop over the trip's hits (a few)
        rows = np.flatnonzero(ids == d)
        if rows.size:
            hit[rows[np.argmin(np.abs(t_pass[rows] - t))]] = 1
    missing = setdiff_ids(np.unique(hit_ids), ids)
    first_hit = np.array([hit_t[hit_ids == m].min() for m in missing]) if missing.size else np.empty(0)
    all_ids = np.concatenate([ids, missing]).astype(np.int64)
    n = all_ids.size
    return Columns({"defect_id": all_ids, "trip_id": np.full(n, trip_id), "device_id": np.full(n, device),
                    "pass_no": np.concatenate([pass_no, np.zeros(missing.size, dtype=np.int64)]),
                    "t_s": np.concatenate([t_pass, first_hit]),
                    "hit": np.concatenate([hit, np.ones(missing.size, dtype=np.int64)]),
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
    k, j, t_pass, dist, pass_no = find_traversals_of_tracks(track, tt, tx, ty, th, tacc, new["x_m"], new["y_m"],
                                                            new["heading_deg"], new["spans"].astype(bool),
                                                            new["uncertainty_m"], dp)
    if k.size:
        tids, devs = (np.array([t[c] for t in tracks]) for c in (0, 1))
        store.upsert_traversals({"defect_id": new["defect_id"][j], "trip_id": tids[k], "device_id": devs[k],
                                 "pass_no": pass_no, "t_s": t_pass, "hit": np.zeros(k.size, dtype=np.int64),
                                 "distance_m": dist})


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
    done: dict[str, _Redetected] = {}
    for info in store.trips():                     # loop over trips, outside the write lock (uploads go on)
        done[info["trip_id"]] = _redetect(store, info, params, detect_fn, keep_trace=not done)
        if progress is not None:
            progress(1)
    now = clock()
    detector = _detector_json(params, dp)
    with store.transaction():
        store.set_meta(PARAMS_META_KEY, orjson.dumps(params.to_dict()).decode())
        trips = store.trips()                      # with the write lock: also those uploaded meanwhile
        per_trip = [done.get(info["trip_id"]) or _redetect(store, info, params, detect_fn, keep_trace=not done)
                    for info in trips]
        before = store.all_defects()               # their ids go on to the defects that continue them
        crew = _crew_snapshot(store, before)
        store.clear_derived()
        first = next((r.trace for r in per_trip if r.trace is not None), None)
        proj = projection(store, first)
        if proj is None:
            return ReprocessSummary(len(trips), 0, 0, {}, 0, len(crew), detector_info(params))
        all_hits: list[Columns] = []
        all_features: list[dict[str, Any]] = []
        tracks: dict[str, tuple[str, tuple[np.ndarray, ...]]] = {}
        for r in per_trip:                         # loop over trips
            tid, dev = r.info["trip_id"], r.info["device_id"]
            hits, features = hit_columns(r.impacts, proj, tid, dev, r.own_latency_s)
            all_hits.append(hits)
            all_features.extend(features)
            store.update_trip_detection(tid, detector_info(params), r.n_impacts)
            _update_maps(store, proj, r.roughness, r.track, tid, dev, refresh=False)
            tracks[tid] = (dev, _track_xy(r.track, proj, dp))
        hits = Columns({k: np.concatenate([h[k] for h in all_hits]) for k in all_hits[0]}) if all_hits else None
        new_ids = np.empty(0, dtype=np.int64)
        gps_latency.reset_fleet(store)
        if hits is not None and len(hits):
            spans = spans_road(hits["kind"])
            trip_idx = np.unique(hits["trip_id"], return_inverse=True)[1].ravel()
            # the fleet's latency: pairs of hits of trips that did not tell theirs, and the latencies of those that did
            if dp.latency_calibration:
                learn = hits.select(spans & np.isnan(hits["own_latency_s"]))
                sp = _latency_input(learn)
                pairs = gps_latency.latency_samples(sp, sp, dp, same=True) if len(learn) >= 2 else np.empty(0)
                samples = np.concatenate([pairs, [r.own_latency_s for r in per_trip if np.isfinite(r.own_latency_s)]])
                if samples.size:
                    gps_latency.add_fleet_samples(store, samples, reset=True)
            latency = gps_latency.hit_latencies_s(store, hits["device_id"], dp, hits["own_latency_s"])
            hx, hy = gps_latency.corrected_xy(hits["x_m"], hits["y_m"], hits["heading_deg"], hits["speed_mps"], latency)
            labels = recluster(hx, hy, hits["heading_deg"], spans, hits["accuracy_m"], trip_idx, dp, t_s=hits["t_s"])
            k = int(labels.max()) + 1
            c = robust_centres(labels, hx, hy, hits["accuracy_m"], trip_idx, k, dp)
            if dp.landmarks:                       # each trip's GPS error read at the landmarks, then again
                dx, dy = _landmark_moves_all(hits, trip_idx, labels, c, tracks, dp)
                hits = hits.with_columns(x_m=hits["x_m"] + dx, y_m=hits["y_m"] + dy)
                hx, hy = hx + dx, hy + dy
                labels = recluster(hx, hy, hits["heading_deg"], spans, hits["accuracy_m"], trip_idx, dp,
                                   t_s=hits["t_s"])
                k = int(labels.max()) + 1
                c = robust_centres(labels, hx, hy, hits["accuracy_m"], trip_idx, k, dp)
            gspans = spanning_labels(labels, spans, k)
            head = mean_heading(labels, hits["heading_deg"], np.ones(labels.size), k, gspans)
            first_t = np.full(k, np.inf)
            np.minimum.at(first_t, labels, hits["t_s"])
            kinds = np.empty(k, dtype=object)
            kinds[labels] = hits["kind"]
            was = continued(np.column_stack([c.x_m, c.y_m]), head, gspans, c.uncertainty_m,
                            np.column_stack([before["x_m"], before["y_m"]]), before["heading_deg"],
                            before["uncertainty_m"], dp)
            new_ids = _stub_defects(store, proj, c.x_m, c.y_m, head, gspans, c.uncertainty_m, kinds.astype(str),
                                    first_t, now, detector,
                                    ids=np.where(was >= 0, before["defect_id"][np.maximum(was, 0)], -1))
            hit_defect = new_ids[labels]
            hits = hits.with_columns(hit_id=store.add_hits(hits.data | {"defect_id": hit_defect}, all_features,
                                                           detector_info(params, with_params=False)))
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


def _landmark_moves_all(hits: Columns, trip_idx: np.ndarray, labels: np.ndarray, centres: Any,
                        tracks: dict[str, tuple[str, tuple[np.ndarray, ...]]], dp: DefectParams
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) [m] per hit of a full re-cluster, and each trip's track in ``tracks`` moved in place: the trip's
    GPS error read at the clusters that are landmarks (``landmark_min_hits`` hits from ``confirm_devices``
    devices: confirmed, as far as hits tell; :func:`bump.landmarks.trip_moves`)."""
    k = centres.x_m.size
    n_hits = np.bincount(labels, minlength=k)
    pairs = np.unique(np.column_stack([labels, np.unique(hits["device_id"], return_inverse=True)[1].ravel()]),
                      axis=0)
    landmark = (n_hits >= dp.landmark_min_hits) & (np.bincount(pairs[:, 0], minlength=k) >= dp.confirm_devices)
    dx, dy = np.zeros(len(hits)), np.zeros(len(hits))
    order = np.argsort(trip_idx, kind="stable")
    bounds = np.searchsorted(trip_idx[order], np.arange(trip_idx.max() + 2))
    for j in range(bounds.size - 1):             # loop over trips
        sel = order[bounds[j]:bounds[j + 1]]
        tid = str(hits["trip_id"][sel[0]])
        dev, dense = tracks[tid]
        moves = trip_moves(hits["t_s"][sel], hits["x_m"][sel], hits["y_m"][sel], labels[sel], centres.x_m,
                           centres.y_m, landmark, dense[0], tau_s=dp.gps_error_tau_s,
                           prior_weight=dp.landmark_prior_weight)
        if moves is not None:
            (dx[sel], dy[sel]), (tdx, tdy) = moves
            tracks[tid] = (dev, (dense[0], dense[1] + tdx, dense[2] + tdy, *dense[3:]))
    return dx, dy


@dataclass(frozen=True)
class _Redetected:
    """What a reprocess keeps of a trip's new detection: impacts, roughness and GPS track, not its signals (a
    city's trips at once would not fit in memory), and the trace itself for the first one (the projection)."""

    info: dict[str, Any]
    impacts: Columns
    roughness: Columns
    n_impacts: int
    track: Track
    trace: ingest.Trace | None
    own_latency_s: float          # the trip's own GPS latency (NaN: it did not tell it)


def _redetect(store: Store, info: dict[str, Any], params: DetectorParams,
              detect_fn: Callable[[ingest.Trace, DetectorParams], Detection], *, keep_trace: bool) -> _Redetected:
    trace = ingest.read(store.trip_raw(info["trip_id"]), name=f"trip {info['trip_id']}")
    det = detect_fn(trace, params)
    return _Redetected(info, det.impacts, det.roughness, det.n_impacts, trace_track(trace, det.gps_latency_s),
                       trace if keep_trace and trace.has_gps else None, det.gps_latency.latency_s)


def _crew_snapshot(store: Store, d: Columns) -> list[dict[str, Any]]:
    """The crews' decisions among the defects ``d`` (all of them), with their rows of history."""
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
        note = "kept through a reprocess" if did == rec["defect_id"] else \
            f"carried over from defect #{rec['defect_id']} by reprocess"
        store.add_history([{**{k: v for k, v in h.items() if k != "history_id"}, "defect_id": did,
                            "reason": f"{h['reason']} ({note})"} for h in rec["history"]])
        refresh_defects(store, [did], proj, dp, now=now, detector=detector)
        carried += 1
    return carried, lost


__all__ = ["IngestSummary", "ReprocessSummary", "ingest_trace", "projection", "reprocess"]
