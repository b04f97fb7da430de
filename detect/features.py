"""Features of each candidate event, from the oriented signals on the uniform grid.

All events at once, as a matrix of windows (one row per event); no loop over events or samples. Units in the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from detect.columns import Columns
from detect.events import SNR_FLOOR_MPS2, AxlePairing
from detect.filters import bandpass
from detect.orientation import accel_tilt_deg, angle_from_cos_deg


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
    a_whitened_mps2: np.ndarray  # the impact band whitened (signal.whiten): what the characteristic function reads
    gyro_t_s: np.ndarray         # raw gyroscope (phone frame); empty without one
    gyro_rad_s: np.ndarray
    cf_mps2: np.ndarray          # characteristic function
    threshold_mps2: np.ndarray
    background_mps2: np.ndarray
    typical_background_mps2: float   # the background's median while the car moved (events.driving_levels)
    still_background_mps2: float     # below this vibration level, a sample of unknown speed was taken standing
    level_mps2: np.ndarray           # vibration level per block of level_step samples (events.vibration_level)
    level_step: int
    speed_mps: np.ndarray
    distance_m: np.ndarray
    impact_band_hz: tuple[float, float]
    body_band_hz: tuple[float, float]
    # per sample: the three-axis detection score (events.three_axis_score), the rear axle not yet asked for, and the
    # factor it fades by on a smooth road (0 in gaps); the axle-paired score is read from them, with the pairing,
    # where it is needed (score_at) or in full (score)
    unpaired_score: np.ndarray
    score_fade: np.ndarray
    pairing: AxlePairing
    # the car's own horizontal acceleration |GPS dv/dt, centripetal| [m/s^2] (NaN unknown; empty without GPS), value j
    # standing for the grid samples [j * car_accel_step, (j + 1) * car_accel_step)
    car_accel_mps2: np.ndarray = field(default_factory=lambda: np.empty(0))
    car_accel_step: int = 1
    # (k, 2) grid index ranges [start, stop) in which the phone sat in no mount: a re-mount's hand, or an excursion
    # from a mount it came back to (detect.orientation.handling_spans)
    handling_spans: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))

    def snr(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The characteristic function over its local background at the grid indices ``idx`` (default: every
        sample): a candidate's ``snr`` at its peak, what ``confirm_snr`` is compared with."""
        return self.cf_mps2[idx] / np.maximum(self.background_mps2[idx], SNR_FLOOR_MPS2)

    def background_ratio(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The local background over the trip's typical one at the grid indices ``idx``: how rough the road is
        there, a candidate's ``background_ratio`` at its peak."""
        return self.background_mps2[idx] / max(self.typical_background_mps2, 1e-6)

    def score_at(self, idx: np.ndarray | None = None) -> np.ndarray:
        """The three-axis, axle-paired detection score at the grid indices ``idx`` (a 1-d integer array; default
        every sample) [unitless]: :attr:`unpaired_score` required of both axles
        (:meth:`detect.events.AxlePairing.paired`), times :attr:`score_fade`. At most ``unpaired_score x
        score_fade`` there."""
        paired = self.pairing.paired(self.unpaired_score, self.speed_mps, self.fs_hz, idx)
        return paired * (self.score_fade if idx is None else self.score_fade[idx])

    @cached_property
    def score(self) -> np.ndarray:
        """:meth:`score_at` every sample, for replay and plots."""
        return self.score_at()

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
        """Gyroscope linearly interpolated at the grid indices ``idx`` (any shape) -> idx.shape + (3,) [rad/s];
        the first or last sample outside the gyroscope's span. One search for all three axes (the interval of each
        time, :func:`_interval_index`), then each interval's straight line from its own end points."""
        gt = self.gyro_t_s
        t = np.take(self.t_s, idx)
        i0 = _interval_index(gt, t)
        t0 = np.take(gt, i0)
        frac = np.clip((t - t0) / (np.take(gt, i0 + 1) - t0), 0.0, 1.0)[..., None]
        g0 = np.take(self.gyro_rad_s, i0, axis=0)         # take: several times faster than fancy indexing here
        out = np.take(self.gyro_rad_s, i0 + 1, axis=0)
        out -= g0
        out *= frac
        out += g0                                         # g0 + frac (g1 - g0), in place
        return out

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


def _interval_index(t_knots: np.ndarray, t_s: np.ndarray, max_steps: int = 3) -> np.ndarray:
    """Index ``i`` of the interval ``[t_knots[i], t_knots[i + 1])`` holding each time of ``t_s`` (any shape), in
    ``[0, t_knots.size - 2]`` (``np.searchsorted(t_knots, t_s, "right") - 1``, clipped) [index]. A sensor's clock
    ticks nearly regularly: a guess from the mean rate, corrected by up to ``max_steps`` steps either way (a few
    passes of two gathers), a binary search for any time still unplaced (a gap, a burst of jitter)."""
    last = t_knots.size - 2
    rate = last / (t_knots[-1] - t_knots[0]) if last > 0 else 0.0
    i = ((t_s - t_knots[0]) * rate).astype(np.int64)
    np.clip(i, 0, last, out=i)
    for _ in range(max_steps):                          # loop over correction steps (a handful)
        down = np.take(t_knots, i) > t_s
        down &= i > 0
        up = np.take(t_knots, i + 1) <= t_s
        up &= i < last
        if not (down.any() or up.any()):
            return i
        i -= down
        i += up
    wrong = ((np.take(t_knots, i) > t_s) & (i > 0)) | ((np.take(t_knots, i + 1) <= t_s) & (i < last))
    if wrong.any():
        i[wrong] = np.clip(np.searchsorted(t_knots, t_s[wrong], side="right") - 1, 0, last)
    return i


FEATURE_DTYPES: dict[str, str] = {
    "i_start": "i8", "i_stop": "i8", "i_peak": "i8", "t_s": "f8", "t_start_s": "f8", "duration_s": "f8",
    "cf_peak_mps2": "f8", "snr": "f8", "score": "f8", "impact_p2p_mps2": "f8", "up_p2p_mps2": "f8",
    "body_p2p_mps2": "f8",
    "energy_m2ps3": "f8", "sharpness": "f8", "first_motion": "i8", "roll_ratio": "f8", "lateral_ratio": "f8",
    "horizontal_ratio": "f8", "gyro_max_rad_s": "f8", "axle_score": "f8",
    "speed_mps": "f8", "decel_mps2": "f8", "vel_p2p_mps": "f8", "vel_background_mps": "f8", "disp_p2p_m": "f8",
    "background_ratio": "f8",
    "roll_pitch_corr": "f8", "lateral_up_corr": "f8", "tilt_max_deg": "f8", "car_tilt_deg": "f8",
    "valid": "?",
}


IMPACT_PAD_S = 0.3     # impact-band (>= 3 Hz) filters of event windows settle within this [s]


def _window_index(first: np.ndarray, width: int, n: int) -> np.ndarray:
    """(rows, width) grid indices ``first[i] + j``, clipped to ``[0, n)`` (past the ends: the first or last)."""
    return np.clip(first[:, None] + np.arange(width)[None, :], 0, n - 1)


def _windows(x: np.ndarray, first: np.ndarray, width: int) -> np.ndarray:
    """(rows, width) windows ``x[first[i]:first[i] + width]`` of a 1-D array, indices past its ends repeating its
    first or last value: rows copied out of a sliding-window view when every window lies inside (no index
    matrix), else gathered through :func:`_window_index`."""
    n = x.shape[0]
    if first.size and int(first.min()) >= 0 and int(first.max()) + width <= n:
        return np.lib.stride_tricks.sliding_window_view(x, width)[first]
    return np.take(x, _window_index(first, width, n))             # take: several times faster than fancy indexing


def _row_reduce(ufunc: np.ufunc, x: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
    """``ufunc`` (``np.maximum``, ``np.add``...) reduced over the columns ``[lo, hi)`` of each row of the 2-D ``x``.

    ``lo`` and ``hi`` are scalars or one per row, with ``0 <= lo < hi <= x.shape[1]``. One ``ufunc.reduceat`` over
    the flattened rows: no masked copy of ``x``.
    """
    rows, cols = x.shape
    base = np.arange(rows, dtype=np.intp) * cols
    idx = np.empty(2 * rows, dtype=np.intp)
    idx[0::2] = base + lo
    idx[1::2] = base + hi
    flat = x.ravel()
    return ufunc.reduceat(flat, idx[:-1] if idx[-1] == flat.size else idx)[0::2]


def _ptp(x: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
    """Peak-to-peak of each row of ``x`` over its columns ``[lo, hi)``."""
    return _row_reduce(np.maximum, x, lo, hi) - _row_reduce(np.minimum, x, lo, hi)


def _mean(x: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
    return _row_reduce(np.add, x, lo, hi) / (hi - lo)


def _rms(x: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
    return np.sqrt(_mean(x * x, lo, hi))


def _centred(x: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
    """Each row of ``x`` minus its mean over its columns ``[lo, hi)``."""
    return x - _mean(x, lo, hi)[:, None]


def _abs_corr(x: np.ndarray, y: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
    """|Pearson correlation| of each row pair over the columns ``[lo, hi)`` (0 where either is constant)."""
    xc, yc = _centred(x, lo, hi), _centred(y, lo, hi)
    den = np.sqrt(_row_reduce(np.add, xc * xc, lo, hi) * _row_reduce(np.add, yc * yc, lo, hi))
    return np.where(den > 0, np.abs(_row_reduce(np.add, xc * yc, lo, hi)) / np.where(den > 0, den, 1.0), 0.0)


def _filter_rows(x: np.ndarray, band_hz: tuple[float, float], fs_hz: float, start: int = 0) -> np.ndarray:
    """Zero-phase band-pass of every row (event window) of the 2-D ``x`` at once [same units as x]; its columns
    from ``start`` on (the filter still runs over the whole row)."""
    return bandpass(x, band_hz, fs_hz, axis=1, start=start)


def _velocity_fs(up: np.ndarray, motion_band_hz: tuple[float, float], fs_hz: float) -> np.ndarray:
    """Vertical velocity x ``fs_hz`` of each row of the 2-D ``up`` [m/s^2 windows]: the motion band, integrated by a
    cumulative sum and band-passed again (the filters are linear: scaled by 1 / fs once, where read)."""
    return _filter_rows(np.cumsum(_filter_rows(up, motion_band_hz, fs_hz), axis=1), motion_band_hz, fs_hz)


def _swing_span(margin: int, ctx: int, n_event: np.ndarray | int, fs_hz: float) -> tuple[int, np.ndarray | int]:
    """Columns ``[lo, hi)`` of a window over which an event's body swings are read: from 0.1 s before the event
    to the end of its context."""
    return margin - round(0.1 * fs_hz), margin + ctx + n_event


def quiet_velocity_swing(sig: Signals, starts: np.ndarray, width: int, *, motion_band_hz: tuple[float, float],
                         context_s: float = 0.3, body_context_s: float = 1.0) -> np.ndarray:
    """``vel_p2p_mps`` of windows ``[start, start + width)`` read as events of :func:`event_features` (same
    context, filters and span), for windows without an event: the body's swing the road alone gives [m/s]."""
    fs = sig.fs_hz
    ctx, _, margin, length, _ = _window_layout(fs, context_s, body_context_s, width)
    vel_fs = _velocity_fs(_windows(sig.a_up_mps2, np.asarray(starts, dtype=np.int64) - margin, length),
                          motion_band_hz, fs)
    return _ptp(vel_fs, *_swing_span(margin, ctx, width, fs)) / fs


def event_features(sig: Signals, starts: np.ndarray, stops: np.ndarray, *, wheelbase_m: float,
                   motion_band_hz: tuple[float, float] = (0.5, 20.0), context_s: float = 0.3,
                   body_context_s: float = 1.0, max_event_s: float = 2.5, quiet_swing_mps: float = 0.0) -> Columns:
    """Columns of :data:`FEATURE_DTYPES`, one row per event [starts, stops) on the grid of ``sig``.

    ``quiet_swing_mps``: the body's velocity swing a window without an event reaches on the trip's typical road
    (:func:`detect.pipeline.quiet_swing`); ``vel_background_mps`` is that times each event's ``background_ratio``
    (the road's own share of its ``vel_p2p_mps``; 0 by default: none removed; NaN: not read, at rates whose depth
    comes from the ringing).

    All events are read at once through a matrix of padded windows (one row per event, :func:`_windows`),
    filtered along the rows in a handful of calls and reduced over each row's own column range: no loop over
    events or samples. Windows: the event itself ``[s, e)`` (at most ``max_event_s`` long), its context
    ``[s - context_s, e + context_s)``, the body's response ``peak +- body_context_s``; filters run over the window
    padded by ``body_context_s`` more on each side, so their edge effects stay out. Indices past the trace's ends
    repeat its first or last sample.
    """
    n_ev = starts.size
    if n_ev == 0 or sig.t_s.size == 0:
        return Columns.empty(FEATURE_DTYPES)
    fs = sig.fs_hz
    n = sig.t_s.size
    s = starts.astype(np.int64)
    e = np.minimum(stops.astype(np.int64), s + round(max_event_s * fs) + 1)
    n_event = e - s                                    # samples in each event (>= 1)
    longest = int(n_event.max())
    ctx, body_ctx, margin, length, wide = _window_layout(fs, context_s, body_context_s, longest)
    first = s - margin                                  # grid index of each window's first cell
    ctx_hi = 2 * ctx + n_event
    n_wide = wide.stop - wide.start
    # the narrow part: the context plus IMPACT_PAD_S each side, for signals filtered here in the impact band
    # (their filters settle within ~0.1 s), kept from the context on
    pad = round(IMPACT_PAD_S * fs)
    n_narrow = n_wide + 2 * pad
    cf = _windows(sig.cf_mps2, first + wide.start, n_wide)
    imp = _windows(sig.a_impact_mps2, first + wide.start, n_wide)
    up = _windows(sig.a_up_mps2, first, length)
    left = _windows(sig.a_left_mps2, first, length)
    in_event = np.arange(longest)[None, :] < n_event[:, None]          # over the columns [ctx, ctx + longest)
    ip = s + np.argmax(np.where(in_event, cf[:, ctx:ctx + longest], -np.inf), axis=1)  # peak of cf
    out: dict[str, np.ndarray] = {"i_start": s, "i_stop": stops.astype(np.int64), "i_peak": ip}
    # --- timing and size
    absimp = np.where(in_event, np.abs(imp[:, ctx:ctx + longest]), 0.0)
    big = absimp > 0.5 * absimp.max(axis=1, keepdims=True)
    # first strong motion (the first axle's contact); the window's first cell if none
    i_onset = np.where(big.any(axis=1), s + np.argmax(big, axis=1), s - margin)
    i_onset = np.clip(i_onset, 0, n - 1)
    out["t_s"] = sig.t_s[i_onset]
    out["t_start_s"] = sig.t_s[s]
    out["duration_s"] = (stops - s) / fs
    out["cf_peak_mps2"] = sig.cf_mps2[ip]
    out["snr"] = sig.snr(ip)
    out["score"] = _event_max_score(sig, s, e)
    out["background_ratio"] = sig.background_ratio(ip)
    out["impact_p2p_mps2"] = _ptp(imp, 0, ctx_hi)
    out["up_p2p_mps2"] = _ptp(up, margin - ctx, margin + ctx + n_event)
    out["energy_m2ps3"] = (absimp * absimp).sum(axis=1) / fs
    # energy of the event's raw vertical acceleration in its second difference, relative to its own: a wheel rings
    # below ~25 Hz (a sinusoid at f gives 16 sin^4(pi f / fs): 0.7 at 15 Hz, 4 at 25 Hz, sampled at 100 Hz); a
    # one-sample glitch gives ~6 (its difference is 1, -2, 1) at any rate
    raw = up[:, margin - 1:margin + longest + 1]                       # the event's samples and one either side
    ev = np.where(in_event, raw[:, 1:-1], 0.0)
    dev = np.where(in_event, ev - (ev.sum(axis=1) / n_event)[:, None], 0.0)
    curv = np.where(in_event, raw[:, :-2] - 2.0 * raw[:, 1:-1] + raw[:, 2:], 0.0)
    out["sharpness"] = (curv * curv).sum(axis=1) / np.maximum((dev * dev).sum(axis=1), 1e-12)
    out["first_motion"] = np.sign(sig.a_impact_mps2[i_onset]).astype(np.int64)
    # filtered windows are kept from the first column read on (the backward passes stop there)
    body_first = margin - body_ctx                     # the body's response: peak +- body_ctx, the peak in the event
    body_lo = ip - body_ctx - (s - margin) - body_first
    body = _filter_rows(up, sig.body_band_hz, fs, start=body_first)
    out["body_p2p_mps2"] = _ptp(body, body_lo, body_lo + 2 * body_ctx)
    # velocity and displacement times fs and fs^2 (the filters are linear: scaled once, at the end)
    vel_fs = _velocity_fs(up, motion_band_hz, fs)
    motion_lo, motion_hi = _swing_span(margin, ctx, n_event, fs)
    disp_fs2 = _filter_rows(np.cumsum(vel_fs, axis=1), motion_band_hz, fs, start=motion_lo)
    out["vel_p2p_mps"] = _ptp(vel_fs, motion_lo, motion_hi) / fs
    out["vel_background_mps"] = quiet_swing_mps * out["background_ratio"]
    out["disp_p2p_m"] = _ptp(disp_fs2, 0, motion_hi - motion_lo) / (fs * fs)
    # --- one wheel or both, handling: forward and lateral acceleration, with a gyroscope the roll and pitch rates
    # about each sample's mount axes, in the impact band in one call (rows: every event's forward, left, roll, pitch)
    narrow = np.empty(((4 if sig.has_gyro else 2) * n_ev, n_narrow))
    narrow[:n_ev] = _windows(sig.a_forward_mps2, first + wide.start - pad, n_narrow)
    narrow[n_ev:2 * n_ev] = left[:, wide.start - pad:wide.stop + pad]
    if sig.has_gyro:
        g_n = _window_index(first + wide.start - pad, n_narrow, n)
        gyro = sig.window_gyro_at(g_n)                                      # (events, columns, 3)
        rates = narrow[2 * n_ev:]
        if sig.forward_axis.shape[0] == 1:                                  # one mount: one projection each
            np.matmul(gyro, sig.forward_axis[0], out=rates[:n_ev])
            np.matmul(gyro, sig.left_axis[0], out=rates[n_ev:])
        else:                                                               # projections on every segment's axes,
            proj = gyro @ np.concatenate([sig.forward_axis, sig.left_axis]).T      # then a pick per sample
            seg = np.take(sig.segment, g_n)[..., None]
            rates[:n_ev] = np.take_along_axis(proj, seg, axis=2)[..., 0]
            rates[n_ev:] = np.take_along_axis(proj, seg + sig.forward_axis.shape[0], axis=2)[..., 0]
    impact_rows = _filter_rows(narrow, sig.impact_band_hz, fs, start=pad)             # from the context on
    horiz = impact_rows[:2 * n_ev]
    vert_rms = np.maximum(_rms(imp, 0, ctx_hi), 1e-6)
    out["horizontal_ratio"] = _rms(np.hypot(horiz[:n_ev], horiz[n_ev:]), 0, ctx_hi) / vert_rms
    left_c, up_c = left[:, wide], up[:, wide]
    out["lateral_ratio"] = (_rms(_centred(left_c, 0, ctx_hi), 0, ctx_hi)
                            / np.maximum(_rms(_centred(up_c, 0, ctx_hi), 0, ctx_hi), 1e-6))
    out["lateral_up_corr"] = _lateral_up_corr(left, imp, wide, ctx_hi, motion_band_hz, fs)
    out["tilt_max_deg"] = _tilt_max_deg(sig, ip, body_ctx)
    out["car_tilt_deg"] = car_tilt_deg(sig, ip, body_ctx)
    if sig.has_gyro:
        roll, pitch = impact_rows[2 * n_ev:3 * n_ev], impact_rows[3 * n_ev:]
        out["roll_pitch_corr"] = _abs_corr(roll, pitch, 0, ctx_hi)
        out["roll_ratio"] = _rms(roll, 0, ctx_hi) / np.maximum(_rms(pitch, 0, ctx_hi), 1e-4)
        gyro_c = gyro[:, pad:pad + n_wide]
        out["gyro_max_rad_s"] = np.sqrt(_row_reduce(np.maximum, np.einsum("ijk,ijk->ij", gyro_c, gyro_c), 0, ctx_hi))
    else:
        out["roll_pitch_corr"] = out["roll_ratio"] = out["gyro_max_rad_s"] = np.full(n_ev, np.nan)
    # --- front/rear axle double hit: coherence of cf with itself one wheelbase later, over the context
    v = sig.speed_mps[ip]
    out["speed_mps"] = v
    lag = np.where(np.isfinite(v) & (v > 0.5), np.round(wheelbase_m / np.maximum(v, 0.5) * fs), 0).astype(np.int64)
    later = _windows(sig.cf_mps2, first + wide.start + lag, n_wide)
    out["axle_score"] = np.where(lag > 0, _abs_corr(cf, later, 0, ctx_hi), np.nan)
    i_before = np.maximum(0, ip - round(3.0 * fs))
    i_near = np.maximum(0, ip - round(0.3 * fs))
    out["decel_mps2"] = (sig.speed_mps[i_before] - sig.speed_mps[i_near]) / np.maximum((i_near - i_before) / fs, 1e-3)
    out["valid"] = _row_reduce(np.logical_and, _windows(sig.valid, first + wide.start, n_wide), 0, ctx_hi)
    return Columns({k: np.asarray(out[k], dtype=dt) for k, dt in FEATURE_DTYPES.items()})


def _event_max_score(sig: Signals, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Largest :meth:`Signals.score_at` over each event's samples ``[start, stop)`` (at least one sample each),
    read at those samples only."""
    if starts.size == 0:
        return np.empty(0)
    length = np.maximum(stops, starts + 1) - starts
    first = np.concatenate(([0], np.cumsum(length[:-1])))
    idx = np.arange(int(length.sum())) + np.repeat(starts - first, length)
    return np.maximum.reduceat(sig.score_at(idx), first)


def _window_layout(fs_hz: float, context_s: float, body_context_s: float, longest: int
                   ) -> tuple[int, int, int, int, slice]:
    """(ctx, body_ctx, margin, length, wide) of :func:`event_features`' padded windows for events of at most
    ``longest`` samples: the context and body samples each side, the samples before the event in a window, the
    window's length, and its context part ``wide``, the same columns for every event (signals filtered beforehand,
    cf and impact band, are read there only: an event's context is its columns [0, ctx_hi), the event
    [ctx, ctx + n_event))."""
    ctx, body_ctx = round(context_s * fs_hz), round(body_context_s * fs_hz)
    margin = ctx + 2 * body_ctx
    length = longest + 2 * margin
    return ctx, body_ctx, margin, length, slice(margin - ctx, length - margin + ctx)


def _lateral_up_corr(left: np.ndarray, imp: np.ndarray, wide: slice, ctx_hi: np.ndarray | int,
                     motion_band_hz: tuple[float, float], fs_hz: float) -> np.ndarray:
    """|corr| over each row's context ``[0, ctx_hi)`` of the lateral motion (``left`` windows filtered in the motion
    band, read over ``wide``) with the vertical impact band ``imp`` (read over ``wide``): one wheel rolls the car."""
    lat_motion = _filter_rows(left, motion_band_hz, fs_hz, start=wide.start)[:, :wide.stop - wide.start]
    return _abs_corr(lat_motion, imp, 0, ctx_hi)


def quiet_coherence(sig: Signals, starts: np.ndarray, width: int, *, motion_band_hz: tuple[float, float],
                    context_s: float = 0.3, body_context_s: float = 1.0) -> np.ndarray:
    """``lateral_up_corr`` of windows ``[start, start + width)`` read as events of :func:`event_features` (same
    context and filter padding), for windows without an event: the coherence a trip reaches by chance."""
    fs = sig.fs_hz
    ctx, _, margin, length, wide = _window_layout(fs, context_s, body_context_s, width)
    first = np.asarray(starts, dtype=np.int64) - margin
    imp = _windows(sig.a_impact_mps2, first + wide.start, wide.stop - wide.start)
    left = _windows(sig.a_left_mps2, first, length)
    return _lateral_up_corr(left, imp, wide, 2 * ctx + width, motion_band_hz, fs)


def car_tilt_deg(sig: Signals, i_peak: np.ndarray, half_width: int) -> np.ndarray:
    """The tilt [deg] the car's own horizontal acceleration gives the phone's mean acceleration within
    ``half_width`` grid samples of each event's peak: atan(largest |GPS dv/dt, centripetal| / g) (braking at
    3.5 m/s^2 reads ~20 degrees); 0 where GPS cannot tell."""
    acc = sig.car_accel_mps2
    if acc.size == 0:
        return np.zeros(i_peak.size)
    step = max(1, sig.car_accel_step)
    last = acc.size - 1
    lo = np.clip((i_peak - half_width) // step, 0, last)
    hi = np.clip((i_peak + half_width) // step, 0, last)
    idx = lo[:, None] + np.arange(2 * half_width // step + 2)[None, :]          # a few values per event
    seen = np.where(idx <= hi[:, None], np.nan_to_num(acc[np.minimum(idx, last)], nan=0.0), 0.0)
    return accel_tilt_deg(seen.max(axis=1))


def _tilt_max_deg(sig: Signals, i_peak: np.ndarray, half_width: int) -> np.ndarray:
    """Largest angle [deg] between the phone's 0.5-s mean acceleration and its mount's gravity direction within
    ``half_width`` grid samples of each event's peak: a car tilts a few degrees over a bump, a phone in a hand by
    tens of degrees. The running mean is read every 25 ms (it barely moves in between): from sums over blocks of
    those 25 ms, so that each sample is read once and each window's sum is a difference of one running sum over
    the blocks plus the first samples of the block after it (when the window is not whole blocks)."""
    stride = max(1, round(sig.fs_hz / 40.0))                             # samples per block
    n_avg = max(1, round(0.5 * sig.fs_hz))                               # samples per window
    q, rem = divmod(n_avg, stride)                                       # whole blocks per window, samples after
    n_win = -(-2 * half_width // stride)                                 # windows start every block
    first = (i_peak - half_width - n_avg // 2)[:, None] + stride * np.arange(n_win + q)[None, :]   # block starts
    last = sig.t_s.size - 1
    csum = np.zeros((i_peak.size, n_win + q + 1, 3))                     # csum[:, k + 1]: sum of block k, then
    head = csum[:, 1:]                                                   # of blocks 0..k after the cumsum
    for r in range(stride):                                              # loop over a block's samples (<= 5)
        if r == rem and rem:
            head = csum[:, q + 1:q + 1 + n_win].copy()                   # first `rem` samples of each window's next
        csum[:, 1:] += np.take(sig.accel_mps2, np.clip(first + r, 0, last), axis=0)
    np.cumsum(csum, axis=1, out=csum)
    total = csum[:, q:q + n_win] - csum[:, :n_win]                       # (events, windows, 3) window sums
    if rem:
        total += head
    if sig.up_axis.shape[0] == 1:
        along_up = total @ sig.up_axis[0]
    else:
        centre = np.clip(first[:, :n_win] + n_avg // 2, 0, last)
        along_up = np.einsum("ijk,ijk->ij", total, sig.up_axis[sig.segment[centre]])
    norm = np.sqrt(np.einsum("ijk,ijk->ij", total, total))
    cos = along_up / np.maximum(norm, 1e-9 * n_avg)
    return angle_from_cos_deg(cos.min(axis=1))
