"""Shared pieces of the routers: documented error responses, the media types of the non-JSON answers, and the
datetime of a query string."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi.responses import Response
from pydantic import BeforeValidator

from api.schemas import ErrorBody
from bump.service import plus_from_space

GEOJSON = "application/geo+json"


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers of a route."""
    text = {400: "bad parameter", 401: "no, malformed, unknown or revoked token", 403: "the token's role may not",
            404: "not found", 409: "conflicts with what is stored", 413: "body too large",
            415: "unsupported media type", 422: "invalid request or trace", 429: "rate limited (Retry-After)",
            503: "busy; retry"}
    schema = {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}     # registered by the app's 401 entry
    return {c: {"description": text.get(c, "error"), "content": {"application/json": {"schema": schema}}}
            for c in codes}


class GeoJSONResponse(Response):
    """RFC 7946 GeoJSON, written by orjson."""

    media_type = GEOJSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class CSVResponse(Response):
    media_type = "text/csv; charset=utf-8"


QueryDatetime = Annotated[datetime, BeforeValidator(plus_from_space)]
"""A datetime query parameter (ISO 8601; an unencoded '+' of its offset is accepted, as Open311's dates)."""
