"""A trip's detected impacts vs its passes over reportable defects: :func:`evaluate_impacts` ->
:class:`ImpactScore`; :func:`group_passes` groups truth wheel hits into passes, and a pass no phone could feel
(:data:`MIN_FELT_M`, :data:`UNOBSERVED_EVENTS`) is left unscored."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bump.cluster import greedy_match, pairs_within
from bump.evaluate.errors import EvaluationInputError
from bump.evaluate.inputs import impact_times
from bump.evaluate.scores import MatchCounts, clean, count_by, quantile, ratio
from bump.evaluate.truth import FEATURE_CATEGORIES, FEATURE_CATEGORY, IMPACT_FP_CATEGORIES, Truth, as_truth

MIN_FELT_M = 0.01                 # a wheel hit counts for recall when the tyre dropped (or rose) at least this
UNOBSERVED_EVENTS = ("handling", "remount", "gap")   # the phone was in a hand or recorded nothing
UNOBSERVED_MARGIN_S = 0.3         # ... from this long before such an event to this long after it


@dataclass(frozen=True)
class ImpactScore(MatchCounts):
    """Detected impacts vs passes over reportable defects, over one or more trips.

    ``matches``: (trip id, detection index, defect id, |dt| [s]); ``missed``: (trip id, defect id, first hit t [s]);
    ``false_positives``: (trip id, detection index, t [s], detected kind, category). ``n_feature_passes`` counts
    passes over non-reportable features (the denominator of :attr:`false_pothole_rate`). ``unscored``: (trip id,
    defect id, first hit t [s], detected) for reportable passes left out of recall and precision because no
    phone could have felt them: every wheel hit grazed (|input_m| < :data:`MIN_FELT_M`) or fell while the
    phone was handled, re-mounted or not recording (:data:`UNOBSERVED_EVENTS`).
    """

    trips: tuple[str, ...]
    tol_s: float
    n_passes: int
    n_detected: int
    n_feature_passes: int
    matches: tuple[tuple[str, int, Any, float], ...]
    missed: tuple[tuple[str, Any, float], ...]
    false_positives: tuple[tuple[str, int, float, str | None, str], ...]
    unscored: tuple[tuple[str, Any, float, bool], ...] = ()

    @property
    def n_truth(self) -> int:
        return self.n_passes

    @property
    def dt_median_s(self) -> float:
        return quantile((m[3] for m in self.matches), 0.5)

    @property
    def dt_p90_s(self) -> float:
        return quantile((m[3] for m in self.matches), 0.9)

    @property
    def fp_by_kind(self) -> dict[str, int]:
        return count_by((f[4] for f in self.false_positives), IMPACT_FP_CATEGORIES)

    @property
    def pothole_fp_by_kind(self) -> dict[str, int]:
        """Like :attr:`fp_by_kind`, for detections whose kind is "pothole" only."""
        return count_by((f[4] for f in self.false_positives if _is_pothole(f[3])), IMPACT_FP_CATEGORIES)

    @property
    def n_near_features(self) -> int:
        return sum(self.fp_by_kind[c] for c in FEATURE_CATEGORIES)

    @property
    def n_near_events(self) -> int:
        return self.fp_by_kind["event"]

    @property
    def n_pothole_on_features(self) -> int:
        return sum(self.pothole_fp_by_kind[c] for c in FEATURE_CATEGORIES)

    @property
    def n_pothole_on_events(self) -> int:
        return self.pothole_fp_by_kind["event"]

    @property
    def false_pothole_rate(self) -> float:
        """Pothole-kind detections on non-reportable features per pass over such features."""
        return ratio(self.n_pothole_on_features, self.n_feature_passes)

    @classmethod
    def combine(cls, scores: Sequence[ImpactScore]) -> ImpactScore:
        """Sum of per-trip scores (same ``tol_s``)."""
        if not scores:
            raise ValueError("nothing to combine")
        return cls(tuple(t for s in scores for t in s.trips), scores[0].tol_s,
                   sum(s.n_passes for s in scores), sum(s.n_detected for s in scores),
                   sum(s.n_feature_passes for s in scores),
                   tuple(m for s in scores for m in s.matches), tuple(m for s in scores for m in s.missed),
                   tuple(f for s in scores for f in s.false_positives), tuple(u for s in scores for u in s.unscored))

    def to_dict(self) -> dict[str, Any]:
        return clean({
            "trips": list(self.trips), "tol_s": self.tol_s, "n_passes": self.n_passes,
            "n_detected": self.n_detected, "tp": self.tp, "fp": self.fp, "fn": self.fn,
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "dt_median_s": self.dt_median_s, "dt_p90_s": self.dt_p90_s,
            "fp_by_kind": self.fp_by_kind, "pothole_fp_by_kind": self.pothole_fp_by_kind,
            "n_near_features": self.n_near_features, "n_near_events": self.n_near_events,
            "n_pothole_on_features": self.n_pothole_on_features, "n_pothole_on_events": self.n_pothole_on_events,
            "n_feature_passes": self.n_feature_passes, "false_pothole_rate": self.false_pothole_rate,
            "matches": [{"trip_id": tr, "detection": i, "defect_id": d, "dt_s": dt}
                        for tr, i, d, dt in self.matches],
            "missed": [{"trip_id": tr, "defect_id": d, "t": t} for tr, d, t in self.missed],
            "unscored": [{"trip_id": tr, "defect_id": d, "t": t, "detected": hit} for tr, d, t, hit in self.unscored],
            "false_positives": [{"trip_id": tr, "detection": i, "t": t, "kind": k, "nearest": c}
                                for tr, i, t, k, c in self.false_positives],
        })


def _is_pothole(kind: Any) -> bool:
    return isinstance(kind, str) and kind.lower() == "pothole"


def group_passes(t_s: np.ndarray, defect_index: np.ndarray, gap_s: float = 1.5) -> np.ndarray:
    """Pass number of each truth wheel hit: hits on one defect whose consecutive times differ by at most
    ``gap_s`` [s] belong to one pass (front/rear, left/right wheels). Numbers run 0..n_passes-1."""
    t_s = np.asarray(t_s, dtype=np.float64)
    defect_index = np.asarray(defect_index)
    if t_s.size == 0:
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort((t_s, defect_index))
    ts, ds = t_s[order], defect_index[order]
    new = np.ones(t_s.size, dtype=bool)
    new[1:] = (ds[1:] != ds[:-1]) | (np.diff(ts) > gap_s)
    out = np.empty(t_s.size, dtype=np.intp)
    out[order] = np.cumsum(new) - 1
    return out


def _nearest(t_query: np.ndarray, t_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|dt| [s] to and index of the nearest time in ``t_ref`` for each query (inf and -1 when ``t_ref`` is empty)."""
    if t_ref.size == 0:
        return np.full(t_query.size, math.inf), np.full(t_query.size, -1, dtype=np.intp)
    order = np.argsort(t_ref, kind="stable")
    ref = t_ref[order]
    right = np.clip(np.searchsorted(ref, t_query), 0, ref.size - 1)
    left = np.clip(right - 1, 0, ref.size - 1)
    d_left, d_right = np.abs(t_query - ref[left]), np.abs(ref[right] - t_query)
    pick = np.where(d_left <= d_right, left, right)
    return np.minimum(d_left, d_right), order[pick]


def _observed(hits: list[dict[str, Any]], events: list[dict[str, Any]]) -> np.ndarray:
    """Which truth wheel hits a phone could feel: the tyre dropped or rose by >= :data:`MIN_FELT_M` (hits without
    ``input_m`` count as felt) and the phone was neither handled, re-mounted nor silent (:data:`UNOBSERVED_EVENTS`
    +- :data:`UNOBSERVED_MARGIN_S`)."""
    t = np.array([r["t"] for r in hits], dtype=np.float64)
    felt = np.array([abs(float(r.get("input_m", MIN_FELT_M))) >= MIN_FELT_M for r in hits], dtype=bool)
    blind = [(float(e["t"]) - UNOBSERVED_MARGIN_S, float(e["t"]) + float(e.get("duration_s") or 0.0)
              + UNOBSERVED_MARGIN_S) for e in events if e["type"] in UNOBSERVED_EVENTS]
    seen = np.ones(t.size, dtype=bool)
    for lo, hi in blind:                                        # loop over events
        seen &= (t < lo) | (t > hi)
    return felt & seen


def _score_trip(truth: Truth, trip_id: str, impacts: Any, tol_s: float, group_s: float,
                event_tol_s: float) -> ImpactScore:
    t_det, kinds = impact_times(impacts)
    index = {d["id"]: k for k, d in enumerate(truth.defects)}
    hits, events = truth.trip_records(trip_id)
    hit_t = np.array([r["t"] for r in hits], dtype=np.float64)
    hit_k = np.array([index[r["defect_id"]] for r in hits], dtype=np.intp)
    reportable = np.array([d["reportable"] for d in truth.defects], dtype=bool)
    hit_rep = reportable[hit_k] if hits else np.zeros(0, dtype=bool)
    pass_of_hit = group_passes(hit_t, hit_k, group_s)
    rep_passes = np.unique(pass_of_hit[hit_rep])
    scored = set(np.unique(pass_of_hit[hit_rep & _observed(hits, events)]).tolist()) if hits else set()
    n_feature_passes = int(np.unique(pass_of_hit[~hit_rep]).size)

    rep_hits = np.flatnonzero(hit_rep)
    i, h, dt = pairs_within(t_det[:, None], hit_t[rep_hits, None], tol_s)
    passes = pass_of_hit[rep_hits[h]]
    taken = greedy_match(i, passes, dt)
    matches = tuple((trip_id, int(i[k]), truth.defects[hit_k[rep_hits[h[k]]]]["id"], float(dt[k])) for k in taken
                    if int(passes[k]) in scored)
    matched_passes = set(passes[taken].tolist())
    missed, unscored = [], []
    for p in rep_passes:
        members = np.flatnonzero(pass_of_hit == p)
        first = (trip_id, truth.defects[hit_k[members[0]]]["id"], float(hit_t[members].min()))
        if int(p) not in scored:
            unscored.append((*first, int(p) in matched_passes))
        elif int(p) not in matched_passes:
            missed.append(first)

    unmatched = np.setdiff1d(np.arange(t_det.size), i[taken])
    ev_t = np.array([e["t"] for e in events], dtype=np.float64)
    d_hit, k_hit = _nearest(t_det[unmatched], hit_t)
    d_ev, _ = _nearest(t_det[unmatched], ev_t)
    fps = []
    for a, dh, kh, de in zip(unmatched, d_hit, k_hit, d_ev, strict=True):
        if dh <= tol_s and (de > event_tol_s or dh <= de):
            d = truth.defects[hit_k[kh]]
            # A reportable pass within reach of an unmatched detection must be matched already (greedy).
            cat = "duplicate" if d["reportable"] else FEATURE_CATEGORY.get(d["type"], "other")
        else:
            cat = "event" if de <= event_tol_s else "none"
        fps.append((trip_id, int(a), float(t_det[a]), kinds[a], cat))
    missed.sort(key=lambda m: m[2])
    return ImpactScore((trip_id,), float(tol_s), len(scored), int(t_det.size), n_feature_passes,
                       matches, tuple(missed), tuple(fps), tuple(unscored))


def evaluate_impacts(truth: Truth | Mapping[str, Any], impacts: Any, trip_id: str | None = None,
                     tol_s: float = 0.5, *, group_s: float = 1.5, event_tol_s: float | None = None) -> ImpactScore:
    """Score detected impacts of one trip (or all) against truth passes over reportable defects.

    ``impacts`` is a list of impacts (dicts with ``t`` [s] and optional ``kind``, or bare times) of trip ``trip_id``, or
    a mapping trip id -> such a list as returned by :func:`~bump.evaluate.load_impacts`; with a mapping and ``trip_id``
    None (or "all") every trip in it is scored and the scores summed. ``tol_s`` [s]: largest |dt| between a detection
    and a wheel hit of the pass it matches; ``group_s`` [s]: largest gap between wheel hits of one pass; ``event_tol_s``
    [s] (default ``tol_s``): reach of a non-road event. Times must share the truth's clock.
    """
    if not tol_s >= 0 or not group_s >= 0:
        raise ValueError(f"tol_s and group_s must be >= 0, got {tol_s}, {group_s}")
    truth = as_truth(truth)
    event_tol_s = tol_s if event_tol_s is None else event_tol_s
    if trip_id == "all":
        trip_id = None
    if isinstance(impacts, Mapping):
        if trip_id is None:
            if None in impacts:
                raise EvaluationInputError("some impacts carry no trip_id; name the trip they belong to "
                                           "(trip_id, --trip ID)")
            selected = list(impacts.items())
        elif trip_id in impacts:
            selected = [(trip_id, impacts[trip_id])]
        elif list(impacts) == [None]:
            selected = [(trip_id, impacts[None])]
        else:
            raise EvaluationInputError(f"no impacts of trip {trip_id!r}; trips found: "
                                       f"{', '.join(sorted(str(k) for k in impacts)) or 'none'}")
    elif trip_id is None:
        raise ValueError("trip_id is required when impacts is a list of one trip's impacts")
    else:
        selected = [(trip_id, impacts)]
    known = set(truth.trip_ids)
    scores = []
    for trip, found in selected:
        if trip not in known:
            raise EvaluationInputError(f"trip {trip!r} is not in the truth (trips: {len(known)}, e.g. "
                                       f"{', '.join(sorted(known)[:3]) or 'none'})", source=truth.source)
        scores.append(_score_trip(truth, str(trip), found, tol_s, group_s, event_tol_s))
    return ImpactScore.combine(scores) if scores else ImpactScore((), float(tol_s), 0, 0, 0, (), (), ())
