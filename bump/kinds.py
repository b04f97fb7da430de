"""A defect's kind and depth class from its hits and its hit pattern.

Arrays in, arrays out, as :mod:`bump.cluster`; no SQL, no I/O.

Kind. The confidence-weighted majority of the hits' kinds, overridden by the hit pattern: hit on at least
``designed_hit_rate`` of at least ``designed_traversals`` passes, with hits from both directions or mostly of
road-spanning kinds, is a designed feature (speed_bump when speed_bump outweighs joint among the hits, else
joint): a pothole is narrower than a lane and wheels wander, so it is missed on some passes. A sunken "cover" whose
severity is deeper than castings sink (``casting_max_depth_cm``) is a pothole (:func:`deeper_than_castings`): each
hit judged alone calls an ambiguous shallow step a cover, the defect's many hits read the depth surely. A majority of
``rough`` hits (each too weak to stand out of a rough stretch) from at least ``confirm_devices`` devices is a spot,
not a stretch, whose hits scatter along it: it takes the majority of its hits' spot kinds (the kinds without the
rough-stretch rule, :func:`detect.classify.classify`) when that is a one-wheel defect (pothole, cover).

Depth class. "proud" (a casting standing up: nothing to fill; the crews' list leaves it out, as it does a cover of
class "low", sunk less than 25 mm: :data:`MINOR_COVER_CLASSES`) is a vote: a ``cover`` whose hits lifted the wheel
first (first motion up) more than ``proud_share`` (2/3) of the time. One hit's first motion is fragile: a hole can
lift first too (a deep one's far-wall blow can dwarf the drop before it; a 50 Hz phone in a cup holder can feel the
rebound first), which is why a single hit is read proud only with a small swing (``proud_velocity_mps``) and why
the hit nearest the defect's severity alone got it wrong both ways. Many hits need no such bar: a casting standing
up lifts first on nearly every pass, a hole on a few (simulator seeds 1-4, city and hard, confirmed defects: proud
castings a median 93 % of their hits, potholes 8 %, at most 62 %), while the bar threw out the castings standing
tallest (3-4 cm, swing above 0.25 m/s), listed as sunken ones. Otherwise the class of the defect's severity
(:func:`detect.classify.depth_class_of`), as its hits' classes are of theirs: the class of one hit near that
severity could be another kind's (a speed-bump reading's lift) and contradict it.
"""

from __future__ import annotations

import numpy as np

from bump.cluster import KINDS, SPANNING_KINDS, DefectParams
from detect.classify import depth_class_of


def both_directions(labels: np.ndarray, heading_deg: np.ndarray, n_labels: int, *, min_share: float = 0.15
                    ) -> np.ndarray:
    """Per label: whether its headings come from both directions along one axis (the smaller side holds at
    least ``min_share`` of the finite headings, and at least one)."""
    h = np.asarray(heading_deg, dtype=np.float64)
    ok = np.isfinite(h)
    lab, r = np.asarray(labels)[ok], np.deg2rad(h[ok])
    axis = 0.5 * np.arctan2(np.bincount(lab, np.sin(2 * r), minlength=n_labels),
                            np.bincount(lab, np.cos(2 * r), minlength=n_labels))
    fwd = np.cos(r - axis[lab]) > 0
    n = np.bincount(lab, minlength=n_labels)
    n_fwd = np.bincount(lab, fwd.astype(float), minlength=n_labels)
    small = np.minimum(n_fwd, n - n_fwd)
    return (n >= 2) & (small >= np.maximum(1.0, min_share * n))


def _kind_weights(labels: np.ndarray, n_labels: int, hit_kind: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """(label, kind of :data:`KINDS`) sums of the hits' weights ``conf``; kinds not in KINDS count as unknown."""
    names = np.array(KINDS)
    order = np.argsort(names)
    kind = np.asarray(hit_kind).astype(str)
    code = order[np.clip(np.searchsorted(names, kind, sorter=order), 0, names.size - 1)]
    code = np.where(names[code] == kind, code, KINDS.index("unknown"))
    nk = names.size
    return np.bincount(labels * nk + code, conf, minlength=n_labels * nk).reshape(n_labels, nk)


def _vote(weight: np.ndarray) -> np.ndarray:
    """The kind of the largest weight per row; unknown only when no other kind has weight."""
    unk = KINDS.index("unknown")
    votes = weight.copy()
    votes[:, unk] = np.where(weight.sum(axis=1) - weight[:, unk] > 0, -1.0, votes[:, unk])
    return np.array(KINDS)[np.argmax(votes, axis=1)]


def _told(w: list[float]) -> str:
    """A label's kind weights, largest first, as "pothole 2.1, cover 0.7"."""
    return ", ".join(f"{KINDS[k]} {w[k]:.1f}" for k in np.argsort(-np.asarray(w), kind="stable").tolist() if w[k] > 0)


def decide_kinds(labels: np.ndarray, n_labels: int, hit_kind: np.ndarray, hit_confidence: np.ndarray,
                 hit_heading_deg: np.ndarray, n_traversals: np.ndarray, n_hit_traversals: np.ndarray,
                 params: DefectParams, *, hit_spot_kind: np.ndarray | None = None,
                 n_devices: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """(kind, reason) per label from its hits and its hit pattern (see the module docstring). ``hit_spot_kind``:
    the hits' kinds without the rough-stretch rule (:func:`detect.classify.classify`); ``n_devices``: distinct
    devices with hits per label. With both, a rough majority hit by ``confirm_devices`` devices takes the spot
    kinds' majority when that is a one-wheel defect (pothole or cover)."""
    labels = np.asarray(labels, dtype=np.int64)
    conf = np.maximum(np.nan_to_num(np.asarray(hit_confidence, dtype=np.float64), nan=0.0), 0.05)
    weight = _kind_weights(labels, n_labels, hit_kind, conf)
    count = np.bincount(labels, minlength=n_labels)
    total = weight.sum(axis=1)
    n_trav = np.asarray(n_traversals, dtype=np.int64)
    n_hit = np.asarray(n_hit_traversals, dtype=np.int64)
    rate = np.where(n_trav > 0, n_hit / np.maximum(n_trav, 1), 0.0)
    span_idx = [KINDS.index(k) for k in SPANNING_KINDS]
    spanning = weight[:, span_idx].sum(axis=1)
    both = both_directions(labels, hit_heading_deg, n_labels)
    designed = (n_trav >= params.designed_traversals) & (rate >= params.designed_hit_rate) & (
        both | (spanning > 0.5 * total))
    sb, jt = KINDS.index("speed_bump"), KINDS.index("joint")
    majority = _vote(weight)
    # a rough stretch's weak hits scatter along it; hits at one spot from as many devices as confirm a defect are a
    # spot: what each hit would have been off the rough stretch, when that is a one-wheel defect
    spot = np.zeros(n_labels, dtype=bool)
    spot_weight = weight
    if hit_spot_kind is not None and n_devices is not None:
        spot_weight = _kind_weights(labels, n_labels, hit_spot_kind, conf)
        spot_major = _vote(spot_weight)
        spot = (majority == "rough") & (np.asarray(n_devices) >= params.confirm_devices) & np.isin(
            spot_major, ("pothole", "cover"))
        majority = np.where(spot, spot_major, majority)
    kinds = np.where(designed, np.where(weight[:, sb] > weight[:, jt], "speed_bump", "joint"), majority)
    reasons = []
    for w, sw, is_designed, is_both, is_spot, n in zip(weight.tolist(), spot_weight.tolist(), designed.tolist(),
                                                       both.tolist(), spot.tolist(), count.tolist(), strict=True):
        if is_designed:
            why = "from both directions" if is_both else "by both wheels"
            reasons.append(f"hit on at least {params.designed_hit_rate:.0%} of the passes {why}: a designed "
                           f"feature, not a defect (hits said {_told(w)})")
        elif is_spot:
            reasons.append(f"confidence-weighted majority of {n} hits ({_told(w)}) on a rough stretch, but hit at "
                           f"one spot by at least {params.confirm_devices} devices: what its hits were off the "
                           f"rough stretch ({_told(sw)})")
        else:
            reasons.append(f"confidence-weighted majority of {n} hits ({_told(w)})")
    return kinds.astype(str), reasons


def decide_kind(hit_kind: np.ndarray, hit_confidence: np.ndarray, hit_heading_deg: np.ndarray, n_traversals: int,
                n_hit_traversals: int, params: DefectParams) -> tuple[str, str]:
    """(kind, reason) of one defect from its hits and its hit pattern (see the module docstring)."""
    n = np.size(hit_kind)
    kinds, reasons = decide_kinds(np.zeros(n, dtype=np.int64), 1, hit_kind, hit_confidence, hit_heading_deg,
                                  np.array([n_traversals]), np.array([n_hit_traversals]), params)
    return str(kinds[0]), reasons[0]


def decide_depth_classes(labels: np.ndarray, n_labels: int, hit_first_motion: np.ndarray,
                         defect_severity: np.ndarray, kinds: np.ndarray, dp: DefectParams) -> np.ndarray:
    """Depth class per label (defect) from its hits' first motions (+1 up, -1 down, 0 unclear, NaN unknown: the
    proud vote), its severity [cm] and its kind (see the module docstring, "Depth class")."""
    up = np.asarray(hit_first_motion, dtype=np.float64) > 0                  # NaN (unknown) compares False
    share = np.bincount(labels, up.astype(float), minlength=n_labels) / np.maximum(
        np.bincount(labels, minlength=n_labels), 1)
    out = depth_class_of(np.asarray(defect_severity, dtype=np.float64) / 100.0)
    return np.where((np.asarray(kinds) == "cover") & (share > dp.proud_share), "proud", out)


def deeper_than_castings(kinds: np.ndarray, reasons: list[str], severity_cm: np.ndarray, depth_class: np.ndarray,
                         dp: DefectParams) -> tuple[np.ndarray, list[str]]:
    """(kind, reason) per defect, a sunken ``cover`` (depth class not "proud") whose severity [cm] is deeper than
    castings sink (``casting_max_depth_cm``) made a ``pothole``: its hits each looked shallow enough for a casting,
    but the defect's severity, the 75th percentile of many hits, reads the hole's depth far more surely."""
    sev = np.asarray(severity_cm, dtype=np.float64)
    deep = (np.asarray(kinds) == "cover") & (np.asarray(depth_class).astype(str) != "proud") & (
        np.nan_to_num(sev, nan=0.0) > dp.casting_max_depth_cm)
    out = np.where(deep, "pothole", kinds).astype(str)
    why = [f"{r}; {s:.1f} cm deep, deeper than castings sink ({dp.casting_max_depth_cm:g} cm)" if d else r
           for r, d, s in zip(reasons, deep.tolist(), sev.tolist(), strict=True)]
    return out, why
