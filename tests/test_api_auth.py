"""The auth matrix: every endpoint × every kind of caller, with public read on and off; tokens are random, hashed,
revocable, and a bad token is refused wherever the caller is looked at (even where no token is needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from test_api_support import (
    ROOT,
    Loaded,
    bearer,
    small_trip,
)

from bump.service import authenticate
from bump.store import Store

ROLES = ("none", "owner", "other_device", "crew", "admin", "revoked", "garbage")
WRITE_DEFECT = {"status": "dismissed", "note": "checked on site"}

pytest_plugins = ("test_api_support",)     # its fixtures: loaded_db, client_for


def _headers(role: str, loaded: Loaded, owner: str, other: str) -> dict[str, str]:
    tokens = {"owner": loaded.devices[owner], "other_device": loaded.devices[other], "crew": loaded.crew,
              "admin": loaded.admin, "revoked": loaded.revoked, "garbage": "x" * 43}
    if role == "none":
        return {}
    return bearer(tokens[role])


# endpoint -> expected status for (none, owner, other_device, crew, admin, revoked, garbage), public read ON
MATRIX_PUBLIC: dict[str, tuple[int, ...]] = {
    "POST /v1/devices":                (201, 201, 201, 201, 201, 201, 201),
    "POST /v1/traces":                 (401, 201, 201, 403, 403, 401, 401),
    "GET /v1/trips/{trip}":            (401, 200, 403, 200, 200, 401, 401),
    "GET /v1/defects":                 (200, 200, 200, 200, 200, 401, 401),
    "GET /v1/defects.geojson":         (200, 200, 200, 200, 200, 401, 401),
    "GET /v1/defects.csv":             (200, 200, 200, 200, 200, 401, 401),
    "GET /v1/defects/{defect}":        (200, 200, 200, 200, 200, 401, 401),
    "PATCH /v1/defects/{defect}":      (401, 403, 403, 200, 200, 401, 401),
    "GET /v1/roughness.geojson":       (200, 200, 200, 200, 200, 401, 401),
    "GET /v1/coverage.geojson":        (200, 200, 200, 200, 200, 401, 401),
    "GET /open311/v2/services.json":   (200, 200, 200, 200, 200, 200, 200),
    "GET /open311/v2/requests.json":   (200, 200, 200, 200, 200, 401, 401),
    "GET /open311/v2/requests/{defect}.json": (200, 200, 200, 200, 200, 401, 401),
    "GET /healthz":                    (200, 200, 200, 200, 200, 200, 200),
    "GET /metrics":                    (200, 200, 200, 200, 200, 200, 200),
    "GET /v1/config":                  (200, 200, 200, 200, 200, 200, 200),
}
# public read OFF: defect, map and Open311 reads need a token (any role)
PRIVATE_READS = ("GET /v1/defects", "GET /v1/defects.geojson", "GET /v1/defects.csv", "GET /v1/defects/{defect}",
                 "GET /v1/roughness.geojson", "GET /v1/coverage.geojson", "GET /open311/v2/requests.json",
                 "GET /open311/v2/requests/{defect}.json")
MATRIX_PRIVATE = {**MATRIX_PUBLIC, **{e: (401, 200, 200, 200, 200, 401, 401) for e in PRIVATE_READS}}


def _call(client, endpoint: str, headers: dict[str, str], trip: str, defect: int, n: int):
    method, path = endpoint.split(" ")
    path = path.format(trip=trip, defect=defect)
    if endpoint == "POST /v1/traces":
        body = orjson.dumps(small_trip(f"matrix-{n}"))
        return client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
    if method == "PATCH":
        return client.patch(path, json={**WRITE_DEFECT, "note": f"checked {n}"}, headers=headers)
    return client.request(method, path, headers=headers)


@pytest.mark.parametrize("public_read", [True, False], ids=["public-read", "private-read"])
def test_auth_matrix(client_for, loaded_db: Loaded, public_read: bool) -> None:
    client = client_for(public_read=public_read)
    trip, owner = next(iter(loaded_db.trip_device.items()))
    other = next(d for d in loaded_db.devices if d != owner)
    defect = client.get("/v1/defects", params={"status": "confirmed"}, headers=bearer(loaded_db.crew)
                        ).json()["defects"][0]["id"]
    matrix = MATRIX_PUBLIC if public_read else MATRIX_PRIVATE
    problems = []
    n = 0
    for endpoint, expected in matrix.items():
        for role, want in zip(ROLES, expected, strict=True):
            n += 1
            r = _call(client, endpoint, _headers(role, loaded_db, owner, other), trip, defect, n)
            if endpoint.startswith("PATCH") and r.status_code == 200:      # undo, so the next crew call is allowed
                client.patch(f"/v1/defects/{defect}", json={"status": "reopen", "note": "undo"},
                             headers=bearer(loaded_db.crew))
            if r.status_code != want:
                problems.append(f"{endpoint} as {role}: {r.status_code} (want {want}) {r.text[:120]}")
            elif want in (401, 403) and not endpoint.startswith("GET /open311"):
                err = r.json()["error"]
                if err["code"] != {401: "unauthorized", 403: "forbidden"}[want] or err["field"] not in (
                        "Authorization", "trip_id"):
                    problems.append(f"{endpoint} as {role}: error body {err}")
                if want == 401 and r.headers.get("www-authenticate") != "Bearer":
                    problems.append(f"{endpoint} as {role}: no WWW-Authenticate")
    assert problems == []
    assert n == len(matrix) * len(ROLES)


def test_malformed_authorization_headers_are_401(client_for) -> None:
    client = client_for()
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token-without-scheme", "Bearer short"):
        r = client.get("/v1/defects", headers={"Authorization": value})
        assert r.status_code == 401, value
        assert r.json()["error"]["field"] == "Authorization"


def test_tokens_never_start_with_a_dash_and_one_that_does_is_revoked_after_double_dash(tmp_path: Path,
                                                                                       capsys) -> None:
    from bump.cli.main import main
    from bump.service import new_token, token_digest

    assert not any(new_token().startswith("-") for _ in range(3000))    # 1 in 64 would without the redraw
    db = tmp_path / "t.db"
    with Store.open(db) as store:
        store.add_token(prefix="-dashed1", token_sha256=token_digest("-dashed1rest"), role="crew", device_id=None,
                        label="old", created_at_s=0.0)
    assert main(["token", "revoke", "--db", str(db), "--", "-dashed1"]) == 0
    assert "revoked crew token" in capsys.readouterr().out


def test_token_cli_create_and_revoke(client_for, loaded_db: Loaded, tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    db.write_bytes(loaded_db.path.read_bytes())
    cmd = [sys.executable, "-m", "bump.cli.main", "token"]
    out = subprocess.run([*cmd, "create", "--role", "crew", "--label", "night shift", "--db", str(db)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    token = out.stdout.strip().splitlines()[-1]
    assert len(token) >= 40 and " " not in token
    with Store.open(db) as store:
        who = authenticate(store, token)
    assert who.role == "crew" and who.label == "night shift"
    listing = subprocess.run([*cmd, "list", "--db", str(db)], capture_output=True, text=True, check=True, cwd=ROOT)
    assert token[:8] in listing.stdout and token not in listing.stdout
    subprocess.run([*cmd, "revoke", token[:8], "--db", str(db)], capture_output=True, text=True, check=True, cwd=ROOT)
    with Store.open(db) as store:
        with pytest.raises(Exception, match="revoked"):
            authenticate(store, token)
    bad = subprocess.run([*cmd, "create", "--role", "device", "--db", str(db)], capture_output=True, text=True,
                         cwd=ROOT)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    missing = subprocess.run([*cmd, "revoke", "zzzzzzzz", "--db", str(db)], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and "no live token" in missing.stderr


def test_closed_registration_is_403_and_creates_nothing(tmp_path: Path) -> None:
    from test_api_support import make_client

    with make_client(tmp_path / "c.db", device_registration=False) as client:
        r = client.post("/v1/devices")
    assert r.status_code == 403 and r.json()["error"]["field"] == "device_registration"
    with Store.open(tmp_path / "c.db") as store:
        assert store.list_tokens() == []
