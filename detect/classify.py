"""Physical rules: what kind of road feature made each event, how sure we are, and how bad it is.

The evidence, each from the physics in FIELD_NOTES:

* **Body lift** (``disp_p2p_m``, ``vel_p2p_mps``): a speed bump or hump lifts the whole car by centimetres at the
  low speed drivers choose for it; a hole, joint or cover only kicks the wheels. A body displacement above
  ``bump_lift_m`` with a vertical body-velocity swing above ``bump_velocity_mps`` is a bump (the body rises at its
  ~1.2 Hz mode, so a real lift of 3 cm moves it at ~0.4 m/s; a displacement without that swing is the double
  integral's drift or a slow undulation, a swing without the displacement a short kick), unless it clearly rolls
  the car: then it is a wheel dropping into a deep hole. "Clearly" is the one-wheel evidence the phone has: with a
  gyroscope, roll/pitch at least ``one_wheel_roll_ratio`` (nearer one wheel's ~1.7 than both wheels' bound);
  without one, lateral motion in step with the hit at least as closely as a weak event's must be
  (``weak_coherence``). Bumps and humps span both wheels: roll/pitch ~0.2, |corr| ~0.15.
* **One wheel vs both** (``lateral_up_corr``, ``roll_ratio``): a pothole or cover is hit by one wheel track and
  rolls the car, so the phone's lateral acceleration moves in step with the vertical hit (|corr| ~ 0.8); joints
  and rail crossings span the lane and hit both wheels of an axle: pitch without roll, no coherent lateral motion
  (|corr| ~ 0.2). With a gyroscope, roll rate / pitch rate (~ wheelbase / track ~ 1.7 for one wheel) decides
  wherever it is clear (:func:`both_wheels`).
  Works with any mount, with or without gyroscope.
* **Depth**: a wheel meeting a sharp-edged step of height ``d`` (a hole's far wall, a casting's rim) rings the
  unsprung mass at its wheel-hop frequency with an amplitude proportional to ``d`` and nearly independent of speed
  (the edge is sharp at any speed: a linear system's step response). The body feels the ringing through the damper
  and spring; on the Golden Car (k_t/m_s 653, k_s/m_s 63.3, c_s/m_s 6 s^-1, m_u/m_s 0.15) the wheel hops at
  ~69 rad/s, its velocity peaks ~63 d s^-1, the body's acceleration ~(6 x 63 + 63) d = 440 d m/s^2 at the corner,
  ~0.45 of it at a phone between the axles, and the ringing (damping ratio ~0.3, ~0.05 s decay) has an RMS over
  the characteristic function's 0.12-s window of ~0.32 of its peak: ~64 m/s^2 per metre (``step_gain_per_s2``).
  ``depth_est_m`` is the event's characteristic-function peak above its background (in quadrature) over that
  gain: the depth of the sharp-edged step that rings the phone as much. It tells a casting sunk 1.5 cm from one
  sunk 3 cm far better than the body's velocity swing does (FIELD_NOTES' castings are sharp-edged; a bowl-shaped
  pothole, whose walls slope, reads shallower than its deepest point). It needs the impact band below the
  Nyquist rate: at rates under twice the band's top (``2 x impact_band_hz[1]``) the impact aliases, and the depth
  comes from the body's vertical velocity swing instead, which a damper impulse c_s d / m_s makes proportional to
  the drop: ``vel_p2p / damper_rate_per_s`` (c_s/m_s times the ~0.45 share, 2.7 s^-1). The severity reported is
  this equivalent depth in centimetres; raw peak acceleration is never used (it aliases below ~100 Hz and grows
  with speed).
* **First motion**: a hole drops the wheel first; a proud cover (or anything standing up) lifts it first.
  Shallow one-wheel events, and moderate ones whose first motion is up, are labelled ``cover``; the latter get
  ``depth_class`` "proud" (a casting standing up: nothing to fill).
* **Rough stretch**: excitation longer than ``max_event_s``, or an event that barely stands out (snr below
  1.25 x ``confirm_snr``) on a stretch whose local background is ``rough_background_ratio`` times the trip's
  typical level, is ``rough``, not one impact; a strong hit on a rough stretch is still judged on its own.
  One trace cannot tell such a weak event from the stretch's own roughness, but many trips can: hits at one spot
  from several cars are a spot, not a stretch. Every event therefore also carries its ``spot_kind``, the kind the
  rules give it without the rough-stretch rule (a long excitation stays ``rough``), for the defect layer to use
  once the hits repeat (:func:`bump.kinds.decide_kinds`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from detect.clock import design_rate_hz
from detect.columns import Columns
from detect.params import DetectorParams

KINDS = ("pothole", "speed_bump", "joint", "cover", "rough", "unknown")


def depth_estimate_m(vel_p2p_mps: np.ndarray, damper_rate_per_s: float, background_mps: np.ndarray | float = 0.0
                     ) -> np.ndarray:
    """Equivalent depth [m] of a one-wheel drop from the body's vertical velocity swing [m/s] above the swing the
    road alone gives there (``background_mps``, removed in quadrature as :func:`step_depth_m` removes the ringing's)."""
    excess_sq = np.square(vel_p2p_mps) - np.square(background_mps)
    return np.sqrt(np.maximum(excess_sq, 0.0)) / damper_rate_per_s


def step_depth_m(cf_peak_mps2: np.ndarray, snr: np.ndarray, step_gain_per_s2: float) -> np.ndarray:
    """Depth [m] of the sharp-edged step that rings the phone as much as an event did: the characteristic
    function's peak [m/s^2] above its background (``cf_peak / snr``, removed in quadrature) over the phone's
    impact-band RMS per metre of step [m/s^2 per m]."""
    excess_sq = 1.0 - 1.0 / np.maximum(snr, 1.0) ** 2
    return cf_peak_mps2 * np.sqrt(excess_sq) / step_gain_per_s2


def depth_from_swing(params: DetectorParams, fs_hz: float) -> bool:
    """Whether the depth at ``fs_hz`` [Hz] comes from the body's velocity swing: below twice the impact band's top
    (the band aliases). The rate is taken as its design key (:func:`detect.clock.design_rate_hz`): a 50 Hz phone
    whose clock runs 20 ppm slow is a 50 Hz phone."""
    return design_rate_hz(fs_hz) < 2.0 * params.impact_band_hz[1]


def equivalent_depth_m(feat: Columns, params: DetectorParams, fs_hz: float) -> np.ndarray:
    """Equivalent depth [m] of each one-wheel event: from the impact band's ringing (:func:`step_depth_m`) where
    the rate resolves the band, from the body's velocity swing (:func:`depth_estimate_m`) below that
    (:func:`depth_from_swing`)."""
    if not depth_from_swing(params, fs_hz):
        return step_depth_m(feat["cf_peak_mps2"], feat["snr"], params.step_gain_per_s2)
    return depth_estimate_m(feat["vel_p2p_mps"], params.damper_rate_per_s, feat["vel_background_mps"])


DEPTH_CLASS_EDGES_M = (0.025, 0.05)    # FIELD_NOTES defect sizes: low < 25 mm, moderate 25-50 mm, high > 50 mm


def depth_class_of(depth_m: np.ndarray) -> np.ndarray:
    """"low", "moderate" or "high" per depth [m] (:data:`DEPTH_CLASS_EDGES_M`); "" where the depth is NaN."""
    d = np.asarray(depth_m, dtype=np.float64)
    low, high = DEPTH_CLASS_EDGES_M
    return np.select([np.isnan(d), d < low, d < high], ["", "low", "moderate"], default="high").astype("U8")


def both_wheels(feat: Columns, params: DetectorParams) -> np.ndarray:
    """True where the event hit both wheels of an axle. With a gyroscope, its roll for the pitch decides: below
    ``both_wheels_roll_ratio`` both wheels, at least ``one_wheel_roll_ratio`` one wheel, and between the two the
    lateral acceleration coherent with the vertical hit (or not) decides. Without one, that coherence alone. The
    lateral acceleration is only a proxy for the roll: a phone near the car's roll axis (a low cup holder) feels
    little of it, and a rough road's own sway blurs it, so a clear roll is not overruled by it."""
    roll = feat["roll_ratio"]
    loose = feat["lateral_up_corr"] < params.one_wheel_coherence
    with_gyro = (roll < params.both_wheels_roll_ratio) | ((roll < params.one_wheel_roll_ratio) & loose)
    return np.where(np.isfinite(roll), with_gyro, loose)


def body_lift(feat: Columns, params: DetectorParams) -> np.ndarray:
    """True where the whole body went up and down by centimetres, at the speed such a lift takes: a bump or hump."""
    return (feat["disp_p2p_m"] > params.bump_lift_m) & (feat["vel_p2p_mps"] > params.bump_velocity_mps)


class Classification(NamedTuple):
    """Per event: what made it and how bad it is (:func:`classify`)."""

    kind: np.ndarray          # one of KINDS
    confidence: np.ndarray    # 0-1
    severity_cm: np.ndarray   # cm of equivalent depth (of lift for a speed bump)
    depth_class: np.ndarray   # "low", "moderate", "high" or "proud"
    spot_kind: np.ndarray     # the kind without the rough-stretch rule: what the event is if it repeats at a spot


def classify(feat: Columns, params: DetectorParams, fs_hz: float) -> Classification:
    """:class:`Classification` of every event of a trace on a grid of ``fs_hz`` [Hz]."""
    n = len(feat)
    if n == 0:
        return Classification(np.empty(0, dtype="U10"), np.empty(0), np.empty(0), np.empty(0, dtype="U8"),
                              np.empty(0, dtype="U10"))
    vel = feat["vel_p2p_mps"]
    lift = body_lift(feat, params)
    two = both_wheels(feat, params)
    depth_m = equivalent_depth_m(feat, params, fs_hz)
    proud = (feat["first_motion"] > 0) & (vel < params.proud_velocity_mps)
    shallow = depth_m < params.cover_depth_m
    on_rough = (feat["background_ratio"] > params.rough_background_ratio) & (feat["snr"] < params.confirm_snr * 1.25)
    too_long = feat["duration_s"] > params.max_event_s
    long_event = too_long | on_rough
    # a bump lifts the body on both wheels; a lift that clearly rolls the car is a wheel dropping into a deep hole:
    # the gyroscope sees a one-wheel roll (at least one_wheel_roll_ratio; a roll between the two regimes, a hump taken
    # at an angle, leaves it a bump) or, without one, the lateral motion follows the hit as closely as a weak
    # event's must
    roll = feat["roll_ratio"]
    one_wheel_roll = np.where(np.isfinite(roll), roll >= params.one_wheel_roll_ratio,
                              feat["lateral_up_corr"] >= params.weak_coherence)
    rolls = ~two & one_wheel_roll
    bump = lift & ~rolls
    spot_kind = np.select([too_long, bump, two, proud | shallow], ["rough", "speed_bump", "joint", "cover"],
                          default="pothole").astype("U10")
    kind = np.where(on_rough, "rough", spot_kind).astype("U10")
    severity_cm = np.where(bump, 100.0 * feat["disp_p2p_m"], 100.0 * depth_m)
    # confidence: how far the event stands above its background, times how clear its kind decision was
    detect_conf = 1.0 - np.exp(-np.maximum(feat["snr"] - 1.0, 0.0) / 4.0)
    wheel_margin = np.abs(np.log(np.maximum(feat["lateral_up_corr"], 1e-3) / params.one_wheel_coherence))
    depth_margin = np.abs(np.log(np.maximum(depth_m, 1e-4) / params.cover_depth_m))
    margin = np.select([long_event, bump, two], [np.ones(n), np.ones(n), wheel_margin],
                       default=np.minimum(wheel_margin, depth_margin))
    kind_conf = 0.5 + 0.5 * np.tanh(2.0 * margin)
    confidence = np.clip(detect_conf * kind_conf, 0.0, 1.0)
    # "proud": a casting standing up, no hole
    depth_class = np.where((kind == "cover") & proud, "proud", depth_class_of(depth_m)).astype("U8")
    return Classification(kind, confidence, severity_cm, depth_class, spot_kind)
