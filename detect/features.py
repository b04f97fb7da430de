"""Features of each candidate event, from the oriented signals on the uniform grid.

One loop over events (tens per trip), array slices inside; no loop over samples. Units in the names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

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
    segment_starts: np.ndarray   # first grid index of each mount segment (re-mounts after the first)
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
    def window_gyro(self, i0: int, i1: int) -> np.ndarray:
        """(i1 - i0, 3) gyroscope at the grid times [i0, i1) [rad/s]; NaN without gyroscope."""
        t = self.t_s[i0:i1]
        if not self.has_gyro:
            return np.full((t.size, 3), np.nan)
        j0, j1 = np.searchsorted(self.gyro_t_s, (t[0], t[-1]))
        j0, j1 = max(0, j0 - 1), min(self.gyro_t_s.size, j1 + 1)
        gt, g = self.gyro_t_s[j0:j1], self.gyro_rad_s[j0:j1]
        return np.column_stack([np.interp(t, gt, g[:, j]) for j in range(3)])

    def window_gyro_at(self, idx: np.ndarray) -> np.ndarray:
        """Gyroscope interpolated at the grid indices ``idx`` (any shape) -> idx.shape + (3,) [rad/s]."""
        t = self.t_s[idx]
        return np.stack([np.interp(t, self.gyro_t_s, np.ascontiguousarray(self.gyro_rad_s[:, k]))
                         for k in range(3)], axis=-1)

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
    "horizontal_ratio": "f8", "gyro_max_rad_s": "f8", "axle_score": "f8",
    "speed_mps": "f8", "decel_mps2": "f8", "vel_p2p_mps": "f8", "disp_p2p_m": "f8", "background_ratio": "f8",
    "roll_pitch_corr": "f8", "lateral_up_corr": "f8", "tilt_max_deg": "f8",
    "valid": "?",
}


IMPACT_PAD_S = 0.3     # impact-band (>= 3 Hz) filters of event windows settle within this [s]


def _ptp(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Peak-to-peak of each row of ``x`` over ``mask``."""
    return np.where(mask, x, -np.inf).max(axis=1) - np.where(mask, x, np.inf).min(axis=1)


def _mean(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, x, 0.0).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)


def _rms(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.sqrt(_mean(x * x, mask))


def _abs_corr(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """|Pearson correlation| of each row pair over ``mask`` (0 where either is constant)."""
    xc = np.where(mask, x - _mean(x, mask)[:, None], 0.0)
    yc = np.where(mask, y - _mean(y, mask)[:, None], 0.0)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    return np.where(den > 0, np.abs((xc * yc).sum(axis=1)) / np.where(den > 0, den, 1.0), 0.0)


def _filter_rows(x: np.ndarray, band_hz: tuple[float, float], fs_hz: float) -> np.ndarray:
    """Zero-phase band-pass of every row (event window) of ``x`` at once."""
    return bandpass(x.T, band_hz, fs_hz).T


def event_features(sig: Signals, starts: np.ndarray, stops: np.ndarray, *, wheelbase_m: float,
                   motion_band_hz: tuple[float, float] = (0.5, 20.0), context_s: float = 0.3,
                   body_context_s: float = 1.0, max_event_s: float = 2.5) -> Columns:
    """Columns of :data:`FEATURE_DTYPES`, one row per event [starts, stops) on the grid of ``sig``.

    All events are read at once through a matrix of padded windows (one row per event, gathered by index),
    filtered along the rows in a handful of calls and reduced with masks: no loop over events or samples.
    Windows: the event itself ``[s, e)`` (at most ``max_event_s`` long), its context ``[s - context_s,
    e + context_s)``, the body's response ``peak +- body_context_s``; filters run over the window padded by
    ``body_context_s`` more on each side, so their edge effects stay out. Indices past the trace's ends repeat
    its first or last sample.
    """
    n_ev = starts.size
    if n_ev == 0 or sig.t_s.size == 0:
        return Columns.empty(FEATURE_DTYPES)
    fs = sig.fs_hz
    n = sig.t_s.size
    ctx = round(context_s * fs)
    body_ctx = round(body_context_s * fs)
    s = starts.astype(np.int64)
    e = np.minimum(stops.astype(np.int64), s + round(max_event_s * fs) + 1)
    margin = ctx + 2 * body_ctx
    length = int((e - s).max()) + 2 * margin
    j = (s - margin)[:, None] + np.arange(length)[None, :]          # absolute grid index of every window cell
    g = np.clip(j, 0, n - 1)
    cf = sig.cf_mps2[g]
    in_event = (j >= s[:, None]) & (j < e[:, None])
    ip = np.argmax(np.where(in_event, cf, -np.inf), axis=1) + (s - margin)     # peak of cf inside the event
    in_ctx = (j >= (s - ctx)[:, None]) & (j < (e + ctx)[:, None])
    in_body = (j >= (ip - body_ctx)[:, None]) & (j < (ip + body_ctx)[:, None])
    imp = sig.a_impact_mps2[g]
    up = sig.a_up_mps2[g]
    left = sig.a_left_mps2[g]
    out: dict[str, np.ndarray] = {"i_start": s, "i_stop": stops.astype(np.int64), "i_peak": ip}
    # --- timing and size
    absimp = np.where(in_event, np.abs(imp), 0.0)
    big = absimp > 0.5 * absimp.max(axis=1, keepdims=True)
    first = np.argmax(big, axis=1)
    rows = np.arange(n_ev)
    i_onset = (s - margin) + first                  # first strong motion: the first axle's contact
    out["t_s"] = sig.t_s[np.clip(i_onset, 0, n - 1)]
    out["t_start_s"] = sig.t_s[s]
    out["duration_s"] = (stops - s) / fs
    out["cf_peak_mps2"] = sig.cf_mps2[ip]
    out["snr"] = sig.cf_mps2[ip] / np.maximum(sig.background_mps2[ip], 1e-3)
    out["background_ratio"] = sig.background_mps2[ip] / max(float(np.median(sig.background_mps2)), 1e-6)
    out["impact_p2p_mps2"] = _ptp(imp, in_ctx)
    out["up_p2p_mps2"] = _ptp(up, in_ctx)
    out["body_p2p_mps2"] = _ptp(_filter_rows(up, sig.body_band_hz, fs), in_body)
    out["energy_m2ps3"] = np.where(in_event, imp * imp, 0.0).sum(axis=1) / fs
    out["first_motion"] = np.sign(imp[rows, first]).astype(np.int64)
    motion = _filter_rows(np.concatenate([up, left]), motion_band_hz, fs)
    a_motion, lat_motion = motion[:n_ev], motion[n_ev:]
    vel = _filter_rows(np.cumsum(a_motion, axis=1) / fs, motion_band_hz, fs)
    disp = _filter_rows(np.cumsum(vel, axis=1) / fs, motion_band_hz, fs)
    in_motion = (j >= (s - round(0.1 * fs))[:, None]) & (j < (e + ctx)[:, None])
    out["vel_p2p_mps"] = _ptp(vel, in_motion)
    out["disp_p2p_m"] = _ptp(disp, in_motion)
    # --- one wheel or both, handling; impact-band filters settle within ~0.1 s, so they run on the narrow part
    # of the window (the context plus IMPACT_PAD_S each side), the same columns for every event
    narrow = slice(margin - ctx - round(IMPACT_PAD_S * fs), length - margin + ctx + round(IMPACT_PAD_S * fs))
    g_n, ctx_n = g[:, narrow], in_ctx[:, narrow]
    horiz = _filter_rows(np.concatenate([sig.a_forward_mps2[g_n], left[:, narrow]]), sig.impact_band_hz, fs)
    vert_rms = np.maximum(_rms(imp, in_ctx), 1e-6)
    out["horizontal_ratio"] = _rms(np.hypot(horiz[:n_ev], horiz[n_ev:]), ctx_n) / vert_rms
    out["lateral_ratio"] = (_rms(left - _mean(left, in_ctx)[:, None], in_ctx)
                            / np.maximum(_rms(up - _mean(up, in_ctx)[:, None], in_ctx), 1e-6))
    out["lateral_up_corr"] = _abs_corr(lat_motion, imp, in_ctx)
    out["tilt_max_deg"] = _tilt_max_deg(sig, ip, body_ctx)
    if sig.has_gyro:
        gyro = sig.window_gyro_at(g_n)
        seg = sig.segment[g_n]
        rot = _filter_rows(np.concatenate([np.einsum("ijk,ijk->ij", gyro, sig.forward_axis[seg]),
                                           np.einsum("ijk,ijk->ij", gyro, sig.left_axis[seg])]),
                           sig.impact_band_hz, fs)
        roll, pitch = rot[:n_ev], rot[n_ev:]
        out["roll_pitch_corr"] = _abs_corr(roll, pitch, ctx_n)
        out["roll_ratio"] = _rms(roll, ctx_n) / np.maximum(_rms(pitch, ctx_n), 1e-4)
        out["gyro_max_rad_s"] = np.where(ctx_n, np.linalg.norm(gyro, axis=2), -np.inf).max(axis=1)
    else:
        out["roll_pitch_corr"] = out["roll_ratio"] = out["gyro_max_rad_s"] = np.full(n_ev, np.nan)
    # --- front/rear axle double hit: coherence of cf with itself one wheelbase later
    v = sig.speed_mps[ip]
    out["speed_mps"] = v
    lag = np.where(np.isfinite(v) & (v > 0.5), np.round(wheelbase_m / np.maximum(v, 0.5) * fs), 0).astype(np.int64)
    later = sig.cf_mps2[np.clip(j[:, narrow] + lag[:, None], 0, n - 1)]
    out["axle_score"] = np.where(lag > 0, _abs_corr(cf[:, narrow], later, (in_event | in_ctx)[:, narrow]), np.nan)
    i_before = np.maximum(0, ip - round(3.0 * fs))
    i_near = np.maximum(0, ip - round(0.3 * fs))
    out["decel_mps2"] = (sig.speed_mps[i_before] - sig.speed_mps[i_near]) / np.maximum((i_near - i_before) / fs, 1e-3)
    out["valid"] = np.where(in_ctx, sig.valid[g], True).all(axis=1)
    return Columns({k: np.asarray(out[k], dtype=dt) for k, dt in FEATURE_DTYPES.items()})


def _tilt_max_deg(sig: Signals, i_peak: np.ndarray, half_width: int) -> np.ndarray:
    """Largest angle [deg] between the phone's 0.5-s mean acceleration and its mount's gravity direction within
    ``half_width`` grid samples of each event's peak: a car tilts a few degrees over a bump, a phone in a hand by
    tens of degrees. The running mean is read every 25 ms (it barely moves in between)."""
    n_avg = max(1, round(0.5 * sig.fs_hz))
    stride = max(1, round(sig.fs_hz / 40.0))
    j = (i_peak - half_width - n_avg // 2)[:, None] + np.arange(2 * half_width + n_avg)[None, :]
    acc = sig.accel_mps2[np.clip(j, 0, sig.t_s.size - 1)]                      # (events, L, 3)
    csum = np.concatenate([np.zeros((acc.shape[0], 1, 3)), np.cumsum(acc, axis=1)], axis=1)
    lo = np.arange(0, 2 * half_width, stride)
    mean = (csum[:, lo + n_avg] - csum[:, lo]) / n_avg
    centre = np.clip(j[:, lo + n_avg // 2], 0, sig.t_s.size - 1)
    up = sig.up_axis[sig.segment[centre]]
    cos = np.einsum("ijk,ijk->ij", mean, up) / np.maximum(np.linalg.norm(mean, axis=2), 1e-9)
    return np.degrees(np.arccos(np.clip(cos.min(axis=1), -1.0, 1.0)))
