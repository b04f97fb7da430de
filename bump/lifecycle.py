"""Defect status: candidate -> confirmed -> likely_repaired, and the crews' repaired / dismissed.

The automatic status is a replay of the defect's passes in time order (:func:`status_timeline`), so it does not
depend on the order in which trips were uploaded:

- a defect is born ``candidate`` at its first hit;
- ``candidate -> confirmed`` when hits have come from ``confirm_devices`` (3) distinct devices: one device,
  however many hits it reports (a loose mount, a habit of driving over one cover), never confirms a defect alone;
  and on at least ``confirm_hit_rate`` (15 %) of the passes since the first hit: a few false hits scattered over
  many passes of a busy road are the background of false alarms, not a defect;
- ``confirmed -> likely_repaired`` when the passes after the last hit, from at least ``repaired_devices`` (2)
  devices, all missed it, and they are so many that a defect still there would have been hit: at least
  ``repaired_traversals`` (5), and at least ``ln(repaired_miss_prob) / ln(1 - p)`` with ``p`` the hit rate of its
  passes after the first hit up to the last one (a pothole hit on 30 % of the passes misses 5 in a row 17 % of the
  time, 13 in a row < 1 %, the default ``repaired_miss_prob``);
- ``likely_repaired -> confirmed`` on the next hit.

Crews decide ``confirmed`` (seen on site), ``repaired`` and ``dismissed`` (:data:`CREW_STATUSES`) with a reason;
a crew-confirmed defect still becomes ``likely_repaired`` when later passes stop hitting it. A dismissed defect stays
dismissed (its hits keep joining it, so it does not come back as a new candidate). A repaired defect stays repaired
until a hit after the repair: then the replay restarts from the repair (``repaired -> candidate``, and confirmed
again after hits from 3 devices). ``reopen`` clears a crew decision. Every change is recorded with the data time,
the wall time, the reason and who made it (``system`` or the crew's name).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bump.cluster import DefectParams
from ingest.errors import BumpError

STATUSES = ("candidate", "confirmed", "likely_repaired", "repaired", "dismissed")
AUTOMATIC_STATUSES = ("candidate", "confirmed", "likely_repaired")
CREW_STATUSES = ("confirmed", "repaired", "dismissed")
REOPEN = "reopen"
DEFAULT_LIST_STATUSES = AUTOMATIC_STATUSES        # what a crew sees unless it asks for more


class InvalidStatusError(BumpError, ValueError):
    """A status change that is not allowed; the message lists what is."""

    code = "invalid_status"


@dataclass(frozen=True)
class Transition:
    """One status change: data time [s since the epoch], from (None at birth), to, and why."""

    t_s: float
    from_status: str | None
    to_status: str
    reason: str


def repaired_streak(hit_rate: float, params: DefectParams) -> int:
    """Clean passes in a row that make a defect hit on ``hit_rate`` of its passes likely repaired: at least
    ``repaired_traversals``, and enough that it would miss them all with at most ``repaired_miss_prob``."""
    if hit_rate >= 1.0:
        return params.repaired_traversals
    if hit_rate <= 0.0:
        return np.iinfo(np.int64).max
    needed = int(np.ceil(np.log(params.repaired_miss_prob) / np.log1p(-hit_rate) - 1e-9))
    return max(params.repaired_traversals, needed)


def status_timeline(t_s: np.ndarray, trip_id: np.ndarray, device_id: np.ndarray, hit: np.ndarray,
                    params: DefectParams, *, start: str | None = None, start_t_s: float | None = None
                    ) -> list[Transition]:
    """The automatic status changes of one defect from its passes (one per trip: time, trip, device, hit or not),
    replayed in time order. ``start``: the status before the first pass (None: the defect is born at its first
    hit; "repaired": the replay after a crew repair, whose first hit reopens it)."""
    order = np.lexsort((np.asarray(trip_id).astype(str), np.asarray(t_s, dtype=np.float64)))
    state = start
    devices: set[str] = set()
    clean_devices: list[str] = []
    out: list[Transition] = []

    def change(t: float, to: str, reason: str) -> None:
        nonlocal state
        out.append(Transition(float(t), state, to, reason))
        state = to

    n_pass = n_hit = 0
    rows = zip(np.asarray(t_s, dtype=np.float64)[order].tolist(), np.asarray(trip_id).astype(str)[order].tolist(),
               np.asarray(device_id).astype(str)[order].tolist(), np.asarray(hit).astype(bool)[order].tolist(),
               strict=True)
    for t, trip, dev, was_hit in rows:
        if start_t_s is not None and t <= start_t_s:
            continue
        if n_hit or was_hit:                 # passes counted from the first hit (potholes appear)
            n_pass += 1
        if was_hit:
            n_hit += 1
            devices.add(dev)
            clean_devices = []
            if state is None:
                change(t, "candidate", f"first hit, trip {trip} (device {dev})")
            elif state == "repaired":
                change(t, "candidate", f"hit again after the repair, trip {trip} (device {dev})")
                devices, n_pass, n_hit = {dev}, 1, 1
            elif state == "likely_repaired":
                change(t, "confirmed", f"hit again, trip {trip} (device {dev})")
            if (state == "candidate" and len(devices) >= params.confirm_devices
                    and n_hit >= params.confirm_hit_rate * n_pass):
                change(t, "confirmed", f"hits from {len(devices)} distinct devices on {n_hit} of {n_pass} passes "
                                       f"since the first (trip {trip} the latest)")
        elif state == "confirmed":
            clean_devices.append(dev)
            hit_rate = (n_hit - 1) / max(n_pass - len(clean_devices) - 1, 1)     # the first hit is no sample
            if (len(clean_devices) >= repaired_streak(hit_rate, params)
                    and len(set(clean_devices)) >= params.repaired_devices):
                change(t, "likely_repaired", f"no hit on the last {len(clean_devices)} passes from "
                                             f"{len(set(clean_devices))} devices, after hits on {hit_rate:.0%} of "
                                             f"the passes before (trip {trip} the latest)")
    return out


@dataclass(frozen=True)
class StatusResult:
    status: str
    since_s: float               # data time of the last change (crew time for a crew decision)
    transitions: list[Transition]


def evaluate_status(t_s: np.ndarray, trip_id: np.ndarray, device_id: np.ndarray, hit: np.ndarray,
                    params: DefectParams, *, crew_status: str | None = None, crew_at_s: float | None = None
                    ) -> StatusResult:
    """The status of a defect from its passes and the crews' last decision (see the module docstring)."""
    if crew_status == "dismissed":
        return StatusResult("dismissed", float(crew_at_s or 0.0), [])
    if crew_status == "confirmed":       # seen on site: confirmed now, whatever the hit count; the data goes on
        after = status_timeline(t_s, trip_id, device_id, hit, params, start="confirmed", start_t_s=crew_at_s)
        if not after:
            return StatusResult("confirmed", float(crew_at_s or 0.0), [])
        return StatusResult(after[-1].to_status, after[-1].t_s, after)
    if crew_status == "repaired":
        after = status_timeline(t_s, trip_id, device_id, hit, params, start="repaired", start_t_s=crew_at_s)
        if not after:
            return StatusResult("repaired", float(crew_at_s or 0.0), [])
        return StatusResult(after[-1].to_status, after[-1].t_s, after)
    timeline = status_timeline(t_s, trip_id, device_id, hit, params)
    if not timeline:
        first = float(np.min(t_s)) if np.size(t_s) else 0.0
        return StatusResult("candidate", first, [])
    return StatusResult(timeline[-1].to_status, timeline[-1].t_s, timeline)


def check_crew_status(status: str, reason: str) -> None:
    """Raise :class:`InvalidStatusError` unless ``status`` is one a crew may set, with a reason."""
    if status not in (*CREW_STATUSES, REOPEN):
        raise InvalidStatusError(f"crews may set {', '.join(CREW_STATUSES)} or {REOPEN}, not {status!r} "
                                 f"(candidate and likely_repaired follow from the data)", field="status")
    if not reason or not reason.strip():
        raise InvalidStatusError("a status change needs a reason (e.g. 'patched 2026-05-10, work order 123')",
                                 field="reason")
