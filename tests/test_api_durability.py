"""Durability with a real server: ``bump serve`` (uvicorn, 2 workers) on a free loopback port, several client
threads uploading distinct trips, SIGKILL in the middle of the storm, restart.

Checks: every trip that got a 2xx before the kill is there and complete after the restart; no trip is half
written (raw trace intact, its hits and road cells present, the database passes SQLite's integrity and foreign-key
checks); retried uploads answer 200 or 201; and the defects built by concurrent uploads are those of ingesting the
same trips one after another in the order the server committed them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue

import httpx
import numpy as np
import orjson
import pytest
from test_api_support import ROOT, SAMPLE_TRIPS

import ingest
from bump import pipeline, service
from bump.store import Store

COPIES = 3                 # each sample trip uploaded under 3 trip ids: 36 trips
N_CLIENTS = 4
TRANSPORT_RETRIES = 2      # a client retries a dropped connection before the kill this often


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: Path, port: int, log: Path) -> None:
        env = {**os.environ, "BUMP_UPLOAD_BURST": "100000", "BUMP_UPLOAD_RATE_PER_MINUTE": "100000",
               "BUMP_DEVICE_REGISTER_RATE_PER_MINUTE": "100000"}
        self.url = f"http://127.0.0.1:{port}"
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bump.cli.main", "serve", "--db", str(db), "--port", str(port), "--workers", "2",
             "--log-level", "warning"], cwd=ROOT, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
            assert self.proc.poll() is None, log.read_text()
        self.kill()
        raise AssertionError(f"server did not start: {log.read_text()}")

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.log.close()


def _trips() -> list[tuple[str, str, bytes]]:
    """(trip id, phone, gzip bump.trace/1 body) of every trip to upload, in a mixed order."""
    out = []
    for f in SAMPLE_TRIPS:
        doc = orjson.loads(gzip.decompress(f.read_bytes()))
        for k in range(COPIES):
            doc["trip_id"] = f"{f.name.split('.')[0]}-copy{k}"
            out.append((doc["trip_id"], doc["device_id"], gzip.compress(orjson.dumps(doc), compresslevel=1)))
    order = np.random.default_rng(3).permutation(len(out))
    return [out[i] for i in order]


def _storm(url: str, trips: list[tuple[str, str, bytes]], tokens: dict[str, str], acked: dict[str, dict],
           stop_after: int | None, killed: threading.Event, errors: list[str]) -> None:
    """Upload ``trips`` from N_CLIENTS threads; record each 2xx (other answers, and connections that fail
    ``TRANSPORT_RETRIES + 1`` times while ``killed`` is not set, in ``errors``). Returns when done or the server
    is gone; with ``stop_after``, sets ``killed`` once that many trips are acknowledged."""
    work: Queue = Queue()
    for t in trips:
        work.put(t)
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not killed.is_set():
                try:
                    trip_id, phone, body = work.get_nowait()
                except Empty:
                    return
                r = None
                for attempt in range(TRANSPORT_RETRIES + 1):
                    try:
                        r = http.post("/v1/traces", content=body, headers={
                            "Authorization": f"Bearer {tokens[phone]}", "Content-Type": "application/json",
                            "Content-Encoding": "gzip"})
                        break
                    except httpx.TransportError as exc:
                        if killed.is_set():
                            return                          # the server was killed under this request
                        if attempt == TRANSPORT_RETRIES:    # not the kill: a real failure, reported
                            with lock:
                                errors.append(f"{trip_id}: {type(exc).__name__} {exc} before the kill")
                            return
                        time.sleep(0.5)                     # as a phone does: retry (uploads are idempotent)
                with lock:
                    if r.status_code in (200, 201):
                        acked[trip_id] = r.json()
                    else:
                        errors.append(f"{trip_id}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(N_CLIENTS)]
    for t in threads:
        t.start()
    if stop_after is not None:
        while len(acked) < stop_after and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        killed.set()
    for t in threads:
        t.join(timeout=120)


def _defects(store: Store) -> list[tuple]:
    d = store.all_defects()
    return sorted(zip(d["defect_id"].tolist(), d["kind"].tolist(), d["status"].tolist(),
                      np.round(d["lat_deg"], 7).tolist(), np.round(d["lon_deg"], 7).tolist(), d["n_hits"].tolist(),
                      d["n_devices"].tolist(), d["n_traversals"].tolist(), d["n_traversal_hits"].tolist(),
                      strict=True))


@pytest.mark.slow
def test_sigkill_mid_storm_loses_no_acknowledged_trip_and_matches_sequential(tmp_path: Path) -> None:
    t_start = time.monotonic()
    db, log, port = tmp_path / "served.db", tmp_path / "server.log", _free_port()
    trips = _trips()
    phones = sorted({p for _, p, _ in trips})
    with Store.open(db) as store:                          # phones registered beforehand, tokens as the API makes
        tokens = {}
        for p in phones:
            tokens[p], _ = service.create_token(store, "device", device_id=f"dev-{p}")
    acked: dict[str, dict] = {}
    server = Server(db, port, log)
    killed = threading.Event()
    errors: list[str] = []
    killer = threading.Thread(target=_storm, args=(server.url, trips, tokens, acked, len(trips) // 3, killed,
                                                   errors))
    killer.start()
    while not killed.is_set() and killer.is_alive():
        time.sleep(0.002)
    server.kill()                                          # SIGKILL, both workers, requests in flight
    killer.join(timeout=120)
    before_kill = dict(acked)
    assert errors == [], errors
    assert 0 < len(before_kill) < len(trips), (len(before_kill), len(trips))

    with Store.open(db) as store:                          # after the crash, before anything else touches it
        assert store.pragma("integrity_check") == "ok"
        assert store._ex("PRAGMA foreign_key_check").fetchall() == []
        stored = {t["trip_id"]: t for t in store.trips()}
        assert set(before_kill) <= set(stored)             # every acknowledged trip survived
        for trip_id, info in stored.items():               # ... and no trip is half written
            raw = store.trip_raw(trip_id)
            assert hashlib.sha256(raw).hexdigest() == info["raw_sha256"]
            assert ingest.read(raw).trip_id == trip_id
            assert len(store.hits_of_trip(trip_id)) > 0 or info["n_impacts"] == 0
            assert store._ex("SELECT COUNT(*) FROM coverage WHERE trip_id = ?", (trip_id,)).fetchone()[0] > 0
            assert store._ex("SELECT COUNT(*) FROM roughness WHERE trip_id = ?", (trip_id,)).fetchone()[0] > 0
        crew, _ = service.create_token(store, "crew")
        committed_before_restart = set(stored)

    server = Server(db, _free_port(), log)                 # restart; upload the rest, retrying unacknowledged ones
    try:
        rest = [t for t in trips if t[0] not in before_kill]
        retried: dict[str, dict] = {}
        _storm(server.url, rest, tokens, retried, None, threading.Event(), errors)
        assert errors == [] and set(retried) == {t[0] for t in rest}
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {crew}"}) as http:
            for trip_id, summary in before_kill.items():
                got = http.get(f"/v1/trips/{trip_id}").json()
                assert {k: got[k] for k in ("samples", "impacts", "located_impacts")} == \
                    {k: summary[k] for k in ("samples", "impacts", "located_impacts")}
    finally:
        server.kill()
    lost_responses = committed_before_restart - set(before_kill)    # committed, answer lost in the kill: retried
    assert all(t in retried for t in lost_responses)

    with Store.open(db) as store:
        order = sorted(store.trips(), key=lambda t: t["ingested_at_s"])
        served = _defects(store)
    assert len(order) == len(trips)
    bodies = {t[0]: t[2] for t in trips}
    with Store.open(tmp_path / "sequential.db") as seq:   # the same trips, one after another, in commit order
        for info in order:
            pipeline.ingest_trace(seq, ingest.read(bodies[info["trip_id"]]), device_id=info["device_id"])
        assert _defects(seq) == served
    assert time.monotonic() - t_start < 60
