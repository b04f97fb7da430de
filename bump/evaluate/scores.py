"""What the defect and impact scores share: TP/FP/FN, precision, recall and F1 of a one-to-one matching
(:class:`MatchCounts`), quantiles of match errors, and the rounding of ``to_dict()``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _f1(p: float, r: float) -> float:
    if math.isnan(p) or math.isnan(r):
        return math.nan
    return 2 * p * r / (p + r) if p + r > 0 else 0.0



def count_by(labels: Iterable[str], categories: Iterable[str]) -> dict[str, int]:
    """How many of ``labels`` fall in each of ``categories`` (0 for one without any), in their order."""
    counts = Counter(labels)
    return {c: counts.get(c, 0) for c in categories}

def quantile(values: Iterable[float], q: float) -> float:
    arr = np.asarray(list(values), dtype=np.float64)
    return float(np.quantile(arr, q)) if arr.size else math.nan


def clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 6)
    if isinstance(x, Mapping):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean(v) for v in x]
    return x


class MatchCounts:
    """TP/FP/FN, precision, recall and F1 of a one-to-one matching; subclasses give ``matches``, ``missed``,
    ``false_positives``, ``n_detected`` and ``n_truth`` (what recall is a share of)."""

    matches: tuple
    missed: tuple
    false_positives: tuple
    n_detected: int

    @property
    def n_truth(self) -> int:
        raise NotImplementedError

    @property
    def tp(self) -> int:
        return len(self.matches)

    @property
    def fp(self) -> int:
        return len(self.false_positives)

    @property
    def fn(self) -> int:
        return len(self.missed)

    @property
    def precision(self) -> float:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return ratio(self.tp, self.n_truth)

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)
