"""The service behind the HTTP API and ``bump token``: who may do what, uploads, the privacy trim, Open311.

Every function takes an open :class:`bump.store.Store` and, where access depends on it, the caller's
:class:`Principal`; permission checks live here, once, not in the routes. Errors are :class:`ingest.errors.BumpError`
subclasses; the HTTP layer maps each class to a status code in one handler::

    BumpError
    └── ServiceError
        ├── AuthError               no, malformed, unknown or revoked token                  (401)
        ├── ForbiddenError          the token's role may not do this                         (403)
        ├── NotFoundError           no such trip / defect / service request (LookupError)    (404)
        ├── ConflictError           the request contradicts what is stored                   (409)
        ├── PayloadTooLargeError    body or its decompressed content over the limit          (413)
        ├── UnsupportedMediaError   a Content-Type or Content-Encoding we do not read        (415)
        ├── BadRequestError         a body that cannot be decoded (gzip, zip, multipart)     (400)
        ├── BusyError               every database connection is busy; retry                 (503)
        └── RateLimitedError        too many requests; ``retry_after_s`` says when to retry  (429)

Roles: ``device`` (a phone: uploads trips, reads its own), ``crew`` (reads everything, changes defect status),
``admin`` (what a crew may, and more as the API grows). Anonymous callers are :data:`PUBLIC`.

Privacy (:class:`PrivacyZones`): no read returns a GPS position within ``trim_m`` (200 m) of the start or the end of
the trip it came from: such impacts and hits lose their position, a defect only ever hit inside such zones is
withheld until ``min_devices`` (3) distinct devices hit it, and those passes and roughness windows do not count in
the road-cell maps. Device ids only reach the
crews and the device itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
import re
import secrets
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

import ingest
from bump import cells as cellmap
from bump import pipeline, views
from bump.cluster import KINDS, LISTED_KINDS, MINOR_COVER_CLASSES
from bump.lifecycle import DEFAULT_LIST_STATUSES, STATUSES
from bump.store import DefectQuery, Store
from bump.traversals import Track
from detect import detect
from detect.columns import Columns
from detect.geo import haversine_m
from detect.params import DetectorParams
from ingest.errors import BumpError, FormatError, SizeError
from ingest.source import GZIP_MAGIC, ZIP_MAGIC, gunzip
from ingest.trace import Limits
from ingest.validate import build_trace

ROLES = ("device", "crew", "admin")
TOKEN_PREFIX_CHARS = 8
MAX_PAGE = 5000


# ------------------------------------------------------------------------------------------------------ errors


class ServiceError(BumpError):
    code = "service_error"


class AuthError(ServiceError):
    code = "unauthorized"


class ForbiddenError(ServiceError):
    code = "forbidden"


class NotFoundError(ServiceError, LookupError):
    code = "not_found"


class ConflictError(ServiceError):
    code = "conflict"


class PayloadTooLargeError(ServiceError):
    code = "too_large"


class UnsupportedMediaError(ServiceError):
    code = "unsupported_media_type"


class BadRequestError(ServiceError, ValueError):
    code = "bad_request"


class BusyError(ServiceError):
    code = "busy"


class RateLimitedError(ServiceError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s


# ------------------------------------------------------------------------------------------------ principals


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, the device of a device token, and the token's id and label."""

    role: str                          # "public", "device", "crew" or "admin"
    device_id: str | None = None
    token_id: int | None = None
    label: str | None = None

    @property
    def is_crew(self) -> bool:
        return self.role in ("crew", "admin")

    @property
    def actor(self) -> str:
        """The name recorded in a defect's history."""
        return self.label or f"{self.role}-token-{self.token_id}"


PUBLIC = Principal("public")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """32 random bytes, URL-safe base64, never starting with '-' (a command line would read it as an option)."""
    while (token := secrets.token_urlsafe(32)).startswith("-"):      # 1 in 64 tokens: drawn again
        pass
    return token


def create_token(store: Store, role: str, *, device_id: str | None = None, label: str | None = None,
                 clock: Callable[[], float] = time.time) -> tuple[str, int]:
    """A new random token (32 bytes, URL-safe) of ``role``; only its sha256 is stored. Returns (token, id)."""
    if role not in ROLES:
        raise BadRequestError(f"role must be one of {', '.join(ROLES)}, got {role!r}", field="role")
    if role == "device" and not device_id:
        raise BadRequestError("a device token needs a device id", field="device_id")
    token = new_token()
    token_id = store.add_token(prefix=token[:TOKEN_PREFIX_CHARS], token_sha256=token_digest(token), role=role,
                               device_id=device_id, label=label, created_at_s=clock())
    return token, token_id


def register_device(store: Store, *, allowed: bool = True, clock: Callable[[], float] = time.time
                    ) -> dict[str, str]:
    """A new phone: a fresh device id and its device token (shown once). ``allowed``: the server's policy."""
    if not allowed:
        raise ForbiddenError("this server does not register phones itself; ask its operator for a device token",
                             field="device_registration")
    device_id = f"dev-{secrets.token_hex(8)}"
    token, _ = create_token(store, "device", device_id=device_id, label=device_id, clock=clock)
    return {"device_id": device_id, "token": token}


def authenticate(store: Store, token: str) -> Principal:
    """The principal of a bearer token; :class:`AuthError` when it is unknown or revoked. The stored hashes are
    compared with :func:`hmac.compare_digest` (constant time), all candidates of the prefix every time."""
    how = ("register a phone with POST /v1/devices, or ask an admin for a crew token (bump token create)")
    if not (20 <= len(token) <= 200) or not token.isascii():
        raise AuthError(f"the bearer token is malformed; {how}", field="Authorization")
    digest = token_digest(token)
    found = None
    for row in store.tokens_with_prefix(token[:TOKEN_PREFIX_CHARS]):
        if hmac.compare_digest(row["token_sha256"], digest):
            found = row
    if found is None:
        raise AuthError(f"unknown token; {how}", field="Authorization")
    if found["revoked_at_s"] is not None:
        raise AuthError(f"this token was revoked; {how}", field="Authorization")
    return Principal(found["role"], found["device_id"], int(found["token_id"]), found["label"])


def revoke_token(store: Store, token_or_prefix: str, *, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Revoke one token named by itself or by a prefix of it (at least 6 characters, matching one live token)."""
    text = token_or_prefix.strip()
    if len(text) < 6:
        raise BadRequestError("give the token or at least its first 6 characters", field="token")
    if len(text) >= 20:                          # a whole token: its hash decides
        digest = token_digest(text)
        match = [r for r in store.tokens_with_prefix(text[:TOKEN_PREFIX_CHARS])
                 if r["revoked_at_s"] is None and hmac.compare_digest(r["token_sha256"], digest)]
    else:                                        # a prefix: only the first TOKEN_PREFIX_CHARS are stored
        head = text[:TOKEN_PREFIX_CHARS]
        match = [r for r in store.list_tokens() if r["revoked_at_s"] is None and r["prefix"].startswith(head)]
    if not match:
        raise NotFoundError(f"no live token starts with {text[:TOKEN_PREFIX_CHARS]!r}; list them with "
                            "`bump token list`", field="token")
    if len(match) > 1:
        raise ConflictError(f"{len(match)} live tokens start with {text!r}; give more characters", field="token")
    store.revoke_tokens([match[0]["token_id"]], clock())
    return {k: match[0][k] for k in ("token_id", "prefix", "role", "device_id", "label")}


def require_device(principal: Principal) -> str:
    """The device id of a device token, else 401/403."""
    if principal.role == "public":
        raise AuthError("uploading needs a device token: register with POST /v1/devices and send "
                        "'Authorization: Bearer TOKEN'", field="Authorization")
    if principal.role != "device" or not principal.device_id:
        raise ForbiddenError(f"a {principal.role} token cannot upload trips; phones upload with their device token "
                             "(POST /v1/devices)", field="Authorization")
    return principal.device_id


def require_crew(principal: Principal, action: str) -> None:
    if principal.role == "public":
        raise AuthError(f"{action} needs a crew token ('Authorization: Bearer TOKEN'; bump token create --role crew)",
                        field="Authorization")
    if not principal.is_crew:
        raise ForbiddenError(f"{action} needs a crew or admin token, not a {principal.role} token",
                             field="Authorization")


def require_read(principal: Principal, public_read: bool) -> None:
    """Defect and map reads: anyone when public read is on, else any token."""
    if principal.role == "public" and not public_read:
        raise AuthError("this server does not publish defects; send a token ('Authorization: Bearer TOKEN')",
                        field="Authorization")


# ----------------------------------------------------------------------------------------------------- privacy


class PrivacyZones:
    """Circles of ``trim_m`` around the first and last GPS fix of every trip, and the tests against them.

    A defect whose every hit lies in its trip's zone is withheld while fewer than ``min_devices`` distinct
    devices hit it: its position would reveal where one or two drivers start or end (a home). Hit by that many, it
    is a spot on a public road that several drivers pass at their trips' ends (a pothole outside a car park or at a
    school gate), and it is shown, its hits' positions still trimmed.

    A trip's end points come from its stored track (the fixes, unmodified in position) and are cached: a trip is
    immutable once stored. Thread-safe (one instance serves every request of a process)."""

    def __init__(self, trim_m: float = 200.0, *, min_devices: int = 3, max_cached: int = 200_000) -> None:
        self.trim_m = float(trim_m)
        self.min_devices = int(min_devices)
        self._ends: dict[str, tuple[float, float, float, float]] = {}
        self._lock = threading.Lock()
        self._max = max_cached

    def ends(self, store: Store, trip_ids: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
        """trip id -> (start lat, start lon, end lat, end lon) [deg]; NaN for a trip without GPS."""
        want = {str(t) for t in trip_ids}
        with self._lock:
            out = {t: self._ends[t] for t in want if t in self._ends}
        missing = sorted(want - set(out))
        if missing:
            found = {}
            for tid, (_dev, blob) in store.trip_tracks(missing).items():
                tr = Track.from_bytes(blob)
                ok = np.flatnonzero(np.isfinite(tr.lat_deg) & np.isfinite(tr.lon_deg))
                found[tid] = ((float(tr.lat_deg[ok[0]]), float(tr.lon_deg[ok[0]]), float(tr.lat_deg[ok[-1]]),
                               float(tr.lon_deg[ok[-1]])) if ok.size else (np.nan,) * 4)
            with self._lock:
                if len(self._ends) + len(found) > self._max:
                    self._ends.clear()
                self._ends.update(found)
            out.update(found)
        return out

    def private(self, store: Store, trip_ids: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
                margin_m: float = 0.0) -> np.ndarray:
        """True where a position of a trip lies within ``trim_m + margin_m`` of that trip's start or end."""
        trip_ids = np.asarray(trip_ids).astype(str)
        n = trip_ids.size
        if n == 0 or self.trim_m <= 0:
            return np.zeros(n, dtype=bool)
        uniq, inv = np.unique(trip_ids, return_inverse=True)
        ends = self.ends(store, uniq.tolist())
        e = np.array([ends.get(t, (np.nan,) * 4) for t in uniq.tolist()], dtype=np.float64)[inv.ravel()]
        lat, lon = np.asarray(lat_deg, dtype=np.float64), np.asarray(lon_deg, dtype=np.float64)
        d0 = haversine_m(lat, lon, e[:, 0], e[:, 1])
        d1 = haversine_m(lat, lon, e[:, 2], e[:, 3])
        limit = self.trim_m + margin_m
        return (np.nan_to_num(d0, nan=np.inf) <= limit) | (np.nan_to_num(d1, nan=np.inf) <= limit)

    def hidden_defects(self, store: Store, defect_ids: Sequence[int]) -> set[int]:
        """Defects whose every hit lies in its trip's privacy zone and that fewer than ``min_devices`` distinct
        devices hit (their position would reveal where those drivers start or end)."""
        if not len(defect_ids) or self.trim_m <= 0:
            return set()
        hits = store.hits_of_defects([int(d) for d in defect_ids], ("hit_id", "defect_id", "trip_id", "device_id",
                                                                      "lat_deg", "lon_deg"))
        if len(hits) == 0:
            return set()
        priv = self.private(store, hits["trip_id"], hits["lat_deg"], hits["lon_deg"])
        placed = set(np.unique(hits["defect_id"][~priv]).tolist())
        pairs = np.unique(np.stack([hits["defect_id"].astype(str), _one_unknown_device(hits["device_id"])]), axis=1)
        ids, n_devices = np.unique(pairs[0].astype(np.int64), return_counts=True)
        shared = set(ids[n_devices >= self.min_devices].tolist())
        return set(np.unique(hits["defect_id"]).tolist()) - placed - shared


def _one_unknown_device(device_ids: np.ndarray) -> np.ndarray:
    """Device ids with the per-recording ids that the Sensor Logger and SensorLog readers once gave recordings
    without a device id (``sensorlogger-anon-<hash>``, still in older databases) read as the one unknown device
    they give now (``sensorlogger-unknown``): one phone's trips are not several devices."""
    ids = np.asarray(device_ids).astype(str)
    head, sep, _ = np.char.partition(ids, "-anon-").T
    return np.where(sep != "", np.char.add(head, "-unknown"), ids)


# ----------------------------------------------------------------------------------------------------- uploads


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
            "t": _iso(hits["t_s"][i]), "kind": str(hits["kind"][i]), "spot_kind": str(hits["spot_kind"][i]),
            "severity": _num(hits["severity"][i], 2), "depth_class": str(hits["depth_class"][i]) or None,
            "confidence": _num(hits["confidence"][i], 3),
            "speed_mps": _num(hits["speed_mps"][i], 2), "heading_deg": _num(hits["heading_deg"][i], 1),
            "defect_id": int(hits["defect_id"][i]) if hits["defect_id"][i] >= 0 else None,
            "lat": None if priv[i] else _num(hits["lat_deg"][i], 6),
            "lon": None if priv[i] else _num(hits["lon_deg"][i], 6), "trimmed": bool(priv[i])})
    return {**trip_summary(store, trip_id), "device_id": info["device_id"], "start": _iso(info["t_start_s"]),
            "end": _iso(info["t_end_s"]), "source_format": info["source_format"],
            "length_m": _num(info["length_m"], 1), "quality": info["quality"], "impact_list": impacts}


# ----------------------------------------------------------------------------------------------------- defects


_iso = views.iso_time
_num = views.round_or_none


def _choices(value: str | None, allowed: Sequence[str], default: Sequence[str], what: str
             ) -> tuple[str, ...] | None:
    return views.parse_choices(value, allowed, default, what, error=BadRequestError)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``W,S,E,N`` in degrees (W > E crosses the antimeridian)."""
    if text is None or not text.strip():
        return None
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise BadRequestError(f"bbox must be four numbers W,S,E,N in degrees, got {text!r}", field="bbox") from None
    views.check_bbox((w, s, e, n), error=BadRequestError, text=repr(text))
    return w, s, e, n


@dataclass(frozen=True)
class DefectPage:
    defects: list[dict[str, Any]]
    next_cursor: str | None


def list_defects(store: Store, principal: Principal, zones: PrivacyZones, *, public_read: bool,
                 status: str | None = None, kind: str | None = None, bbox: str | None = None,
                 min_confidence: float | None = None, since_s: float | None = None, limit: int = 100,
                 cursor: str | None = None) -> DefectPage:
    """Defects ranked by priority (keyset pages: pass ``next_cursor`` back as ``cursor``). By default the open
    statuses and the spot defects (see :func:`bump.views.list_defects`); ``status``/``kind`` take
    comma-separated values or ``all``. Defects withheld for privacy are skipped, so a page may be short."""
    require_read(principal, public_read)
    if not 1 <= int(limit) <= MAX_PAGE:
        raise BadRequestError(f"limit must be between 1 and {MAX_PAGE}, got {limit}", field="limit")
    query = DefectQuery(_choices(status, STATUSES, DEFAULT_LIST_STATUSES, "status"),
                        _choices(kind, KINDS, LISTED_KINDS, "kind"), parse_bbox(bbox), int(limit), cursor,
                        min_confidence=min_confidence, since_s=since_s,
                        hidden_cover_classes=views.hidden_covers(kind))
    out: list[dict[str, Any]] = []
    nxt: str | None = cursor
    for _ in range(8):                          # refill a page thinned by the privacy filter, a bounded number of times
        cols, nxt = store.list_defects(dataclasses.replace(query, limit=int(limit) - len(out), cursor=nxt))
        hidden = zones.hidden_defects(store, cols["defect_id"].tolist())
        out += [views.defect_record(_row(cols, i)) for i in range(len(cols))
                if int(cols["defect_id"][i]) not in hidden]
        if nxt is None or len(out) >= int(limit):
            break
    return DefectPage(out, nxt)


def _row(cols: Columns, i: int) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in ((k, cols[k][i]) for k in cols)}


def scrub(text: str, names: set[str]) -> str:
    """``text`` with every trip and device id of ``names`` replaced by an ellipsis (history reasons name them)."""
    for name in sorted(names, key=len, reverse=True):
        if name:
            text = text.replace(name, "…")
    return text


def _visible_defect(store: Store, zones: PrivacyZones, defect_id: int) -> None:
    if defect_id in zones.hidden_defects(store, [defect_id]):
        raise NotFoundError(f"no defect with id {defect_id}", field="id")


def defect_detail(store: Store, principal: Principal, zones: PrivacyZones, defect_id: int, *,
                  public_read: bool) -> dict[str, Any]:
    """One defect with its history and passes; crews also get its hits (positions trimmed by privacy) and the
    trips and devices of its passes, others only when and whether each pass hit."""
    require_read(principal, public_read)
    rec = views.get_defect(store, defect_id)
    _visible_defect(store, zones, defect_id)
    if not principal.is_crew:
        names = {p["trip_id"] for p in rec["passes"]} | {p["device_id"] for p in rec["passes"]}
        rec["history"] = [{**h, "reason": scrub(h["reason"], names)} for h in rec["history"]]
        rec["passes"] = [{"at": p["at"], "hit": p["hit"]} for p in rec["passes"]]
        rec["hits_list"] = None
        return rec
    hits = store.hits_of_defects([defect_id])
    priv = zones.private(store, hits["trip_id"], hits["lat_deg"], hits["lon_deg"])
    rec["hits_list"] = [{"t": _iso(hits["t_s"][i]), "trip_id": str(hits["trip_id"][i]),
                    "device_id": str(hits["device_id"][i]), "kind": str(hits["kind"][i]),
                    "spot_kind": str(hits["spot_kind"][i]), "severity": _num(hits["severity"][i], 2),
                    "confidence": _num(hits["confidence"][i], 3),
                    "speed_mps": _num(hits["speed_mps"][i], 2),
                    "lat": None if priv[i] else _num(hits["lat_deg"][i], 6),
                    "lon": None if priv[i] else _num(hits["lon_deg"][i], 6), "trimmed": bool(priv[i])}
                   for i in range(len(hits))]
    return rec


def change_status(store: Store, principal: Principal, zones: PrivacyZones, defect_id: int, status: str, note: str,
                  *, at_s: float | None = None, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """A crew's decision on a defect (repaired, dismissed or reopen) with a note, recorded in its history."""
    require_crew(principal, "changing a defect's status")
    store.get_defect(defect_id)
    _visible_defect(store, zones, defect_id)
    views.set_status(store, defect_id, status, reason=note, actor=principal.actor, at_s=at_s, clock=clock)
    return defect_detail(store, principal, zones, defect_id, public_read=True)


# -------------------------------------------------------------------------------------------------------- maps


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
    return [{"cell_key": str(k), "lat": _num(la, 6), "lon": _num(lo, 6), "heading_deg": _num(h, 1),
             "passes": int(n), "devices": int(d), "first": _iso(f), "last": _iso(la_s)}
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


# ----------------------------------------------------------------------------------------------------- Open311

OPEN311_SERVICES = {
    "pothole": ("Pothole", "A hole in the road surface found by drivers' phones (one-wheel impacts)."),
    "cover": ("Sunken utility cover", "A manhole cover or grate sunk below the road surface."),
    "unknown": ("Road surface defect", "A road defect found by drivers' phones whose kind is not yet clear."),
}
OPEN311_STATUS = {"confirmed": "open", "likely_repaired": "open", "repaired": "closed", "dismissed": "closed"}
_OPEN311_MAX = 1000


def open311_services() -> list[dict[str, Any]]:
    """GeoReport v2 service list: one service per defect kind published."""
    return [{"service_code": code, "service_name": name, "description": desc, "metadata": False,
             "type": "realtime", "keywords": "road, pavement", "group": "streets"}
            for code, (name, desc) in OPEN311_SERVICES.items()]


def _w3c(t_s: Any) -> str | None:
    if t_s is None or not np.isfinite(t_s):
        return None
    return datetime.fromtimestamp(float(t_s), tz=UTC).isoformat(timespec="seconds")


_SPACE_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}(?::?\d{2})?)")


def plus_from_space(value: Any) -> Any:
    """A query datetime whose UTC offset's '+' was sent unencoded (and so arrived as a space, form encoding):
    ``2026-05-01T00:00:00 02:00`` is read as ``...+02:00``. Anything else goes on unchanged."""
    if isinstance(value, str):
        text = value.strip()
        m = _SPACE_OFFSET.search(text)
        if m is not None and m.end() == len(text):
            return f"{text[:m.start(2) - 1]}+{m.group(2)}"
    return value


def parse_datetime_s(text: str | None, field: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 / W3C datetime (UTC when it has no offset; an unencoded '+' of the
    offset is read as :func:`plus_from_space` reads it)."""
    if text is None or not text.strip():
        return None
    try:
        dt = datetime.fromisoformat(plus_from_space(text.strip()))
    except ValueError:
        raise BadRequestError(f"{field} must be a W3C datetime such as 2026-05-04T10:00:00Z, got {text!r}",
                              field=field) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _open311_request(store: Store, row: dict[str, Any]) -> dict[str, Any] | None:
    status = str(row["status"])
    history = store.history(int(row["defect_id"]))
    if status in ("repaired", "dismissed") and not any(h["to_status"] == "confirmed" for h in history):
        return None                              # never was a service request
    kind = str(row["kind"])
    name = OPEN311_SERVICES[kind][0]
    depth = f", {row['depth_class']} depth" if row.get("depth_class") else ""
    return {
        "service_request_id": str(int(row["defect_id"])), "status": OPEN311_STATUS[status],
        "status_notes": _public_reason(store, int(row["defect_id"]), _latest_note(history)) if history else None,
        "service_name": name, "service_code": kind,
        "description": f"{name}{depth}: hit {int(row['n_hits'])} times by {int(row['n_devices'])} devices on "
                       f"{int(row['n_traversals'])} recorded passes (bump status: {status}).",
        "agency_responsible": None, "service_notice": None,
        "requested_datetime": _w3c(row["first_seen_s"]),
        "updated_datetime": _w3c(max(float(row["last_seen_s"]), float(row["status_since_s"]))),
        "expected_datetime": None, "address": None, "address_id": None, "zipcode": None,
        "lat": _num(row["lat_deg"], 6), "long": _num(row["lon_deg"], 6), "media_url": None,
    }


def _latest_note(history: list[dict[str, Any]]) -> str:
    """The reason of the latest change (``history`` in time order); at one time a crew's note before the system's
    consequence of it (a reopen, and the status the data gives from then on)."""
    t_last = history[-1]["t_s"]
    crew = [h for h in history if h["t_s"] == t_last and h["actor"] != "system"]
    return str((crew or history)[-1]["reason"])


def _public_reason(store: Store, defect_id: int, reason: str) -> str:
    trav = store.traversals_of_defects([defect_id])
    return scrub(reason, set(trav["trip_id"].tolist()) | set(trav["device_id"].tolist()))


def open311_requests(store: Store, principal: Principal, zones: PrivacyZones, *, public_read: bool,
                     service_request_id: str | None = None, service_code: str | None = None,
                     start_date: str | None = None, end_date: str | None = None, status: str | None = None
                     ) -> list[dict[str, Any]]:
    """Confirmed defects as GeoReport v2 service requests (open: confirmed or likely repaired; closed: repaired or
    dismissed after confirmation). Filters as GeoReport v2: ``service_request_id`` (comma list; overrides the
    others), ``service_code``, ``start_date``/``end_date`` (on requested_datetime), ``status`` (open, closed).
    At most 1000, by priority."""
    require_read(principal, public_read)
    if service_request_id:
        try:
            ids = [i for i in (int(v) for v in service_request_id.split(",") if v.strip()) if 0 < i < 2**62]
        except ValueError:
            raise BadRequestError("service_request_id must be comma-separated defect ids",
                                  field="service_request_id") from None
        cols = store.defects_by_id(ids)
        hidden = zones.hidden_defects(store, cols["defect_id"].tolist())
        rows = [_row(cols, i) for i in range(len(cols)) if int(cols["defect_id"][i]) not in hidden
                and str(cols["status"][i]) in OPEN311_STATUS and str(cols["kind"][i]) in OPEN311_SERVICES]
        return [r for r in (_open311_request(store, row) for row in rows) if r is not None]
    # "all" means every kind a service request can have (speed bumps and joints have no Open311 service)
    codes = _choices(service_code, tuple(OPEN311_SERVICES), tuple(OPEN311_SERVICES), "service_code") \
        or tuple(OPEN311_SERVICES)
    wanted = _choices(status, ("open", "closed"), ("open", "closed"), "status") or ("open", "closed")
    statuses = tuple(s for s, o in OPEN311_STATUS.items() if o in wanted)
    t0, t1 = parse_datetime_s(start_date, "start_date"), parse_datetime_s(end_date, "end_date")
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(out) < _OPEN311_MAX:
        cols, cursor = store.list_defects(DefectQuery(statuses, codes, None, 1000, cursor,
                                                      hidden_cover_classes=MINOR_COVER_CLASSES))
        hidden = zones.hidden_defects(store, cols["defect_id"].tolist())
        for i in range(len(cols)):
            t = float(cols["first_seen_s"][i])
            if int(cols["defect_id"][i]) in hidden or (t0 is not None and t < t0) or (t1 is not None and t > t1):
                continue
            req = _open311_request(store, _row(cols, i))
            if req is not None and len(out) < _OPEN311_MAX:
                out.append(req)
        if cursor is None:
            break
    return out


def open311_request(store: Store, principal: Principal, zones: PrivacyZones, request_id: str, *,
                    public_read: bool) -> list[dict[str, Any]]:
    """One service request (GeoReport v2 answers a list of one)."""
    found = open311_requests(store, principal, zones, public_read=public_read,
                             service_request_id=request_id) if request_id.isdigit() else []
    if not found:
        raise NotFoundError(f"no service request {request_id[:200]!r}; only confirmed defects are service requests",
                            field="service_request_id")
    return found
