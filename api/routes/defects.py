"""Defects: the ranked list (JSON, GeoJSON, CSV), one defect in detail, and a crew's status change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep, SettingsDep, StoreDep, ZonesDep
from api.routes.common import GEOJSON, CSVResponse, GeoJSONResponse, errors
from api.schemas import DefectDetail, DefectPage, FeatureCollection, StatusChange
from bump import service, views

router = APIRouter(prefix="/v1", tags=["defects"])


def _epoch_s(t: datetime | None) -> float | None:
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


class DefectFilters:
    """The list's query parameters."""

    def __init__(
        self,
        status: Annotated[str | None, Query(description="comma-separated statuses or 'all' (default: candidate, "
                                                        "confirmed, likely_repaired)", max_length=200)] = None,
        kind: Annotated[str | None, Query(description="comma-separated kinds or 'all' (default: pothole, cover, "
                                                      "unknown)", max_length=200)] = None,
        bbox: Annotated[str | None, Query(description="W,S,E,N in degrees", max_length=200)] = None,
        min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
        since: Annotated[datetime | None, Query(description="last hit or status change at or after (ISO 8601)")]
        = None,
        limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page", max_length=200)] = None,
    ) -> None:
        self.kw = {"status": status, "kind": kind, "bbox": bbox, "min_confidence": min_confidence,
                   "since_s": _epoch_s(since), "limit": limit, "cursor": cursor}


FiltersDep = Annotated[DefectFilters, Depends()]
DefectId = Annotated[int, Path(ge=1, le=2**62, description="the defect's id")]


def _page(store: Any, principal: Any, zones: Any, settings: Any, filters: DefectFilters) -> service.DefectPage:
    return service.list_defects(store, principal, zones, public_read=settings.public_read, **filters.kw)


@router.get("/defects", response_model=DefectPage, responses=errors(400, 401, 422))
def list_defects(store: StoreDep, principal: PrincipalDep, zones: ZonesDep, settings: SettingsDep,
                 filters: FiltersDep) -> dict[str, Any]:
    """Defects ranked by priority, one page at a time (follow ``next_cursor``)."""
    page = _page(store, principal, zones, settings, filters)
    return {"defects": page.defects, "next_cursor": page.next_cursor}


@router.get("/defects.geojson", response_class=GeoJSONResponse, responses={
    200: {"content": {GEOJSON: {"schema": FeatureCollection.model_json_schema(ref_template="#/components/schemas/"
                                                                              "{model}")}},
          "description": "RFC 7946 FeatureCollection of Points"}, **errors(400, 401, 422)})
def defects_geojson(store: StoreDep, principal: PrincipalDep, zones: ZonesDep, settings: SettingsDep,
                    filters: FiltersDep) -> GeoJSONResponse:
    """The same page as GeoJSON ([lon, lat], WGS84); ``next_cursor`` as a foreign member."""
    page = _page(store, principal, zones, settings, filters)
    return GeoJSONResponse({**views.defects_geojson(page.defects), "next_cursor": page.next_cursor})


@router.get("/defects.csv", response_class=CSVResponse, responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "one row per defect"},
    **errors(400, 401, 422)})
def defects_csv(request: Request, store: StoreDep, principal: PrincipalDep, zones: ZonesDep, settings: SettingsDep,
                filters: FiltersDep) -> CSVResponse:
    """The same page as CSV with ``lat``, ``lon`` columns, by priority; the next page in the ``Link`` header (the
    request's own filters and limit with the next cursor, relative to this URL)."""
    page = _page(store, principal, zones, settings, filters)
    headers = None
    if page.next_cursor:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        headers = {"Link": f'<?{urlencode([*query, ("cursor", page.next_cursor)])}>; rel="next"'}
    return CSVResponse(views.defects_csv(page.defects), headers=headers)


@router.get("/defects/{defect_id}", response_model=DefectDetail, responses=errors(401, 404, 422))
def get_defect(defect_id: DefectId, store: StoreDep, principal: PrincipalDep, zones: ZonesDep,
               settings: SettingsDep) -> dict[str, Any]:
    """One defect with its status history and passes; crews also see its hits, trips and devices."""
    return service.defect_detail(store, principal, zones, defect_id, public_read=settings.public_read)


@router.patch("/defects/{defect_id}", response_model=DefectDetail,
              responses=errors(400, 401, 403, 404, 409, 422))
async def change_status(defect_id: DefectId, change: StatusChange, store: StoreDep, principal: PrincipalDep,
                        zones: ZonesDep) -> dict[str, Any]:
    """A crew's decision (crew token): confirmed (seen on site), repaired, dismissed, or reopen, with a note;
    recorded in the history."""
    return await run_in_threadpool(service.change_status, store, principal, zones, defect_id, change.status,
                                   change.note, at_s=_epoch_s(change.at))
