"""Shared helpers and fixtures of the HTTP API tests (tests/test_api_*.py); no tests of its own.

``loaded_db`` uploads the 12 sample trips once per session through the API, each with its own phone's device token
(6 phones), so defects are confirmed by several devices; ``client_for`` serves a private copy of that database.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import ingest
from api import create_app
from api.settings import Settings
from bump import service
from bump.store import Store

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TRIPS = sorted((ROOT / "sample_traces" / "trips").glob("*.json.gz"))
JSON_GZ = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Loaded:
    """A database holding the sample trips, and the tokens that can read or change it."""

    path: Path
    devices: dict[str, str]          # device id (as recorded) -> device token
    trip_device: dict[str, str]      # trip id -> device id (as recorded)
    trip_ends: dict[str, tuple[float, float, float, float]]   # trip id -> first/last GPS fix lat, lon [deg]
    crew: str
    admin: str
    revoked: str


def make_client(db: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(db_path=db, **settings)))


@pytest.fixture(scope="session")
def loaded_db(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    path = tmp_path_factory.mktemp("api") / "loaded.db"
    devices: dict[str, str] = {}
    phone_device: dict[str, str] = {}
    trip_device: dict[str, str] = {}
    ends = {}
    with make_client(path) as client:
        for f in SAMPLE_TRIPS:
            trace = ingest.read(f)
            ends[trace.trip_id] = (float(trace.lat_deg[0]), float(trace.lon_deg[0]), float(trace.lat_deg[-1]),
                                   float(trace.lon_deg[-1]))
            if trace.device_id not in phone_device:
                reg = client.post("/v1/devices").json()
                phone_device[trace.device_id] = reg["device_id"]
                devices[reg["device_id"]] = reg["token"]
            dev = phone_device[trace.device_id]
            r = client.post("/v1/traces", content=f.read_bytes(), headers={**JSON_GZ, **bearer(devices[dev])})
            assert r.status_code == 201, r.text
            trip_device[trace.trip_id] = dev
    with Store.open(path) as store:
        crew, _ = service.create_token(store, "crew", label="test crew")
        admin, _ = service.create_token(store, "admin")
        revoked, _ = service.create_token(store, "crew")
        service.revoke_token(store, revoked)
    return Loaded(path, devices, trip_device, ends, crew, admin, revoked)


@pytest.fixture
def client_for(loaded_db: Loaded, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """``client_for(**settings)``: a client of the app on a private copy of the loaded database."""
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        db = tmp_path / f"copy{len(clients)}.db"
        shutil.copyfile(loaded_db.path, db)
        client = make_client(db, **settings)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def small_trip(trip_id: str, *, seed: int = 0, duration_s: float = 20.0, device_id: str = "body-device"
               ) -> dict[str, Any]:
    """A valid short bump.trace/1 document (from tests/conftest.py's generator) with its own trip id."""
    from conftest import make_doc

    doc = make_doc(duration_s=duration_s, seed=seed)
    doc["trip_id"], doc["device_id"] = trip_id, device_id
    return doc


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1)


def positions(obj: Any) -> list[tuple[float, float]]:
    """Every (lat, lon) in a JSON answer: lat/lon or lat/long keys, lat_deg/lon_deg, GeoJSON Point coordinates."""
    out: list[tuple[float, float]] = []
    if isinstance(obj, dict):
        for la, lo in (("lat", "lon"), ("lat", "long"), ("lat_deg", "lon_deg")):
            if isinstance(obj.get(la), int | float) and isinstance(obj.get(lo), int | float):
                out.append((float(obj[la]), float(obj[lo])))
        if obj.get("type") == "Point":
            lon, lat = obj["coordinates"]
            out.append((float(lat), float(lon)))
        for v in obj.values():
            out += positions(v)
    elif isinstance(obj, list):
        for v in obj:
            out += positions(v)
    return out


def distance_to_trip_ends_m(points: list[tuple[float, float]], ends: dict[str, tuple[float, float, float, float]]
                            ) -> np.ndarray:
    """For every point, the distance to the nearest start or end of any trip [m]."""
    from detect.geo import haversine_m

    if not points:
        return np.empty(0)
    p = np.array(points)
    e = np.array(list(ends.values()))
    anchors = np.concatenate([e[:, :2], e[:, 2:]])
    d = haversine_m(p[:, :1], p[:, 1:], anchors[None, :, 0], anchors[None, :, 1])
    return d.min(axis=1)
