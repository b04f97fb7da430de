"""The road-cell maps as GeoJSON Points at the cells' centres: roughness (IRI) and coverage (passes, devices)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SettingsDep, StoreDep, ZonesDep
from api.routes.common import GEOJSON, GeoJSONResponse, QueryDatetime, errors
from api.schemas import FeatureCollection
from bump import service

router = APIRouter(prefix="/v1", tags=["maps"])
_DOC = {200: {"content": {GEOJSON: {"schema": FeatureCollection.model_json_schema(
    ref_template="#/components/schemas/{model}")}}, "description": "RFC 7946 FeatureCollection of Points"},
    **errors(400, 401, 422)}


def _epoch_s(t: datetime | None) -> float | None:
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


@router.get("/roughness.geojson", response_class=GeoJSONResponse, responses=_DOC)
def roughness(store: StoreDep, principal: PrincipalDep, zones: ZonesDep, settings: SettingsDep,
              bbox: Annotated[str | None, Query(description="W,S,E,N in degrees", max_length=200)] = None,
              min_readings: Annotated[int, Query(ge=1, le=1000)] = 3) -> GeoJSONResponse:
    """Cells with at least ``min_readings`` roughness readings: IRI mean, sd, upper 95 % bound [m/km]."""
    cells = service.roughness_cells(store, principal, zones, public_read=settings.public_read, bbox=bbox,
                                    min_readings=min_readings)
    return GeoJSONResponse(service.points_geojson(cells, lat="lat_deg", lon="lon_deg", id_key="cell_key"))


@router.get("/coverage.geojson", response_class=GeoJSONResponse, responses=_DOC)
def coverage(store: StoreDep, principal: PrincipalDep, zones: ZonesDep, settings: SettingsDep,
             since: Annotated[QueryDatetime | None, Query(description="passes at or after (ISO 8601)")] = None,
             until: Annotated[QueryDatetime | None, Query(description="passes before (ISO 8601)")] = None
             ) -> GeoJSONResponse:
    """Passes and distinct devices per road cell in [since, until)."""
    cells = service.coverage_cells(store, principal, zones, public_read=settings.public_read,
                                   since_s=_epoch_s(since), until_s=_epoch_s(until))
    return GeoJSONResponse(service.points_geojson(cells, id_key="cell_key"))
