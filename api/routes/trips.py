"""``GET /v1/trips/{trip_id}``: a trip's summary and impacts, for its own device or a crew."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import PrincipalDep, StoreDep, ZonesDep
from api.routes.common import errors
from api.schemas import TripDetail
from bump import service

router = APIRouter(prefix="/v1/trips", tags=["trips"])


@router.get("/{trip_id:path}", response_model=TripDetail, responses=errors(401, 403, 404, 422))
def get_trip(trip_id: str, store: StoreDep, principal: PrincipalDep, zones: ZonesDep) -> dict[str, Any]:
    """Summary and impacts; impact positions near the trip's start and end are withheld."""
    return service.get_trip(store, principal, trip_id, zones)
