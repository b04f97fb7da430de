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

The package's modules: ``errors``, ``auth`` (tokens, roles), ``privacy``, ``trips`` (uploads, trip reads),
``defects`` (the list, detail, status), ``maps`` (road cells), ``open311``; callers import from ``bump.service``.
"""

from __future__ import annotations

from bump.service.auth import (
    PUBLIC,
    Principal,
    authenticate,
    create_token,
    new_token,
    register_device,
    require_device,
    revoke_token,
    token_digest,
)
from bump.service.defects import MAX_PAGE, DefectPage, change_status, defect_detail, list_defects, parse_bbox
from bump.service.errors import (
    AuthError,
    BadRequestError,
    BusyError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    UnsupportedMediaError,
)
from bump.service.maps import coverage_cells, points_geojson, roughness_cells
from bump.service.open311 import open311_request, open311_requests, open311_services, plus_from_space
from bump.service.privacy import PrivacyZones
from bump.service.trips import BodyLimits, UploadResult, check_body_size, decode_body, get_trip, upload_trace, warm_up

__all__ = [
    "MAX_PAGE",
    "PUBLIC",
    "AuthError",
    "BadRequestError",
    "BodyLimits",
    "BusyError",
    "ConflictError",
    "DefectPage",
    "ForbiddenError",
    "NotFoundError",
    "PayloadTooLargeError",
    "Principal",
    "PrivacyZones",
    "RateLimitedError",
    "UnsupportedMediaError",
    "UploadResult",
    "authenticate",
    "change_status",
    "check_body_size",
    "coverage_cells",
    "create_token",
    "decode_body",
    "defect_detail",
    "get_trip",
    "list_defects",
    "new_token",
    "open311_request",
    "open311_requests",
    "open311_services",
    "parse_bbox",
    "plus_from_space",
    "points_geojson",
    "register_device",
    "require_device",
    "revoke_token",
    "roughness_cells",
    "token_digest",
    "upload_trace",
    "warm_up",
]
