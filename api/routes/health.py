"""Service endpoints: health, Prometheus metrics, and the map page's configuration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import MetricsDep, SettingsDep, StoreDep
from api.schemas import Config, Health
from bump.cells import CELL_SIZE_M

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health)
def healthz(store: StoreDep) -> dict[str, Any]:
    """Up, with the database reachable."""
    return {"status": "ok", "schema_version": store.schema_version}


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text format 0.0.4"}})
def metrics(metrics: MetricsDep) -> PlainTextResponse:
    """Uploads, bytes, samples, errors by code, requests and latency by route (this process)."""
    return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/config", response_model=Config)
def config(settings: SettingsDep) -> dict[str, Any]:
    """What the map page needs: the tile URL (null: plain background) and its attribution, whether reads are
    public, the privacy distance [m] and the road cells' size [m]."""
    return {"tile_url": settings.tile_url, "tile_attribution": settings.tile_attribution,
            "public_read": settings.public_read, "privacy_trim_m": settings.privacy_trim_m,
            "cell_size_m": CELL_SIZE_M}
