"""HTTP itself: HEAD wherever GET is served (RFC 9110 §9.3.2), which client address `bump serve` trusts
(X-Forwarded-For only from configured proxies), and error answers that say what is wrong and how to fix it
(charset, non-JSON bodies, unknown defects, unencoded '+' in datetimes, cut multipart bodies, long paths,
Open311 .xml)."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient
from test_api_support import Loaded, bearer, make_client, small_trip

from api import create_app
from api.settings import Settings, get_settings
from bump import service
from bump.cli import serve
from bump.store import Store

pytest_plugins = ("test_api_support",)     # its fixtures: loaded_db, client_for

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, str]]:
    """A client of an empty database, a device token and a crew token."""
    db = tmp_path_factory.mktemp("http") / "h.db"
    with Store.open(db) as store:
        crew, _ = service.create_token(store, "crew")
    with make_client(db, warm_up=False, upload_burst=1000, upload_rate_per_minute=60_000) as client:
        device = client.post("/v1/devices").json()["token"]
        yield client, device, crew


def _error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"code", "message", "field"} and err["code"] and err["message"]
    return err


# ------------------------------------------------------------------------------------------------------ HEAD

GET_PATHS = ["/", "/healthz", "/v1/config", "/v1/defects", "/v1/defects.geojson", "/v1/defects.csv",
             "/v1/roughness.geojson", "/v1/coverage.geojson", "/open311/v2/services.json",
             "/open311/v2/requests.json", "/openapi.json", "/static/app.js"]


@pytest.mark.parametrize("path", GET_PATHS)
def test_head_answers_like_get_without_a_body(client_for, path: str) -> None:
    client = client_for(warm_up=False)
    got = client.get(path)
    head = client.head(path)
    assert got.status_code == 200 and head.status_code == 200, (path, head.status_code, head.text)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert int(head.headers["content-length"]) == len(got.content) > 0


def test_head_runs_the_handler_once_and_is_counted_as_head(tmp_path: Path) -> None:
    app = create_app(Settings(db_path=tmp_path / "x.db", warm_up=False))
    calls: list[int] = []

    def counting_settings() -> Settings:
        calls.append(1)
        return app.state.settings

    app.dependency_overrides[get_settings] = counting_settings       # /v1/config reads the settings once
    with TestClient(app) as client:
        r = client.head("/v1/config")
        assert r.status_code == 200 and r.content == b"" and len(calls) == 1
        metrics = client.get("/metrics").text
    assert 'bump_http_requests_total{method="HEAD",route="/v1/config",status="200"} 1' in metrics
    assert 'method="GET",route="/v1/config"' not in metrics


def test_head_on_errors_keeps_status_and_headers(fresh: tuple[TestClient, str, str]) -> None:
    client, _, _ = fresh
    missing = client.head("/no/such/page")
    assert missing.status_code == 404 and missing.content == b""
    assert missing.headers["content-type"] == "application/json" and int(missing.headers["content-length"]) > 0
    denied = client.head("/v1/defects", headers=bearer("not-a-token"))
    assert denied.status_code == 401 and denied.content == b"" and denied.headers["www-authenticate"] == "Bearer"
    post_only = client.head("/v1/traces")
    assert post_only.status_code == 405 and post_only.content == b"" and post_only.headers["allow"] == "POST"


def test_methods_really_not_allowed_are_still_405_json(fresh: tuple[TestClient, str, str]) -> None:
    client, _, _ = fresh
    err = _error(client.delete("/healthz"), 405)
    assert err["code"] == "method_not_allowed" and "DELETE is not allowed on /healthz" in err["message"]
    allow = {m.strip() for m in client.delete("/healthz").headers["allow"].split(",")}
    assert allow == {"GET", "HEAD"}
    r = client.put("/open311/v2/services.json")
    assert r.status_code == 405 and r.json()[0]["code"] == 405 and "PUT" in r.json()[0]["description"]


def test_head_stays_out_of_the_openapi_schema(fresh: tuple[TestClient, str, str]) -> None:
    paths = fresh[0].get("/openapi.json").json()["paths"]
    assert "get" in paths["/healthz"] and not any("head" in ops for ops in paths.values())


# ------------------------------------------------------------------------------- client address, proxies

def _serve_args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    return p.parse_args(list(argv))


def _served_like_bump_serve(tmp_path: Path, args: argparse.Namespace) -> TestClient:
    """The app wrapped as uvicorn wraps it with `bump serve`'s options, called from 127.0.0.1 (a peer on the
    host: uvicorn's own default trusts its X-Forwarded-For)."""
    opts = serve.uvicorn_options(args)
    app = create_app(Settings(db_path=tmp_path / "p.db", warm_up=False, device_register_rate_per_minute=3))
    config = uvicorn.Config(app, proxy_headers=opts["proxy_headers"], forwarded_allow_ips=opts["forwarded_allow_ips"],
                            log_config=None)
    config.load()
    return TestClient(config.loaded_app, client=("127.0.0.1", 50000))


def test_a_default_server_limits_registrations_by_peer_whatever_x_forwarded_for_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUMP_FORWARDED_ALLOW_IPS", raising=False)
    args = _serve_args()
    assert serve.uvicorn_options(args)["proxy_headers"] is False
    with _served_like_bump_serve(tmp_path, args) as client:
        assert [client.post("/v1/devices").status_code for _ in range(3)] == [201] * 3
        spoofed = [client.post("/v1/devices", headers={"X-Forwarded-For": f"10.9.0.{i}"}).status_code
                   for i in range(5)]
    assert spoofed == [429] * 5


@pytest.mark.parametrize("how", ["option", "environment"])
def test_forwarded_headers_are_trusted_only_from_the_configured_proxies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "option":
        monkeypatch.delenv("BUMP_FORWARDED_ALLOW_IPS", raising=False)
        args = _serve_args("--forwarded-allow-ips", "127.0.0.1")
    else:
        monkeypatch.setenv("BUMP_FORWARDED_ALLOW_IPS", "127.0.0.1")
        args = _serve_args()
    with _served_like_bump_serve(tmp_path, args) as client:
        assert [client.post("/v1/devices").status_code for _ in range(4)] == [201, 201, 201, 429]
        forwarded = [client.post("/v1/devices", headers={"X-Forwarded-For": f"10.9.0.{i}"}).status_code
                     for i in range(5)]
    assert forwarded == [201] * 5                   # each a client of its own behind the trusted proxy
    args = _serve_args("--forwarded-allow-ips", "10.0.0.1")
    with _served_like_bump_serve(tmp_path / "other", args) as client:       # a proxy that is not this peer
        codes = [client.post("/v1/devices", headers={"X-Forwarded-For": f"10.9.0.{i}"}).status_code
                 for i in range(4)]
    assert codes == [201, 201, 201, 429]


def test_serve_help_documents_the_forwarded_option() -> None:
    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    text = " ".join(p.format_help().split())
    assert "--forwarded-allow-ips" in text and "BUMP_FORWARDED_ALLOW_IPS" in text and "ignored" in text


# ------------------------------------------------------------------------------------------------ messages

def test_a_json_upload_in_another_charset_is_415_saying_utf8(fresh: tuple[TestClient, str, str]) -> None:
    client, device, _ = fresh
    doc = small_trip("charset-utf16")
    r = client.post("/v1/traces", content=orjson.dumps(doc).decode().encode("utf-16"),
                    headers={**bearer(device), "Content-Type": "application/json; charset=utf-16"})
    err = _error(r, 415)
    assert err["field"] == "Content-Type" and "UTF-8" in err["message"] and "'utf-16'" in err["message"]
    part = ("trip.json", orjson.dumps(doc).decode().encode("utf-16"), "application/json; charset=UTF-16")
    err = _error(client.post("/v1/traces", files={"file": part}, headers=bearer(device)), 415)
    assert err["field"] == "file" and "UTF-8" in err["message"]
    ok = client.post("/v1/traces", content=orjson.dumps(doc),
                     headers={**bearer(device), "Content-Type": 'application/json; charset="UTF-8"'})
    assert ok.status_code == 201, ok.text


def test_a_patch_whose_body_is_not_json_names_the_body(fresh: tuple[TestClient, str, str]) -> None:
    client, _, crew = fresh
    err = _error(client.patch("/v1/defects/1", content=b"status=repaired", headers={**bearer(crew), **JSON}), 422)
    assert err["field"] == "body" and "not valid JSON" in err["message"] and "character 0" in err["message"]
    assert "'0'" not in err["message"]
    err = _error(client.patch("/v1/defects/1", headers=bearer(crew)), 422)
    assert err["field"] == "body"


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "text/json"])
def test_a_patch_sent_as_another_media_type_is_415(fresh: tuple[TestClient, str, str], ctype: str) -> None:
    client, _, crew = fresh
    r = client.patch("/v1/defects/1", content=b'{"status": "repaired", "note": "x"}',
                     headers={**bearer(crew), "Content-Type": ctype})
    err = _error(r, 415)
    assert err["field"] == "Content-Type" and "application/json" in err["message"] and ctype in err["message"]


def test_an_unknown_defect_points_to_the_http_list_not_the_cli(client_for, loaded_db: Loaded) -> None:
    client = client_for(warm_up=False)
    for r in (client.get("/v1/defects/999999"),
              client.patch("/v1/defects/999999", json={"status": "dismissed", "note": "x"},
                           headers=bearer(loaded_db.crew))):
        err = _error(r, 404)
        assert err["field"] == "id" and "GET /v1/defects" in err["message"] and "bump defects" not in err["message"]


def test_a_hidden_defect_answers_exactly_as_an_unknown_one(client_for, loaded_db: Loaded) -> None:
    """Privacy zones of 10 000 km hide every defect: an existing id must not be told apart from a missing one."""
    did = client_for(warm_up=False).get("/v1/defects").json()["defects"][0]["id"]
    client = client_for(warm_up=False, privacy_trim_m=1e7, privacy_min_devices=10**6)
    hidden, unknown = client.get(f"/v1/defects/{did}"), client.get("/v1/defects/999999")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == orjson.loads(unknown.content.replace(b"999999", str(did).encode()))


def test_since_with_an_unencoded_plus_is_read_as_the_offset(client_for) -> None:
    client = client_for(warm_up=False)
    defects = client.get("/v1/defects?status=all&limit=1000").json()["defects"]
    latest = max(max(datetime.fromisoformat(d["last_seen"]), datetime.fromisoformat(d["status_since"]))
                 for d in defects)
    # an hour before the latest change, written in +02:00: read without its offset it would be after everything
    since = (latest - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2))).isoformat(timespec="seconds")
    assert since.endswith("+02:00")
    raw = client.get(f"/v1/defects?status=all&limit=1000&since={since}")          # '+' arrives as a space
    encoded = client.get("/v1/defects", params={"status": "all", "limit": 1000, "since": since})
    assert raw.status_code == 200, raw.text
    assert raw.json() == encoded.json() and len(raw.json()["defects"]) >= 1
    cov = client.get(f"/v1/coverage.geojson?since={since}&until={since.replace('+02:00', '+03:00')}")
    assert cov.status_code == 200, cov.text
    err = _error(client.get("/v1/defects?since=yesterday"), 422)
    assert err["field"] == "since"


def _multipart_cut(doc: bytes) -> bytes:
    return (b'--B\r\nContent-Disposition: form-data; name="file"; filename="t.json"\r\n'
            b"Content-Type: application/json\r\n\r\n" + doc[:200])


@pytest.mark.parametrize("body", [_multipart_cut(orjson.dumps(small_trip("cut"))), b"not multipart at all",
                                  _multipart_cut(b'{"format": "bump.trace/1"}') + b"\r\n--B\r\n"])
def test_a_cut_or_malformed_multipart_body_says_so_and_how_to_send(fresh: tuple[TestClient, str, str],
                                                                    body: bytes) -> None:
    client, device, _ = fresh
    r = client.post("/v1/traces", content=body,
                    headers={**bearer(device), "Content-Type": "multipart/form-data; boundary=B"})
    err = _error(r, 400)
    assert err["field"] == "body" and "incomplete or malformed" in err["message"]
    assert "-F file=@" in err["message"] and "no file field" not in err["message"]


def test_a_multipart_body_starlette_cannot_parse_is_400_with_advice(fresh: tuple[TestClient, str, str]) -> None:
    client, device, _ = fresh
    body = b"--B\r\nno headers here\r\n\r\nx\r\n--B--\r\n"
    err = _error(client.post("/v1/traces", content=body, headers={
        **bearer(device), "Content-Type": "multipart/form-data; boundary=B"}), 400)
    assert err["field"] == "body" and "-F file=@" in err["message"]


def test_a_complete_multipart_upload_still_works(fresh: tuple[TestClient, str, str]) -> None:
    client, device, _ = fresh
    part = ("trip.json", io.BytesIO(orjson.dumps(small_trip("multipart-ok"))), "application/json")
    r = client.post("/v1/traces", files={"file": part}, headers=bearer(device))
    assert r.status_code == 201, r.text


def test_a_utf16_body_without_a_charset_is_415_saying_utf8(fresh: tuple[TestClient, str, str]) -> None:
    """Its byte-order mark gives it away (once a 422 about 64-bit numbers)."""
    client, device, _ = fresh
    body = orjson.dumps(small_trip("bom-utf16")).decode().encode("utf-16")
    err = _error(client.post("/v1/traces", content=body, headers={**bearer(device), **JSON}), 415)
    assert err["field"] == "body" and "UTF-8" in err["message"]


def test_a_long_unknown_id_is_not_echoed_whole(fresh: tuple[TestClient, str, str]) -> None:
    client, _, crew = fresh
    for path in ("/v1/trips/" + "t" * 60_000, "/open311/v2/requests/" + "y" * 60_000 + ".json"):
        r = client.get(path, headers=bearer(crew))
        assert r.status_code == 404 and len(r.content) < 1000, (path[:30], len(r.content))


def test_a_long_unknown_path_is_not_echoed_whole(fresh: tuple[TestClient, str, str]) -> None:
    client, _, _ = fresh
    path = "/" + "x" * 60_000
    r = client.get(path)
    err = _error(r, 404)
    assert len(r.content) < 1000 and path[:200] in err["message"] and "x..." in err["message"]
    r = client.get("/open311/v2/" + "y" * 60_000)
    assert r.status_code == 404 and len(r.content) < 1000


def test_open311_xml_paths_say_only_json_is_served(fresh: tuple[TestClient, str, str]) -> None:
    client, _, _ = fresh
    for path, twin in (("/open311/v2/requests.xml", "/open311/v2/requests.json"),
                       ("/open311/v2/services.xml", "/open311/v2/services.json"),
                       ("/open311/v2/requests/17.xml", "/open311/v2/requests/17.json")):
        r = client.get(path)
        assert r.status_code == 404
        [e] = r.json()
        assert e["code"] == 404 and "only the JSON format" in e["description"] and twin in e["description"]
    [e] = client.get("/open311/v2/discovery.xml").json()
    assert "only the JSON format" in e["description"] and "discovery.json" not in e["description"]
    assert "no endpoint" in client.get("/v1/defects.xml").json()["error"]["message"]


# ------------------------------------------------------------------------------------------ worker-thread hops

def test_only_dependencies_that_block_run_in_worker_threads(fresh: tuple[TestClient, str, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings, pool, zones, limiter, metrics and parameters answer on the event loop: a thread hop each cost
    ~0.2 ms of CPU per request. The token lookup queries the database, so it keeps its thread."""
    from fastapi.dependencies import utils

    hopped: list[str] = []
    real = utils.run_in_threadpool

    async def recording(call: Any, *args: Any, **kwargs: Any) -> Any:
        hopped.append(getattr(call, "__name__", repr(call)))
        return await real(call, *args, **kwargs)

    monkeypatch.setattr(utils, "run_in_threadpool", recording)
    client, device, crew = fresh
    up = client.post("/v1/traces", content=orjson.dumps(small_trip("hops")), headers={**JSON, **bearer(device)})
    assert up.status_code == 201, up.text
    assert client.get("/v1/defects", headers=bearer(crew)).status_code == 200
    assert client.get("/v1/roughness.geojson").status_code == 200
    assert hopped and set(hopped) == {"get_principal"}, hopped
