"""Re-summarising defects after their hits or passes changed: position, kind, severity, counts, status and priority.

:func:`refresh_defects` is what :mod:`bump.pipeline` calls for every defect a trip touched: it reads each defect's
latest hits and all its passes, re-estimates its position, kind, depth class, severity and confidence
(:mod:`bump.cluster`), merges it with a duplicate, its opposite-direction twin or a larger defect that most of its hits
would have joined, replays its status over the passes since the last one replayed (:mod:`bump.lifecycle`) and writes the
new summaries, statuses, history rows and priorities. Defects a trip only passed without a hit take a shorter path
(:func:`_refresh_passed`): their pass counts move on and their status replay resumes, their summary stays when their
hits would give the same one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bump import cells as cellmap
from bump import latency as gps_latency
from bump.cluster import (
    DESIGNED_KINDS,
    DefectParams,
    absorb_pairs,
    close_pairs,
    duplicate_pairs,
    mean_heading,
    merge_forest,
    robust_centres,
    same_pass_pairs,
    spanning_merge_ok,
    spans_road,
    twin_pairs,
)
from bump.kinds import decide_depth_classes, decide_kinds, deeper_than_castings
from bump.lifecycle import (
    REOPENED,
    Replay,
    StatusResult,
    Transition,
    evaluate_status,
    replay_passes,
    resume_after_miss,
    resume_json_after_miss,
)
from bump.priority import priority, traversals_per_day
from bump.store import INDEXED_DEFECT_COLUMNS, Store, ids_in, setdiff_ids
from detect.columns import Columns
from detect.geo import LocalProjection

# ------------------------------------------------------------------------------------------ defect refresh


# what merging reads of the defects around a place (a narrow, faster read)
_MERGE_COLUMNS = ("defect_id", "x_m", "y_m", "heading_deg", "spans", "uncertainty_m", "n_traversals",
                  "n_traversal_hits", "n_hits")


@dataclass(frozen=True)
class RefreshResult:
    merged: list[int]
    final_status: dict[int, str]
    status_before: dict[int, str] = field(default_factory=dict)   # as first read in the refresh, by id


def _group_quantile(labels: np.ndarray, values: np.ndarray, n_labels: int, q: float) -> np.ndarray:
    """The q-quantile (linear interpolation) of the finite values of each label; NaN where none."""
    ok = np.isfinite(values)
    lab, v = labels[ok], values[ok]
    order = np.lexsort((v, lab))
    lab, v = lab[order], v[order]
    n = np.bincount(lab, minlength=n_labels)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    pos = q * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    out = np.full(n_labels, np.nan)
    has = n > 0
    a, b = v[(start + lo)[has]], v[(start + hi)[has]]
    out[has] = a + (pos - lo)[has] * (b - a)
    return out


def _summaries(defects: Columns, hits: Columns, totals: Columns, pass_totals: Columns, proj: LocalProjection,
               dp: DefectParams, *, own: np.ndarray | None = None, fleet: tuple[float, int] | None = None
               ) -> dict[str, np.ndarray]:
    """Position, direction, kind, severity and confidence of defects from their (latest) hits, placed where they were
    (``place_x_m``, ``place_y_m``: corrected for GPS latency), counts from their hit ``totals``
    (:meth:`Store.hit_totals`, same ids) and ``pass_totals`` (:meth:`Store.traversal_totals`). ``own``: per hit, whether
    its device has samples of its own; ``fleet``: :func:`bump.latency.fleet_latency`, stored (``latency_s``,
    ``latency_devices``) with the defects whose hits were all corrected by the fleet's latency, (NULL,
    :data:`OWN_LATENCY_STAMP`) with those whose hits all carry their own trip's latency (NULL with the others, and when
    not given).

    Severity: the upper quartile of the hits' severities (a wheel that clipped the edge understates the depth);
    depth class: see :func:`bump.kinds.decide_depth_classes`. Confidence: see
    :func:`bump.priority.device_confidence`."""
    ids = defects["defect_id"]
    k = ids.size
    lab = np.searchsorted(ids, hits["defect_id"])
    _, trip_idx = np.unique(hits["trip_id"], return_inverse=True)
    c = robust_centres(lab, hits["place_x_m"], hits["place_y_m"], hits["accuracy_m"], trip_idx.ravel(), k, dp)
    p = np.searchsorted(pass_totals["defect_id"], ids)
    has = (p < len(pass_totals)) & (pass_totals["defect_id"][np.minimum(p, max(len(pass_totals) - 1, 0))] == ids) \
        if len(pass_totals) else np.zeros(k, dtype=bool)
    pick = np.minimum(p, max(len(pass_totals) - 1, 0))

    def per_defect(name: str, missing: float) -> np.ndarray:
        return np.where(has, pass_totals[name][pick], missing) if len(pass_totals) else np.full(k, missing)

    counts = _counts(per_defect("n_traversals", 0).astype(np.int64), per_defect("n_traversal_hits", 0).astype(
        np.int64), per_defect("first_traversal_s", np.inf), per_defect("last_traversal_s", -np.inf), dp)
    n_trav, n_trav_hit = counts["n_traversals"], counts["n_traversal_hits"]
    total = np.searchsorted(totals["defect_id"], ids)            # every defect summarised has hits
    kinds, reasons = decide_kinds(lab, k, hits["kind"], hits["confidence"], hits["heading_deg"], n_trav, n_trav_hit,
                                  dp, hit_spot_kind=hits["spot_kind"], n_devices=totals["n_devices"][total])
    sev = _group_quantile(lab, hits["severity"], k, 0.75)
    depth = decide_depth_classes(lab, k, hits["first_motion"], sev, kinds, dp)
    kinds, reasons = deeper_than_castings(kinds, reasons, sev, depth, dp)
    _, dev_idx = np.unique(hits["device_id"], return_inverse=True)
    pair = lab * (int(dev_idx.max(initial=0)) + 1) + dev_idx.ravel()
    upair, pinv = np.unique(pair, return_inverse=True)
    best = np.zeros(upair.size)
    np.maximum.at(best, pinv.ravel(), np.clip(np.nan_to_num(hits["confidence"], nan=0.0), 0.0, 1.0 - 1e-12))
    plab = upair // (int(dev_idx.max(initial=0)) + 1)
    confidence = 1.0 - np.exp(np.bincount(plab, np.log1p(-best), minlength=k))
    spans = spans_road(kinds)
    head = mean_heading(lab, hits["heading_deg"], 1.0 / np.maximum(np.nan_to_num(hits["accuracy_m"], nan=10.0), 1.0)
                        ** 2, k, spans)
    lat, lon = proj.to_latlon(c.x_m, c.y_m)
    stamp_s, stamp_n = np.full(k, np.nan), np.full(k, None, dtype=object)
    if fleet is not None and own is not None:
        by_fleet = np.bincount(lab, np.asarray(own, dtype=np.float64), minlength=k) == 0
        stamp_s[by_fleet], stamp_n[by_fleet] = fleet[0], int(fleet[1])
        by_own = np.bincount(lab, np.isnan(hits["own_latency_s"]).astype(np.float64), minlength=k) == 0
        stamp_s[by_own], stamp_n[by_own] = np.nan, OWN_LATENCY_STAMP
    return {
        "defect_id": ids, "kind": kinds, "kind_reason": np.array(reasons, dtype=object),
        "lat_deg": lat, "lon_deg": lon, "x_m": c.x_m, "y_m": c.y_m, "grid_key": cellmap.grid_keys(c.x_m, c.y_m),
        "heading_deg": head, "spans": spans.astype(np.int64), "uncertainty_m": c.uncertainty_m,
        "severity": sev, "depth_class": depth.astype(object), "confidence": confidence,
        "n_hits": totals["n_hits"][total], "n_devices": totals["n_devices"][total], **counts,
        "first_seen_s": totals["first_seen_s"][total], "last_seen_s": totals["last_seen_s"][total],
        "latency_s": stamp_s, "latency_devices": stamp_n,
    }


def _sync_traversal_hits(store: Store, hit_trips: Columns, trav: Columns) -> Columns:
    """Make the passes agree with the hits after hits moved between defects (merges, a re-cluster): a trip with
    hits on a defect has a pass with a hit (the pass nearest in time to its first hit, or a new one there), a trip
    without has none. ``hit_trips``: :meth:`Store.hit_trips` of the defects."""
    hit_pairs = {(d, t): (ts, dev) for d, t, ts, dev in
                 zip(*(np.asarray(hit_trips[k]).astype(c).tolist() for k, c in
                       (("defect_id", np.int64), ("trip_id", str), ("t_s", np.float64), ("device_id", str))),
                     strict=True)}
    passes: dict[tuple[int, str], list[tuple[int, float, int]]] = {}
    for d, t, k, ts, h in zip(*(np.asarray(trav[c]).astype(dt).tolist() for c, dt in
                                (("defect_id", np.int64), ("trip_id", str), ("pass_no", np.int64),
                                 ("t_s", np.float64), ("hit", np.int64))), strict=True):
        passes.setdefault((d, t), []).append((k, ts, h))
    new_rows, flips = [], []                          # (defect, trip, pass, device, time, hit)
    for (d, t), (ts, dev) in hit_pairs.items():
        mine = passes.get((d, t), [])
        if not mine:
            new_rows.append((d, t, 0, dev, ts, 1))
        elif not any(h for _, _, h in mine):
            k = min(mine, key=lambda row: abs(row[1] - ts))[0]
            flips.append((d, t, k, "-", 0.0, 1))
    flips += [(d, t, k, "-", 0.0, 0) for (d, t), mine in passes.items() if (d, t) not in hit_pairs
              for k, _, h in mine if h]
    if not new_rows and not flips:
        return trav
    for rows in (new_rows, flips):                    # a flip keeps the pass's time and device (upsert_traversals)
        if rows:
            store.upsert_traversals({"defect_id": [r[0] for r in rows], "trip_id": [r[1] for r in rows],
                                     "pass_no": [r[2] for r in rows], "device_id": [r[3] for r in rows],
                                     "t_s": [r[4] for r in rows], "hit": [r[5] for r in rows],
                                     "distance_m": [np.nan] * len(rows)})
    return store.traversals_of_defects(np.unique(trav["defect_id"].tolist() + [r[0] for r in new_rows + flips]))


def _crews(prev: Columns) -> list[tuple[str | None, float | None]]:
    """(crew status, crew decision time [s]) of each row of stored defect columns, None where there is none."""
    return [(status or None, at if math.isfinite(at) else None)
            for status, at in zip(prev["crew_status"].tolist(), prev["crew_at_s"].tolist(), strict=True)]


def _resumable(prev: Columns, passes: Columns, dp: DefectParams) -> tuple[np.ndarray, np.ndarray]:
    """Which defects of ``prev`` (with stored replays) can resume their status replay with ``passes``: all of
    their passes in it come after the last one replayed, under the same crew decision and rules (a dismissed
    defect has no replay to resume); and their stored replays, parsed (None where they cannot resume)."""
    out = np.zeros(len(prev), dtype=bool)
    replays = np.full(len(prev), None, dtype=object)
    order = np.lexsort((passes["trip_id"], passes["t_s"]))
    first: dict[int, tuple[float, str]] = {}
    for d, t, trip in zip(passes["defect_id"][order].tolist(), passes["t_s"][order].tolist(),
                          passes["trip_id"][order].tolist(), strict=True):
        first.setdefault(d, (t, trip))
    crews = _crews(prev)
    for g, did in enumerate(prev["defect_id"].tolist()):
        if did not in first:
            continue
        replay = Replay.from_json(prev["status_replay"][g])
        crew = crews[g]
        if replay is not None and crew[0] != "dismissed" and replay.resumes(*first[did], crew, dp):
            out[g], replays[g] = True, replay
    return out, replays


def _resumed(did: int, old_status: str, old_since_s: float, resume: Replay, passes: tuple[list, ...],
             crew_at_s: float | None, dp: DefectParams, *, now: float, actor: str
             ) -> tuple[str, float, str, list[dict[str, Any]]]:
    """(status, since [s], replay JSON, history rows) of one defect whose stored replay (``resume``, parsed by
    :func:`_resumable`) continues with ``passes`` (t_s, trip_id, device_id, hit lists, all after the last pass
    replayed): one history row when the status changes."""
    if len(passes[0]) == 1 and not passes[3][0]:     # one pass, a miss (most): no status change, mostly
        after = resume_after_miss(resume, passes[0][0], passes[1][0], passes[2][0], dp, start_t_s=crew_at_s)
        if after is not None:
            return old_status, old_since_s, after.to_json(), []
    transitions, replay = replay_passes(*passes, dp, resume=resume, start_t_s=crew_at_s)
    if not transitions:
        return old_status, old_since_s, replay.to_json(), []
    tr = transitions[-1]
    rows = [] if tr.to_status == old_status else [
        _history_row(did, Transition(tr.t_s, old_status, tr.to_status, tr.reason), now, actor)]
    return tr.to_status, tr.t_s, replay.to_json(), rows


# what moves on with the passes of a defect whose summary (what it takes from its hits) is kept (_summary_holds)
_MOVED_ON = ("n_traversals", "n_traversal_hits", "hit_rate", "traversals_per_day", "first_traversal_s",
             "last_traversal_s", "status", "status_since_s", "priority", "updated_at_s", "status_replay", "detector")
# what a full refresh reads of a defect's stored state (the rest comes from its hits and passes)
_HIT_TOTALS = ("n_hits", "n_devices", "first_seen_s", "last_seen_s")                      # Store.hit_totals
_PASS_TOTALS = ("n_traversals", "n_traversal_hits", "first_traversal_s", "last_traversal_s")  # .traversal_totals
_LOAD_COLUMNS = ("defect_id", "status", "status_since_s", "crew_status", "crew_at_s", "status_replay",
                 *INDEXED_DEFECT_COLUMNS, *_HIT_TOTALS, *_PASS_TOTALS)
OWN_LATENCY_STAMP = -2     # defects.latency_devices of a summary whose hits all carry their own trip's latency
# what summaries read of a defect's latest hits (hit_id: their order)
SUMMARY_HIT_COLUMNS = ("hit_id", "trip_id", "device_id", "defect_id", "t_s", "x_m", "y_m", "accuracy_m",
                       "heading_deg", "kind", "severity", "confidence", "speed_mps", "own_latency_s", "spot_kind",
                       "first_motion")


def _load(store: Store, ids: np.ndarray, proj: LocalProjection, dp: DefectParams, *, sync: bool = True,
          passes: Columns | None = None, recent_hits: tuple[np.ndarray, Columns] | None = None
          ) -> tuple[Columns, Columns, dict[str, np.ndarray], np.ndarray, Columns]:
    """Stored state (status, crew decision, replay), passes and fresh summaries of defects; also the ids left without
    hits (deleted) and the latest hits the summaries came from (columns of :data:`SUMMARY_HIT_COLUMNS` and
    ``place_x_m``, ``place_y_m``: corrected for GPS latency). Summaries read each defect's latest ``summary_hits`` hits
    and its hit and pass totals, and a defect whose status replay can resume with ``passes`` (this trip's, all later
    than the last replayed) gets only those (``prev["resume"]``): a busy defect costs no more than a quiet one.
    ``sync``: first make the passes agree with the hits (after hits moved; a trip's own ingestion keeps them agreeing).
    ``recent_hits``: (defect ids, their latest hits) read before in this transaction, no hit changed since. (Defects
    only passed whose summary holds keep it without coming here: :func:`_refresh_passed`.)"""
    prev = store.defects_by_id(ids, _LOAD_COLUMNS)
    ids = prev["defect_id"]
    resume, replays = np.zeros(len(prev), dtype=bool), np.full(len(prev), None, dtype=object)
    if passes is not None and not sync:
        passes = passes.select(ids_in(passes["defect_id"], ids))
        resume, replays = _resumable(prev, passes, dp)
    totals = _hit_totals(store, prev, resume, passes)
    empty = setdiff_ids(ids, totals["defect_id"])
    if empty.size:                              # every hit moved elsewhere: nothing left to report
        store.delete_defects(empty)
        keep = ~ids_in(ids, empty)
        prev, resume, replays = prev.select(keep), resume[keep], replays[keep]
        ids = prev["defect_id"]
    read, hits = (np.empty(0, np.int64), None) if recent_hits is None else recent_hits
    have = ids_in(ids, read)
    parts = [] if hits is None else [hits.select(ids_in(hits["defect_id"], ids[have]))]
    if not parts or not have.all():
        parts.append(store.hits_of_defects(ids[~have], SUMMARY_HIT_COLUMNS, recent=dp.summary_hits))
    hits = parts[0] if len(parts) == 1 else Columns({k: np.concatenate([p[k] for p in parts]) for k in parts[0].names})
    hits = hits.select(np.argsort(hits["hit_id"], kind="stable"))
    trav = store.traversals_of_defects(ids[~resume])
    if sync:
        trav = _sync_traversal_hits(store, store.hit_trips(ids), trav)
    if resume.any():
        mine = passes.select(ids_in(passes["defect_id"], ids[resume]))
        trav = _cat(trav, Columns({n: mine[n] for n in trav.names}))
    prev = prev.with_columns(resume=resume, replay=replays)
    latency_s, own, fleet = gps_latency.latencies(store, hits["device_id"], dp, hits["own_latency_s"])
    pass_totals = _pass_totals_resumed(prev, resume, trav)
    hx, hy = gps_latency.corrected_xy(hits["x_m"], hits["y_m"], hits["heading_deg"], hits["speed_mps"], latency_s)
    hits = hits.with_columns(place_x_m=hx, place_y_m=hy)
    summ = _summaries(prev, hits, totals, pass_totals, proj, dp, own=own, fleet=fleet)
    return prev, trav, summ, empty, hits


def _hit_totals(store: Store, prev: Columns, resume: np.ndarray, passes: Columns | None) -> Columns:
    """:meth:`Store.hit_totals` of the defects of ``prev``. Those whose replay resumes with ``passes`` (one trip's,
    later than every pass replayed: since their stored summary only that trip's hits came) get their stored totals
    plus the trip's hits, so that a busy defect's thousands of hits are not counted again on every pass; its
    device is new to a defect unless it hit it before (:meth:`Store.defects_hit_by`)."""
    ids = prev["defect_id"]
    trips = np.unique(passes["trip_id"]) if passes is not None and resume.any() else np.empty(0)
    devices = np.unique(passes["device_id"]) if trips.size == 1 else np.empty(0)
    if devices.size != 1:
        return store.hit_totals(ids)
    trip = str(trips[0])
    inc = prev.select(resume)
    mine = store.trip_hit_totals(trip, inc["defect_id"])             # (by id) this trip's hits of those it hit
    got = ids_in(inc["defect_id"], mine["defect_id"])
    k = np.searchsorted(mine["defect_id"], inc["defect_id"][got])
    before = store.defects_hit_by(str(devices[0]), inc["defect_id"][got], exclude_trip=trip)
    n_hits, first, last = inc["n_hits"].copy(), inc["first_seen_s"].copy(), inc["last_seen_s"].copy()
    n_hits[got] += mine["n_hits"][k]
    first[got] = np.fmin(first[got], mine["first_seen_s"][k])
    last[got] = np.fmax(last[got], mine["last_seen_s"][k])
    new_device = got & ~ids_in(inc["defect_id"], before)
    grown = Columns({"defect_id": inc["defect_id"], "n_hits": n_hits,
                     "n_devices": inc["n_devices"] + new_device.astype(np.int64), "first_seen_s": first,
                     "last_seen_s": last})
    out = _cat(store.hit_totals(ids[~resume]), grown)
    return out.select(np.argsort(out["defect_id"], kind="stable"))


def _pass_totals_resumed(prev: Columns, resume: np.ndarray, trav: Columns) -> Columns:
    """:meth:`Store.traversal_totals` of the defects of ``prev`` from ``trav``: every pass of those that do not
    resume, and only the new ones of those that do, added to their stored totals (:func:`_pass_totals_after`)."""
    if not resume.any():
        return _pass_totals(trav)
    inc = prev.select(resume)
    full = _pass_totals(trav.select(~ids_in(trav["defect_id"], inc["defect_id"])))
    out = _cat(full, _pass_totals_after(inc, trav))
    return out.select(np.argsort(out["defect_id"], kind="stable"))


def _pass_totals_after(prev: Columns, passes: Columns) -> Columns:
    """:meth:`Store.traversal_totals` of the defects of ``prev`` (sorted ids; their stored totals) with their rows
    of ``passes`` added; every one of them has some."""
    added = _pass_totals(passes.select(ids_in(passes["defect_id"], prev["defect_id"])))
    at = np.searchsorted(added["defect_id"], prev["defect_id"])
    return Columns({"defect_id": prev["defect_id"], "n_traversals": prev["n_traversals"] + added["n_traversals"][at],
                    "n_traversal_hits": prev["n_traversal_hits"] + added["n_traversal_hits"][at],
                    "first_traversal_s": np.fmin(prev["first_traversal_s"], added["first_traversal_s"][at]),
                    "last_traversal_s": np.fmax(prev["last_traversal_s"], added["last_traversal_s"][at])})


def _pass_totals(trav: Columns) -> Columns:
    """:meth:`Store.traversal_totals` of the defects of ``trav`` from those rows (every pass of each)."""
    ids = np.asarray(trav["defect_id"], dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    defect, start, n = np.unique(ids[order], return_index=True, return_counts=True)
    if defect.size == 0:
        return Columns({"defect_id": defect, "n_traversals": n.astype(np.int64),
                        "n_traversal_hits": np.zeros(0, dtype=np.int64), "first_traversal_s": np.empty(0),
                        "last_traversal_s": np.empty(0)})
    t_s = np.asarray(trav["t_s"], dtype=np.float64)[order]
    return Columns({"defect_id": defect, "n_traversals": n.astype(np.int64),
                    "n_traversal_hits": np.add.reduceat(np.asarray(trav["hit"], dtype=np.int64)[order], start),
                    "first_traversal_s": np.minimum.reduceat(t_s, start),
                    "last_traversal_s": np.maximum.reduceat(t_s, start)})


def _summary_holds(prev: Columns, passes: Columns, fleet: tuple[float, int], dp: DefectParams) -> np.ndarray:
    """Which defects of ``prev`` (only passed by ``passes``, their replays resuming) would get from their hits the
    summary they have: none of their hits changed since it was made (every change of hits refreshes them from
    the hits), and what else goes into it did not change either:

    - the kind stays the hits' majority (no designed feature before or after): a designed feature needs a hit rate
      of ``designed_hit_rate``; passes without hits lower it, so a stored designed kind below that rate is one the
      last summary gave by majority (a pass with a hit rate above it is refreshed cheaply, :func:`_refresh_passed`);
    - the hits are corrected by the same GPS latency: all were by the fleet's when the summary was made (stored
      with it), the fleet's is the same and no device got a latency of its own since
      (:func:`bump.latency.fleet_latency`); or all were placed by their own trips' latency
      (:data:`OWN_LATENCY_STAMP`), which no calibration changes."""
    counts = _counts_after(prev, passes, dp)
    designed = np.isin(prev["kind"], DESIGNED_KINDS)
    majority_before = ~designed | (prev["hit_rate"] < dp.designed_hit_rate)
    majority_after = (counts["hit_rate"] < dp.designed_hit_rate) | (counts["n_traversals"] < dp.designed_traversals)
    same_latency = ((prev["latency_s"] == fleet[0]) & (prev["latency_devices"] == fleet[1])
                    | (prev["latency_devices"] == OWN_LATENCY_STAMP))
    return majority_before & majority_after & same_latency


def _drop(cols: Columns | dict[str, np.ndarray], key: str, ids: np.ndarray) -> Columns:
    c = cols if isinstance(cols, Columns) else Columns({k: np.asarray(v) for k, v in cols.items()})
    return c.select(~ids_in(c[key], ids))


def _cat(a: Columns, b: Columns) -> Columns:
    return Columns({k: np.concatenate([np.asarray(a[k], dtype=object if a[k].dtype.kind in "OU" else None),
                                       np.asarray(b[k], dtype=object if b[k].dtype.kind in "OU" else None)])
                    for k in a})


def refresh_defects(store: Store, defect_ids: Sequence[int] | np.ndarray, proj: LocalProjection,
                    dp: DefectParams, *, now: float, detector: str, new_ids: set[int] | None = None,
                    check_ids: Sequence[int] | np.ndarray | None = None, rebuild_history: bool = False,
                    passes: Columns | None = None, hits_synced: bool = False, actor: str = "system",
                    recent_hits: tuple[np.ndarray, Columns] | None = None) -> RefreshResult:
    """Re-summarise defects from their hits and traversals, merge duplicates and twins, re-evaluate status
    and priority, and record status changes.

    ``check_ids``: the defects that may have become a duplicate or a twin (those with new hits; default all);
    a defect only passed cannot move. ``passes``: this trip's traversal rows: defects only passed are refreshed
    from them alone (see :func:`_refresh_passed`), and the others resume their status replay with them where
    they can, those only passed keeping their summary where their hits would give it again (:func:`_load`).
    ``hits_synced``: the traversals agree with the hits already (a trip's own ingestion keeps them so; after hits
    moved they are made to).
    ``rebuild_history``: write the whole replayed timeline (reprocess). ``recent_hits``: (defect ids, their latest
    hits) read in this transaction, no hit changed since (spares reading them again)."""
    ids = np.unique(np.asarray(defect_ids, dtype=np.int64))
    new_ids = set(new_ids or ())
    final_passed: dict[int, str] = {}
    before: dict[int, str] = {}                     # each defect's status as first read here (before any change)
    kept = None
    if passes is not None and not rebuild_history:
        changed = np.union1d(np.asarray(list(new_ids), dtype=np.int64),
                             ids if check_ids is None else np.asarray(check_ids, dtype=np.int64))
        only_passed = ids_in(passes["defect_id"], ids) & ~ids_in(passes["defect_id"], changed)
        done, final_passed, before, kept = _refresh_passed(store, passes.select(only_passed), dp, now=now,
                                                           actor=actor, detector=detector)
        ids = setdiff_ids(ids, done if kept is None else np.concatenate([done, kept.update["defect_id"]]))
    if ids.size == 0:
        if kept is not None:
            final_passed |= kept.write(store)
            if kept.history:
                store.add_history(kept.history)
        return RefreshResult([], final_passed, before)
    prev, trav, summ, gone, hits = _load(store, ids, proj, dp, sync=not hits_synced,
                                   passes=None if passes is None or rebuild_history else passes.select(
                                       ~ids_in(passes["defect_id"], np.asarray(list(new_ids), dtype=np.int64))),
                                   recent_hits=recent_hits)
    before = dict(zip(prev["defect_id"].tolist(), prev["status"].tolist(), strict=True)) | before
    merged: list[int] = gone.tolist()
    sc = Columns({k: np.asarray(v) for k, v in summ.items()})
    check = sc["defect_id"] if check_ids is None else np.intersect1d(np.asarray(check_ids, np.int64),
                                                                      sc["defect_id"])
    for _ in range(5):
        groups = _merge_groups(store, sc.select(ids_in(sc["defect_id"], check)),
                               hits.select(ids_in(hits["defect_id"], check)), dp) if check.size else []
        if not groups:
            break
        status_of = dict(zip(prev["defect_id"].tolist(), prev["status"].tolist(), strict=True))
        removed: list[int] = []
        store.move_defects_rows({o: survivor for survivor, others in groups for o in others})   # groups are disjoint
        unknown = [s for s, _ in groups if s not in status_of]
        if unknown:
            got = store.defects_by_id(unknown, ("defect_id", "status"))
            status_of |= dict(zip(got["defect_id"].tolist(), got["status"].tolist(), strict=True))
        history = []
        for survivor, others in groups:
            store.delete_defects(others)
            st = status_of[survivor]
            history.append({"defect_id": survivor, "t_s": now, "recorded_at_s": now, "from_status": st,
                            "to_status": st,
                            "reason": f"merged defect(s) {', '.join(f'#{o}' for o in others)} into this one",
                            "actor": actor})
            removed += others
            new_ids.discard(survivor)
        store.add_history(history)
        merged += removed
        survivors = np.array(sorted({g[0] for g in groups}), dtype=np.int64)
        out = np.array(removed + survivors.tolist(), dtype=np.int64)
        p2, t2, s2, gone, h2 = _load(store, survivors, proj, dp)
        before = dict(zip(p2["defect_id"].tolist(), p2["status"].tolist(), strict=True)) | before
        merged += gone.tolist()
        prev = _cat(_drop(prev, "defect_id", out), p2)
        trav = _cat(_drop(trav, "defect_id", out), t2)
        sc = _cat(_drop(sc, "defect_id", out), Columns({k: np.asarray(v) for k, v in s2.items()}))
        hits = _cat(_drop(hits, "defect_id", out), h2)
        order = np.argsort(sc["defect_id"], kind="stable")
        sc, prev = sc.select(order), prev.select(np.argsort(prev["defect_id"], kind="stable"))
        check = p2["defect_id"]
    if kept is not None:                            # those merged meanwhile: as merges left them
        kept = kept.without(set(merged) | set(sc["defect_id"].tolist()))
    result = _finalise(store, prev, sc.data, trav, dp, now=now, detector=detector, new_ids=new_ids,
                       rebuild_history=rebuild_history, merged=merged, actor=actor, kept=kept)
    return RefreshResult(result.merged, final_passed | result.final_status, before)


def _counts(n_trav: np.ndarray, n_trav_hit: np.ndarray, first_s: np.ndarray, last_s: np.ndarray, dp: DefectParams
            ) -> dict[str, np.ndarray]:
    return {"n_traversals": n_trav, "n_traversal_hits": n_trav_hit,
            "hit_rate": np.where(n_trav > 0, n_trav_hit / np.maximum(n_trav, 1), np.nan),
            "traversals_per_day": traversals_per_day(n_trav, first_s, last_s, dp),
            "first_traversal_s": np.where(np.isfinite(first_s), first_s, np.nan),
            "last_traversal_s": np.where(np.isfinite(last_s), last_s, np.nan)}


def _counts_after(prev: Columns, passes: Columns, dp: DefectParams) -> dict[str, np.ndarray]:
    """:func:`_counts` of defects (``prev``: their stored counts, sorted ids) with their rows of ``passes``
    added (:func:`_pass_totals_after`)."""
    t = _pass_totals_after(prev, passes)
    return _counts(t["n_traversals"], t["n_traversal_hits"], t["first_traversal_s"], t["last_traversal_s"], dp)


_PASSED_COLUMNS = ("defect_id", "status", "status_since_s", "crew_status", "crew_at_s", "kind", "severity",
                   "confidence", "n_traversals", "n_traversal_hits", "first_traversal_s", "last_traversal_s",
                   "status_replay", "priority", "hit_rate", "latency_s", "latency_devices")


@dataclass(frozen=True)
class _KeptSummaries:
    """Designed features only passed, whose kind the miss may change but whose hits still give the summary they
    have (:func:`_summary_holds`): their pass counts, status and priority moved on as a full refresh makes them,
    to be written where it writes them (:func:`_finalise`, after any merges: the defects merged meanwhile read
    them as stored). ``update``: ``defect_id`` and :data:`_MOVED_ON` by id; ``old_priority``: as stored;
    ``history``: status changes, by id."""

    update: dict[str, np.ndarray]
    old_priority: np.ndarray
    history: list[dict[str, Any]]

    def without(self, ids: set[int]) -> _KeptSummaries:
        """These but the defects ``ids`` (merged into another, or refreshed in full as a merge's survivor)."""
        keep = ~np.isin(self.update["defect_id"], np.array(sorted(ids), dtype=np.int64))
        return _KeptSummaries({k: v[keep] for k, v in self.update.items()}, self.old_priority[keep],
                              [r for r in self.history if r["defect_id"] not in ids])

    def write(self, store: Store) -> dict[int, str]:
        """Write them (as :func:`_finalise` writes kept summaries); their final status by id."""
        if self.update["defect_id"].size:
            store.update_defects(self.update, old={"priority": self.old_priority})
        return dict(zip(self.update["defect_id"].tolist(), self.update["status"].tolist(), strict=True))


def _refresh_passed(store: Store, passes: Columns, dp: DefectParams, *, now: float, actor: str, detector: str
                    ) -> tuple[np.ndarray, dict[int, str], dict[int, str], _KeptSummaries | None]:
    """Refresh defects that a trip only passed (``passes``: its traversal rows, no hit): their hits say the same,
    so position, kind, severity and confidence stay; the pass counts move on, and the status replay resumes
    from where it stood (:class:`bump.lifecycle.Replay`) with these passes alone. Neither the hits nor the
    earlier passes are read again, so a pass costs the same on a quiet lane as on a road passed 10,000 times.

    Designed features whose hit rate fell below ``designed_hit_rate`` (the miss may end what made them one; no
    miss can make one) keep their summary while their hits would give it again (:func:`_summary_holds`): those
    are returned apart, to be written after the merges (:class:`_KeptSummaries`). Left to the full refresh (the
    ids returned exclude them): defects with no stored replay or one made under other rules or another crew
    decision, passes older than the last one replayed (a late upload), and the designed features whose summary
    does not hold. Returns (ids done, final status by id, status as read by id, kept summaries)."""
    if len(passes) == 0:
        return np.empty(0, dtype=np.int64), {}, {}, None
    passes = passes.select(np.lexsort((passes["trip_id"], passes["t_s"], passes["defect_id"])))
    ids, start, n_new = np.unique(passes["defect_id"], return_index=True, return_counts=True)
    prev = store.defects_by_id(ids, _PASSED_COLUMNS)
    keep = ids_in(ids, prev["defect_id"])
    ids, start, n_new = ids[keep], start[keep], n_new[keep]
    counts = _counts_after(prev, passes, dp)
    kind_may_change = np.isin(prev["kind"], DESIGNED_KINDS) & (counts["hit_rate"] < dp.designed_hit_rate)
    dismissed = prev["crew_status"] == "dismissed"  # a dismissed defect stays dismissed whatever passes by
    status = prev["status"].astype(object)
    since = prev["status_since_s"].copy()
    replays = prev["status_replay"].astype(object)
    cols = tuple(passes[k].tolist() for k in ("t_s", "trip_id", "device_id", "hit"))
    crews = _crews(prev)
    resume = np.zeros(len(ids), dtype=bool)
    quick = np.zeros(len(ids), dtype=bool)
    parsed = np.full(len(ids), None, dtype=object)
    # each defect's passes in order (by time, then trip): their first one decides whether its replay resumes (as
    # _resumable decides it), a loop over the defects (one pass each, mostly). A pass without a hit that changes
    # no status (most) moves the stored replay on as JSON; the others replay through Replay (_resumed)
    bounds, id_list = np.column_stack([start, start + n_new]).tolist(), ids.tolist()
    for g in np.flatnonzero(~dismissed).tolist():
        s0, s1 = bounds[g]
        if s1 - s0 == 1 and not cols[3][s0]:
            after = resume_json_after_miss(replays[g], cols[0][s0], cols[1][s0], cols[2][s0], crews[g], dp)
            if after is not None:
                resume[g], quick[g], replays[g] = True, True, after
                continue
        replay = Replay.from_json(replays[g])
        if replay is not None and replay.resumes(cols[0][s0], cols[1][s0], crews[g], dp):
            resume[g], parsed[g] = True, replay
    kept = resume & kind_may_change
    if kept.any():
        kept[kept] = _summary_holds(prev.select(kept), passes, gps_latency.fleet_latency(store, dp), dp)
    history: list[dict[str, Any]] = []
    kept_history: list[dict[str, Any]] = []
    for g in np.flatnonzero(resume & ~quick & (~kind_may_change | kept)).tolist():
        s0, s1 = bounds[g]
        status[g], since[g], replays[g], rows = _resumed(id_list[g], str(status[g]), float(since[g]), parsed[g],
                                                         tuple(c[s0:s1] for c in cols), crews[g][1], dp,
                                                         now=now, actor=actor)
        (kept_history if kept[g] else history).extend(rows)
    done = (resume | dismissed) & ~kind_may_change
    prio = priority(prev["severity"], prev["confidence"], counts["traversals_per_day"], prev["kind"], status, dp)
    update = {"defect_id": ids, **counts, "status": status.astype(str), "status_since_s": since, "priority": prio,
              "updated_at_s": np.full(len(ids), now), "status_replay": replays.astype(str)}
    store.update_defects({k: np.asarray(v)[done] for k, v in update.items()}, old={"priority": prev["priority"][done]})
    if history:
        store.add_history(history)
    update["detector"] = np.full(len(ids), detector)
    held = _KeptSummaries({k: np.asarray(update[k])[kept] for k in ("defect_id", *_MOVED_ON)},
                          prev["priority"][kept], kept_history) if kept.any() else None
    return (ids[done], dict(zip(ids[done].tolist(), status[done].tolist(), strict=True)),
            dict(zip(id_list, prev["status"].tolist(), strict=True)), held)


def _merge_groups(store: Store, summ: dict[str, np.ndarray], hits: Columns, dp: DefectParams
                  ) -> list[tuple[int, list[int]]]:
    """Groups (survivor = smallest id, others) of duplicates, twins and absorbed defects (:func:`_absorbed`)
    among the refreshed defects (``summ``; ``hits``: their latest, as :func:`_load` gives them) and the stored
    defects around them."""
    ids = summ["defect_id"]          # only pairs with one of them count: the others within a join radius of them
    around = store.defects_in_grid(cellmap.grid_keys_within(summ["x_m"], summ["y_m"], dp.max_join_radius_m),
                                   _MERGE_COLUMNS)
    keep = ~ids_in(around["defect_id"], ids)
    cat = {n: np.concatenate([np.asarray(summ[n]), around[n][keep]]) for n in _MERGE_COLUMNS}
    spans = cat["spans"].astype(bool)
    close = close_pairs(cat["x_m"], cat["y_m"], dp)
    i1, j1, d1 = duplicate_pairs(cat["x_m"], cat["y_m"], cat["heading_deg"], spans, cat["uncertainty_m"], dp,
                                 pairs=close, passes=(cat["n_traversals"], cat["n_traversal_hits"]))
    i2, j2, d2 = twin_pairs(cat["x_m"], cat["y_m"], cat["heading_deg"], spans, cat["uncertainty_m"],
                            cat["n_traversals"], cat["n_traversal_hits"], dp, pairs=close)
    i3, j3, d3 = _absorbed(store, cat, ids.size, hits, dp)
    i, j, d = np.concatenate([i1, i2, i3]), np.concatenate([j1, j2, j3]), np.concatenate([d1, d2, d3])
    touched = (i < ids.size) | (j < ids.size)
    i, j, d = i[touched], j[touched], d[touched]
    if i.size == 0:
        return []
    # each merges into its nearest larger partner (more hits; ties: the older id): no chaining through strays
    n_hits = cat["n_hits"]
    older = -cat["defect_id"].astype(np.float64) * 1e-9           # a tie in hits goes to the lower id
    comp = merge_forest(n_hits + older - older.min(), i, j, d)
    involved = np.unique(np.concatenate([i, j]))
    out = []
    for g in np.unique(comp[involved]):
        members = sorted(int(cat["defect_id"][m]) for m in np.flatnonzero(comp == g))
        if len(members) > 1:
            out.append((members[0], members[1:]))
    return out


_PASS_HIT_COLUMNS = ("defect_id", "trip_id", "t_s", "x_m", "y_m", "heading_deg")


def _absorbed(store: Store, cat: dict[str, np.ndarray], n_own: int, hits: Columns, dp: DefectParams
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) into the defects ``cat``: a refreshed defect i (i < ``n_own``, ``hits`` its latest) most of
    whose hits would have joined a larger neighbour j (:func:`bump.cluster.absorb_pairs`), unless one pass hit both
    metres apart (:func:`bump.cluster.same_pass_pairs`): then they are two, as joining made them. The full
    re-cluster merges such pairs the same way."""
    e = np.empty(0, np.int64)
    if not len(hits) or len(cat["defect_id"]) < 2:
        return e, e, np.empty(0)
    own = cat["defect_id"][:n_own]
    order = np.argsort(own, kind="stable")
    lab = order[np.searchsorted(own[order], hits["defect_id"])]
    spans = cat["spans"].astype(bool)
    i, j, _ = absorb_pairs(lab, hits["place_x_m"], hits["place_y_m"], hits["heading_deg"], hits["accuracy_m"],
                           cat["x_m"], cat["y_m"], cat["heading_deg"], spans, cat["uncertainty_m"], cat["n_hits"],
                           dp, sources=np.arange(n_own))
    ok = spanning_merge_ok(i, j, cat["heading_deg"], spans, (cat["n_traversals"], cat["n_traversal_hits"]), dp)
    i, j = i[ok], j[ok]
    if i.size == 0:
        return e, e, np.empty(0)
    stored = np.unique(j[j >= n_own])               # targets among the refreshed defects: their hits are in ``hits``
    theirs = store.hits_of_defects(cat["defect_id"][stored], _PASS_HIT_COLUMNS, recent=dp.summary_hits) \
        if stored.size else Columns({n: hits[n][:0] for n in _PASS_HIT_COLUMNS})
    both = Columns({n: np.concatenate([hits[n], theirs[n]]) for n in _PASS_HIT_COLUMNS})
    _, trip = np.unique(both["trip_id"], return_inverse=True)
    a, b = same_pass_pairs(trip.ravel(), both["t_s"], both["x_m"], both["y_m"], both["heading_deg"], dp)
    ids = both["defect_id"]
    seen_apart = set(zip(np.minimum(ids[a], ids[b]).tolist(), np.maximum(ids[a], ids[b]).tolist(), strict=True))
    di, dj = cat["defect_id"][i], cat["defect_id"][j]
    keep = np.array([pair not in seen_apart for pair in zip(np.minimum(di, dj).tolist(), np.maximum(di, dj).tolist(),
                                                            strict=True)], dtype=bool)   # loop over absorbed defects
    i, j = i[keep], j[keep]
    return i, j, np.hypot(cat["x_m"][i] - cat["x_m"][j], cat["y_m"][i] - cat["y_m"][j])


def _finalise(store: Store, prev: Columns, summ: dict[str, np.ndarray], trav: Columns, dp: DefectParams, *,
              now: float, detector: str, new_ids: set[int], rebuild_history: bool, merged: list[int],
              actor: str, kept: _KeptSummaries | None = None) -> RefreshResult:
    """Write the refreshed defects (``summ``, ``prev``: their stored state, by id), then the kept summaries of
    defects only passed (:class:`_KeptSummaries`: the rest as stored), and their status changes in the order of
    their ids."""
    ids = summ["defect_id"]
    status, since, replay, history, retimed = _statuses(prev, trav, dp, now=now, new_ids=new_ids,
                                                        rebuild_history=rebuild_history, actor=actor)
    replayed: dict[int, list[dict[str, Any]]] = {}
    for did, res in retimed:                        # loop over the (few) defects replayed in full
        rows = _replayed_history(store, did, res, now=now, actor=actor)
        if rows is not None:
            replayed[did] = rows
            since[int(np.searchsorted(ids, did))] = res.since_s
            history = [h for h in history if h["defect_id"] != did]
    final = dict(zip(ids.tolist(), status.tolist(), strict=True))
    prio = priority(summ["severity"], summ["confidence"], summ["traversals_per_day"], summ["kind"], status, dp)
    update = {k: v for k, v in summ.items()} | {"status": status.astype(str), "status_since_s": since,
                                                 "priority": prio, "updated_at_s": np.full(ids.size, now),
                                                 "status_replay": replay,
                                                 "detector": np.full(ids.size, detector)}
    if ids.size:
        store.update_defects(update, old={k: prev[k] for k in INDEXED_DEFECT_COLUMNS})
    if kept is not None:
        final = dict(sorted((final | kept.write(store)).items()))
        history = sorted(history + kept.history, key=lambda row: row["defect_id"])   # stable: each one's in order
    if history:
        store.add_history(history)
    for did, rows in replayed.items():
        store.replace_automatic_history(did, rows)
    return RefreshResult(merged, final)


_HistoryRows = list[dict[str, Any]]


def _replayed_history(store: Store, defect_id: int, res: StatusResult, *, now: float, actor: str
                      ) -> _HistoryRows | None:
    """The automatic history of a defect no crew has touched, as its replayed timeline ``res`` gives it, so
    that it does not depend on the order of uploads (a trip uploaded late can date a change earlier, or reach it
    first); rows that stay keep when they were recorded. None when it is that already, or crews' decisions are in
    it (they, and what followed, stand as recorded)."""
    old = store.history(defect_id)
    if any(h["actor"] != "system" for h in old):
        return None
    key = [(tr.t_s, tr.from_status, tr.to_status) for tr in res.transitions]
    if key == [(h["t_s"], h["from_status"], h["to_status"]) for h in old if h["from_status"] != h["to_status"]]:
        return None
    recorded = {(h["t_s"], h["from_status"], h["to_status"]): h["recorded_at_s"] for h in old}
    rows = [_history_row(defect_id, tr, now, actor) for tr in res.transitions]
    for r, k in zip(rows, key, strict=True):
        r["recorded_at_s"] = recorded.get(k, now)
    return rows


def _statuses(prev: Columns, trav: Columns, dp: DefectParams, *, now: float, new_ids: set[int],
              rebuild_history: bool, actor: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, _HistoryRows, list[tuple[int, StatusResult]]]:
    """(status, since [s], replay (JSON, where it stands), history rows, retimed) of the defects of ``prev``
    (sorted by id; stored status and crew decision) from all their passes ``trav``. New defects (and a rebuild)
    record the whole replayed timeline, others one row per change. ``retimed``: (defect id, its replay) of those
    replayed in full without a crew's decision (passes out of order, hits moved): their automatic history becomes
    the replay's (:func:`_replayed_history`), so that it does not depend on the order of uploads."""
    ids = prev["defect_id"]
    status = np.empty(ids.size, dtype=object)
    replay = np.full(ids.size, None, dtype=object)
    since = np.zeros(ids.size)
    history: list[dict[str, Any]] = []
    retimed: list[tuple[int, StatusResult]] = []
    order = np.argsort(trav["defect_id"], kind="stable")
    tids = trav["defect_id"][order]
    bounds = np.searchsorted(tids, ids).tolist(), np.searchsorted(tids, ids, side="right").tolist()
    resume = prev["resume"] if "resume" in prev else np.zeros(ids.size, dtype=bool)
    crews = _crews(prev)
    if resume.any():                         # the passes of resumed replays as Python values, in ``order``
        ordered = tuple(trav[k][order].tolist() for k in ("t_s", "trip_id", "device_id", "hit"))
        old_status, old_since = prev["status"].tolist(), prev["status_since_s"].tolist()
    for g, (did, resumes) in enumerate(zip(ids.tolist(), resume.tolist(), strict=True)):
        b0, b1 = bounds[0][g], bounds[1][g]
        crew, crew_at = crews[g]
        if resumes:                        # ``trav`` holds only the new passes: continue the stored replay
            status[g], since[g], replay[g], rows = _resumed(did, str(old_status[g]), float(old_since[g]),
                                                            prev["replay"][g], tuple(c[b0:b1] for c in ordered),
                                                            crew_at, dp, now=now, actor=actor)
            history += rows
            continue
        m = order[b0:b1]
        res = evaluate_status(trav["t_s"][m], trav["trip_id"][m], trav["device_id"][m], trav["hit"][m], dp,
                              crew_status=crew, crew_at_s=crew_at)
        status[g], since[g] = res.status, res.since_s
        replay[g] = None if res.replay is None else res.replay.to_json()
        old, since_before = str(prev["status"][g]), float(prev["status_since_s"][g])
        if did in new_ids or rebuild_history:
            history += [_history_row(did, tr, now, actor) for tr in res.transitions]
        else:
            if old != res.status:
                # never dated before the status it ends began: after a crew's reopen (dated then) the data's
                # status holds from the reopen on, not from when the replay first reached it
                last = res.transitions[-1] if res.transitions else Transition(res.since_s, old, res.status,
                                                                                  "re-evaluated")
                since[g] = max(last.t_s, since_before)
                # a crew status with no crew decision left: a reopen just cleared it (the history goes on from it)
                was = REOPENED if crew is None and old in ("repaired", "dismissed") else old
                history.append(_history_row(did, Transition(since[g], was, res.status, last.reason), now, actor))
            if crew is None:                          # a full replay: passes came out of order, or hits moved
                retimed.append((did, res))
    return status, since, replay, history, retimed


def _history_row(defect_id: int, tr: Transition, now: float, actor: str) -> dict[str, Any]:
    return {"defect_id": defect_id, "t_s": tr.t_s, "recorded_at_s": now, "from_status": tr.from_status,
            "to_status": tr.to_status, "reason": tr.reason, "actor": actor}
