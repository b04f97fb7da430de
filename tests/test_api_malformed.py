"""Malformed uploads: each answered with the right 4xx and an error body naming the problem, never a 5xx.

Two tables: every malformed document of ingest's own table (tests/test_ingest_validation.py, one case per error
class and field), sent over HTTP, and the problems only HTTP has (media types, encodings, multipart, zips)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import zip_of
from test_api_support import ROOT, bearer, gz, make_client, small_trip
from test_ingest_validation import CASES, _input

from ingest.errors import FormatError

SENSOR_LOGGER_ZIP = (ROOT / "tests" / "data" / "sensor_logger" / "android.zip").read_bytes()


@pytest.fixture(scope="module")
def upload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db = tmp_path_factory.mktemp("malformed") / "m.db"
    with make_client(db, upload_burst=10_000, upload_rate_per_minute=60_000) as client:
        token = client.post("/v1/devices").json()["token"]

        def send(body: bytes = b"", headers: dict[str, str] | None = None, **kw: Any):
            return client.post("/v1/traces", content=body or None, headers={**bearer(token), **(headers or {})},
                               **kw)

        yield send


def _zip_edited(edit: str) -> bytes:
    """A Sensor Logger zip, deflated, then broken where only unpacking finds it: ``damaged`` (bytes of a member's
    data overwritten), ``encrypted`` (the encryption flag set) or ``method`` (compression method 99, WinZip AES)."""
    with zipfile.ZipFile(io.BytesIO(SENSOR_LOGGER_ZIP)) as z:
        files = {i.filename: z.read(i) for i in z.infolist()}
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    data = bytearray(b.getvalue())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    if edit == "damaged":
        start = local + 30 + int.from_bytes(data[local + 26:local + 28], "little") + int.from_bytes(
            data[local + 28:local + 30], "little")
        data[start + 8:start + 40] = b"\xa5" * 32
    elif edit == "encrypted":
        data[local + 6] |= 1
        data[central + 8] |= 1
    else:
        data[local + 8:local + 10] = data[central + 10:central + 12] = (99).to_bytes(2, "little")
    return bytes(data)


def _check(r: Any, status: int, fragment: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"code", "message", "field"} and err["code"] and err["message"]
    assert fragment in err["message"], err
    if field is not None:
        assert err["field"] == field, err


@pytest.mark.parametrize(("edit", "cls", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_ingest_error_is_a_4xx_naming_the_problem(upload: Any, edit: Any, cls: type, fragment: str) -> None:
    """Documents go as application/json (the bump reader), raw bytes as application/octet-stream (sniffed)."""
    body = _input(edit)
    ctype = "application/octet-stream" if isinstance(edit, bytes) else "application/json"
    r = upload(body, {"Content-Type": ctype})
    status = 415 if issubclass(cls, FormatError) else 422
    if body.startswith(b"\x1f\x8b"):
        status = 400                          # gzip is undone by the HTTP layer: a bad stream is a bad body
    _check(r, status, fragment)
    assert "upload" in r.json()["error"]["message"] or status == 400


def _multipart(fields: dict[str, Any]) -> dict[str, Any]:
    return {"files": fields}


HTTP_CASES: list[tuple[str, bytes, dict[str, str], dict[str, Any], int, str, str | None]] = [
    # id, body, headers, extra request arguments, status, message fragment, field
    ("text-plain", orjson.dumps(small_trip("a")), {"Content-Type": "text/plain"}, {}, 415, "'text/plain' is not",
     "Content-Type"),
    ("no-content-type", orjson.dumps(small_trip("a")), {}, {}, 415, "is missing", "Content-Type"),
    ("csv-content-type", b"t,ax,ay,az\n", {"Content-Type": "text/csv"}, {}, 415, "not accepted", "Content-Type"),
    ("brotli", orjson.dumps(small_trip("a")), {"Content-Type": "application/json", "Content-Encoding": "br"}, {},
     415, "'br' is not accepted", "Content-Encoding"),
    ("empty-body", b"", {"Content-Type": "application/json"}, {}, 400, "is empty", "body"),
    ("gzip-header-plain-body", orjson.dumps(small_trip("a")),
     {"Content-Type": "application/json", "Content-Encoding": "gzip"}, {}, 400, "not valid gzip", "body"),
    ("truncated-gzip", gz(orjson.dumps(small_trip("a")))[:-40], {"Content-Type": "application/json"}, {}, 400,
     "truncated", "body"),
    ("gzip-type-plain-body", orjson.dumps(small_trip("a")), {"Content-Type": "application/gzip"}, {}, 400,
     "not gzip", "body"),
    ("zip-type-json-body", orjson.dumps(small_trip("a")), {"Content-Type": "application/zip"}, {}, 400,
     "not a zip", "body"),
    ("json-type-zip-body", SENSOR_LOGGER_ZIP, {"Content-Type": "application/json"}, {}, 415, "zip archive",
     "Content-Type"),
    ("damaged-zip", b"PK\x03\x04" + b"\x00garbage" * 20, {"Content-Type": "application/zip"}, {}, 400,
     "damaged zip", "body"),
    # damage that only unpacking finds (once a zlib.error, OSError or RuntimeError, and a 500)
    ("zip-damaged-member", _zip_edited("damaged"), {"Content-Type": "application/zip"}, {}, 415,
     "damaged zip archive", None),
    ("zip-encrypted", _zip_edited("encrypted"), {"Content-Type": "application/zip"}, {}, 415,
     "password-protected", None),
    ("zip-unknown-method", _zip_edited("method"), {"Content-Type": "application/zip"}, {}, 415,
     "method bump cannot unpack", None),
    ("zip-not-sensor-logger", zip_of({"notes.txt": "hello", "photo.jpg": b"\xff\xd8"}),
     {"Content-Type": "application/zip"}, {}, 415, "not a format bump knows", None),
    ("sensor-logger-without-accelerometer",
     zip_of({"Location.csv": "time,seconds_elapsed,horizontalAccuracy,speed,bearing,altitude,longitude,latitude\n"
                           "1,0,5,1,1,1,-71,42\n", "Metadata.csv": "version,device name\n1,x\n"}),
     {"Content-Type": "application/zip"}, {}, 415, "no accelerometer file", None),
    ("sensor-logger-non-numeric", zip_of({"TotalAcceleration.csv": "time,seconds_elapsed,z,y,x\n1,0,a,b,c\n",
                                        "Metadata.csv": "version,device name\n1,x\n"}),
     {"Content-Type": "application/zip"}, {}, 422, "not a number", "TotalAcceleration.csv.x"),
    ("json-number", b"42", {"Content-Type": "application/json"}, {}, 422, "must be a JSON object", None),
    ("json-null", b"null", {"Content-Type": "application/json"}, {}, 422, "must be a JSON object", None),
    ("binary-as-json", bytes(range(256)) * 4, {"Content-Type": "application/json"}, {}, 422, "not valid JSON",
     None),
    ("format-missing", orjson.dumps({k: v for k, v in small_trip("a").items() if k != "format"}),
     {"Content-Type": "application/json"}, {}, 415, "expected 'bump.trace/1'", "format"),
    ("multipart-without-file", b"", {}, _multipart({"note": (None, "no file")}), 400, "no file field 'file'",
     "file"),
    ("form-urlencoded", b"", {}, {"data": {"file": "trip"}}, 415, "x-www-form-urlencoded", "Content-Type"),
    ("multipart-file-under-other-name", b"", {},
     _multipart({"upload": ("trip.json", orjson.dumps(small_trip("a")), "application/json")}), 400,
     "no file field 'file'", "file"),
    ("multipart-empty-file", b"", {}, _multipart({"file": ("trip.json", b"", "application/json")}), 400,
     "is empty", "body"),
    ("multipart-bad-zip", b"", {}, _multipart({"file": ("x.zip", b"PK\x03\x04broken", "application/zip")}), 400,
     "damaged zip", "body"),
    ("multipart-no-boundary", b"--x\r\n", {"Content-Type": "multipart/form-data"}, {}, 400, "boundary", None),
]


@pytest.mark.parametrize(("body", "headers", "extra", "status", "fragment", "field"), [c[1:] for c in HTTP_CASES],
                         ids=[c[0] for c in HTTP_CASES])
def test_http_level_problems_are_4xx_naming_the_problem(upload: Any, body: bytes, headers: dict[str, str],
                                                        extra: dict[str, Any], status: int, fragment: str,
                                                        field: str | None) -> None:
    r = upload(body, headers, **extra)
    assert r.status_code == status, r.text
    _check(r, status, fragment, field)


def test_there_are_at_least_30_malformed_uploads() -> None:
    assert len(CASES) + len(HTTP_CASES) >= 30
    assert len({c[0] for c in HTTP_CASES}) == len(HTTP_CASES)


def test_a_valid_upload_still_works_after_the_malformed_ones(upload: Any) -> None:
    r = upload(orjson.dumps(small_trip("fine-after-all")), {"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_no_file_left_behind(tmp_path: Path) -> None:
    """A refused upload stores nothing (the database stays without trips)."""
    db = tmp_path / "x.db"
    with make_client(db) as client:
        tok = client.post("/v1/devices").json()["token"]
        r = client.post("/v1/traces", content=b"{}", headers={**bearer(tok), "Content-Type": "application/json"})
        assert r.status_code == 415
    from bump.store import Store

    with Store.open(db) as store:
        assert store.counts()["trips"] == 0
