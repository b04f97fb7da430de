"""Response and request bodies of the HTTP API (pydantic), kept apart from the core's dataclasses and dicts.

Times are ISO 8601 UTC strings, positions WGS84 degrees with 6 decimals, ``null`` where unknown or withheld.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorDetail(_Model):
    code: str = Field(description="stable machine-readable error code, e.g. 'schema', 'too_large', 'forbidden'")
    message: str = Field(description="what is wrong, where, and how to fix it")
    field: str | None = Field(None, description="the field, parameter or header at fault")


class ErrorBody(_Model):
    error: ErrorDetail


class DeviceRegistration(_Model):
    device_id: str = Field(description="the id recorded with this phone's trips")
    token: str = Field(description="the device token, shown once: keep it on the phone")


class UploadSummary(_Model):
    trip_id: str
    samples: int = Field(description="accelerometer samples after validation")
    duration_s: float
    impacts: int = Field(description="impacts the detector found")
    located_impacts: int = Field(description="impacts with a GPS position, stored as hits")
    defects_hit: list[int] = Field(description="defects this trip's impacts joined or created")
    defects_passed: int = Field(description="defects this trip drove past (hit or not)")
    detector: str = Field(description="detector version")


_SEVERITY = Field(description="equivalent depth [cm] of the step (potholes, covers: the sharp-edged step that rings "
                              "the phone's impact band as much) or lift of the body (bumps); not raw g")


_SPOT_KIND = Field(description="the kind without the rough-stretch rule: what the hit is if it repeats at one spot "
                               "(a defect of rough hits from enough devices takes it)")


class TripImpact(_Model):
    t: str | None
    kind: str
    spot_kind: str = _SPOT_KIND
    severity: float | None = _SEVERITY
    depth_class: str | None
    confidence: float | None
    speed_mps: float | None
    heading_deg: float | None
    defect_id: int | None
    lat: float | None = Field(description="null when within the privacy distance of the trip's start or end")
    lon: float | None
    trimmed: bool


class TripDetail(UploadSummary):
    device_id: str
    start: str | None
    end: str | None
    source_format: str
    length_m: float | None
    quality: dict[str, Any]
    impact_list: list[TripImpact]


class Defect(_Model):
    id: int
    kind: str
    status: str
    severity: float | None = _SEVERITY
    depth_class: str | None
    confidence: float | None
    priority: float | None
    hits: int
    devices: int
    traversals: int
    hit_rate: float | None
    first_seen: str | None
    last_seen: str | None
    uncertainty_m: float | None
    lat: float | None
    lon: float | None
    heading_deg: float | None
    traversals_per_day: float | None
    status_since: str | None
    kind_reason: str | None


class DefectPage(_Model):
    defects: list[Defect]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class HistoryEntry(_Model):
    at: str | None
    recorded_at: str | None
    from_: str | None = Field(alias="from")
    to: str
    reason: str
    by: str

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Pass(_Model):
    at: str | None
    hit: bool
    trip_id: str | None = None
    device_id: str | None = None


class Hit(_Model):
    t: str | None
    trip_id: str
    device_id: str
    kind: str
    spot_kind: str = _SPOT_KIND
    severity: float | None = _SEVERITY
    confidence: float | None
    speed_mps: float | None
    lat: float | None
    lon: float | None
    trimmed: bool


class DefectDetail(Defect):
    crew_status: str | None
    history: list[HistoryEntry]
    passes: list[Pass] = Field(description="newest first; trips and devices for crews only")
    hits_list: list[Hit] | None = Field(description="the hits (crews only, null otherwise); positions near trip "
                                                    "ends withheld")


class StatusChange(_Model):
    model_config = ConfigDict(extra="forbid")

    status: Literal["confirmed", "repaired", "dismissed", "reopen"] = Field(
        description="a crew's decision ('confirmed': seen on site, whatever the hit count); 'reopen' clears it "
                    "(candidate/confirmed follow from the data)")
    note: str = Field(min_length=1, max_length=2000, description="why, e.g. 'patched, work order 123'")
    at: datetime | None = Field(None, description="when it happened (default: now); not in the future, not before "
                               "the defect was first seen")


class PointGeometry(_Model):
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[lon, lat] WGS84")


class Feature(_Model):
    type: Literal["Feature"]
    id: int | str | None = None
    geometry: PointGeometry
    properties: dict[str, Any]


class FeatureCollection(_Model):
    type: Literal["FeatureCollection"]
    features: list[Feature]
    next_cursor: str | None = Field(None, description="foreign member: cursor of the next page (defects only)")


class Config(_Model):
    """``GET /v1/config``: what the map page draws with."""

    tile_url: str | None = Field(description="tile URL template, or null for a plain background")
    tile_attribution: str | None = Field(description="the tile server's required credit (HTML), shown with its "
                                                     "tiles; null: none")
    public_read: bool
    privacy_trim_m: float
    cell_size_m: float = Field(description="side of a roughness / coverage road cell [m]")


class Health(_Model):
    status: Literal["ok"]
    schema_version: int


class Open311Service(_Model):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class Open311Request(_Model):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class Open311Error(_Model):
    code: int
    description: str
