"""FastAPI dependencies (``Annotated`` aliases): settings, a SQLite store per request from a small pool, the
authenticated principal, the privacy zones, the rate limiter, the metrics and the detector parameters.

FastAPI runs a plain ``def`` dependency in a worker thread: a hop of ~0.2 ms of CPU each. The dependencies that
never block are ``async def`` (six hops were ~1 ms per request); those that query or wait for the database
(the principal, a borrowed store) stay ``def``."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.metrics import Metrics
from api.ratelimit import RateLimiter
from api.settings import Settings, get_settings
from bump import service
from bump.service import Principal, PrivacyZones
from bump.store import Store, StoreError
from detect.params import DetectorParams


class StorePool:
    """Up to ``size`` open Stores on one SQLite file, lent one request at a time (a connection is used by one
    thread at a time; SQLite's WAL lets readers run beside the one writer)."""

    def __init__(self, path: str | Path, size: int = 8) -> None:
        self.path, self.size = str(path), size
        self._free: queue.LifoQueue[Store] = queue.LifoQueue()
        self._all: list[Store] = []
        self._lock = threading.Lock()
        self._closed = False
        self._free.put(self._open())          # the first open creates and migrates, before any concurrency

    def _open(self) -> Store:
        store = Store.open(self.path)
        self._all.append(store)
        return store

    @contextmanager
    def borrow(self, timeout_s: float = 30.0) -> Iterator[Store]:
        if self._closed:
            raise service.BusyError("the service is shutting down; retry shortly")
        try:
            store = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = len(self._all) < self.size
                store = self._open() if grow else None
            if store is None:
                try:
                    store = self._free.get(timeout=timeout_s)
                except queue.Empty:
                    raise service.BusyError(f"all {self.size} database connections are busy; retry shortly") from None
        try:
            yield store
        finally:
            self._free.put(store)

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the connections as they come back: never one under a request still using it (closing a SQLite
        connection that another thread is executing on corrupts memory). One still lent after ``timeout_s`` is
        left open."""
        with self._lock:
            self._closed = True
            lent = len(self._all)
            self._all.clear()
        deadline = time.monotonic() + timeout_s
        for _ in range(lent):                                   # loop over connections
            try:
                store = self._free.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            store.close()


def _open_pool(state: Any, settings: Settings) -> StorePool:
    key = str(settings.db_path)
    with state.lock:
        pool = state.pools.get(key)
        if pool is None:
            pool = state.pools[key] = StorePool(key, settings.store_pool_size)
    return pool


async def get_pool(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> StorePool:
    """The pool of the configured database (one per database path and app), opened (and migrated) in a worker
    thread on first use."""
    pool = request.app.state.pools.get(str(settings.db_path))
    return pool if pool is not None else await run_in_threadpool(_open_pool, request.app.state, settings)


def get_store(pool: Annotated[StorePool, Depends(get_pool)]) -> Iterator[Store]:
    with pool.borrow() as store:
        yield store


_bearer = HTTPBearer(auto_error=False, description="a device, crew or admin token")


def get_principal(request: Request, pool: Annotated[StorePool, Depends(get_pool)],
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The caller: :data:`bump.service.PUBLIC` without an Authorization header, else the token's principal."""
    header = request.headers.get("authorization")
    if header is None:
        return service.PUBLIC
    if credentials is None or not credentials.credentials.strip():
        raise service.AuthError("the Authorization header must be 'Bearer TOKEN'", field="Authorization")
    with pool.borrow() as store:
        return service.authenticate(store, credentials.credentials.strip())


async def get_zones(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> PrivacyZones:
    state = request.app.state
    with state.lock:
        key = (settings.privacy_trim_m, settings.privacy_min_devices)
        zones = state.zones.get(key)
        if zones is None:
            zones = state.zones[key] = PrivacyZones(key[0], min_devices=key[1])
    return zones


async def get_limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


@lru_cache(maxsize=8)
def _load_params(path: str | None) -> DetectorParams | None:
    if path is None:
        return None
    try:
        return DetectorParams.from_dict(orjson.loads(Path(path).read_bytes()))
    except (OSError, ValueError, TypeError) as exc:
        raise StoreError(f"cannot load detector parameters ({exc}); fix BUMP_DETECTOR_PARAMS", source=path) from None


def params_of(settings: Settings) -> DetectorParams | None:
    """The detector parameters of BUMP_DETECTOR_PARAMS; None: the database's (those of its last reprocess, else
    the defaults)."""
    return _load_params(None if settings.detector_params is None else str(settings.detector_params))


async def get_params(settings: Annotated[Settings, Depends(get_settings)]) -> DetectorParams | None:
    """:func:`params_of` the settings (read once per file, then cached)."""
    return params_of(settings)


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[StorePool, Depends(get_pool)]
StoreDep = Annotated[Store, Depends(get_store)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
ZonesDep = Annotated[PrivacyZones, Depends(get_zones)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ParamsDep = Annotated[DetectorParams | None, Depends(get_params)]
