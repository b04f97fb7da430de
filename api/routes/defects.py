"""Defects: the ranked list (JSON, GeoJSON, CSV), one defect in detail, and a crew's status change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NamedTuple
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep, SettingsDep, StoreDep, ZonesDep
from api.routes.common import GEOJSON, CSVResponse, GeoJSONResponse, QueryDatetime, errors
from api.schemas import DefectDetail, DefectPage, FeatureCollection, StatusChange
from bump import service, views
from bump.store import UnknownDefectError

router = APIRouter(prefix="/v1", tags=["defects"])


def _epoch_s(t: datetime | None) -> float | None:
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


class DefectFilters(NamedTuple):
    """The list's query parameters, as keyword arguments of the service's list."""

    kw: dict[str, Any]


async def defect_filters(
        status: Annotated[str | None, Query(description="comma-separated statuses or 'all' (default: candidate, "
                                                        "confirmed, likely_repaired)", max_length=200)] = None,
        kind: Annotated[str | None, Query(description="comma-separated kinds or 'all' (default: pothole, cover, "
                                                      "unknown)", max_length=200)] = None,
        bbox: Annotated[str | None, Query(description="W,S,E,N in degrees", max_length=200)] = None,
        min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
        since: Annotated[QueryDatetime | None, Query(description="last hit or status change at or after (ISO 8601)")]
        = None,
        limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page", max_length=200)] = None,
) -> DefectFilters:
    """The list's query parameters (async: read on the event loop, without a worker-thread hop)."""
    return DefectFilters({"status": status, "kind": kind, "bbox": bbox, "min_confidence": min_confidence,
                          "since_s": _epoch_s(since), "limit": limit, "cursor": cursor})


FiltersDep = Annotated[DefectFilters, Depends(defect_filters)]
DefectId = Annotated[int, Path(ge=1, le=2**62, description="the defect's id")]


@contextmanager
def _defect_lookup(defect_id: int) -> Iterator[None]:
    """One answer for a defect id that does not exist and one hidden by the privacy zones (so that an answer
    never tells them apart), with the HTTP way to list them (the store's own message names the CLI)."""
    try:
        yield
    except (UnknownDefectError, service.NotFoundError) as exc:
        if isinstance(exc, service.NotFoundError) and exc.field != "id":
            raise
        raise UnknownDefectError(f"no defect with id {defect_id}; list them with GET /v1/defects",
                                 field="id") from None


def require_json(request: Request) -> None:
    """415 for a body sent as anything but JSON (``application/json`` or ``application/*+json``; no Content-Type
    is read as JSON), before the body is validated."""
    ctype = request.headers.get("content-type")
    if ctype is None:
        return
    media = ctype.split(";")[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise service.UnsupportedMediaError(f"{media[:100]!r} is not accepted; send the change as application/json, "
                                        'e.g. {"status": "repaired", "note": "patched, work order 123"}',
                                        field="Content-Type")


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
    with _defect_lookup(defect_id):
        return service.defect_detail(store, principal, zones, defect_id, public_read=settings.public_read)


@router.patch("/defects/{defect_id}", response_model=DefectDetail, dependencies=[Depends(require_json)],
              responses=errors(400, 401, 403, 404, 409, 415, 422))
async def change_status(defect_id: DefectId, change: StatusChange, store: StoreDep, principal: PrincipalDep,
                        zones: ZonesDep) -> dict[str, Any]:
    """A crew's decision (crew token): confirmed (seen on site), repaired, dismissed, or reopen, with a note;
    recorded in the history."""
    with _defect_lookup(defect_id):
        return await run_in_threadpool(service.change_status, store, principal, zones, defect_id, change.status,
                                       change.note, at_s=_epoch_s(change.at))
