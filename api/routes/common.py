"""Shared pieces of the routers: documented error responses, the media types of the non-JSON answers, and the
datetime of a query string."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi.responses import Response
from pydantic import BeforeValidator

from api.schemas import ErrorBody

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


_SPACE_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}(?::?\d{2})?)")


def plus_from_space(value: Any) -> Any:
    """A query datetime whose UTC offset's '+' was sent unencoded (and so arrived as a space, form encoding):
    ``2026-05-01T00:00:00 02:00`` is read as ``...+02:00``, as Open311's ``start_date`` reads it. Anything else
    goes on unchanged to pydantic's ISO 8601 parser."""
    if isinstance(value, str):
        text = value.strip()
        m = _SPACE_OFFSET.search(text)
        if m is not None and m.end() == len(text):
            return f"{text[:m.start(2) - 1]}+{m.group(2)}"
    return value


QueryDatetime = Annotated[datetime, BeforeValidator(plus_from_space)]
"""A datetime query parameter (ISO 8601; an unencoded '+' of its offset is accepted)."""
