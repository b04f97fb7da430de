"""Uploads and trip reads: body decoding within limits, one trip read, detected and committed for the token's
device, idempotent by trip id; a trip's summary and impacts for its device or a crew."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import ingest
from bump import pipeline, views
from bump.service.auth import Principal, require_device
from bump.service.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaError,
)
from bump.service.privacy import PrivacyZones
from bump.store import Store
from detect import detect
from detect.params import DetectorParams
from ingest.errors import FormatError, SizeError
from ingest.source import GZIP_MAGIC, ZIP_MAGIC, gunzip
from ingest.trace import Limits
from ingest.validate import build_trace


@dataclass(frozen=True)
class BodyLimits:
    """Caps on an upload: bytes on the wire, bytes after gzip / inside a zip, files in a zip."""

    max_body_bytes: int = 64 * 2**20
    max_decompressed_bytes: int = 256 * 2**20
    max_zip_members: int = 1000


@dataclass(frozen=True)
class UploadResult:
    created: bool                      # False: the trip was already stored (an idempotent retry)
    summary: dict[str, Any]
    n_samples: int


_JSON_TYPES = ("application/json", "text/json")
_GZIP_TYPES = ("application/gzip", "application/x-gzip")
_ZIP_TYPES = ("application/zip", "application/x-zip-compressed")
_SNIFF_TYPES = ("application/octet-stream",)
_HOW = ("send bump.trace/1 JSON as application/json (optionally with Content-Encoding: gzip), a Sensor Logger zip "
        "as application/zip, or either as the multipart/form-data field 'file'")


def check_body_size(n_bytes: int, limits: BodyLimits) -> None:
    if n_bytes > limits.max_body_bytes:
        raise PayloadTooLargeError(f"is over {limits.max_body_bytes} bytes; split the trip into shorter "
                                   "ones or compress it (Content-Encoding: gzip)", field="body")


def gunzip_limited(data: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip body (:func:`ingest.source.gunzip`), refusing more than ``max_bytes`` of output (gzip
    bombs, 413); bad gzip is a bad request (400)."""
    try:
        return gunzip(data, name="body", max_bytes=max_bytes)
    except SizeError as exc:
        raise PayloadTooLargeError(exc.message, field="body") from None
    except FormatError as exc:
        raise BadRequestError(exc.message, field="body") from None


def _check_zip(data: bytes, limits: BodyLimits) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise BadRequestError(f"is a damaged zip archive ({exc}); export it again", field="body") from None
    if len(infos) > limits.max_zip_members:
        raise PayloadTooLargeError(f"the zip holds {len(infos)} files, more than {limits.max_zip_members}",
                                   field="body")
    total = sum(i.file_size for i in infos)
    if total > limits.max_decompressed_bytes:
        raise PayloadTooLargeError(f"the zip unpacks to {total} bytes, more than {limits.max_decompressed_bytes}; "
                                   "split the recording", field="body")


def decode_body(body: bytes, *, content_type: str | None, content_encoding: str | None,
                limits: BodyLimits = BodyLimits()) -> tuple[bytes, str | None]:
    """The trace bytes of an upload body and the reader to force (None: sniff). ``content_type`` None means
    "sniff the content" (a multipart file part)."""
    check_body_size(len(body), limits)
    enc = (content_encoding or "identity").split(",")[0].strip().lower()
    if enc not in ("identity", "gzip", "x-gzip"):
        raise UnsupportedMediaError(f"{enc!r} is not accepted; use gzip or none",
                                    field="Content-Encoding")
    ctype = None if content_type is None else content_type.split(";")[0].strip().lower()
    if ctype is not None and ctype not in (*_JSON_TYPES, *_GZIP_TYPES, *_ZIP_TYPES, *_SNIFF_TYPES):
        what = f"{ctype!r} is not accepted" if ctype else "is missing"
        raise UnsupportedMediaError(f"{what}; {_HOW}", field="Content-Type")
    if not body:
        raise BadRequestError(f"is empty; {_HOW}", field="body")
    data = body
    if enc != "identity" or data.startswith(GZIP_MAGIC):
        data = gunzip_limited(data, limits.max_decompressed_bytes)
    elif ctype in _GZIP_TYPES:
        raise BadRequestError("is not gzip although Content-Type says so", field="body")
    if len(data) > limits.max_decompressed_bytes:
        raise PayloadTooLargeError(f"is over {limits.max_decompressed_bytes} bytes once decoded; split the trip",
                                   field="body")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):            # a UTF-16 (or UTF-32 LE) byte-order mark
        raise UnsupportedMediaError("is UTF-16 or UTF-32 text; JSON must be UTF-8 (RFC 8259): save or send it as "
                                    "UTF-8", field="body")
    if data.startswith(ZIP_MAGIC):
        if ctype in _JSON_TYPES:
            raise UnsupportedMediaError("the body is a zip archive; send it as "
                                        "application/zip", field="Content-Type")
        _check_zip(data, limits)
        return data, None
    if ctype in _ZIP_TYPES:
        raise BadRequestError("is not a zip archive although Content-Type says so", field="body")
    return data, ("bump" if ctype in _JSON_TYPES else None)


def upload_trace(store: Store, principal: Principal, data: bytes, *, fmt: str | None,
                 params: DetectorParams | None = None, limits: Limits = Limits(), name: str = "upload",
                 wire: bytes | None = None, clock: Callable[[], float] = time.time) -> UploadResult:
    """Read, detect and store one uploaded trip for the token's device (the device id in the body is ignored).

    Idempotent by trip id: a trip already stored for this device with the same content returns its summary with
    ``created=False``; another device's trip id, or the same id with other content, is a :class:`ConflictError`.
    The trip is committed (WAL, synchronous=FULL) before this returns. ``params``: the detector's, by default the
    database's (:func:`bump.pipeline.database_params`)."""
    device = require_device(principal)
    try:
        trace = ingest.read(data, format=fmt, name=name, limits=limits)
    except (RuntimeError, KeyError) as exc:
        # pysimdjson raises these for some invalid JSON (integers beyond 64 bits, NUL in keys): still the client's
        raise ingest.SchemaError(f"could not be read ({type(exc).__name__}: {exc}); send valid JSON numbers and "
                                 "keys", source=name) from None
    if _already_stored(store, trace, device):
        return UploadResult(False, trip_summary(store, trace.trip_id), trace.n_samples)
    params = params or pipeline.database_params(store)
    det = detect(trace, params)
    raw = wire if wire is not None and wire.startswith(GZIP_MAGIC) else data   # store what came, compressed
    s = pipeline.ingest_trace(store, trace, params, device_id=device, detection=det, raw=raw, clock=clock)
    if s.skipped:                     # the same trip committed by a concurrent request meanwhile
        _already_stored(store, trace, device)
        return UploadResult(False, trip_summary(store, trace.trip_id), trace.n_samples)
    return UploadResult(True, trip_summary(store, trace.trip_id), trace.n_samples)


WARM_UP_RATES_HZ = (100.0, 99.9, 50.0, 200.0)   # the phones' usual rates (a "100 Hz" clock often runs a hair slow)


def warm_up(params: DetectorParams = DetectorParams(), rates_hz: Sequence[float] = WARM_UP_RATES_HZ) -> None:
    """Run the detector once on a short synthetic drive at each of ``rates_hz`` [Hz], so that a worker process
    fills its one-time caches (lazy imports, filter designs, the roughness calibration of each rate: ~0.3 s in all)
    before it serves, not during its first uploads."""
    duration_s, speed_mps = 40.0, 10.0
    rng = np.random.default_rng(0)
    t_gps = np.arange(0.0, duration_s, 1.0)
    north_m = speed_mps * t_gps
    for fs_hz in rates_hz:
        t = np.arange(0.0, duration_s, 1.0 / fs_hz)
        accel = rng.normal(0.0, 0.3, (t.size, 3)) + np.array([0.0, 0.0, 9.81])
        gyro = rng.normal(0.0, 0.02, (t.size, 3))
        trace = build_trace(
            source="warm-up", source_format="bump.trace/1", trip_id="warm-up", device_id="warm-up",
            accel_t_s=t, accel_xyz=accel, gyro_t_s=t, gyro_xyz=gyro, gps_t_s=t_gps,
            lat_deg=42.36 + north_m / 111_195.0, lon_deg=np.full(t_gps.size, -71.06),
            speed_mps=np.full(t_gps.size, speed_mps), heading_deg=np.zeros(t_gps.size),
            accuracy_m=np.full(t_gps.size, 5.0))
        detect(trace, params)


def _already_stored(store: Store, trace: ingest.Trace, device: str) -> bool:
    info = store.get_trip(trace.trip_id)
    if info is None:
        return False
    if info["device_id"] != device:
        raise ConflictError(f"trip_id {trace.trip_id!r} belongs to another device; give every trip a unique id "
                            "(a UUID)", field="trip_id")
    stored = ingest.read(store.trip_raw(trace.trip_id), name=f"stored trip {trace.trip_id}")
    if ingest.dumps(stored) != ingest.dumps(trace):
        raise ConflictError(f"trip {trace.trip_id!r} was already accepted with other content; a retry must send "
                            "the same trip, and a new trip needs a new trip_id", field="trip_id")
    return True


def trip_summary(store: Store, trip_id: str) -> dict[str, Any]:
    """What an upload produced, from what is stored (so a retry returns the same): samples, impacts, the defects
    the trip hit and how many it passed."""
    info = store.get_trip(trip_id)
    if info is None:
        raise NotFoundError(f"no trip {trip_id!r}", field="trip_id")
    hits = store.hits_of_trip(trip_id)
    trav = store.traversals_of_trip(trip_id)
    hit_ids = hits["defect_id"][hits["defect_id"] >= 0]
    return {"trip_id": trip_id, "samples": int(info["n_samples"]),
            "duration_s": round(float(info["t_end_s"]) - float(info["t_start_s"]), 3),
            "impacts": int(info["n_impacts"]), "located_impacts": len(hits),
            "defects_hit": sorted({int(i) for i in hit_ids.tolist()}),
            "defects_passed": int(np.unique(trav["defect_id"]).size),
            "detector": str(info["detector"].get("version", ""))}


def get_trip(store: Store, principal: Principal, trip_id: str, zones: PrivacyZones) -> dict[str, Any]:
    """A trip's summary and impacts for its own device or a crew; impact positions in the privacy zones are
    withheld (``lat``/``lon`` null, ``trimmed`` true)."""
    if principal.role == "public":
        raise AuthError("reading a trip needs its device's token or a crew token", field="Authorization")
    info = store.get_trip(trip_id)
    if info is None:
        raise NotFoundError(f"no trip {trip_id[:200]!r}; trips are named by the trip_id they were uploaded with",
                            field="trip_id")
    if not principal.is_crew and info["device_id"] != principal.device_id:
        raise ForbiddenError("this trip belongs to another device; a device reads only its own trips",
                             field="trip_id")
    hits = store.hits_of_trip(trip_id)
    priv = zones.private(store, hits["trip_id"], hits["lat_deg"], hits["lon_deg"])
    impacts = []
    for i in range(len(hits)):
        impacts.append({
            "t": views.iso_time(hits["t_s"][i]), "kind": str(hits["kind"][i]), "spot_kind": str(hits["spot_kind"][i]),
            "severity": views.round_or_none(hits["severity"][i], 2), "depth_class": str(hits["depth_class"][i]) or None,
            "confidence": views.round_or_none(hits["confidence"][i], 3),
            "speed_mps": views.round_or_none(hits["speed_mps"][i], 2),
            "heading_deg": views.round_or_none(hits["heading_deg"][i], 1),
            "defect_id": int(hits["defect_id"][i]) if hits["defect_id"][i] >= 0 else None,
            "lat": None if priv[i] else views.round_or_none(hits["lat_deg"][i], 6),
            "lon": None if priv[i] else views.round_or_none(hits["lon_deg"][i], 6), "trimmed": bool(priv[i])})
    return {**trip_summary(store, trip_id), "device_id": info["device_id"], "start": views.iso_time(info["t_start_s"]),
            "end": views.iso_time(info["t_end_s"]), "source_format": info["source_format"],
            "length_m": views.round_or_none(info["length_m"], 1), "quality": info["quality"], "impact_list": impacts}
