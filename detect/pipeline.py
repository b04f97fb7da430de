"""``detect(trace, params) -> Detection``: one trace in, impacts and roughness out.

Stages (each a pure function of arrays, each visible in :class:`Detection` for replay):
resample onto a uniform grid with a gap mask -> GPS motion on the grid -> orientation (gravity per mount
segment, forward from braking) -> band-passed vertical / horizontal / rotation signals -> characteristic
function and adaptive threshold -> candidate events -> features -> rejection of non-road events ->
classification, severity and position -> roughness windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from detect.classify import body_lift, classify, depth_from_swing
from detect.clock import resample_uniform, sample_clock
from detect.columns import Columns
from detect.events import (
    SNR_FLOOR_MPS2,
    AxlePairing,
    characteristic_function,
    driving_levels,
    merge,
    speed_floor,
    three_axis_score,
    threshold,
    trigger,
    vibration_level,
)
from detect.features import Signals, event_features, quiet_coherence, quiet_velocity_swing
from detect.filters import bandpass
from detect.geo import EARTH_RADIUS_M, LocalProjection, wrap_lon_deg
from detect.latency import NO_ESTIMATE, LatencyEstimate, estimate_gps_latency
from detect.motion import coarse_step, motion_on_grid, position_at
from detect.orientation import Orientation, handling_spans, orient
from detect.params import DetectorParams
from detect.roughness import PhoneGyro, ReferenceCar, roughness_windows
from detect.threads import blas_on_one_thread
from detect.whiten import whiten
from ingest.trace import Trace

IMPACT_DTYPES: dict[str, str] = {
    "t_s": "f8", "lat_deg": "f8", "lon_deg": "f8", "accuracy_m": "f8", "heading_deg": "f8", "kind": "U10",
    "severity": "f8", "depth_class": "U8", "confidence": "f8", "speed_mps": "f8", "spot_kind": "U10",
}


@dataclass(frozen=True)
class Detection:
    """Everything :func:`detect` found in one trace."""

    trip_id: str
    device_id: str
    impacts: Columns          # accepted impacts: IMPACT_DTYPES plus their features
    candidates: Columns       # every candidate event: features, kind, and ``rejected`` ("" when accepted)
    roughness: Columns        # windows of travel with estimated IRI
    signals: Signals
    orientation: Orientation
    params: DetectorParams
    gps_latency: LatencyEstimate = NO_ESTIMATE   # the trip's own GPS latency, when it tells it

    @property
    def n_impacts(self) -> int:
        return len(self.impacts)

    @property
    def gps_latency_s(self) -> float:
        """The GPS latency [s] the positions were corrected by: the trip's own when it told it, else the
        parameters' ``gps_latency_s``."""
        return self.gps_latency.latency_or(self.params.gps_latency_s)


def vehicle_wheelbase_m(trace: Trace, params: DetectorParams) -> float:
    """The trace's own wheelbase [m] when its vehicle metadata gives one, else ``params.wheelbase_default_m``."""
    return float(trace.vehicle.get("wheelbase_m") or params.wheelbase_default_m)


def build_signals(trace: Trace, params: DetectorParams, latency_s: float | None = None
                  ) -> tuple[Signals, Orientation]:
    """Resample, orient and filter a trace (stages 1-3), with the GPS fixes ``latency_s`` late (default
    ``params.gps_latency_s``)."""
    clock = sample_clock(trace.t_s, params.max_rate_hz, params.gap_s)
    fs = clock.fs_hz
    gap_s = max(params.gap_s, 2.5 / fs)
    t, acc, valid = resample_uniform(clock.locked(trace.t_s), trace.accel_mps2, fs, gap_s, origin_s=clock.origin_s)
    # GPS derivatives only feed the 1-s blocks of the orientation: on a >= 20 Hz grid whose steps tile those blocks
    motion = motion_on_grid(float(t[0]), fs, t.size, trace.gps_t_s, trace.lat_deg, trace.lon_deg,
                            trace.speed_mps, trace.heading_deg,
                            latency_s=params.gps_latency_s if latency_s is None else latency_s,
                            step=coarse_step(fs, max(1, round(fs))))
    ori = orient(acc, fs, dvdt_mps2=motion.dvdt_mps2 if motion.has_gps else None,
                 centripetal_mps2=motion.centripetal_mps2 if motion.has_gps else None, gps_step=motion.step,
                 steady_tolerance_mps2=params.steady_tolerance_mps2, remount_block_s=params.remount_block_s,
                 remount_context_s=params.remount_context_s, remount_angle_deg=params.remount_angle_deg)
    seg = ori.segment_of(t.size)
    a_up, a_fwd, a_left = ori.to_car_frame(acc)
    for s, e, g in zip(ori.seg_start, np.append(ori.seg_start[1:], t.size), ori.g_mps2, strict=True):
        a_up[s:e] -= g                                 # loop over mount segments
    band = params.impact_band_at(fs)
    a_imp = bandpass(a_up, band, fs)
    moving = valid & ~(motion.speed_mps < params.min_speed_mps)        # unknown speed: taken as moving
    a_cf = whiten(a_imp, a_up, moving, ori.seg_start, params.whiten_order) if params.whiten_order else a_imp
    cf = characteristic_function(a_cf, fs, params.energy_window_s)
    if not valid.all():
        cf[~valid] = 0.0
    floor = speed_floor(motion.speed_mps, params.threshold_floor_mps2, params.threshold_speed_ref_mps)
    thr, bg = threshold(cf, floor, fs, background_window_s=params.background_window_s, ratio=params.threshold_ratio)
    unpaired = three_axis_score(cf / np.maximum(bg, SNR_FLOOR_MPS2), (a_fwd, a_left), fs, band,
                                window_s=params.energy_window_s, background_window_s=params.background_window_s)
    pairing = AxlePairing(wheelbase_m=vehicle_wheelbase_m(trace, params), spread_m=params.axle_spread_m,
                          min_speed_mps=params.min_speed_mps)
    fade = np.divide(cf, floor, out=floor)
    np.minimum(1.0, fade, out=fade)                              # below the speed's floor it fades (smooth road)
    if not valid.all():
        fade[~valid] = 0.0
    level, level_step = vibration_level(a_imp, valid, fs, params.background_window_s)
    typical, still = driving_levels(bg, level, level_step, motion.speed_mps, valid,
                                    min_speed_mps=params.min_speed_mps, still_ratio=params.still_background_ratio)
    car_accel = (np.hypot(motion.dvdt_mps2, np.nan_to_num(motion.centripetal_mps2)) if motion.has_gps
                 else np.empty(0))
    spans = handling_spans(acc, fs, ori.seg_start, ori.up, min_mount_s=params.min_mount_s,
                           search_s=params.remount_context_s, steady_deg=params.remount_angle_deg / 2.0,
                           excursion_deg=params.remount_angle_deg,
                           car_accel_mps2=car_accel, car_accel_step=motion.step)
    sig = Signals(fs_hz=fs, t_s=t, valid=valid, accel_mps2=acc, segment=seg, segment_starts=ori.seg_start,
                  up_axis=ori.up,
                  forward_axis=ori.forward, left_axis=ori.left, a_up_mps2=a_up, a_forward_mps2=a_fwd,
                  a_left_mps2=a_left, a_impact_mps2=a_imp, a_whitened_mps2=a_cf, gyro_t_s=trace.gyro_t_s,
                  gyro_rad_s=trace.gyro_rad_s,
                  cf_mps2=cf, threshold_mps2=thr, background_mps2=bg, typical_background_mps2=typical,
                  still_background_mps2=still, level_mps2=level, level_step=level_step, speed_mps=motion.speed_mps,
                  distance_m=motion.distance_m, impact_band_hz=band,
                  body_band_hz=params.body_band_hz,
                  car_accel_mps2=car_accel, car_accel_step=motion.step, handling_spans=spans, unpaired_score=unpaired,
                  score_fade=fade, pairing=pairing)
    return sig, ori


def trigger_level(sig: Signals, params: DetectorParams, exact_above: float = 0.0) -> np.ndarray:
    """The triggers' level per grid sample [unitless]: the characteristic function over its threshold or the
    axle-paired score (:meth:`detect.features.Signals.score_at`) over ``confirm_score``, whichever is higher. A
    candidate event is a run where it exceeds 1 (:func:`candidate_events`).

    Exact wherever it exceeds ``exact_above``, and at most that elsewhere: the pairing is read only where the
    unpaired score could reach that level (its bound; a few percent of a trip's samples at the release level)."""
    level = sig.cf_mps2 / sig.threshold_mps2
    bound = sig.unpaired_score * sig.score_fade
    idx = np.flatnonzero(bound > exact_above * params.confirm_score)
    level[idx] = np.maximum(level[idx], sig.score_at(idx) / params.confirm_score)
    return level


def candidate_events(sig: Signals, params: DetectorParams, wheelbase_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Start/stop grid indices of candidate events, one per pass over a feature: runs where the
    :func:`trigger_level` exceeds 1, down to ``release_ratio``."""
    starts, stops = trigger(trigger_level(sig, params, exact_above=params.release_ratio), 1.0,
                            release_ratio=params.release_ratio)
    if starts.size == 0:
        return starts, stops
    v = sig.speed_mps[stops - 1]
    axle_s = np.where(np.isfinite(v) & (v > 1.0), wheelbase_m / np.maximum(v, 1.0), 0.5)
    max_gap = np.round((np.minimum(axle_s, 1.0) + params.merge_gap_s) * sig.fs_hz).astype(np.int64)
    return merge(starts, stops, max_gap)


CHANCE_WINDOWS = 64          # quiet windows of a trip that tell how coherent its mount's own ringing is
CHANCE_QUANTILE = 0.9
MIN_QUIET_WINDOWS = 8        # fewer quiet windows tell nothing of the trip's own level


def quiet_starts(sig: Signals, params: DetectorParams) -> np.ndarray:
    """Grid indices of up to ``CHANCE_WINDOWS`` samples spread evenly over the trip, valid, below the trigger
    threshold and moving (or of unknown speed): where windows without an event start."""
    n = sig.t_s.size
    step = max(1, n // (CHANCE_WINDOWS + 1))
    idx = np.arange(step, n - step, step)
    speed = sig.speed_mps[idx]
    ok = (sig.valid[idx] & (sig.cf_mps2[idx] < sig.threshold_mps2[idx])
          & np.where(np.isfinite(speed), speed >= params.min_speed_mps, True))
    return idx[ok]


def chance_coherence(sig: Signals, params: DetectorParams) -> float:
    """|corr(lateral, vertical)| that the trip's own quiet driving reaches by chance (its ``CHANCE_QUANTILE`` over
    the windows of :func:`quiet_starts`, computed as an event's): a mount ringing in one narrow band moves every axis
    together, so a high coherence says nothing of one wheel there; 0 with fewer than ``MIN_QUIET_WINDOWS``."""
    idx = quiet_starts(sig, params)
    if idx.size < MIN_QUIET_WINDOWS:
        return 0.0
    corr = quiet_coherence(sig, idx, max(1, round(0.1 * sig.fs_hz)), motion_band_hz=params.motion_band_hz)
    return float(np.quantile(corr, CHANCE_QUANTILE))


def quiet_swing(sig: Signals, params: DetectorParams, width: int) -> float:
    """The body's vertical velocity swing [m/s] the trip's typical road gives a window of ``width`` samples without
    an event (read as an event's ``vel_p2p_mps``), per unit of local background (``background_ratio``): the median
    over the windows of :func:`quiet_starts`. Below the rates that resolve the impact band the depth is read from
    the swing (:func:`detect.classify.depth_from_swing`; only there is this read), and on a rough road the body
    swings without any hole; 0 with fewer than ``MIN_QUIET_WINDOWS``."""
    idx = quiet_starts(sig, params)
    if idx.size < MIN_QUIET_WINDOWS:
        return 0.0
    swing = quiet_velocity_swing(sig, idx, width, motion_band_hz=params.motion_band_hz)
    return float(np.median(swing / np.maximum(sig.background_ratio(idx), 1e-6)))


def reject_reasons(feat: Columns, sig: Signals, params: DetectorParams) -> np.ndarray:
    """Why each candidate is not a road impact ("" when it is): weak, handling, glitch, stopped, gap.

    ``weak``: below ``confirm_snr`` and ``confirm_score`` (seen on neither the vertical alone nor on three axes
    and both axles) without the clear signature of a road feature (one wheel rolling the car, for an event above
    ``threshold_ratio`` x its vertical background: lateral motion in step with the hit, |corr| at least
    ``weak_coherence`` and what the trip's quiet driving
    reaches by chance, :func:`chance_coherence`, computed only when a weak candidate's coherence is to be judged;
    or the whole body lifted); ``handling``: the phone turned (rotation rate, or a tilt beyond what the car's own
    GPS-measured acceleration explains), moved sideways more than a car does, or lies within ``remount_guard_s`` of
    a span in which the phone sat in no mount (``sig.handling_spans``: a re-mount's hand, orientations held for
    less than ``min_mount_s`` in between, or an excursion from a mount it came back to); ``stopped``: the car was
    (nearly) still, e.g. a door slam;
    where the speed is unknown (no GPS, or before the first fix: a door slam before the phone found the
    satellites), a local background below the trip's ``still_background_mps2`` (an idling car) stands for it. An
    impact outside the fixes is kept, unplaced, as in a trace without GPS; ``glitch``: the event's raw vertical
    acceleration is sharper (:func:`ringing_sharpness`) than a sinusoid at the impact band's top frequency: a
    one-sample sensor glitch (sharpness ~6), not a wheel, which rings below it (possible from ~90 Hz up).
    """
    reasons = np.full(len(feat), "", dtype="U10")
    speed = feat["speed_mps"]
    weak = (feat["snr"] < params.confirm_snr) & (feat["score"] < params.confirm_score) & ~body_lift(feat, params)
    coherent = (feat["lateral_up_corr"] >= params.weak_coherence) & (feat["snr"] >= params.threshold_ratio)
    if (weak & coherent).any():
        coherent &= feat["lateral_up_corr"] >= chance_coherence(sig, params)
    reasons[weak & ~coherent] = "weak"
    span_t = sig.t_s[np.minimum(sig.handling_spans, sig.t_s.size - 1)]          # (k, 2) [s]
    near_hand = ((feat["t_s"][:, None] > span_t[None, :, 0] - params.remount_guard_s)
                    & (feat["t_s"][:, None] < span_t[None, :, 1] + params.remount_guard_s)).any(axis=1)
    handling = ((feat["gyro_max_rad_s"] > params.handling_gyro_rad_s)
                | (feat["horizontal_ratio"] > params.handling_horizontal_ratio)
                | (feat["tilt_max_deg"] - feat["car_tilt_deg"] > params.handling_tilt_deg)
                | near_hand)
    reasons[handling] = "handling"
    reasons[feat["sharpness"] > ringing_sharpness(params.impact_band_hz[1], sig.fs_hz)] = "glitch"
    at = np.clip(feat["i_peak"], 0, sig.t_s.size - 1) // sig.level_step
    quiet = sig.level_mps2[np.minimum(at, sig.level_mps2.size - 1)] < sig.still_background_mps2
    reasons[np.where(np.isfinite(speed), speed < params.min_speed_mps, quiet)] = "stopped"
    reasons[~feat["valid"]] = "gap"
    return reasons


def ringing_sharpness(f_hz: float, fs_hz: float) -> float:
    """Second-difference energy over energy of a sinusoid at ``f_hz`` sampled at ``fs_hz``: 16 sin^4(pi f / fs)
    (the ``sharpness`` feature of :func:`detect.features.event_features`); 16 at or above Nyquist."""
    return 16.0 * float(np.sin(np.pi * min(f_hz / fs_hz, 0.5))) ** 4


def trip_roughness(sig: Signals, still: np.ndarray, params: DetectorParams, car: ReferenceCar,
                   band_hz: tuple[float, float] | None = None) -> Columns:
    """Roughness windows of a trip's signals (:func:`detect.roughness.roughness_windows`) over the samples
    ``still`` marks as road vibration; with a gyroscope, its roll and pitch rates about each mount segment's car
    axes remove the phone's position and the road's track coherence from the estimate."""
    gyro = PhoneGyro(sig.gyro_t_s, sig.gyro_rad_s, sig.forward_axis, sig.left_axis) if sig.has_gyro else None
    return roughness_windows(sig.t_s, sig.a_up_mps2, sig.speed_mps, sig.distance_m, still, sig.fs_hz,
                             window_m=params.roughness_window_m, band_hz=band_hz or params.rough_band_hz,
                             min_speed_mps=params.roughness_min_speed_mps, car=car,
                             segment_starts=sig.segment_starts, gyro=gyro)


def detect(trace: Trace, params: DetectorParams | Mapping[str, Any] | None = None) -> Detection:
    """Find impacts and measure roughness in one validated trace.

    ``params``: :class:`DetectorParams`, a dict of some of their fields (the rest default), or None for the
    defaults. Returns a :class:`Detection`: ``impacts`` (one row per accepted impact: ``t_s`` epoch seconds,
    ``lat_deg``/``lon_deg`` WGS84 or NaN without a fix, ``accuracy_m``, ``heading_deg``, ``kind`` (pothole,
    speed_bump, joint, cover, rough, unknown), ``severity`` [cm of equivalent depth, of lift for a bump],
    ``depth_class``, ``confidence`` 0-1, ``speed_mps``, then the event features), ``candidates`` (every candidate
    with ``rejected``: "" or weak, handling, glitch, stopped, gap), ``roughness`` (windows of
    ``roughness_window_m`` with ``iri_m_per_km``), and the ``signals`` and ``orientation`` for replay.
    """
    if not isinstance(trace, Trace):
        raise TypeError(f"detect() takes an ingest.Trace, not {type(trace).__name__}; read the file first: "
                        "detect(ingest.read(path)) (bump.replay(path) takes a path and keeps every stage)")
    if params is None:
        params = DetectorParams()
    elif isinstance(params, Mapping):
        params = DetectorParams.from_dict(dict(params))           # unknown names, bad values: ParamsError
    elif not isinstance(params, DetectorParams):
        raise TypeError(f"detect() params takes detect.DetectorParams, a dict of their fields (e.g. "
                        f"{{'threshold_ratio': 3.0}}) or None for the defaults, not {type(params).__name__}; e.g. "
                        "detect(trace, DetectorParams(threshold_ratio=3.0))")
    with blas_on_one_thread():              # small matrix products: a thread pool only slows them (detect.threads)
        return _detect(trace, params)


def _detect(trace: Trace, params: DetectorParams) -> Detection:
    wheelbase_m = vehicle_wheelbase_m(trace, params)
    sig, ori = build_signals(trace, params)
    feat, rejected, still, mounted = _events(sig, params, wheelbase_m)
    own_latency = trip_latency(sig, trace, params, mounted)
    latency_s = own_latency.latency_or(params.gps_latency_s)
    if abs(latency_s - params.gps_latency_s) >= params.latency_refit_s:
        # the forward axis was fitted on GPS speed changes that late: a mixed-up forward and lateral axis makes
        # one-wheel hits look like both wheels' (joints); once more at the trip's own latency
        sig, ori = build_signals(trace, params, latency_s)
        feat, rejected, still, _ = _events(sig, params, wheelbase_m)
    cls = classify(feat, params, sig.fs_hz)
    lat, lon, acc = position_at(feat["t_s"], trace.gps_t_s, trace.lat_deg, trace.lon_deg, trace.accuracy_m,
                                latency_s=latency_s, end_margin_s=FIX_MARGIN_S)
    heading = _heading_at(feat["t_s"], trace)
    lat, lon = _move_ahead(lat, lon, heading, params.phone_to_front_axle_m)
    candidates = feat.with_columns(kind=cls.kind, confidence=cls.confidence, severity=cls.severity_cm,
                                   depth_class=cls.depth_class, spot_kind=cls.spot_kind, lat_deg=lat, lon_deg=lon,
                                   accuracy_m=acc, heading_deg=heading, rejected=rejected)
    impacts = candidates.select(rejected == "")
    front = [k for k in IMPACT_DTYPES if k in impacts]
    impacts = Columns({**{k: impacts[k] for k in front}, **{k: impacts[k] for k in impacts if k not in front}})
    rough = trip_roughness(sig, still, params, ReferenceCar(wheelbase_m=wheelbase_m))
    if len(rough):
        mid = 0.5 * (rough["t_start_s"] + rough["t_end_s"])
        rlat, rlon, _ = position_at(mid, trace.gps_t_s, trace.lat_deg, trace.lon_deg, trace.accuracy_m,
                                    latency_s=latency_s, end_margin_s=FIX_MARGIN_S)
        rough = rough.with_columns(lat_deg=rlat, lon_deg=rlon, heading_deg=_heading_at(mid, trace))
    return Detection(trip_id=trace.trip_id, device_id=trace.device_id, impacts=impacts, candidates=candidates,
                     roughness=rough, signals=sig, orientation=ori, params=params, gps_latency=own_latency)


def _events(sig: Signals, params: DetectorParams, wheelbase_m: float
            ) -> tuple[Columns, np.ndarray, np.ndarray, np.ndarray]:
    """(features, rejected, still, mounted) of the candidate events: ``still`` marks the valid samples away from
    phone handling (for the roughness windows), ``mounted`` also away from re-mounts (for the latency estimate: a
    hand reads metres per second squared forward)."""
    starts, stops = candidate_events(sig, params, wheelbase_m)
    swing = np.nan                                   # the road's own swing: read only where the depth reads swings
    if depth_from_swing(params, sig.fs_hz):
        swing = quiet_swing(sig, params, int(np.median(stops - starts))) if starts.size else 0.0
    feat = event_features(sig, starts, stops, wheelbase_m=wheelbase_m, motion_band_hz=params.motion_band_hz,
                          max_event_s=params.max_event_s, quiet_swing_mps=swing)
    rejected = reject_reasons(feat, sig, params)
    still = sig.valid.copy()
    for s, e in zip(feat["i_start"][rejected == "handling"], feat["i_stop"][rejected == "handling"], strict=True):
        still[max(0, s - round(2.0 * sig.fs_hz)):e + round(2.0 * sig.fs_hz)] = False      # loop over events
    mounted = still.copy()
    guard = round(params.remount_guard_s * sig.fs_hz)
    for s, e in sig.handling_spans:                                           # loop over handling spans
        mounted[max(0, s - guard):e + guard] = False
    return feat, rejected, still, mounted


def trip_latency(sig: Signals, trace: Trace, params: DetectorParams, usable: np.ndarray | None = None
                 ) -> LatencyEstimate:
    """The trip's own GPS latency (:func:`detect.latency.estimate_gps_latency`: its forward acceleration against
    its Doppler speed changes), searched in [``latency_min_s``, ``latency_max_s``], over the samples ``usable``
    marks (default: the valid ones; :func:`detect` leaves out handling and re-mounts)."""
    if params.latency_max_s <= params.latency_min_s or trace.gps_t_s.size < 2:
        return NO_ESTIMATE
    usable = sig.valid if usable is None else usable
    return estimate_gps_latency(float(sig.t_s[0]), sig.fs_hz, sig.a_forward_mps2, usable, trace.gps_t_s,
                                trace.speed_mps, min_s=params.latency_min_s, max_s=params.latency_max_s,
                                min_corr=params.latency_min_corr)


FIX_MARGIN_S = 1.0    # an event further than this outside the GPS fixes has no position (a car covers 10-30 m a second)


def _move_ahead(lat_deg: np.ndarray, lon_deg: np.ndarray, heading_deg: np.ndarray, dist_m: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Positions moved ``dist_m`` along ``heading_deg`` (unchanged where the heading is unknown, and within
    :data:`POLAR_LAT_DEG` of a pole, where a metre east is degrees of longitude); longitudes stay in [-180, 180]."""
    h = np.deg2rad(np.nan_to_num(heading_deg, nan=0.0))
    d = np.where(np.isfinite(heading_deg) & (np.abs(lat_deg) < POLAR_LAT_DEG), dist_m, 0.0)
    proj = LocalProjection(0.0, 0.0)
    dlat, _ = proj.to_latlon(np.zeros_like(d), d * np.cos(h))
    m_per_deg_lon = np.deg2rad(1.0) * EARTH_RADIUS_M * np.cos(np.deg2rad(lat_deg))
    return lat_deg + dlat, wrap_lon_deg(lon_deg + d * np.sin(h) / np.maximum(m_per_deg_lon, 1.0))


POLAR_LAT_DEG = 89.9     # nearer a pole than this, impacts are not moved to the front axle


def _heading_at(t_s: np.ndarray, trace: Trace) -> np.ndarray:
    """Course over ground [deg] at times ``t_s`` from the nearest fix with a heading; NaN without."""
    ok = np.isfinite(trace.heading_deg) & (np.nan_to_num(trace.speed_mps, nan=5.0) > 2.0)
    if not ok.any() or t_s.size == 0:
        return np.full(np.shape(t_s), np.nan)
    th = trace.gps_t_s[ok]
    i = np.clip(np.searchsorted(th, t_s), 0, th.size - 1)
    j = np.clip(i - 1, 0, th.size - 1)
    nearest = np.where(np.abs(th[i] - t_s) < np.abs(th[j] - t_s), i, j)
    return trace.heading_deg[ok][nearest]
