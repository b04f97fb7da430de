"""The crews' map page, ``GET /``.

One static HTML page (``api/static/index.html``); its script, stylesheet and the vendored Leaflet 1.9.4 are served
from ``/static`` (``api/static``, mounted by the app factory under :data:`STATIC_DIR`), every URL relative to the
page, so the page works with no internet. The page reads the JSON API (``v1/config``, ``v1/defects.geojson``,
``v1/defects/{id}``, ``v1/roughness.geojson``, ``v1/coverage.geojson``) and PATCHes defects with a crew token.

The Content-Security-Policy lets scripts, styles and API calls come only from this server; images may also come
from a tile server named by ``GET /v1/config`` (``tile_url``, ``BUMP_TILE_URL``; its credit line ``tile_attribution``,
``BUMP_TILE_ATTRIBUTION``), which is the one request that may leave the machine. The page asks for tiles only after
it has zoomed to the defects, never for the whole world first.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGE = STATIC_DIR / "index.html"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data: http: https:",       # map tiles, when a deployment configures a tile server
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(tags=["map"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def map_page() -> HTMLResponse:
    """The map page (HTML); read from disk on each request (5 kB), so a deployment can restyle it in place."""
    return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers=PAGE_HEADERS)
