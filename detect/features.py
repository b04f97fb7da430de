"""Features of each candidate event, from the oriented signals on the uniform grid.

One loop over events (tens per trip), array slices inside; no loop over samples. Units in the names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from detect.columns import Columns
from detect.signal import bandpass


@dataclass(frozen=True)
class Signals:
    """The detector's signals on one uniform grid (all (n,) unless noted), kept for replay."""

    fs_hz: float
    t_s: np.ndarray
    valid: np.ndarray            # False inside gaps of the input
    accel_mps2: np.ndarray       # (n, 3) raw accelerometer on the grid, phone frame
    segment: np.ndarray          # mount segment of each sample
    up_axis: np.ndarray          # (segments, 3) unit "up" of each mount segment in the phone frame
    a_up_mps2: np.ndarray        # vertical (against gravity), gravity removed
    a_forward_mps2: np.ndarray
    a_left_mps2: np.ndarray
    a_impact_mps2: np.ndarray    # a_up in the impact band
    a_body_mps2: np.ndarray      # a_up in the body band
    a_horizontal_impact_mps2: np.ndarray   # |(forward, left)| in the impact band
    roll_rate_rad_s: np.ndarray  # impact band; NaN without gyroscope
    pitch_rate_rad_s: np.ndarray
    gyro_norm_rad_s: np.ndarray  # |omega| unfiltered; NaN without gyroscope
    cf_mps2: np.ndarray          # characteristic function
    threshold_mps2: np.ndarray
    background_mps2: np.ndarray
    speed_mps: np.ndarray
    distance_m: np.ndarray


FEATURE_DTYPES: dict[str, str] = {
    "i_start": "i8", "i_stop": "i8", "i_peak": "i8", "t_s": "f8", "t_start_s": "f8", "duration_s": "f8",
    "cf_peak_mps2": "f8", "snr": "f8", "impact_p2p_mps2": "f8", "up_p2p_mps2": "f8", "body_p2p_mps2": "f8",
    "energy_m2ps3": "f8", "first_motion": "i8", "roll_ratio": "f8", "lateral_ratio": "f8",
    "horizontal_ratio": "f8", "gyro_max_rad_s": "f8", "axle_dt_s": "f8", "axle_ratio": "f8", "n_peaks": "i8",
    "speed_mps": "f8", "decel_mps2": "f8", "vel_p2p_mps": "f8", "disp_p2p_m": "f8", "background_ratio": "f8",
    "roll_pitch_corr": "f8", "lateral_up_corr": "f8", "tilt_max_deg": "f8",
    "valid": "?",
}


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x))) if x.size else np.nan


def _abs_corr(x: np.ndarray, y: np.ndarray) -> float:
    """|Pearson correlation| of two equally long slices (0 when either is constant)."""
    x = x - x.mean()
    y = y - y.mean()
    den = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
    return abs(float(np.sum(x * y))) / den if den > 0 else 0.0


def _tilt_max_deg(sig: Signals, i0: int, i1: int) -> float:
    """Largest angle [deg] between the phone's 0.5-s mean acceleration and its mount's gravity direction over
    [i0, i1): a car tilts a few degrees over a bump, a phone in a hand by tens of degrees."""
    n_avg = max(1, round(0.5 * sig.fs_hz))
    acc = sig.accel_mps2[i0:i1]
    if acc.shape[0] < n_avg:
        return 0.0
    csum = np.vstack([np.zeros((1, 3)), np.cumsum(acc, axis=0)])
    mean = (csum[n_avg:] - csum[:-n_avg]) / n_avg
    up = sig.up_axis[sig.segment[i0:i0 + mean.shape[0]]]
    cos = np.einsum("ij,ij->i", mean, up) / np.maximum(np.linalg.norm(mean, axis=1), 1e-9)
    return float(np.degrees(np.arccos(np.clip(cos.min(), -1.0, 1.0))))


def body_motion_p2p(a_up_mps2: np.ndarray, fs_hz: float, band_hz: tuple[float, float], i0: int, i1: int,
                    pad: int) -> tuple[float, float]:
    """Peak-to-peak vertical velocity [m/s] and displacement [m] of the body over samples [i0, i1).

    Band-passed acceleration is integrated once and twice, each integral band-passed again so drift cannot
    build up; computed on the event's slice padded by ``pad`` samples on each side (events only, not the trace).
    """
    w0, w1 = max(0, i0 - pad), min(a_up_mps2.size, i1 + pad)
    a = bandpass(a_up_mps2[w0:w1], band_hz, fs_hz)
    v = bandpass(np.cumsum(a) / fs_hz, band_hz, fs_hz)
    d = bandpass(np.cumsum(v) / fs_hz, band_hz, fs_hz)
    return float(np.ptp(v[i0 - w0:i1 - w0])), float(np.ptp(d[i0 - w0:i1 - w0]))


def event_features(sig: Signals, starts: np.ndarray, stops: np.ndarray, *, wheelbase_m: float,
                   motion_band_hz: tuple[float, float] = (0.5, 20.0), context_s: float = 0.3,
                   body_context_s: float = 1.0) -> Columns:
    """Columns of :data:`FEATURE_DTYPES`, one row per event [starts, stops) on the grid of ``sig``."""
    n_ev = starts.size
    if n_ev == 0:
        return Columns.empty(FEATURE_DTYPES)
    fs = sig.fs_hz
    n = sig.t_s.size
    out = {k: np.zeros(n_ev, dtype=dt) for k, dt in FEATURE_DTYPES.items()}
    ctx = round(context_s * fs)
    body_ctx = round(body_context_s * fs)
    has_gyro = bool(np.isfinite(sig.roll_rate_rad_s[:1]).all()) if n else False
    min_peak_dist = max(1, round(0.06 * fs))
    trip_background = max(float(np.median(sig.background_mps2)), 1e-6)
    for k, (s, e) in enumerate(zip(starts, stops, strict=True)):       # loop over events
        ip = s + int(np.argmax(sig.cf_mps2[s:e]))
        w0, w1 = max(0, s - ctx), min(n, e + ctx)
        b0, b1 = max(0, ip - body_ctx), min(n, ip + body_ctx)
        imp = sig.a_impact_mps2[s:e]
        up = sig.a_up_mps2[w0:w1]
        out["i_start"][k], out["i_stop"][k], out["i_peak"][k] = s, e, ip
        big = np.flatnonzero(np.abs(imp) > 0.5 * np.max(np.abs(imp)))
        i_onset = s + int(big[0]) if big.size else ip       # first strong motion: the first axle's contact
        out["t_s"][k] = sig.t_s[i_onset]
        out["t_start_s"][k] = sig.t_s[s]
        out["duration_s"][k] = (e - s) / fs
        out["cf_peak_mps2"][k] = sig.cf_mps2[ip]
        out["snr"][k] = sig.cf_mps2[ip] / max(sig.background_mps2[ip], 1e-3)
        out["background_ratio"][k] = sig.background_mps2[ip] / trip_background
        out["impact_p2p_mps2"][k] = float(np.ptp(sig.a_impact_mps2[w0:w1]))
        out["up_p2p_mps2"][k] = float(np.ptp(up))
        out["body_p2p_mps2"][k] = float(np.ptp(sig.a_body_mps2[b0:b1]))
        out["energy_m2ps3"][k] = float(np.sum(imp * imp) / fs)
        out["first_motion"][k] = int(np.sign(imp[big[0]])) if big.size else 0
        vert_rms = max(_rms(sig.a_impact_mps2[w0:w1]), 1e-6)
        out["horizontal_ratio"][k] = _rms(sig.a_horizontal_impact_mps2[w0:w1]) / vert_rms
        out["lateral_ratio"][k] = _rms(sig.a_left_mps2[w0:w1] - np.mean(sig.a_left_mps2[w0:w1])) / max(
            _rms(up - np.mean(up)), 1e-6)
        u0, u1 = min(w0, b0), max(w1, b1)
        lateral = bandpass(sig.a_left_mps2[u0:u1], (0.5, 20.0), fs)[w0 - u0:w1 - u0]
        out["lateral_up_corr"][k] = _abs_corr(lateral, sig.a_impact_mps2[w0:w1])
        out["tilt_max_deg"][k] = _tilt_max_deg(sig, b0, b1)
        if has_gyro:
            out["roll_pitch_corr"][k] = _abs_corr(sig.roll_rate_rad_s[w0:w1], sig.pitch_rate_rad_s[w0:w1])
            roll = _rms(sig.roll_rate_rad_s[w0:w1])
            pitch = _rms(sig.pitch_rate_rad_s[w0:w1])
            out["roll_ratio"][k] = roll / max(pitch, 1e-4)
            out["gyro_max_rad_s"][k] = float(np.max(sig.gyro_norm_rad_s[w0:w1]))
        else:
            out["roll_ratio"][k] = np.nan
            out["roll_pitch_corr"][k] = np.nan
            out["gyro_max_rad_s"][k] = np.nan
        peaks, props = sps.find_peaks(sig.cf_mps2[w0:w1], distance=min_peak_dist,
                                      height=0.3 * sig.cf_mps2[ip])
        out["n_peaks"][k] = peaks.size
        v = sig.speed_mps[ip]
        out["speed_mps"][k] = v
        if peaks.size >= 2:
            top = peaks[np.argsort(props["peak_heights"])[-2:]]
            dt = abs(float(top[1] - top[0])) / fs
            out["axle_dt_s"][k] = dt
            out["axle_ratio"][k] = dt / (wheelbase_m / v) if np.isfinite(v) and v > 0.5 else np.nan
        else:
            out["axle_dt_s"][k] = np.nan
            out["axle_ratio"][k] = np.nan
        i_before = max(0, ip - round(3.0 * fs))
        i_near = max(0, ip - round(0.3 * fs))
        span_s = max((i_near - i_before) / fs, 1e-3)
        out["decel_mps2"][k] = (sig.speed_mps[i_before] - sig.speed_mps[i_near]) / span_s
        out["vel_p2p_mps"][k], out["disp_p2p_m"][k] = body_motion_p2p(
            sig.a_up_mps2, fs, motion_band_hz, max(0, s - round(0.1 * fs)), min(n, e + ctx), body_ctx)
        out["valid"][k] = bool(np.all(sig.valid[w0:w1]))
    return Columns(out)
