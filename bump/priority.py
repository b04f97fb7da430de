"""Priority of a defect: how much harm it is doing, for ranking a crew's list. Higher first.

::

    priority = 100 * kind_weight * status_weight * severity_factor * confidence * log(1 + traversals_per_day)

- ``severity_factor = s / (s + s_half)``: the defect's severity s [cm: the detector's equivalent depth of the drop,
  or the lift of a bump] saturating, half at ``severity_half_cm`` (5 cm, FIELD_NOTES' moderate/high boundary); a
  deep pothole scores near 1, a shallow one low.
- ``confidence`` in 0..1: the chance that at least one device's detection is real,
  ``1 - prod_devices(1 - c_device)`` with ``c_device`` the best hit confidence of each distinct device.
- ``traversals_per_day``: passes by app users (the traffic we can see) divided by the days between the first and
  last pass, at least ``traffic_window_days`` (7), so a new defect is not called busy after two passes.
  ``log(1 + .)`` because harm grows with traffic but a main road should not bury every side street.
- ``kind_weight``: pothole 1, cover 0.7, rough 0.5, unknown 0.4, designed features (speed bump, joint) 0.
- ``status_weight``: confirmed 1, candidate 0.5, likely_repaired 0.2, repaired and dismissed 0.

All weights live in :class:`bump.cluster.DefectParams` (serialised with the results).
"""

from __future__ import annotations

import numpy as np

from bump.cluster import DefectParams

SECONDS_PER_DAY = 86_400.0


def severity_factor(severity_cm: np.ndarray, params: DefectParams) -> np.ndarray:
    s = np.maximum(np.nan_to_num(np.asarray(severity_cm, dtype=np.float64), nan=0.0), 0.0)
    return s / (s + params.severity_half_cm)


def traversals_per_day(n_traversals: np.ndarray, first_s: np.ndarray, last_s: np.ndarray, params: DefectParams
                       ) -> np.ndarray:
    span_days = np.nan_to_num((np.asarray(last_s, dtype=np.float64) - np.asarray(first_s, dtype=np.float64))
                              / SECONDS_PER_DAY, nan=0.0)
    return np.asarray(n_traversals, dtype=np.float64) / np.maximum(span_days, params.traffic_window_days)


def _lookup(names: np.ndarray, table: tuple[tuple[str, float], ...]) -> np.ndarray:
    weights = dict(table)
    return np.array([weights.get(str(n), 0.0) for n in np.asarray(names).tolist()], dtype=np.float64)


def priority(severity_cm: np.ndarray, confidence: np.ndarray, traversals_per_day: np.ndarray, kind: np.ndarray,
             status: np.ndarray, params: DefectParams) -> np.ndarray:
    """The priority score (see the module docstring); arrays of one length."""
    conf = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0), 0.0, 1.0)
    traffic = np.log1p(np.maximum(np.nan_to_num(np.asarray(traversals_per_day, dtype=np.float64)), 0.0))
    return (100.0 * _lookup(kind, params.kind_weights) * _lookup(status, params.status_weights)
            * severity_factor(severity_cm, params) * conf * traffic)


def device_confidence(confidence: np.ndarray, device_id: np.ndarray) -> float:
    """``1 - prod(1 - best confidence per distinct device)`` of one defect's hits."""
    conf = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0), 0.0, 1.0)
    if conf.size == 0:
        return 0.0
    _, dev = np.unique(np.asarray(device_id).astype(str), return_inverse=True)
    best = np.zeros(int(dev.max()) + 1)
    np.maximum.at(best, dev.ravel(), conf)
    return float(1.0 - np.prod(1.0 - best))
