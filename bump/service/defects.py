"""The ranked defect list, one defect's detail, and a crew's change of its status."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bump import views
from bump.cluster import KINDS, LISTED_KINDS
from bump.lifecycle import DEFAULT_LIST_STATUSES, STATUSES
from bump.service.auth import Principal, require_crew, require_read
from bump.service.errors import BadRequestError, NotFoundError
from bump.service.privacy import PrivacyZones
from bump.store import DefectQuery, Store

MAX_PAGE = 5000





def parse_choices(value: str | None, allowed: Sequence[str], default: Sequence[str], what: str
             ) -> tuple[str, ...] | None:
    return views.parse_choices(value, allowed, default, what, error=BadRequestError)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``W,S,E,N`` in degrees (W > E crosses the antimeridian)."""
    if text is None or not text.strip():
        return None
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise BadRequestError(f"bbox must be four numbers W,S,E,N in degrees, got {text!r}", field="bbox") from None
    views.check_bbox((w, s, e, n), error=BadRequestError, text=repr(text))
    return w, s, e, n


@dataclass(frozen=True)
class DefectPage:
    defects: list[dict[str, Any]]
    next_cursor: str | None


def list_defects(store: Store, principal: Principal, zones: PrivacyZones, *, public_read: bool,
                 status: str | None = None, kind: str | None = None, bbox: str | None = None,
                 min_confidence: float | None = None, since_s: float | None = None, limit: int = 100,
                 cursor: str | None = None) -> DefectPage:
    """Defects ranked by priority (keyset pages: pass ``next_cursor`` back as ``cursor``). By default the open
    statuses and the spot defects (see :func:`bump.views.list_defects`); ``status``/``kind`` take
    comma-separated values or ``all``. Defects withheld for privacy are skipped, so a page may be short."""
    require_read(principal, public_read)
    if not 1 <= int(limit) <= MAX_PAGE:
        raise BadRequestError(f"limit must be between 1 and {MAX_PAGE}, got {limit}", field="limit")
    query = DefectQuery(parse_choices(status, STATUSES, DEFAULT_LIST_STATUSES, "status"),
                        parse_choices(kind, KINDS, LISTED_KINDS, "kind"), parse_bbox(bbox), int(limit), cursor,
                        min_confidence=min_confidence, since_s=since_s,
                        hidden_cover_classes=views.hidden_covers(kind))
    out: list[dict[str, Any]] = []
    nxt: str | None = cursor
    for _ in range(8):                          # refill a page thinned by the privacy filter, a bounded number of times
        cols, nxt = store.list_defects(dataclasses.replace(query, limit=int(limit) - len(out), cursor=nxt))
        hidden = zones.hidden_defects(store, cols["defect_id"].tolist())
        out += [views.defect_record(cols.row(i)) for i in range(len(cols))
                if int(cols["defect_id"][i]) not in hidden]
        if nxt is None or len(out) >= int(limit):
            break
    return DefectPage(out, nxt)


def scrub(text: str, names: set[str]) -> str:
    """``text`` with every trip and device id of ``names`` replaced by an ellipsis (history reasons name them)."""
    for name in sorted(names, key=len, reverse=True):
        if name:
            text = text.replace(name, "…")
    return text


def _visible_defect(store: Store, zones: PrivacyZones, defect_id: int) -> None:
    if defect_id in zones.hidden_defects(store, [defect_id]):
        raise NotFoundError(f"no defect with id {defect_id}", field="id")


def defect_detail(store: Store, principal: Principal, zones: PrivacyZones, defect_id: int, *,
                  public_read: bool) -> dict[str, Any]:
    """One defect with its history and passes; crews also get its hits (positions trimmed by privacy) and the
    trips and devices of its passes, others only when and whether each pass hit."""
    require_read(principal, public_read)
    rec = views.get_defect(store, defect_id)
    _visible_defect(store, zones, defect_id)
    if not principal.is_crew:
        names = {p["trip_id"] for p in rec["passes"]} | {p["device_id"] for p in rec["passes"]}
        rec["history"] = [{**h, "reason": scrub(h["reason"], names)} for h in rec["history"]]
        rec["passes"] = [{"at": p["at"], "hit": p["hit"]} for p in rec["passes"]]
        rec["hits_list"] = None
        return rec
    hits = store.hits_of_defects([defect_id])
    priv = zones.private(store, hits["trip_id"], hits["lat_deg"], hits["lon_deg"])
    rec["hits_list"] = [{"t": views.iso_time(hits["t_s"][i]), "trip_id": str(hits["trip_id"][i]),
                    "device_id": str(hits["device_id"][i]), "kind": str(hits["kind"][i]),
                    "spot_kind": str(hits["spot_kind"][i]), "severity": views.round_or_none(hits["severity"][i], 2),
                    "confidence": views.round_or_none(hits["confidence"][i], 3),
                    "speed_mps": views.round_or_none(hits["speed_mps"][i], 2),
                    "lat": None if priv[i] else views.round_or_none(hits["lat_deg"][i], 6),
                    "lon": None if priv[i] else views.round_or_none(hits["lon_deg"][i], 6), "trimmed": bool(priv[i])}
                   for i in range(len(hits))]
    return rec


def change_status(store: Store, principal: Principal, zones: PrivacyZones, defect_id: int, status: str, note: str,
                  *, at_s: float | None = None, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """A crew's decision on a defect (repaired, dismissed or reopen) with a note, recorded in its history."""
    require_crew(principal, "changing a defect's status")
    store.get_defect(defect_id)
    _visible_defect(store, zones, defect_id)
    views.set_status(store, defect_id, status, reason=note, actor=principal.actor, at_s=at_s, clock=clock)
    return defect_detail(store, principal, zones, defect_id, public_read=True)
