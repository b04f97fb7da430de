"""Features of each candidate event, from the oriented signals on the uniform grid.

One loop over events (tens per trip), array slices inside; no loop over samples. Units in the names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import signal as sps

from detect.columns import Columns
from detect.signal import bandpass


@dataclass(frozen=True)
class Signals:
    """The detector's signals on one uniform grid (all (n,) unless noted), kept for replay.

    Signals only events need (body band, horizontal impact band, roll and pitch rates) are computed per event
    window by the ``window_*`` methods; the full-length versions are cached properties for replay and plots.
    """

    fs_hz: float
    t_s: np.ndarray
    valid: np.ndarray            # False inside gaps of the input
    accel_mps2: np.ndarray       # (n, 3) raw accelerometer on the grid, phone frame
    segment: np.ndarray          # mount segment of each sample
    up_axis: np.ndarray          # (segments, 3) unit axes of each mount segment in the phone frame
    forward_axis: np.ndarray
    left_axis: np.ndarray
    a_up_mps2: np.ndarray        # vertical (against gravity), gravity removed
    a_forward_mps2: np.ndarray
    a_left_mps2: np.ndarray
    a_impact_mps2: np.ndarray    # a_up in the impact band
    gyro_t_s: np.ndarray         # raw gyroscope (phone frame); empty without one
    gyro_rad_s: np.ndarray
    cf_mps2: np.ndarray          # characteristic function
    threshold_mps2: np.ndarray
    background_mps2: np.ndarray
    speed_mps: np.ndarray
    distance_m: np.ndarray
    impact_band_hz: tuple[float, float]
    body_band_hz: tuple[float, float]

    @property
    def has_gyro(self) -> bool:
        return self.gyro_t_s.size >= 2

    # --- per event window -------------------------------------------------------------------------------
    def window_band(self, x: np.ndarray, band_hz: tuple[float, float], i0: int, i1: int, pad: int) -> np.ndarray:
        """``x[i0:i1]`` band-passed, filtered over a window padded by ``pad`` samples (edge effects stay out)."""
        w0, w1 = max(0, i0 - pad), min(x.shape[0], i1 + pad)
        return bandpass(x[w0:w1], band_hz, self.fs_hz)[i0 - w0:i1 - w0]

    def window_gyro(self, i0: int, i1: int) -> np.ndarray:
        """(i1 - i0, 3) gyroscope at the grid times [i0, i1) [rad/s]; NaN without gyroscope."""
        t = self.t_s[i0:i1]
        if not self.has_gyro:
            return np.full((t.size, 3), np.nan)
        j0, j1 = np.searchsorted(self.gyro_t_s, (t[0], t[-1]))
        j0, j1 = max(0, j0 - 1), min(self.gyro_t_s.size, j1 + 1)
        gt, g = self.gyro_t_s[j0:j1], self.gyro_rad_s[j0:j1]
        return np.column_stack([np.interp(t, gt, g[:, j]) for j in range(3)])

    def window_rotation(self, i0: int, i1: int, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(roll rate, pitch rate) in the impact band and |omega| over [i0, i1) [rad/s]."""
        w0, w1 = max(0, i0 - pad), min(self.t_s.size, i1 + pad)
        gyro = self.window_gyro(w0, w1)
        seg = self.segment[w0:w1]
        roll = bandpass(np.einsum("ij,ij->i", gyro, self.forward_axis[seg]), self.impact_band_hz, self.fs_hz)
        pitch = bandpass(np.einsum("ij,ij->i", gyro, self.left_axis[seg]), self.impact_band_hz, self.fs_hz)
        sl = slice(i0 - w0, i1 - w0)
        return roll[sl], pitch[sl], np.linalg.norm(gyro[sl], axis=1)

    # --- full length, for replay --------------------------------------------------------------------------
    @cached_property
    def a_body_mps2(self) -> np.ndarray:
        """a_up in the body band."""
        return bandpass(self.a_up_mps2, self.body_band_hz, self.fs_hz)

    @cached_property
    def a_horizontal_impact_mps2(self) -> np.ndarray:
        """|(forward, left)| acceleration in the impact band."""
        h = bandpass(np.column_stack([self.a_forward_mps2, self.a_left_mps2]), self.impact_band_hz, self.fs_hz)
        return np.hypot(h[:, 0], h[:, 1])

    @cached_property
    def _rotation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.window_rotation(0, self.t_s.size, 0)

    @property
    def roll_rate_rad_s(self) -> np.ndarray:
        """Roll rate in the impact band; NaN without gyroscope."""
        return self._rotation[0]

    @property
    def pitch_rate_rad_s(self) -> np.ndarray:
        return self._rotation[1]

    @property
    def gyro_norm_rad_s(self) -> np.ndarray:
        """|omega| unfiltered; NaN without gyroscope."""
        return self._rotation[2]


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


def integrate_p2p(a_mps2: np.ndarray, fs_hz: float, band_hz: tuple[float, float], sl: slice) -> tuple[float, float]:
    """Peak-to-peak velocity [m/s] and displacement [m] over ``sl`` of a band-passed acceleration window.

    Integrated once and twice, each integral band-passed again so drift cannot build up; ``a_mps2`` is the
    event's padded window (events only, never the whole trace).
    """
    v = bandpass(np.cumsum(a_mps2) / fs_hz, band_hz, fs_hz)
    d = bandpass(np.cumsum(v) / fs_hz, band_hz, fs_hz)
    return float(np.ptp(v[sl])), float(np.ptp(d[sl]))


def event_features(sig: Signals, starts: np.ndarray, stops: np.ndarray, *, wheelbase_m: float,
                   motion_band_hz: tuple[float, float] = (0.5, 20.0), context_s: float = 0.3,
                   body_context_s: float = 1.0) -> Columns:
    """Columns of :data:`FEATURE_DTYPES`, one row per event [starts, stops) on the grid of ``sig``.

    Each event is read through one padded window: five zero-phase filter calls per event (impact band of the
    horizontal and rotation signals stacked, body band, motion band, and the two integrals).
    """
    n_ev = starts.size
    if n_ev == 0:
        return Columns.empty(FEATURE_DTYPES)
    fs = sig.fs_hz
    n = sig.t_s.size
    out = {k: np.zeros(n_ev, dtype=dt) for k, dt in FEATURE_DTYPES.items()}
    ctx = round(context_s * fs)
    body_ctx = round(body_context_s * fs)
    has_gyro = sig.has_gyro
    min_peak_dist = max(1, round(0.06 * fs))
    trip_background = max(float(np.median(sig.background_mps2)), 1e-6)
    for k, (s, e) in enumerate(zip(starts, stops, strict=True)):       # loop over events
        ip = s + int(np.argmax(sig.cf_mps2[s:e]))
        w0, w1 = max(0, s - ctx), min(n, e + ctx)                      # the event with some context
        b0, b1 = max(0, ip - body_ctx), min(n, ip + body_ctx)          # the body's response around it
        u0, u1 = max(0, min(w0, b0) - body_ctx), min(n, max(w1, b1) + body_ctx)   # padded filter window
        w, b = slice(w0 - u0, w1 - u0), slice(b0 - u0, b1 - u0)
        imp = sig.a_impact_mps2[s:e]
        up = sig.a_up_mps2[w0:w1]
        # --- filtered views of the window
        cols = [sig.a_forward_mps2[u0:u1], sig.a_left_mps2[u0:u1]]
        if has_gyro:
            gyro = sig.window_gyro(u0, u1)
            seg = sig.segment[u0:u1]
            cols += [np.einsum("ij,ij->i", gyro, sig.forward_axis[seg]),
                     np.einsum("ij,ij->i", gyro, sig.left_axis[seg])]
        band = bandpass(np.column_stack(cols), sig.impact_band_hz, fs)
        body = bandpass(sig.a_up_mps2[u0:u1], sig.body_band_hz, fs)
        motion = bandpass(np.column_stack([sig.a_up_mps2[u0:u1], sig.a_left_mps2[u0:u1]]), motion_band_hz, fs)
        # --- timing and size
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
        out["body_p2p_mps2"][k] = float(np.ptp(body[b]))
        out["energy_m2ps3"][k] = float(np.sum(imp * imp) / fs)
        out["first_motion"][k] = int(np.sign(imp[big[0]])) if big.size else 0
        m0 = max(0, s - round(0.1 * fs)) - u0
        out["vel_p2p_mps"][k], out["disp_p2p_m"][k] = integrate_p2p(motion[:, 0], fs, motion_band_hz,
                                                                  slice(m0, w1 - u0))
        # --- one wheel or both, handling
        vert_rms = max(_rms(sig.a_impact_mps2[w0:w1]), 1e-6)
        out["horizontal_ratio"][k] = _rms(np.hypot(band[w, 0], band[w, 1])) / vert_rms
        out["lateral_ratio"][k] = _rms(sig.a_left_mps2[w0:w1] - np.mean(sig.a_left_mps2[w0:w1])) / max(
            _rms(up - np.mean(up)), 1e-6)
        out["lateral_up_corr"][k] = _abs_corr(motion[w, 1], sig.a_impact_mps2[w0:w1])
        out["tilt_max_deg"][k] = _tilt_max_deg(sig, b0, b1)
        if has_gyro:
            roll_w, pitch_w = band[w, 2], band[w, 3]
            out["roll_pitch_corr"][k] = _abs_corr(roll_w, pitch_w)
            out["roll_ratio"][k] = _rms(roll_w) / max(_rms(pitch_w), 1e-4)
            out["gyro_max_rad_s"][k] = float(np.max(np.linalg.norm(gyro[w], axis=1)))
        else:
            out["roll_ratio"][k] = np.nan
            out["roll_pitch_corr"][k] = np.nan
            out["gyro_max_rad_s"][k] = np.nan
        # --- axles and speed
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
        out["valid"][k] = bool(np.all(sig.valid[w0:w1]))
    return Columns(out)
