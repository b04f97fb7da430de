"""Reported defect positions vs the truth's reportable defects: :func:`evaluate_defects` -> :class:`DefectScore`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from bump.cluster import greedy_match, pairs_within
from bump.evaluate.inputs import positions
from bump.evaluate.scores import MatchCounts, clean, count_by, quantile
from bump.evaluate.truth import DEFECT_FP_CATEGORIES, FEATURE_CATEGORY, Truth, as_truth


@dataclass(frozen=True)
class DefectScore(MatchCounts):
    """Reported defects vs reportable truth defects. ``matches``: (detection index, defect id, error [m]);
    ``missed``: defect ids; ``false_positives``: (detection index, category, distance to it [m] or NaN)."""

    radius_m: float
    n_reportable: int
    n_detected: int
    matches: tuple[tuple[int, Any, float], ...]
    missed: tuple[Any, ...]
    false_positives: tuple[tuple[int, str, float], ...]

    @property
    def n_truth(self) -> int:
        return self.n_reportable

    @property
    def error_median_m(self) -> float:
        return quantile((m[2] for m in self.matches), 0.5)

    @property
    def error_p90_m(self) -> float:
        return quantile((m[2] for m in self.matches), 0.9)

    @property
    def fp_by_kind(self) -> dict[str, int]:
        return count_by((c for _, c, _ in self.false_positives), DEFECT_FP_CATEGORIES)

    def to_dict(self) -> dict[str, Any]:
        return clean({
            "radius_m": self.radius_m, "n_reportable": self.n_reportable, "n_detected": self.n_detected,
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall,
            "f1": self.f1, "error_median_m": self.error_median_m, "error_p90_m": self.error_p90_m,
            "fp_by_kind": self.fp_by_kind,
            "matches": [{"detection": i, "defect_id": d, "error_m": e} for i, d, e in self.matches],
            "missed": list(self.missed),
            "false_positives": [{"detection": i, "nearest": c, "distance_m": e} for i, c, e in self.false_positives],
        })


def evaluate_defects(truth: Truth | Mapping[str, Any], defects: Any, radius_m: float = 10.0, *,
                     as_of_s: float | None = None) -> DefectScore:
    """Score reported defect positions against the truth's reportable defects (greedy one-to-one within
    ``radius_m`` [m], closest pairs first). With ``as_of_s`` [epoch s], defects whose ``repaired_after`` is at or
    before it are no longer reportable and detections on them count as ``repaired`` false positives."""
    if not radius_m > 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    truth = as_truth(truth)
    proj = truth.projection
    lat, lon = positions(defects)
    det_xy = np.column_stack(proj.to_xy(lat, lon))
    tlat = np.array([d["lat"] for d in truth.defects], dtype=np.float64)
    tlon = np.array([d["lon"] for d in truth.defects], dtype=np.float64)
    truth_xy = np.column_stack(proj.to_xy(tlat, tlon))
    repaired_after = np.array([d.get("repaired_after", math.inf) for d in truth.defects], dtype=np.float64)
    repaired = repaired_after <= as_of_s if as_of_s is not None else np.zeros(len(truth.defects), dtype=bool)
    reportable = np.array([d["reportable"] for d in truth.defects], dtype=bool) & ~repaired
    rep_idx = np.flatnonzero(reportable)

    i, j, dist = pairs_within(det_xy, truth_xy[rep_idx], radius_m)
    taken = greedy_match(i, j, dist)
    matched_det, matched_truth = i[taken], rep_idx[j[taken]]
    matches = tuple((int(a), truth.defects[b]["id"], float(e))
                    for a, b, e in zip(matched_det, matched_truth, dist[taken], strict=True))
    missed_mask = reportable.copy()
    missed_mask[matched_truth] = False
    missed = tuple(truth.defects[k]["id"] for k in np.flatnonzero(missed_mask))

    unmatched = np.setdiff1d(np.arange(len(det_xy)), matched_det)
    near_d = np.full(unmatched.size, math.inf)
    near_k = np.full(unmatched.size, len(truth.defects))
    if unmatched.size and len(truth.defects):
        near_d, near_k = cKDTree(truth_xy).query(det_xy[unmatched], k=1,
                                                 distance_upper_bound=np.nextafter(radius_m, math.inf))
    fps = []
    for a, e, k in zip(unmatched, near_d, near_k, strict=True):
        if not np.isfinite(e):
            fps.append((int(a), "none", math.nan))
            continue
        d = truth.defects[int(k)]
        # A reportable defect within reach of an unmatched detection must be matched already (greedy).
        cat = ("duplicate" if reportable[k] else "repaired" if repaired[k]
               else FEATURE_CATEGORY.get(d["type"], "other"))
        fps.append((int(a), cat, float(e)))
    return DefectScore(float(radius_m), int(rep_idx.size), len(det_xy), matches, missed, tuple(fps))
