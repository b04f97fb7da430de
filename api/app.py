"""The app factory: ``create_app(settings)`` wires the routers, the static files of the map page, the metrics
middleware, HEAD wherever GET is served (:class:`HeadMiddleware`) and the one exception handler that turns every
error into ``{"error": {"code", "message", "field"}}`` (Open311 paths: GeoReport v2's ``[{"code",
"description"}]``) with its status code.

Status codes by error class (first match wins; the core's errors never carry HTTP details)::

    AuthError 401 · ForbiddenError 403 · NotFoundError, UnknownDefectError 404 · ConflictError 409 ·
    PayloadTooLargeError, ingest SizeError 413 · UnsupportedMediaError, ingest FormatError 415 ·
    RateLimitedError 429 · BusyError 503 · BadRequestError, StoreError 400 ·
    ingest TraceError (schema, validation), InvalidStatusError 422 · any other BumpError 400
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

import api
from api.deps import params_of
from api.metrics import Metrics, MetricsMiddleware, Receive, Scope, Send
from api.ratelimit import RateLimiter
from api.routes import cells, defects, devices, health, open311, traces, trips
from api.routes import map as map_routes
from api.schemas import ErrorBody
from api.settings import Settings
from bump import service
from bump.lifecycle import InvalidStatusError, StatusConflictError
from bump.runtime import set_up_process
from bump.store import StoreError, UnknownDefectError
from detect.params import DetectorParams
from ingest.errors import BumpError, FormatError, SizeError, TraceError

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[BaseException], int], ...] = (
    (service.AuthError, 401),
    (service.ForbiddenError, 403),
    (service.NotFoundError, 404),
    (UnknownDefectError, 404),
    (service.ConflictError, 409),
    (StatusConflictError, 409),
    (service.PayloadTooLargeError, 413),
    (SizeError, 413),
    (service.UnsupportedMediaError, 415),
    (FormatError, 415),
    (service.RateLimitedError, 429),
    (service.BusyError, 503),
    (service.BadRequestError, 400),
    (StoreError, 400),
    (TraceError, 422),
    (InvalidStatusError, 422),
    (BumpError, 400),
)
STATIC_DIR = Path(api.__file__).resolve().parent / "static"
MAX_ECHO_CHARS = 200            # of a request's path or value quoted back in an error message
TAGS = [
    {"name": "devices", "description": "Phones register and get their device token."},
    {"name": "traces", "description": "Phones upload trips (bump.trace/1 JSON, gzip, or a Sensor Logger zip)."},
    {"name": "trips", "description": "A stored trip's summary and impacts (its device or a crew)."},
    {"name": "defects", "description": "Ranked defects (JSON, GeoJSON, CSV) and crews' status changes."},
    {"name": "maps", "description": "Road-cell roughness and coverage maps (GeoJSON)."},
    {"name": "open311", "description": "Confirmed defects as Open311 GeoReport v2 service requests."},
    {"name": "service", "description": "Health, metrics and the map page's configuration."},
]


def status_of(exc: BaseException) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def _error_response(request: Request, status: int, code: str, message: str, field: str | None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    request.app.state.metrics.errors.inc(code=code)
    if request.url.path.startswith("/open311/"):
        return JSONResponse([{"code": status, "description": message}], status_code=status, headers=headers)
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status,
                        headers=headers)


async def _bump_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BumpError)
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, service.RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    elif isinstance(exc, service.BusyError):
        headers["Retry-After"] = "1"
    elif status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return _error_response(request, status, exc.code, str(exc), exc.field, headers)


def echo(text: str, max_chars: int = MAX_ECHO_CHARS) -> str:
    """``text`` as quoted back in an error message: its first ``max_chars`` characters, then "..."."""
    return text if len(text) <= max_chars else text[:max_chars] + "..."


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    loc = [str(p) for p in first.get("loc", ())]
    if first.get("type") == "json_invalid":       # loc ("body", character position): the body is not JSON
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        message = (f"the body is not valid JSON ({reason}{at}); send a JSON object as application/json, see /docs "
                   "for the expected form")
        return _error_response(request, 422, "invalid_request", message, "body")
    field = ".".join(loc[1:] if loc and loc[0] in ("query", "path", "body", "header") else loc) or None
    if loc == ["body"]:
        field, where = "body", "the body"
    else:
        where = f"{loc[0]} parameter {field!r}" if loc and field else "the request"
    message = f"{where}: {first.get('msg', 'is invalid')}{more}; see /docs for the expected form"
    return _error_response(request, 422, "invalid_request", message, field)


def _serves(request: Request, path: str) -> bool:
    """Whether a GET of ``path`` reaches a route of the app."""
    scope = {**request.scope, "path": path, "method": "GET"}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


def _not_found(request: Request) -> str:
    """The message of a 404 for a path no route serves (quoted at most :data:`MAX_ECHO_CHARS` long)."""
    path = request.url.path
    if path.startswith("/open311/") and path.endswith(".xml"):     # GeoReport v2 clients often ask for XML
        twin = path[:-len(".xml")] + ".json"
        if _serves(request, twin):
            return f"only the JSON format of Open311 GeoReport v2 is served; ask for {echo(twin)}"
        return "only the JSON format of Open311 GeoReport v2 is served (paths ending in .json); see /docs"
    return f"no endpoint {echo(path)}; see /docs for the API"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    message = str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and message == "Not Found":
        message = _not_found(request)
    elif exc.status_code == 405:
        allow = [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
        if "GET" in allow and "HEAD" not in allow:          # HeadMiddleware answers HEAD wherever GET is served
            headers["Allow"] = ", ".join([*allow, "HEAD"])
        message = f"{request.method} is not allowed on {echo(request.url.path)}; see /docs"
    return _error_response(request, exc.status_code, codes.get(exc.status_code, "http_error"), message, None,
                           headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return _error_response(request, 503, "busy", "the database is busy; retry shortly", None,
                               {"Retry-After": "1"})
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error_response(request, 500, "internal", "internal error; it has been logged", None)


class HeadMiddleware:
    """HEAD wherever GET is served (RFC 9110 §9.3.2). The request runs once, as a GET; its answer goes out with
    the GET's status and headers (Content-Type, Content-Length of the GET body) and without the body, which is
    drained from the app, never sent. Pure ASGI, like :class:`api.metrics.MetricsMiddleware`, which sees the
    method as HEAD and the route the GET matched."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        inner = {**scope, "method": "GET"}   # a copy: the server reads the method of its own scope (HEAD: no body)
        done = False

        async def send_without_body(message: MutableMapping[str, Any]) -> None:
            nonlocal done
            kind = message["type"]
            if kind == "http.response.start":
                await send(message)
            elif kind in ("http.response.body", "http.response.zerocopysend", "http.response.pathsend"):
                if not message.get("more_body", False) and not done:
                    done = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send(message)

        try:
            await self.app(inner, receive, send_without_body)
        finally:
            if "route" in inner:
                scope["route"] = inner["route"]       # for the metrics, by route


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.settings.warm_up:
        # before serving, so that the first uploads are not slower (the database's own parameters, if a reprocess
        # set others, differ at most in thresholds: the filter designs and calibrations are the same)
        service.warm_up(params_of(app.state.settings) or DetectorParams())
    yield
    with app.state.lock:
        pools = list(app.state.pools.values())
        app.state.pools.clear()
    for pool in pools:
        pool.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The bump HTTP service. Settings come from the argument, else from the environment (``BUMP_*``)."""
    settings = settings if settings is not None else Settings()
    set_up_process()                          # each worker process: see bump.runtime
    app = FastAPI(title="bump", version="0.1.0", lifespan=_lifespan, openapi_tags=TAGS,
                  description="Road defects found by drivers' phones: upload trips, read ranked defects, maps and "
                              "Open311 service requests. Errors: `{\"error\": {\"code\", \"message\", \"field\"}}`.",
                  responses={401: {"model": ErrorBody, "description": "no, malformed, unknown or revoked token"}})
    app.state.settings = settings
    app.state.pools = {}
    app.state.zones = {}
    app.state.lock = threading.Lock()
    app.state.limiter = RateLimiter()
    app.state.upload_slots = threading.BoundedSemaphore(settings.uploads_at_once)
    app.state.metrics = Metrics()
    app.add_exception_handler(BumpError, _bump_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    for module in (devices, traces, trips, defects, cells, open311, health, map_routes):
        app.include_router(module.router)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(HeadMiddleware)                          # inside the metrics: they count HEAD as HEAD
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
