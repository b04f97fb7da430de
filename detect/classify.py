"""Physical rules: what kind of road feature made each event, how sure we are, and how bad it is.

The evidence, each from FIELD_NOTES physics:

* one wheel vs both: a pothole or a cover is usually hit by one wheel track, which rolls the car; speed
  bumps, humps, joints and rail crossings span the lane and hit both wheels of an axle: pitch without roll.
  With a gyroscope: roll-rate RMS / pitch-rate RMS (about wheelbase/track ~ 1.7 for one wheel, ~0 for
  both); without: lateral / vertical acceleration RMS.
* body vs wheel: a bump or hump lifts the whole body (large 0.4-3 Hz response) at the low speed drivers
  choose for it, often after braking; a hole or joint is a short, sharp input (impact band).
* size: a shallow step (cover, joint) shakes less than a deep hole at the same speed; severity is the
  impact-band peak-to-peak normalised by speed (bridging makes raw peaks grow with speed).
* duration: excitation longer than ``max_event_s`` is a rough stretch, not one impact.
"""

from __future__ import annotations

import numpy as np

from detect.columns import Columns
from detect.params import DetectorParams

KINDS = ("pothole", "speed_bump", "joint", "cover", "rough", "unknown")


def severity_index(impact_p2p_mps2: np.ndarray, speed_mps: np.ndarray, speed_ref_mps: float = 10.0) -> np.ndarray:
    """Impact-band peak-to-peak acceleration normalised to ``speed_ref_mps`` by a square-root law [m/s^2].

    The square root follows from the power-law speed dependence of road-induced vibration (a -2 slope ISO 8608
    profile gives vertical acceleration RMS ~ sqrt(v)); unknown speed leaves the value unnormalised.
    """
    v = np.where(np.isfinite(speed_mps), np.maximum(speed_mps, 2.0), speed_ref_mps)
    return impact_p2p_mps2 / np.sqrt(v / speed_ref_mps)


def classify(feat: Columns, params: DetectorParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, confidence 0-1, severity [m/s^2 at 10 m/s], depth_class) for every event."""
    n = len(feat)
    if n == 0:
        return (np.empty(0, dtype="U10"), np.empty(0), np.empty(0), np.empty(0, dtype="U8"))
    speed = feat["speed_mps"]
    severity = severity_index(feat["impact_p2p_mps2"], speed)
    roll = feat["roll_ratio"]
    lateral = feat["lateral_ratio"]
    both_wheels = np.where(np.isfinite(roll), roll < 0.6, lateral < 0.25)
    body_dominant = feat["body_p2p_mps2"] > 0.8 * feat["impact_p2p_mps2"]
    slowed = (np.nan_to_num(feat["decel_mps2"]) > 0.4) | (np.nan_to_num(speed, nan=99.0) < 6.0)
    long_event = feat["duration_s"] > params.max_event_s
    shallow = severity < 6.0
    kind = np.select(
        [long_event, body_dominant & (slowed | both_wheels), both_wheels, shallow],
        ["rough", "speed_bump", "joint", "cover"],
        default="pothole",
    ).astype("U10")
    snr_conf = 1.0 - np.exp(-np.maximum(feat["snr"] - 1.0, 0.0) / 4.0)
    confidence = np.clip(snr_conf * np.where(feat["n_peaks"] >= 2, 1.0, 0.8), 0.0, 1.0)
    depth_class = np.select([severity < 6.0, severity < 12.0], ["low", "moderate"], default="high").astype("U8")
    return kind, confidence, severity, depth_class
