"""Every endpoint through HTTP: registration, uploads (idempotent retry, formats), trips, the ranked defects in
JSON / GeoJSON (RFC 7946) / CSV with filters and cursor pages, a defect's detail, crew status changes, the cell
maps, Open311 GeoReport v2, health, config, metrics, and the privacy rules."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from test_api_support import (
    JSON_GZ,
    ROOT,
    SAMPLE_TRIPS,
    Loaded,
    bearer,
    distance_to_trip_ends_m,
    gz,
    make_client,
    positions,
    small_trip,
)

from bump import service
from bump.store import SCHEMA_VERSION, Store
from detect.params import DetectorParams

# ------------------------------------------------------------------------------------------- devices, uploads

pytest_plugins = ("test_api_support",)     # its fixtures: loaded_db, client_for


def test_registering_a_device_gives_a_token_that_is_stored_only_as_a_hash(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with make_client(db) as client:
        a, b = client.post("/v1/devices"), client.post("/v1/devices")
    assert a.status_code == b.status_code == 201
    ra, rb = a.json(), b.json()
    assert ra["device_id"] != rb["device_id"] and ra["token"] != rb["token"]
    assert len(ra["token"]) >= 40
    with Store.open(db) as store:
        rows = store.list_tokens()
    assert {r["device_id"] for r in rows} == {ra["device_id"], rb["device_id"]}
    assert hashlib.sha256(ra["token"].encode()).hexdigest() in {r["token_sha256"] for r in rows}
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert ra["token"].encode() not in raw and rb["token"].encode() not in raw


def test_upload_then_retry_gives_201_then_200_with_the_same_summary_and_the_tokens_device(tmp_path: Path) -> None:
    body = orjson.dumps(small_trip("retry-1", device_id="what-the-body-claims"))
    with make_client(tmp_path / "a.db") as client:
        reg = client.post("/v1/devices").json()
        h = {**bearer(reg["token"]), "Content-Type": "application/json"}
        first = client.post("/v1/traces", content=body, headers=h)
        again = client.post("/v1/traces", content=gz(body), headers={**h, "Content-Encoding": "gzip"})
        trip = client.get("/v1/trips/retry-1", headers=bearer(reg["token"]))
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    s = first.json()
    assert s["trip_id"] == "retry-1" and s["samples"] == 1000 and s["duration_s"] == pytest.approx(19.98)
    assert trip.status_code == 200 and trip.json()["device_id"] == reg["device_id"]
    with Store.open(tmp_path / "a.db") as store:
        assert store.counts()["trips"] == 1
        assert store.get_trip("retry-1")["device_id"] == reg["device_id"]


def test_a_trip_id_of_another_device_or_with_other_content_is_a_conflict(tmp_path: Path) -> None:
    with make_client(tmp_path / "a.db") as client:
        a, b = (client.post("/v1/devices").json()["token"] for _ in range(2))
        h = {"Content-Type": "application/json"}
        assert client.post("/v1/traces", content=orjson.dumps(small_trip("t")), headers={**h, **bearer(a)}
                           ).status_code == 201
        other_device = client.post("/v1/traces", content=orjson.dumps(small_trip("t")), headers={**h, **bearer(b)})
        other_content = client.post("/v1/traces", content=orjson.dumps(small_trip("t", seed=5)),
                                    headers={**h, **bearer(a)})
    assert other_device.status_code == 409 and "another device" in other_device.json()["error"]["message"]
    assert other_content.status_code == 409 and "other content" in other_content.json()["error"]["message"]
    assert other_content.json()["error"]["field"] == "trip_id"


@pytest.mark.parametrize("how", ["multipart", "application/zip", "multipart-json-gz", "application/gzip",
                                 "octet-stream"])
def test_upload_formats(tmp_path: Path, how: str) -> None:
    zip_bytes = (ROOT / "tests" / "data" / "sensor_logger" / "android.zip").read_bytes()
    json_gz = gz(orjson.dumps(small_trip("fmt")))
    with make_client(tmp_path / "a.db") as client:
        h = bearer(client.post("/v1/devices").json()["token"])
        if how == "multipart":
            r = client.post("/v1/traces", files={"file": ("export.zip", zip_bytes, "application/zip")}, headers=h)
        elif how == "multipart-json-gz":
            r = client.post("/v1/traces", files={"file": ("trip.json.gz", json_gz, "application/gzip")}, headers=h)
        elif how == "application/zip":
            r = client.post("/v1/traces", content=zip_bytes, headers={**h, "Content-Type": "application/zip"})
        elif how == "application/gzip":
            r = client.post("/v1/traces", content=json_gz, headers={**h, "Content-Type": "application/gzip"})
        else:
            r = client.post("/v1/traces", content=json_gz, headers={**h, "Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert r.json()["samples"] >= 100


# ------------------------------------------------------------------------------------------------- trips


def test_trip_detail_has_the_impacts_with_positions_trimmed_near_the_ends(client_for, loaded_db: Loaded) -> None:
    client = client_for()
    trip_id, dev = next(iter(loaded_db.trip_device.items()))
    r = client.get(f"/v1/trips/{trip_id}", headers=bearer(loaded_db.devices[dev]))
    assert r.status_code == 200
    t = r.json()
    assert t["trip_id"] == trip_id and t["device_id"] == dev and t["impacts"] == len(t["impact_list"]) > 0
    kept = [i for i in t["impact_list"] if not i["trimmed"]]
    trimmed = [i for i in t["impact_list"] if i["trimmed"]]
    assert kept and trimmed
    assert all(i["lat"] is None and i["lon"] is None for i in trimmed)
    assert all(i["spot_kind"] == i["kind"] for i in t["impact_list"] if i["kind"] != "rough")
    d = distance_to_trip_ends_m([(i["lat"], i["lon"]) for i in kept], {trip_id: loaded_db.trip_ends[trip_id]})
    assert d.min() > 200.0
    untrimmed = client_for(privacy_trim_m=0).get(f"/v1/trips/{trip_id}", headers=bearer(loaded_db.crew)).json()
    assert all(i["lat"] is not None for i in untrimmed["impact_list"])


def test_a_trip_id_with_slashes_can_be_read_back(tmp_path: Path) -> None:
    """Ids like "2026/05/04-morning" are accepted, so they must be readable, encoded or not (once a 404)."""
    with make_client(tmp_path / "a.db") as client:
        h = bearer(client.post("/v1/devices").json()["token"])
        up = client.post("/v1/traces", content=orjson.dumps(small_trip("2026/05/04-morning")),
                         headers={**h, "Content-Type": "application/json"})
        encoded = client.get("/v1/trips/2026%2F05%2F04-morning", headers=h)
        plain = client.get("/v1/trips/2026/05/04-morning", headers=h)
    assert up.status_code == 201, up.text
    for r in (encoded, plain):
        assert r.status_code == 200, r.text
        assert r.json()["trip_id"] == "2026/05/04-morning"


def test_unknown_trip_is_404(client_for, loaded_db: Loaded) -> None:
    r = client_for().get("/v1/trips/nope", headers=bearer(loaded_db.crew))
    assert r.status_code == 404 and r.json()["error"]["field"] == "trip_id"


# ------------------------------------------------------------------------------------------------- defects


def _all_pages(client, url: str, limit: int, **params: str) -> tuple[list[dict], int]:
    out, cursor, pages = [], None, 0
    while True:
        r = client.get(url, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["defects"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return out, pages


def test_defects_are_ranked_and_cursor_pages_cover_them_once(client_for) -> None:
    client = client_for()
    whole = client.get("/v1/defects", params={"status": "all", "kind": "all", "limit": 5000}).json()
    assert whole["next_cursor"] is None and len(whole["defects"]) >= 5
    prio = [d["priority"] for d in whole["defects"]]
    assert prio == sorted(prio, reverse=True)
    paged, pages = _all_pages(client, "/v1/defects", 2, status="all", kind="all")
    assert pages >= 3
    assert [d["id"] for d in paged] == [d["id"] for d in whole["defects"]]


def test_default_list_is_open_spot_defects_and_filters_apply(client_for) -> None:
    client = client_for()
    every = client.get("/v1/defects", params={"status": "all", "kind": "all"}).json()["defects"]
    default = client.get("/v1/defects").json()["defects"]
    assert {d["status"] for d in default} <= {"candidate", "confirmed", "likely_repaired"}
    assert {d["kind"] for d in default} <= {"pothole", "cover", "unknown"}
    assert len(default) < len(every)
    confirmed = client.get("/v1/defects", params={"status": "confirmed", "kind": "all"}).json()["defects"]
    assert confirmed and all(d["status"] == "confirmed" for d in confirmed)
    assert len(confirmed) == sum(d["status"] == "confirmed" for d in every)
    potholes = client.get("/v1/defects", params={"kind": "pothole"}).json()["defects"]
    assert potholes and all(d["kind"] == "pothole" for d in potholes)
    conf = sorted(d["confidence"] for d in every)
    mid = conf[len(conf) // 2]
    strong = client.get("/v1/defects", params={"status": "all", "kind": "all", "min_confidence": mid}).json()
    assert all(d["confidence"] >= mid for d in strong["defects"])
    assert len(strong["defects"]) == sum(c >= mid for c in conf)
    west = min(d["lon"] for d in every)
    box = f"{west - 0.0001},42.0,{west + 0.0005},43.0"
    inside = client.get("/v1/defects", params={"status": "all", "kind": "all", "bbox": box}).json()["defects"]
    assert inside and len(inside) < len(every) and all(d["lon"] <= west + 0.0005 for d in inside)
    future = client.get("/v1/defects", params={"status": "all", "kind": "all", "since": "2030-01-01T00:00:00Z"})
    assert future.status_code == 200 and future.json()["defects"] == []
    bad = client.get("/v1/defects", params={"status": "fixed"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status" and "'fixed'" in bad.text
    assert client.get("/v1/defects", params={"limit": 5001}).status_code == 422
    assert client.get("/v1/defects", params={"bbox": "1,2,3"}).json()["error"]["field"] == "bbox"
    assert client.get("/v1/defects", params={"cursor": "%%%"}).json()["error"]["field"] == "cursor"


def test_geojson_is_rfc7946(client_for) -> None:
    client = client_for()
    r = client.get("/v1/defects.geojson", params={"status": "all", "kind": "all"})
    js = client.get("/v1/defects", params={"status": "all", "kind": "all"}).json()["defects"]
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(js)
    for f, d in zip(fc["features"], js, strict=True):
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Point" and f["id"] == d["id"]
        lon, lat = f["geometry"]["coordinates"]
        assert (lon, lat) == (d["lon"], d["lat"])                    # [longitude, latitude] order
        assert -180 <= lon <= 180 and -90 <= lat <= 90
        assert round(lon, 6) == lon and round(lat, 6) == lat
        assert "crs" not in fc and f["properties"]["kind"] == d["kind"]
    for layer in ("roughness", "coverage"):
        g = client.get(f"/v1/{layer}.geojson")
        assert g.status_code == 200 and g.headers["content-type"].startswith("application/geo+json")
        feats = g.json()["features"]
        assert feats and all(-72 < f["geometry"]["coordinates"][0] < -70 for f in feats)
        assert all(isinstance(f["properties"]["cell_key"], str) for f in feats)   # 64-bit keys as strings
    rough = client.get("/v1/roughness.geojson").json()["features"][0]["properties"]
    assert rough["n_readings"] >= 3 and rough["iri_upper"] >= rough["iri_mean"] > 0
    cover = client.get("/v1/coverage.geojson").json()["features"][0]["properties"]
    assert cover["passes"] >= cover["devices"] >= 1


def test_csv_has_lat_lon_columns_in_priority_order(client_for) -> None:
    client = client_for()
    r = client.get("/v1/defects.csv", params={"status": "all", "kind": "all", "limit": 3})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    js = client.get("/v1/defects", params={"status": "all", "kind": "all", "limit": 3}).json()
    assert [int(x["id"]) for x in rows] == [d["id"] for d in js["defects"]]
    assert [float(x["lat"]) for x in rows] == [d["lat"] for d in js["defects"]]
    assert rows[0]["first_seen"].endswith("Z")
    assert "rel=\"next\"" in r.headers["link"] and js["next_cursor"] in r.headers["link"]
    # the link keeps the request's filters and limit (once it was "?cursor=..." alone: default filters, 100 rows)
    link = r.headers["link"].split(">")[0].lstrip("<")
    assert link.startswith("?")
    page2 = list(csv.DictReader(io.StringIO(client.get("/v1/defects.csv" + link).text)))
    js2 = client.get("/v1/defects", params={"status": "all", "kind": "all", "limit": 3,
                                            "cursor": js["next_cursor"]}).json()
    assert [int(x["id"]) for x in page2] == [d["id"] for d in js2["defects"]] and len(page2) == 3


def test_defect_detail_crews_see_hits_and_devices_the_public_does_not(client_for, loaded_db: Loaded) -> None:
    client = client_for()
    did = client.get("/v1/defects", params={"status": "confirmed"}).json()["defects"][0]["id"]
    crew = client.get(f"/v1/defects/{did}", headers=bearer(loaded_db.crew))
    public = client.get(f"/v1/defects/{did}")
    assert crew.status_code == public.status_code == 200
    c, p = crew.json(), public.json()
    assert c["id"] == p["id"] == did and c["history"] and c["history"][0]["to"] == "candidate"
    assert len(c["hits_list"]) == c["hits"] and {h["device_id"] for h in c["hits_list"]} <= set(loaded_db.devices)
    assert all(h["spot_kind"] == h["kind"] for h in c["hits_list"] if h["kind"] != "rough")
    assert all(x["trip_id"] in loaded_db.trip_device for x in c["passes"])
    assert p["hits_list"] is None and all(x["trip_id"] is x["device_id"] is None for x in p["passes"])
    assert not any(dev in public.text for dev in loaded_db.devices)
    assert client.get("/v1/defects/999999").status_code == 404


def test_a_crew_confirms_a_candidate_seen_on_site(client_for, loaded_db: Loaded) -> None:
    """The issue's PATCH list: confirmed | repaired | dismissed (confirmed was once refused with a 422)."""
    client = client_for()
    cand = client.get("/v1/defects", params={"status": "candidate", "kind": "all"}).json()["defects"][0]
    r = client.patch(f"/v1/defects/{cand['id']}", json={"status": "confirmed", "note": "seen on site"},
                     headers=bearer(loaded_db.crew))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["status"] == "confirmed" and d["crew_status"] == "confirmed" and d["hits"] == cand["hits"]
    assert d["history"][-1]["to"] == "confirmed" and d["history"][-1]["reason"] == "seen on site"
    assert str(cand["id"]) in {q["service_request_id"] for q in client.get("/open311/v2/requests.json").json()}


def test_a_crew_decision_dated_in_the_future_or_before_the_defect_is_422(client_for, loaded_db: Loaded) -> None:
    """A repair dated 2999 would make every later hit one "before the repair" (once accepted as given)."""
    client = client_for()
    d = client.get("/v1/defects", params={"status": "confirmed", "kind": "pothole"}).json()["defects"][0]
    h = bearer(loaded_db.crew)
    for at in ("2999-01-01T00:00:00Z", "1970-01-01T00:00:00Z"):
        r = client.patch(f"/v1/defects/{d['id']}", json={"status": "repaired", "note": "x", "at": at}, headers=h)
        assert r.status_code == 422 and r.json()["error"]["field"] == "at", r.text
    assert client.get(f"/v1/defects/{d['id']}").json()["status"] == "confirmed"
    last_pass = client.get(f"/v1/defects/{d['id']}").json()["passes"][0]["at"]       # newest first
    at = (datetime.fromisoformat(last_pass) + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    ok = client.patch(f"/v1/defects/{d['id']}", json={"status": "repaired", "note": "x", "at": at}, headers=h)
    assert ok.status_code == 200 and ok.json()["status_since"] == at, ok.text


def test_crew_status_change_is_recorded_and_conflicts_are_409(client_for, loaded_db: Loaded) -> None:
    client = client_for()
    did = client.get("/v1/defects", params={"status": "confirmed", "kind": "pothole"}).json()["defects"][0]["id"]
    h = bearer(loaded_db.crew)
    r = client.patch(f"/v1/defects/{did}", json={"status": "repaired", "note": "patched, work order 17"}, headers=h)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["status"] == "repaired" and d["crew_status"] == "repaired"
    assert d["history"][-1]["to"] == "repaired" and d["history"][-1]["reason"] == "patched, work order 17"
    assert d["history"][-1]["by"] == "test crew"
    assert did not in [x["id"] for x in client.get("/v1/defects").json()["defects"]]
    assert did in [x["id"] for x in client.get("/v1/defects", params={"status": "repaired"}).json()["defects"]]
    again = client.patch(f"/v1/defects/{did}", json={"status": "repaired", "note": "again"}, headers=h)
    assert again.status_code == 409 and again.json()["error"]["field"] == "status"
    reopened = client.patch(f"/v1/defects/{did}", json={"status": "reopen", "note": "not fixed"}, headers=h)
    assert reopened.status_code == 200 and reopened.json()["status"] == "confirmed"
    again = client.patch(f"/v1/defects/{did}", json={"status": "confirmed", "note": "x"}, headers=h)
    assert again.status_code == 409 and "already confirmed" in again.json()["error"]["message"]
    for body, field in (({"status": "fixed", "note": "x"}, "status"), ({"status": "dismissed"}, "note"),
                        ({"status": "dismissed", "note": ""}, "note")):
        r = client.patch(f"/v1/defects/{did}", json=body, headers=h)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
    assert client.patch("/v1/defects/999999", json={"status": "dismissed", "note": "x"}, headers=h).status_code == 404


# ---------------------------------------------------------------------------------------------------- Open311


def test_open311_services_and_requests(client_for, loaded_db: Loaded) -> None:
    client = client_for()
    services = client.get("/open311/v2/services.json").json()
    assert {s["service_code"] for s in services} == {"pothole", "cover", "unknown"}
    assert all(set(s) >= {"service_code", "service_name", "description", "metadata", "type"} for s in services)
    reqs = client.get("/open311/v2/requests.json").json()
    confirmed = client.get("/v1/defects", params={"status": "confirmed"}).json()["defects"]
    assert {r["service_request_id"] for r in reqs} == {str(d["id"]) for d in confirmed}
    by_id = {str(d["id"]): d for d in confirmed}
    for r in reqs:
        assert r["status"] == "open" and r["service_code"] == by_id[r["service_request_id"]]["kind"]
        assert (r["lat"], r["long"]) == (by_id[r["service_request_id"]]["lat"], by_id[r["service_request_id"]]["lon"])
        assert r["requested_datetime"].endswith("+00:00") and r["updated_datetime"] >= r["requested_datetime"]
        for key in ("status_notes", "service_name", "description", "agency_responsible", "address", "zipcode",
                    "media_url", "expected_datetime"):
            assert key in r
    target = reqs[0]["service_request_id"]
    client.patch(f"/v1/defects/{target}", json={"status": "repaired", "note": "filled"},
                 headers=bearer(loaded_db.crew))
    closed = client.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    assert [r["service_request_id"] for r in closed] == [target] and closed[0]["status_notes"] == "filled"
    assert target not in {r["service_request_id"] for r in client.get("/open311/v2/requests.json",
                                                                       params={"status": "open"}).json()}
    codes = client.get("/open311/v2/requests.json", params={"service_code": "pothole"}).json()
    assert codes and all(r["service_code"] == "pothole" for r in codes)
    # "all": every kind that is a service; confirmed speed bumps and joints are not (once a KeyError, a 500)
    listed = client.get("/v1/defects", params={"status": "confirmed", "kind": "all"}).json()["defects"]
    assert {d["kind"] for d in listed} - {"pothole", "cover", "unknown"}
    every = client.get("/open311/v2/requests.json", params={"service_code": "all"})
    assert every.status_code == 200 and {r["service_request_id"] for r in every.json()} == {
        r["service_request_id"] for r in reqs}
    assert client.get("/open311/v2/requests.json", params={"start_date": "2030-01-01T00:00:00Z"}).json() == []
    assert len(client.get("/open311/v2/requests.json", params={"end_date": "2030-01-01T00:00:00+00:00"}).json()
               ) == len(reqs)
    one = client.get(f"/open311/v2/requests/{target}.json").json()
    assert len(one) == 1 and one[0]["service_request_id"] == target and one[0]["status"] == "closed"
    several = client.get("/open311/v2/requests.json",
                         params={"service_request_id": f"{reqs[1]['service_request_id']},{target}"}).json()
    assert {r["service_request_id"] for r in several} == {target, reqs[1]["service_request_id"]}
    candidate = client.get("/v1/defects", params={"status": "candidate", "kind": "all"}).json()["defects"][0]["id"]
    missing = client.get(f"/open311/v2/requests/{candidate}.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404 and missing.json()[0]["description"]
    bad = client.get("/open311/v2/requests.json", params={"start_date": "yesterday"})
    assert bad.status_code == 400 and "start_date" in bad.json()[0]["description"]


# --------------------------------------------------------------------------------------- service endpoints


def test_health_config_and_metrics(tmp_path: Path) -> None:
    with make_client(tmp_path / "a.db", tile_url="https://tiles.example/{z}/{x}/{y}.png") as client:
        assert client.get("/healthz").json() == {"status": "ok", "schema_version": SCHEMA_VERSION}
        assert client.get("/v1/config").json() == {"tile_url": "https://tiles.example/{z}/{x}/{y}.png",
                                                   "tile_attribution": None, "public_read": True,
                                                   "privacy_trim_m": 200.0, "cell_size_m": 20.0}
        tok = client.post("/v1/devices").json()["token"]
        body = orjson.dumps(small_trip("m1"))
        client.post("/v1/traces", content=body, headers={**bearer(tok), "Content-Type": "application/json"})
        client.post("/v1/traces", content=b"x", headers={**bearer(tok), "Content-Type": "text/plain"})
        text = client.get("/metrics").text
    assert 'bump_uploads_total{result="created"} 1' in text
    assert f"bump_upload_bytes_total {len(body)}" in text
    assert "bump_upload_samples_total 1000" in text
    assert 'bump_errors_total{code="unsupported_media_type"} 1' in text
    assert 'bump_http_requests_total{method="POST",route="/v1/traces",status="415"} 1' in text
    assert 'bump_http_request_duration_seconds_bucket{route="/v1/traces",le="+Inf"} 2' in text
    assert 'bump_http_request_duration_seconds_count{route="/v1/traces"} 2' in text
    assert client.get("/v1/config").json()["tile_url"] is not None
    with make_client(tmp_path / "b.db") as client:
        assert client.get("/v1/config").json()["tile_url"] is None
        assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200


def test_workers_warm_up_before_serving_unless_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(service, "warm_up", lambda params: calls.append(params))
    with make_client(tmp_path / "a.db"):
        assert len(calls) == 1 and isinstance(calls[0], DetectorParams)
    with make_client(tmp_path / "b.db", warm_up=False):
        assert len(calls) == 1


def test_warm_up_leaves_no_calibration_for_the_first_upload_to_make() -> None:
    from detect import roughness

    service.warm_up(rates_hz=(100.0,))
    misses = roughness._calibration.cache_info().misses
    service.warm_up(rates_hz=(100.0,))                 # another drive at the same rate: nothing new to compute
    assert roughness._calibration.cache_info().misses == misses
    service.warm_up(rates_hz=(37.0,))                  # a rate it was not warmed for: one new table
    assert roughness._calibration.cache_info().misses > misses


def test_openapi_documents_every_endpoint_with_tags(tmp_path: Path) -> None:
    with make_client(tmp_path / "a.db") as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    paths = spec["paths"]
    for p in ("/v1/devices", "/v1/traces", "/v1/trips/{trip_id}", "/v1/defects", "/v1/defects.geojson",
              "/v1/defects.csv", "/v1/defects/{defect_id}", "/v1/roughness.geojson", "/v1/coverage.geojson",
              "/open311/v2/services.json", "/open311/v2/requests.json",
              "/open311/v2/requests/{service_request_id}.json", "/healthz", "/metrics", "/v1/config"):
        assert p in paths, p
        for op in paths[p].values():
            assert op["tags"], p
    assert "multipart/form-data" in paths["/v1/traces"]["post"]["requestBody"]["content"]
    assert {"200", "201", "413", "415", "429"} <= set(paths["/v1/traces"]["post"]["responses"])


# ---------------------------------------------------------------------------------------------------- privacy


def _public_answers(client, loaded: Loaded) -> dict[str, object]:
    did = client.get("/v1/defects", params={"status": "all", "kind": "all"}).json()["defects"]
    return {
        "defects": client.get("/v1/defects", params={"status": "all", "kind": "all", "limit": 5000}).json(),
        "geojson": client.get("/v1/defects.geojson", params={"status": "all", "kind": "all"}).json(),
        "csv": [{"lat": float(r["lat"]), "lon": float(r["lon"])} for r in csv.DictReader(io.StringIO(
            client.get("/v1/defects.csv", params={"status": "all", "kind": "all"}).text))],
        "details": [client.get(f"/v1/defects/{d['id']}").json() for d in did],
        "roughness": client.get("/v1/roughness.geojson", params={"min_readings": 1}).json(),
        "coverage": client.get("/v1/coverage.geojson").json(),
        "open311": client.get("/open311/v2/requests.json").json(),
    }


def test_no_gps_near_trip_ends_and_no_device_ids_in_public_answers(client_for, loaded_db: Loaded) -> None:
    client = client_for(privacy_min_devices=10**6)      # no defect is shown for being hit by many devices
    answers = _public_answers(client, loaded_db)
    text = orjson.dumps(answers).decode()
    assert not any(dev in text for dev in loaded_db.devices)
    assert not any(trip in text for trip in loaded_db.trip_device)
    for name, ans in answers.items():
        d = distance_to_trip_ends_m(positions(ans), loaded_db.trip_ends)
        assert d.size and d.min() > 175.0, name        # aggregates: 200 m less a cell / GPS noise
    crew = bearer(loaded_db.crew)
    raw = []
    for trip_id in loaded_db.trip_device:
        t = client.get(f"/v1/trips/{trip_id}", headers=crew).json()
        raw += [((i["lat"], i["lon"]), trip_id) for i in t["impact_list"] if i["lat"] is not None]
    for d in client.get("/v1/defects", params={"status": "all", "kind": "all"}).json()["defects"]:
        detail = client.get(f"/v1/defects/{d['id']}", headers=crew).json()
        raw += [((h["lat"], h["lon"]), h["trip_id"]) for h in detail["hits_list"] if h["lat"] is not None]
    assert len(raw) > 20
    own = np.array([distance_to_trip_ends_m([p], {t: loaded_db.trip_ends[t]})[0] for p, t in raw])
    assert own.min() > 200.0                           # raw per-trip positions: strictly outside own trip's zones


def test_without_the_trim_positions_near_the_ends_would_show(client_for, loaded_db: Loaded) -> None:
    answers = _public_answers(client_for(privacy_trim_m=0), loaded_db)
    d = distance_to_trip_ends_m(positions(answers["coverage"]), loaded_db.trip_ends)
    assert d.min() < 50.0
    n_trimmed = len(_public_answers(client_for(privacy_min_devices=10**6), loaded_db)["defects"]["defects"])
    assert len(answers["defects"]["defects"]) > n_trimmed     # defects seen only near trip ends are withheld


def test_a_defect_near_trip_ends_is_shown_once_three_devices_hit_it(client_for, loaded_db: Loaded) -> None:
    # every sample trip drives one route: its worst potholes lie within 200 m of trips' ends, hit by 4-5 phones
    query = {"status": "all", "kind": "all", "limit": 5000}
    strict = {d["id"] for d in client_for(privacy_min_devices=10**6).get("/v1/defects", params=query).json()["defects"]}
    shown = client_for().get("/v1/defects", params=query).json()["defects"]
    extra = [d for d in shown if d["id"] not in strict]
    assert extra and all(d["devices"] >= 3 for d in extra)
    crew = bearer(loaded_db.crew)
    for d in extra:                                                   # their hits' positions stay trimmed
        hits = client_for().get(f"/v1/defects/{d['id']}", headers=crew).json()["hits_list"]
        assert hits and all(h["lat"] is None and h["trimmed"] for h in hits)


def test_sample_database_has_what_the_tests_rely_on(loaded_db: Loaded) -> None:
    with Store.open(loaded_db.path) as store:
        counts = store.count_defects()
        assert store.counts()["trips"] == len(SAMPLE_TRIPS) == 12
    assert sum(n for (st, _), n in counts.items() if st == "confirmed") >= 3
    assert len(loaded_db.devices) == 6 and not math.isnan(sum(sum(e) for e in loaded_db.trip_ends.values()))
    assert JSON_GZ["Content-Encoding"] == "gzip"


def test_serve_demo_ingests_a_folder_and_makes_a_crew_token(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bump.cli import serve
    from bump.service import authenticate

    folder = tmp_path / "traces"
    folder.mkdir()
    for f in SAMPLE_TRIPS[:2]:
        (folder / f.name).write_bytes(f.read_bytes())
    db = tmp_path / "demo" / "bump.db"
    token = serve.demo(str(folder), db)
    again = serve.demo(str(folder), db)                      # a second run skips the stored trips
    assert "2 trips ingested" in capsys.readouterr().out
    with Store.open(db) as store:
        assert store.counts()["trips"] == 2
        assert authenticate(store, token).role == authenticate(store, again).role == "crew"


def test_recordings_of_one_unknown_phone_do_not_make_a_spot_near_home_public() -> None:
    """Readers once gave each recording without a device id its own id (sensorlogger-anon-<hash>); an older
    database still holds them: they are one unknown phone, so three of its trips near home keep the spot hidden."""
    from detect.columns import Columns

    class Hits:                      # the store's one read that hidden_defects makes
        def hits_of_defects(self, ids, columns):
            devices = ["sensorlogger-anon-1a", "sensorlogger-anon-2b", "sensorlogger-unknown",   # one phone
                       "dev-a", "dev-b", "dev-c"]                                              # three phones
            return Columns({"hit_id": np.arange(6), "defect_id": np.array([1, 1, 1, 2, 2, 2]),
                            "trip_id": np.array([f"t{i}" for i in range(6)]), "device_id": np.array(devices),
                            "lat_deg": np.zeros(6), "lon_deg": np.zeros(6)})

    zones = service.PrivacyZones(200.0)
    zones.private = lambda store, trips, lat, lon, margin_m=0.0: np.ones(len(trips), dtype=bool)  # all near ends
    assert zones.hidden_defects(Hits(), [1, 2]) == {1}
