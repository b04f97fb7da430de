"""``POST /v1/traces``: a phone uploads one trip with its device token.

Bodies: ``bump.trace/1`` JSON (``application/json``, ``Content-Encoding: gzip`` accepted), a gzip file
(``application/gzip``), a Sensor Logger zip (``application/zip``), or any of them as the ``file`` field of
``multipart/form-data``; text in UTF-8 (another declared charset is a 415). 201 with the trip's summary when
stored, 200 with the same summary when that trip_id was already accepted from this device (an idempotent retry).
The device recorded is the token's.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from api.deps import LimiterDep, MetricsDep, ParamsDep, PoolDep, PrincipalDep, SettingsDep
from api.routes.common import errors
from api.schemas import UploadSummary
from api.settings import Settings
from bump import service

router = APIRouter(prefix="/v1/traces", tags=["traces"])

_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "description": "a bump.trace/1 document "
                                    "(docs/trace-format.md)"}},
    "application/gzip": {"schema": {"type": "string", "format": "binary"}},
    "application/zip": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
}}}


_UTF8 = ("utf-8", "utf8", "us-ascii", "ascii")
_MULTIPART_HOW = ("send the trip as the form field 'file' (curl -F file=@trip.json.gz), or as the body itself with "
                  "its own Content-Type (curl --data-binary @trip.json.gz -H 'Content-Type: application/gzip')")


def _media_params(content_type: str) -> Message:
    """A Content-Type header parsed for its parameters (``get_param("boundary")``, ``get_content_charset()``)."""
    m = Message()
    m["content-type"] = content_type
    return m


def _check_charset(content_type: str | None, field: str) -> None:
    """415 for a body declared in a charset other than UTF-8 (or its subset US-ASCII): JSON exchanged between
    systems is UTF-8 (RFC 8259 §8.1), and so are the CSV files of the phone apps' exports."""
    charset = _media_params(content_type).get_content_charset() if content_type else None
    if charset is not None and charset not in _UTF8:
        raise service.UnsupportedMediaError(f"charset {charset[:40]!r} is not accepted: JSON must be UTF-8 "
                                            "(RFC 8259); send the document encoded as UTF-8 (charset=utf-8, or "
                                            "no charset)", field=field)


def _check_multipart_complete(content_type: str, body: bytes) -> None:
    """400 for a multipart body without its closing delimiter ``--BOUNDARY--`` (RFC 2046 §5.1.1): cut short, or
    not multipart at all; its parts would otherwise be silently incomplete."""
    boundary = _media_params(content_type).get_param("boundary")
    if isinstance(boundary, str) and boundary and b"--" + boundary.encode("latin-1", "replace") + b"--" not in body:
        raise service.BadRequestError(f"the multipart body is incomplete or malformed: it has no closing boundary "
                                      f"'--{boundary[:70]}--' (was the upload cut short?); {_MULTIPART_HOW}",
                                      field="body")


def _limits(settings: Settings) -> service.BodyLimits:
    return service.BodyLimits(settings.max_body_bytes, settings.max_decompressed_bytes)


async def _read_body(request: Request, limits: service.BodyLimits) -> bytes:
    """The body, refused (413) as soon as it passes the limit, before it is all read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        service.check_body_size(int(declared), limits)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        service.check_body_size(total, limits)
        chunks.append(chunk)
    return b"".join(chunks)


async def _upload(request: Request, limits: service.BodyLimits) -> tuple[bytes, str | None, str | None, str]:
    """(bytes, content type, content encoding, name) of the trip in the body; a multipart body's field ``file``
    (its content sniffed unless it says JSON)."""
    body = await _read_body(request, limits)
    ctype, encoding = request.headers.get("content-type", ""), request.headers.get("content-encoding")
    _check_charset(ctype, "Content-Type")
    if not ctype.lower().startswith("multipart/form-data"):
        return body, ctype, encoding, "upload"
    _check_multipart_complete(ctype, body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, receive).form(max_files=1, max_fields=16) as form:
            part = form.get("file")
            if not isinstance(part, UploadFile):
                raise service.BadRequestError("the multipart body has no file field 'file'; send the trip as "
                                              "-F file=@trip.json.gz", field="file")
            _check_charset(part.content_type, "file")
            json_part = (part.content_type or "").split(";")[0].strip() == "application/json"
            return await part.read(), "application/json" if json_part else None, None, part.filename or "upload"
    except HTTPException as exc:                          # Starlette's parser: no boundary, bad part headers...
        raise service.BadRequestError(f"the multipart body cannot be read ({exc.detail}); {_MULTIPART_HOW}",
                                      field="body") from None


@router.post("", status_code=201, response_model=UploadSummary, openapi_extra=_BODY,
             responses={200: {"model": UploadSummary, "description": "already accepted (idempotent retry)"},
                        **errors(400, 401, 403, 409, 413, 415, 422, 429)})
async def upload_trace(request: Request, response: Response, pool: PoolDep, principal: PrincipalDep,
                       settings: SettingsDep, limiter: LimiterDep, metrics: MetricsDep, params: ParamsDep
                       ) -> dict[str, Any]:
    """Upload one trip (device token). The answer comes after the trip is committed to disk."""
    device = service.require_device(principal)
    limiter.check(f"upload:{device}", settings.upload_rate_per_minute, settings.upload_burst,
                  "uploads from this device")
    limits = _limits(settings)
    body, ctype, encoding, name = await _upload(request, limits)

    queued = False

    def work() -> service.UploadResult:
        nonlocal queued
        slots = request.app.state.upload_slots               # settings.uploads_at_once per process
        if not slots.acquire(blocking=False):
            queued = True
            slots.acquire()
        try:
            data, fmt = service.decode_body(body, content_type=ctype, content_encoding=encoding, limits=limits)
            with pool.borrow() as store:
                return service.upload_trace(store, principal, data, fmt=fmt, params=params, name=name, wire=body)
        finally:
            slots.release()

    result = await run_in_threadpool(work)
    if queued:
        # this worker was busy: the client's next upload comes on a new connection, which a worker idle in accept()
        # is the likelier to take; kept alive, every connection would stay on the worker that first accepted it
        response.headers["Connection"] = "close"
    response.status_code = 201 if result.created else 200
    metrics.upload(created=result.created, n_bytes=len(body), n_samples=result.n_samples)
    return result.summary
