"""Open311 GeoReport v2: confirmed defects as service requests (services, requests, one request)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bump import views
from bump.cluster import MINOR_COVER_CLASSES
from bump.service.auth import Principal, require_read
from bump.service.defects import parse_choices, scrub
from bump.service.errors import BadRequestError, NotFoundError
from bump.service.privacy import PrivacyZones
from bump.store import DefectQuery, Store

OPEN311_SERVICES = {
    "pothole": ("Pothole", "A hole in the road surface found by drivers' phones (one-wheel impacts)."),
    "cover": ("Sunken utility cover", "A manhole cover or grate sunk below the road surface."),
    "unknown": ("Road surface defect", "A road defect found by drivers' phones whose kind is not yet clear."),
}
OPEN311_STATUS = {"confirmed": "open", "likely_repaired": "open", "repaired": "closed", "dismissed": "closed"}
_OPEN311_MAX = 1000


def open311_services() -> list[dict[str, Any]]:
    """GeoReport v2 service list: one service per defect kind published."""
    return [{"service_code": code, "service_name": name, "description": desc, "metadata": False,
             "type": "realtime", "keywords": "road, pavement", "group": "streets"}
            for code, (name, desc) in OPEN311_SERVICES.items()]


def _w3c(t_s: Any) -> str | None:
    if t_s is None or not np.isfinite(t_s):
        return None
    return datetime.fromtimestamp(float(t_s), tz=UTC).isoformat(timespec="seconds")


_SPACE_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}(?::?\d{2})?)")


def plus_from_space(value: Any) -> Any:
    """A query datetime whose UTC offset's '+' was sent unencoded (and so arrived as a space, form encoding):
    ``2026-05-01T00:00:00 02:00`` is read as ``...+02:00``. Anything else goes on unchanged."""
    if isinstance(value, str):
        text = value.strip()
        m = _SPACE_OFFSET.search(text)
        if m is not None and m.end() == len(text):
            return f"{text[:m.start(2) - 1]}+{m.group(2)}"
    return value


def parse_datetime_s(text: str | None, field: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 / W3C datetime (UTC when it has no offset; an unencoded '+' of the
    offset is read as :func:`plus_from_space` reads it)."""
    if text is None or not text.strip():
        return None
    try:
        dt = datetime.fromisoformat(plus_from_space(text.strip()))
    except ValueError:
        raise BadRequestError(f"{field} must be a W3C datetime such as 2026-05-04T10:00:00Z, got {text!r}",
                              field=field) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _open311_request(store: Store, row: dict[str, Any]) -> dict[str, Any] | None:
    status = str(row["status"])
    history = store.history(int(row["defect_id"]))
    if status in ("repaired", "dismissed") and not any(h["to_status"] == "confirmed" for h in history):
        return None                              # never was a service request
    kind = str(row["kind"])
    name = OPEN311_SERVICES[kind][0]
    depth = f", {row['depth_class']} depth" if row.get("depth_class") else ""
    return {
        "service_request_id": str(int(row["defect_id"])), "status": OPEN311_STATUS[status],
        "status_notes": _public_reason(store, int(row["defect_id"]), _latest_note(history)) if history else None,
        "service_name": name, "service_code": kind,
        "description": f"{name}{depth}: hit {int(row['n_hits'])} times by {int(row['n_devices'])} devices on "
                       f"{int(row['n_traversals'])} recorded passes (bump status: {status}).",
        "agency_responsible": None, "service_notice": None,
        "requested_datetime": _w3c(row["first_seen_s"]),
        "updated_datetime": _w3c(max(float(row["last_seen_s"]), float(row["status_since_s"]))),
        "expected_datetime": None, "address": None, "address_id": None, "zipcode": None,
        "lat": views.round_or_none(row["lat_deg"], 6), "long": views.round_or_none(row["lon_deg"], 6),
        "media_url": None,
    }


def _latest_note(history: list[dict[str, Any]]) -> str:
    """The reason of the latest change (``history`` in time order); at one time a crew's note before the system's
    consequence of it (a reopen, and the status the data gives from then on)."""
    t_last = history[-1]["t_s"]
    crew = [h for h in history if h["t_s"] == t_last and h["actor"] != "system"]
    return str((crew or history)[-1]["reason"])


def _public_reason(store: Store, defect_id: int, reason: str) -> str:
    trav = store.traversals_of_defects([defect_id])
    return scrub(reason, set(trav["trip_id"].tolist()) | set(trav["device_id"].tolist()))


def open311_requests(store: Store, principal: Principal, zones: PrivacyZones, *, public_read: bool,
                     service_request_id: str | None = None, service_code: str | None = None,
                     start_date: str | None = None, end_date: str | None = None, status: str | None = None
                     ) -> list[dict[str, Any]]:
    """Confirmed defects as GeoReport v2 service requests (open: confirmed or likely repaired; closed: repaired or
    dismissed after confirmation). Filters as GeoReport v2: ``service_request_id`` (comma list; overrides the
    others), ``service_code``, ``start_date``/``end_date`` (on requested_datetime), ``status`` (open, closed).
    At most 1000, by priority."""
    require_read(principal, public_read)
    if service_request_id:
        try:
            ids = [i for i in (int(v) for v in service_request_id.split(",") if v.strip()) if 0 < i < 2**62]
        except ValueError:
            raise BadRequestError("service_request_id must be comma-separated defect ids",
                                  field="service_request_id") from None
        cols = store.defects_by_id(ids)
        hidden = zones.hidden_defects(store, cols["defect_id"].tolist())
        rows = [cols.row(i) for i in range(len(cols)) if int(cols["defect_id"][i]) not in hidden
                and str(cols["status"][i]) in OPEN311_STATUS and str(cols["kind"][i]) in OPEN311_SERVICES]
        return [r for r in (_open311_request(store, row) for row in rows) if r is not None]
    # "all" means every kind a service request can have (speed bumps and joints have no Open311 service)
    codes = parse_choices(service_code, tuple(OPEN311_SERVICES), tuple(OPEN311_SERVICES), "service_code") \
        or tuple(OPEN311_SERVICES)
    wanted = parse_choices(status, ("open", "closed"), ("open", "closed"), "status") or ("open", "closed")
    statuses = tuple(s for s, o in OPEN311_STATUS.items() if o in wanted)
    t0, t1 = parse_datetime_s(start_date, "start_date"), parse_datetime_s(end_date, "end_date")
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(out) < _OPEN311_MAX:
        cols, cursor = store.list_defects(DefectQuery(statuses, codes, None, 1000, cursor,
                                                      hidden_cover_classes=MINOR_COVER_CLASSES))
        hidden = zones.hidden_defects(store, cols["defect_id"].tolist())
        for i in range(len(cols)):
            t = float(cols["first_seen_s"][i])
            if int(cols["defect_id"][i]) in hidden or (t0 is not None and t < t0) or (t1 is not None and t > t1):
                continue
            req = _open311_request(store, cols.row(i))
            if req is not None and len(out) < _OPEN311_MAX:
                out.append(req)
        if cursor is None:
            break
    return out


def open311_request(store: Store, principal: Principal, zones: PrivacyZones, request_id: str, *,
                    public_read: bool) -> list[dict[str, Any]]:
    """One service request (GeoReport v2 answers a list of one)."""
    found = open311_requests(store, principal, zones, public_read=public_read,
                             service_request_id=request_id) if request_id.isdigit() else []
    if not found:
        raise NotFoundError(f"no service request {request_id[:200]!r}; only confirmed defects are service requests",
                            field="service_request_id")
    return found
