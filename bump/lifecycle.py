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

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from bump.cluster import DefectParams
from ingest.errors import BumpError

STATUSES = ("candidate", "confirmed", "likely_repaired", "repaired", "dismissed")
AUTOMATIC_STATUSES = ("candidate", "confirmed", "likely_repaired")
CREW_STATUSES = ("confirmed", "repaired", "dismissed")
REOPEN = "reopen"
REOPENED = "reopened"           # the history's word for a reopen (no status: the data's status follows from it)
DEFAULT_LIST_STATUSES = AUTOMATIC_STATUSES        # what a crew sees unless it asks for more


class InvalidStatusError(BumpError, ValueError):
    """A status change that is not allowed; the message lists what is."""

    code = "invalid_status"


class StatusConflictError(InvalidStatusError):
    """A crew's change that the defect's present state rules out: it is that status already, or there is no crew
    decision to reopen."""

    code = "status_conflict"


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
    return _repaired_streak(hit_rate, params.repaired_traversals, params.repaired_miss_prob)


@functools.lru_cache(maxsize=4096)
def _repaired_streak(hit_rate: float, repaired_traversals: int, repaired_miss_prob: float) -> int:
    """:func:`repaired_streak` of these values, remembered: a trip's passes ask it for the same few hit rates
    (ratios of small counts) again and again."""
    if hit_rate >= 1.0:
        return repaired_traversals
    if hit_rate <= 0.0:
        return np.iinfo(np.int64).max
    needed = int(np.ceil(np.log(repaired_miss_prob) / np.log1p(-hit_rate) - 1e-9))
    return max(repaired_traversals, needed)


def _repaired_now(n_pass: int, n_hit: int, n_clean: int, n_clean_devices: int, params: DefectParams
                  ) -> tuple[bool, float]:
    """(whether a confirmed defect is likely repaired now, its hit rate before the clean passes): ``n_clean`` passes
    without a hit from ``n_clean_devices`` devices after ``n_hit`` hits on ``n_pass`` passes counted from the first
    hit (which is no sample of the rate)."""
    hit_rate = (n_hit - 1) / max(n_pass - n_clean - 1, 1)
    return (n_clean >= repaired_streak(hit_rate, params) and n_clean_devices >= params.repaired_devices), hit_rate


@dataclass(frozen=True)
class Replay:
    """Where the status replay of one defect stands after the passes replayed so far, so that later passes can
    resume it (:func:`status_timeline` with ``resume``) instead of replaying every pass of a busy road again.

    ``devices``: the distinct devices with hits while it may still be confirmed (none once confirmed: they no
    longer matter); ``clean_devices``: those of the passes without a hit since the last hit; ``last``: the
    (time, trip) of the last pass replayed (later passes resume, earlier ones need the whole replay); ``crew``
    and ``params``: the crew decision and the rules (digest) it was replayed under."""

    state: str | None = None
    devices: tuple[str, ...] = ()
    n_pass: int = 0
    n_hit: int = 0
    n_clean: int = 0
    clean_devices: tuple[str, ...] = ()
    last: tuple[float, str] | None = None
    crew: tuple[str | None, float | None] = (None, None)
    params: str = ""

    def to_json(self) -> str:
        return _replay_json(self.state, self.devices, self.n_pass, self.n_hit, self.n_clean, self.clean_devices,
                            self.last, self.crew, self.params)

    @classmethod
    def from_json(cls, text: str | None) -> Replay | None:
        """The stored replay, or None (none stored, or unreadable: replay every pass)."""
        fields = _replay_fields(text)
        return None if fields is None else _replay(*fields)

    def resumes(self, t_s: float, trip_id: str, crew: tuple[str | None, float | None], params: DefectParams
                ) -> bool:
        """Whether a pass at (t_s, trip_id) can resume this replay: it comes after the last pass replayed, under
        the same crew decision and rules."""
        return (self.last is not None and (float(t_s), str(trip_id)) > self.last and self.crew == crew
                and self.params == params.digest())


def _replay_fields(text: str | None) -> tuple[Any, ...] | None:
    """The fields of a stored replay (:meth:`Replay.to_json`) in :class:`Replay`'s order, or None (none stored, or
    unreadable)."""
    if not text:
        return None
    try:
        d = orjson.loads(str(text))             # str(): orjson reads no str subclass (NumPy strings)
        return (d["state"], tuple(d["devices"]), int(d["n_pass"]), int(d["n_hit"]), int(d["n_clean"]),
                tuple(d["clean_devices"]), None if d["last"] is None else (float(d["last"][0]), str(d["last"][1])),
                (d["crew"][0], d["crew"][1]), str(d["params"]))
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _replay_json(state: str | None, devices: tuple[str, ...], n_pass: int, n_hit: int, n_clean: int,
                 clean_devices: tuple[str, ...], last: tuple[float, str] | None,
                 crew: tuple[str | None, float | None], params: str) -> str:
    """:meth:`Replay.to_json` of these fields."""
    return orjson.dumps({"state": state, "devices": devices, "n_pass": n_pass, "n_hit": n_hit, "n_clean": n_clean,
                         "clean_devices": clean_devices, "last": last, "crew": crew, "params": params},
                        option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _replay(state: str | None, devices: tuple[str, ...], n_pass: int, n_hit: int, n_clean: int,
            clean_devices: tuple[str, ...], last: tuple[float, str] | None, crew: tuple[str | None, float | None],
            params: str) -> Replay:
    """``Replay(...)`` of these fields without the frozen dataclass's field-by-field ``__init__`` (~4x faster: a
    trip resumes a replay for each defect it passes)."""
    r = object.__new__(Replay)
    r.__dict__.update(state=state, devices=devices, n_pass=n_pass, n_hit=n_hit, n_clean=n_clean,
                      clean_devices=clean_devices, last=last, crew=crew, params=params)
    return r


def status_timeline(t_s: np.ndarray, trip_id: np.ndarray, device_id: np.ndarray, hit: np.ndarray,
                    params: DefectParams, *, start: str | None = None, start_t_s: float | None = None
                    ) -> list[Transition]:
    """The automatic status changes of one defect from its passes (time, trip, device, hit or not),
    replayed in time order. ``start``: the status before the first pass (None: the defect is born at its first
    hit; "repaired": the replay after a crew repair, whose first hit reopens it)."""
    return replay_passes(t_s, trip_id, device_id, hit, params, start=start, start_t_s=start_t_s)[0]


def replay_passes(t_s: np.ndarray, trip_id: np.ndarray, device_id: np.ndarray, hit: np.ndarray,
                  params: DefectParams, *, start: str | None = None, start_t_s: float | None = None,
                  resume: Replay | None = None, crew: tuple[str | None, float | None] = (None, None)
                  ) -> tuple[list[Transition], Replay]:
    """:func:`status_timeline` and where its replay stands after these passes; with ``resume``, the passes
    (all after ``resume.last``) continue that replay, and ``start`` is ignored."""
    r = resume or Replay(state=start, crew=crew, params=params.digest())
    state, n_pass, n_hit, n_clean, last = r.state, r.n_pass, r.n_hit, r.n_clean, r.last
    devices: set[str] = set(r.devices)
    clean_devices: set[str] = set(r.clean_devices)
    out: list[Transition] = []

    def change(t: float, to: str, reason: str) -> None:
        nonlocal state
        out.append(Transition(float(t), state, to, reason))
        state = to

    for t, trip, dev, was_hit in _time_ordered(t_s, trip_id, device_id, hit):
        if start_t_s is not None and t <= start_t_s:
            continue
        last = (t, trip)
        if n_hit or was_hit:                 # passes counted from the first hit (potholes appear)
            n_pass += 1
        if was_hit:
            n_hit += 1
            devices.add(dev)
            n_clean, clean_devices = 0, set()
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
            n_clean += 1
            clean_devices.add(dev)
            repaired, hit_rate = _repaired_now(n_pass, n_hit, n_clean, len(clean_devices), params)
            if repaired:
                change(t, "likely_repaired", f"no hit on the last {n_clean} passes from {len(clean_devices)} "
                                             f"devices, after hits on {hit_rate:.0%} of the passes before (trip "
                                             f"{trip} the latest)")
    keep_devices = state in (None, "candidate", "repaired")
    return out, _replay(state, tuple(sorted(devices)) if keep_devices else (), n_pass, n_hit, n_clean,
                        tuple(sorted(clean_devices)), last, r.crew, r.params)


def resume_after_miss(resume: Replay, t_s: float, trip_id: str, device_id: str, params: DefectParams, *,
                      start_t_s: float | None = None) -> Replay | None:
    """Where the replay ``resume`` stands after one more pass without a hit (at ``t_s``, trip ``trip_id``, by
    ``device_id``) that changes no status: what :func:`replay_passes` gives for that one pass (``resume=resume``,
    ``start_t_s``), without its machinery for many passes (most passes of a trip are one such miss). None when the
    pass would change the status (a confirmed defect missed often enough) or comes before ``start_t_s`` (replay it
    with :func:`replay_passes`)."""
    t = float(t_s)
    after = _after_miss(resume.state, resume.devices, resume.n_pass, resume.n_hit, resume.n_clean,
                        resume.clean_devices, t, str(device_id), params, start_t_s)
    if after is None:
        return None
    devices, n_pass, n_clean, clean = after
    return _replay(resume.state, devices, n_pass, resume.n_hit, n_clean, clean, (t, str(trip_id)), resume.crew,
                   resume.params)


def resume_json_after_miss(text: str | None, t_s: float, trip_id: str, device_id: str,
                           crew: tuple[str | None, float | None], params: DefectParams) -> str | None:
    """The stored replay ``text`` resumed with one pass without a hit (at ``t_s``, trip ``trip_id``, by
    ``device_id``) under the crew decision ``crew`` (status, time [s]): ``Replay.from_json(text)``, checked by
    :meth:`Replay.resumes` and moved on by :func:`resume_after_miss` (``start_t_s``: the crew's time), written as
    :meth:`Replay.to_json` writes it, read and written without the dataclass between (a trip's passes of defects
    it does not hit, mostly). None when there is no readable replay, it does not resume with this pass, or the pass
    would change the status (replay it with :func:`replay_passes`)."""
    fields = _replay_fields(text)
    if fields is None:
        return None
    state, devices, n_pass, n_hit, n_clean, clean, last, stored_crew, digest = fields
    t, trip = float(t_s), str(trip_id)
    if last is None or not (t, trip) > last or stored_crew != crew or digest != params.digest():
        return None
    after = _after_miss(state, devices, n_pass, n_hit, n_clean, clean, t, str(device_id), params, crew[1])
    if after is None:
        return None
    devices, n_pass, n_clean, clean = after
    return _replay_json(state, devices, n_pass, n_hit, n_clean, clean, (t, trip), stored_crew, digest)


def _after_miss(state: str | None, devices: tuple[str, ...], n_pass: int, n_hit: int, n_clean: int,
                clean_devices: tuple[str, ...], t_s: float, device_id: str, params: DefectParams,
                start_t_s: float | None) -> tuple[tuple[str, ...], int, int, tuple[str, ...]] | None:
    """(devices, n_pass, n_clean, clean devices) of a replay (these fields) after one pass without a hit at
    ``t_s`` by ``device_id``, as :func:`replay_passes` moves them; None when the pass changes the status or comes
    before ``start_t_s``."""
    if start_t_s is not None and t_s <= start_t_s:
        return None
    if n_hit:                                # passes counted from the first hit
        n_pass += 1
    clean = set(clean_devices)
    if state == "confirmed":
        n_clean += 1
        clean.add(device_id)
        if _repaired_now(n_pass, n_hit, n_clean, len(clean), params)[0]:
            return None                      # likely repaired now
    keep_devices = state in (None, "candidate", "repaired")
    return tuple(sorted(set(devices))) if keep_devices else (), n_pass, n_clean, tuple(sorted(clean))


_FEW_PASSES = 32        # passes ordered in Python up to this many (NumPy's fixed costs dominate a few)


def _time_ordered(t_s: np.ndarray, trip_id: np.ndarray, device_id: np.ndarray, hit: np.ndarray
                  ) -> list[tuple[float, str, str, bool]]:
    """The passes as (time [s], trip, device, hit) Python values, by time, then trip id, ties in their given order
    (a stable sort: the order of ``np.lexsort``). A resumed replay sees one pass or a few: ordered in Python."""
    if len(t_s) <= _FEW_PASSES:
        rows = [(float(t), str(trip), str(dev), bool(h)) for t, trip, dev, h in zip(t_s, trip_id, device_id, hit,
                                                                                   strict=True)]
        if len(rows) <= 1:                          # a trip's pass resuming a replay: nothing to order
            return rows
        if all(r[0] == r[0] for r in rows):         # no NaN time (NumPy sorts those last)
            return sorted(rows, key=lambda r: (r[0], r[1]))
    trips, times = np.asarray(trip_id).astype(str), np.asarray(t_s, dtype=np.float64)
    order = np.lexsort((trips, times))
    return list(zip(times[order].tolist(), trips[order].tolist(), np.asarray(device_id).astype(str)[order].tolist(),
                    np.asarray(hit).astype(bool)[order].tolist(), strict=True))


@dataclass(frozen=True)
class StatusResult:
    status: str
    since_s: float               # data time of the last change (crew time for a crew decision)
    transitions: list[Transition]
    replay: Replay | None = None  # where the replay stands (None: nothing to resume, e.g. dismissed)


def evaluate_status(t_s: np.ndarray, trip_id: np.ndarray, device_id: np.ndarray, hit: np.ndarray,
                    params: DefectParams, *, crew_status: str | None = None, crew_at_s: float | None = None
                    ) -> StatusResult:
    """The status of a defect from its passes and the crews' last decision (see the module docstring)."""
    crew = (crew_status, crew_at_s)
    if crew_status == "dismissed":
        return StatusResult("dismissed", float(crew_at_s or 0.0), [])
    if crew_status in ("confirmed", "repaired"):   # confirmed: seen on site, whatever the hit count; the data goes on
        after, replay = replay_passes(t_s, trip_id, device_id, hit, params, start=crew_status, start_t_s=crew_at_s,
                                      crew=crew)
        if not after:
            return StatusResult(crew_status, float(crew_at_s or 0.0), [], replay)
        return StatusResult(after[-1].to_status, after[-1].t_s, after, replay)
    timeline, replay = replay_passes(t_s, trip_id, device_id, hit, params, crew=crew)
    if not timeline:
        first = float(np.min(t_s)) if np.size(t_s) else 0.0
        return StatusResult("candidate", first, [], replay)
    return StatusResult(timeline[-1].to_status, timeline[-1].t_s, timeline, replay)


def check_crew_status(status: str, reason: str) -> None:
    """Raise :class:`InvalidStatusError` unless ``status`` is one a crew may set, with a reason."""
    if status not in (*CREW_STATUSES, REOPEN):
        raise InvalidStatusError(f"crews may set {', '.join(CREW_STATUSES)} or {REOPEN}, not {status!r} "
                                 f"(candidate and likely_repaired follow from the data)", field="status")
    if not reason or not reason.strip():
        raise InvalidStatusError("a status change needs a reason (e.g. 'patched 2026-05-10, work order 123')",
                                 field="reason")
