"""Open311 GeoReport v2 (read): services, service requests (confirmed defects), one request. Errors here are
GeoReport's ``[{"code", "description"}]``. ``jurisdiction_id`` is accepted and ignored (one jurisdiction)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SettingsDep, StoreDep, ZonesDep
from api.schemas import Open311Error, Open311Request, Open311Service
from bump import service

router = APIRouter(prefix="/open311/v2", tags=["open311"])
_ERR = {c: {"model": list[Open311Error], "description": d} for c, d in
        ((400, "bad parameter"), (401, "token needed"), (404, "not found"), (422, "invalid parameter"))}
Text = Annotated[str | None, Query(max_length=500)]


@router.get("/services.json", response_model=list[Open311Service], responses=_ERR)
def services(jurisdiction_id: Text = None) -> list[dict[str, Any]]:
    """The service types: one per published defect kind."""
    return service.open311_services()


@router.get("/requests.json", response_model=list[Open311Request], responses=_ERR)
def requests(store: StoreDep, principal: PrincipalDep, zones: ZonesDep, settings: SettingsDep,
             service_request_id: Text = None, service_code: Text = None, start_date: Text = None,
             end_date: Text = None, status: Text = None, jurisdiction_id: Text = None) -> list[dict[str, Any]]:
    """Service requests (at most 1000), filtered as GeoReport v2 defines."""
    return service.open311_requests(store, principal, zones, public_read=settings.public_read,
                                    service_request_id=service_request_id, service_code=service_code,
                                    start_date=start_date, end_date=end_date, status=status)


@router.get("/requests/{service_request_id}.json", response_model=list[Open311Request], responses=_ERR)
def request(service_request_id: str, store: StoreDep, principal: PrincipalDep, zones: ZonesDep,
            settings: SettingsDep, jurisdiction_id: Text = None) -> list[dict[str, Any]]:
    """One service request, as a list of one."""
    return service.open311_request(store, principal, zones, service_request_id, public_read=settings.public_read)
