"""Limits: body size on the wire (with and without Content-Length), decompressed size (gzip and zip bombs), the
rate limits (429 with Retry-After) for uploads per device and registrations per address, and how many uploads a
worker process works on at once."""

from __future__ import annotations

import gzip
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from test_api_support import bearer, make_client, small_trip

from api.ratelimit import RateLimiter
from bump import service
from bump.service import RateLimitedError
from bump.store import Store

JSON = {"Content-Type": "application/json"}


def _client_and_token(tmp_path: Path, **settings) -> tuple:
    client = make_client(tmp_path / "l.db", **settings)
    client.__enter__()
    return client, client.post("/v1/devices").json()["token"]


def test_a_body_over_the_limit_is_413_with_or_without_content_length(tmp_path: Path) -> None:
    body = orjson.dumps(small_trip("big", duration_s=20.0))
    small = gzip.compress(body)
    limit = (len(body) + len(small)) // 2                             # the JSON is over it, its gzip under
    client, tok = _client_and_token(tmp_path, max_body_bytes=limit)
    r = client.post("/v1/traces", content=body, headers={**bearer(tok), **JSON})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large" and str(limit) in r.text

    def chunks() -> Iterator[bytes]:                                  # streamed: no Content-Length header
        for i in range(0, len(body), 8192):
            yield body[i:i + 8192]

    r = client.post("/v1/traces", content=chunks(), headers={**bearer(tok), **JSON})
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"
    r = client.post("/v1/traces", content=small, headers={**bearer(tok), **JSON, "Content-Encoding": "gzip"})
    assert r.status_code == 201, r.text
    client.__exit__(None, None, None)


def test_gzip_bomb_is_413_without_inflating_it(tmp_path: Path) -> None:
    client, tok = _client_and_token(tmp_path, max_decompressed_bytes=1_000_000)
    bomb = gzip.compress(b"{" + b" " * 200_000_000 + b"}", compresslevel=9)     # 200 MB of spaces in ~200 kB
    assert len(bomb) < 300_000
    r = client.post("/v1/traces", content=bomb, headers={**bearer(tok), **JSON, "Content-Encoding": "gzip"})
    assert r.status_code == 413 and "decompresses to more than 1000000 bytes" in r.json()["error"]["message"]
    double = gzip.compress(gzip.compress(b"0" * 50_000_000))                      # nested: inner one is sniffed
    r = client.post("/v1/traces", content=double, headers={**bearer(tok), "Content-Type": "application/gzip"})
    assert r.status_code in (413, 415, 422) and r.status_code != 500
    client.__exit__(None, None, None)


def test_zip_bomb_is_413(tmp_path: Path) -> None:
    client, tok = _client_and_token(tmp_path, max_decompressed_bytes=1_000_000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("TotalAcceleration.csv", b"0" * 20_000_000)
    assert len(buf.getvalue()) < 100_000
    r = client.post("/v1/traces", content=buf.getvalue(), headers={**bearer(tok), "Content-Type": "application/zip"})
    assert r.status_code == 413 and "unpacks to 20000000 bytes" in r.json()["error"]["message"]
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as z:
        for i in range(1100):
            z.writestr(f"f{i}.csv", b"")
    r = client.post("/v1/traces", files={"file": ("x.zip", many.getvalue(), "application/zip")},
                    headers=bearer(tok))
    assert r.status_code == 413 and "1100 files" in r.text
    client.__exit__(None, None, None)


def test_uploads_past_the_device_rate_are_429_with_retry_after(tmp_path: Path) -> None:
    client, tok = _client_and_token(tmp_path, upload_rate_per_minute=2, upload_burst=2)
    other = client.post("/v1/devices").json()["token"]
    codes = [client.post("/v1/traces", content=orjson.dumps(small_trip(f"r{i}", duration_s=3.0)),
                         headers={**bearer(tok), **JSON}).status_code for i in range(3)]
    assert codes == [201, 201, 429]
    r = client.post("/v1/traces", content=orjson.dumps(small_trip("r9", duration_s=3.0)),
                    headers={**bearer(tok), **JSON})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 30                  # one token per 30 s at 2 per minute
    assert "2 per minute" in r.json()["error"]["message"]
    r = client.post("/v1/traces", content=orjson.dumps(small_trip("o1", duration_s=3.0)),
                    headers={**bearer(other), **JSON})
    assert r.status_code == 201                                        # per device: another phone is not limited
    client.__exit__(None, None, None)


def test_device_registration_is_rate_limited_per_address(tmp_path: Path) -> None:
    with make_client(tmp_path / "r.db", device_register_rate_per_minute=3) as client:
        codes = [client.post("/v1/devices").status_code for _ in range(5)]
        last = client.post("/v1/devices")
    assert codes == [201, 201, 201, 429, 429]
    assert last.status_code == 429 and int(last.headers["retry-after"]) >= 1
    with Store.open(tmp_path / "r.db") as store:
        assert len(store.list_tokens()) == 3                          # refused registrations create nothing


def test_token_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.take("k", 60.0, 2) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    now[0] = 0.5
    assert limiter.take("k", 60.0, 2) == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.take("k", 60.0, 2) == 0.0
    assert limiter.take("other", 60.0, 2) == 0.0
    now[0] = 100.0
    assert [limiter.take("k", 60.0, 2) for _ in range(2)] == [0.0, 0.0]       # burst capped at 2, not 100
    with pytest.raises(RateLimitedError) as info:
        limiter.check("k", 60.0, 2, "uploads")
    assert info.value.retry_after_s == pytest.approx(1.0)


@pytest.mark.parametrize("at_once", [1, 2])
def test_a_worker_process_works_on_at_most_uploads_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           at_once: int) -> None:
    busy, peak, lock = [0], [0], threading.Lock()
    real = service.upload_trace

    def counting(*args, **kwargs):                                    # the work of one upload, slowed down
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(0.2)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(service, "upload_trace", counting)
    client, tok = _client_and_token(tmp_path, uploads_at_once=at_once)
    codes: list[int] = []

    def upload(k: int) -> None:
        body = orjson.dumps(small_trip(f"c{k}"))
        codes.append(client.post("/v1/traces", content=body, headers={**bearer(tok), **JSON}).status_code)

    threads = [threading.Thread(target=upload, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [201] * 4 and peak[0] == at_once


def test_an_upload_that_waited_for_its_worker_asks_the_client_to_reconnect(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A kept-alive connection stays on the worker that accepted it: an upload queued behind another on its worker
    answers ``Connection: close``, so that the next one may land on an idle worker; one served at once keeps it."""
    real = service.upload_trace
    started = threading.Event()

    def slow(*args, **kwargs):
        started.set()
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "upload_trace", slow)
    client, tok = _client_and_token(tmp_path, uploads_at_once=1)
    headers = {**bearer(tok), **JSON}
    alone = client.post("/v1/traces", content=orjson.dumps(small_trip("alone")), headers=headers)
    assert alone.status_code == 201 and alone.headers.get("connection", "").lower() != "close"
    started.clear()
    first: list = []
    holder = threading.Thread(target=lambda: first.append(
        client.post("/v1/traces", content=orjson.dumps(small_trip("first")), headers=headers)))
    holder.start()
    assert started.wait(5.0)                                 # the first upload holds the worker's one slot ...
    queued = client.post("/v1/traces", content=orjson.dumps(small_trip("queued")), headers=headers)
    holder.join()
    assert queued.status_code == 201 and queued.headers.get("connection", "").lower() == "close"
    assert first[0].status_code == 201 and first[0].headers.get("connection", "").lower() != "close"


def test_the_pool_never_closes_a_connection_under_a_request(tmp_path) -> None:
    import threading
    import time

    from api.deps import StorePool
    from bump.service import BusyError

    pool = StorePool(tmp_path / "pool.db", size=2)
    done: list[float] = []
    with pool.borrow() as store:                             # a request is using this connection ...
        closer = threading.Thread(target=lambda: (pool.close(timeout_s=5.0), done.append(time.monotonic())))
        closer.start()
        time.sleep(0.3)
        assert not done                                      # ... so shutdown waits for it
        assert store.get_meta("nothing") is None             # and the connection still works
        returned = time.monotonic()
    closer.join(5.0)
    assert done and done[0] >= returned
    with pytest.raises(BusyError, match="shutting down"):
        with pool.borrow():
            pass
