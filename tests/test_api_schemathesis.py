"""Property-based tests of the HTTP API from its own OpenAPI schema (schemathesis, in-process ASGI): for every
operation, generated requests (valid and invalid) never get a 5xx, every answer that claims JSON parses, and
status codes, media types and bodies are those the schema documents.

The app serves a database holding four sample trips; calls carry a crew token (a device token for uploads) so the
generated values reach the code behind authentication. Examples are bounded to keep the run well under 90 s.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from conftest import zip_of
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_api_support import SAMPLE_TRIPS

import ingest
from api import create_app
from api.settings import Settings
from bump import pipeline, service
from bump.store import Store

_DIR = Path(tempfile.mkdtemp(prefix="bump-schemathesis-"))
_DB = _DIR / "st.db"
with Store.open(_DB) as _store:
    for _f in SAMPLE_TRIPS[:4]:
        pipeline.ingest_trace(_store, ingest.read(_f))
    CREW, _ = service.create_token(_store, "crew")
    DEVICE, _ = service.create_token(_store, "device", device_id="dev-st")

APP = create_app(Settings(db_path=_DB, upload_burst=100_000, upload_rate_per_minute=100_000,
                          device_register_rate_per_minute=100_000, max_body_bytes=2_000_000))


# bodies for the upload's binary media types (schemathesis cannot make them from "format: binary"): noise, gzip
# of noise, a real trip cut short or whole; zips of Sensor Logger file names holding noise, one escaping the folder
_TRIP_GZ = SAMPLE_TRIPS[4].read_bytes()
schemathesis.openapi.media_type("application/gzip", st.one_of(
    st.binary(max_size=256), st.binary(max_size=4096).map(gzip.compress),
    st.integers(1, len(_TRIP_GZ) - 1).map(lambda k: _TRIP_GZ[:k]), st.just(_TRIP_GZ)))
schemathesis.openapi.media_type("application/zip", st.one_of(
    st.binary(max_size=256),
    st.dictionaries(st.sampled_from(["Accelerometer.csv", "TotalAcceleration.csv", "Gravity.csv", "Gyroscope.csv",
                                     "Location.csv", "Metadata.csv", "trip/Location.csv", "../escape.csv"]),
                    st.binary(max_size=512), max_size=4).map(zip_of)))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    shutil.rmtree(_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_no_server_error(case: schemathesis.Case) -> None:
    token = DEVICE if case.path == "/v1/traces" else CREW
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    if "json" in ctype:
        response.json()
    if response.status_code >= 400 and case.path.startswith("/v1/"):
        err = response.json()["error"]
        assert err["code"] and err["message"]
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                             content_type_conformance, response_schema_conformance])
