"""Candidate events: characteristic function -> adaptive, speed-aware threshold -> onsets and ends.

Structured like ObsPy's trigger module (``classic_sta_lta`` -> ``trigger_onset``):

* characteristic function: short-term RMS of the vertical acceleration in the impact band [m/s^2];
* threshold: ``max(ratio x local background, floor x (1 + speed / speed_ref))`` — the background (a running
  median) keeps a rough road from firing everywhere; the floor grows with speed as in Pothole Patrol's
  speed-vs-z filter (Eriksson et al., MobiSys 2008);
* axle-paired score (:func:`three_axis_score`, :meth:`AxlePairing.paired`): the band RMS of all three car axes, each
  over its own local background, combined, and required of both axles: the smaller of its value now and its largest
  value where the rear wheels meet the same spot, one wheelbase later. A defect in the road meets the front and then
  the rear wheels; a rough road's random peaks, a door or a hand rarely repeat at that delay, so a hit seen on three
  axes and twice stands out at a lower level than the vertical band alone;
* events: runs above ``release_ratio x threshold`` that reach the threshold (hysteresis), on the larger of the
  two (the characteristic function over its threshold, the score over ``confirm_score``), merged when closer
  than the front/rear axle delay (wheelbase / speed) plus ``merge_gap_s``: one event per pass over a defect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detect.arrays import CHUNK_SAMPLES
from detect.filters import bandpass
from detect.running import block_means, median, moving_rms, running_background, running_median

SNR_FLOOR_MPS2 = 1e-3    # a background below this [m/s^2] (a silent sensor or axis) is read as this in an SNR


def characteristic_function(a_impact_mps2: np.ndarray, fs_hz: float, window_s: float) -> np.ndarray:
    """Short-term RMS of the impact-band vertical acceleration [m/s^2]; at least 2 samples wide."""
    return moving_rms(a_impact_mps2, max(2, round(window_s * fs_hz)))


def speed_floor(speed_mps: np.ndarray, floor_mps2: float, speed_ref_mps: float) -> np.ndarray:
    """``floor x (1 + speed / speed_ref)`` [m/s^2], ``floor`` where the speed is unknown: the least band RMS an
    impact reaches at each speed (Pothole Patrol's speed-vs-z filter)."""
    return floor_mps2 + np.nan_to_num(np.maximum(speed_mps, 0.0), nan=0.0) * (floor_mps2 / speed_ref_mps)


def threshold(cf: np.ndarray, floor_mps2: np.ndarray, fs_hz: float, *, background_window_s: float,
              ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(threshold, background) for a characteristic function, same length [m/s^2]: ``max(ratio x background,
    floor)``, the floor per sample (:func:`speed_floor`)."""
    background = running_background(cf, fs_hz, background_window_s)
    thr = np.multiply(background, ratio)
    return np.maximum(thr, floor_mps2, out=thr), background


AXLE_LAGS = 5      # points over the rear axle's arrival window (RMS windows of >= 0.1 s overlap between them)
UNKNOWN_SPEED_MAX_MPS = 30.0   # without a speed, the rear axle is looked for at every speed up to this


@dataclass(frozen=True)
class AxlePairing:
    """Where the rear wheels meet what the front ones met: ``(wheelbase_m +- spread_m) / speed`` later, over
    :data:`AXLE_LAGS` points (the wheelbase is rarely known exactly, and the phone sits between the axles). The
    speed is floored at ``min_speed_mps``; where it is unknown (no GPS) the lags span every speed from that floor to
    :data:`UNKNOWN_SPEED_MAX_MPS`."""

    wheelbase_m: float
    spread_m: float
    min_speed_mps: float

    def paired(self, s: np.ndarray, speed_mps: np.ndarray, fs_hz: float, at: np.ndarray | None = None
               ) -> np.ndarray:
        """``min(s(t), max_k s(t + lag_k))`` at the grid indices ``at`` (default: every sample), over chunks of
        :data:`detect.arrays.CHUNK_SAMPLES` of them, in cache. A score needs both axles: only where ``s`` itself
        is high can the pair be, so a caller that only asks whether it exceeds a level reads it where ``s`` does."""
        n = s.size if at is None else at.size
        near_m = max(self.wheelbase_m - self.spread_m, 0.5)
        far_m = self.wheelbase_m + self.spread_m
        out = np.empty(n)
        step = max(1, min(CHUNK_SAMPLES, n))
        v, first, span, rear = np.empty(step), np.empty(step), np.empty(step), np.empty(step)
        idx = np.empty(step, dtype=np.int64)
        for c0 in range(0, n, step):                       # loop over chunks of samples (in cache)
            m = min(step, n - c0)
            vc, fc, sc, ic, rc = v[:m], first[:m], span[:m], idx[:m], rear[:m]
            where = np.arange(c0, c0 + m) if at is None else at[c0:c0 + m]
            speed = speed_mps[c0:c0 + m] if at is None else speed_mps[where]
            known = np.isfinite(speed)
            np.copyto(vc, speed)
            vc[~known] = self.min_speed_mps
            np.maximum(vc, self.min_speed_mps, out=vc)
            np.divide(far_m * fs_hz, vc, out=sc)           # the farthest lag [samples]
            np.divide(near_m * fs_hz, vc, out=fc)          # the nearest ...
            fc[~known] = near_m * fs_hz / UNKNOWN_SPEED_MAX_MPS   # ... any speed when it is unknown
            sc -= fc
            sc /= AXLE_LAGS - 1
            fc += where + 0.5                              # rounded below by the cast
            rc.fill(0.0)
            for _ in range(AXLE_LAGS):                     # loop over lags
                np.copyto(ic, fc, casting="unsafe")
                np.maximum(rc, np.take(s, ic, mode="clip"), out=rc)
                fc += sc
            now = s[c0:c0 + m] if at is None else s[where]
            np.minimum(now, rc, out=out[c0:c0 + m])
        return out


def three_axis_score(snr_up: np.ndarray, horizontal_mps2: tuple[np.ndarray, ...], fs_hz: float,
                     band_hz: tuple[float, float], *, window_s: float, background_window_s: float) -> np.ndarray:
    """Dimensionless score per sample: ``s = sqrt(mean over axes of (band RMS / local background)^2)`` over the
    vertical (its ``snr_up``, the characteristic function over its background) and each horizontal car axis
    (band-passed to ``band_hz``, RMS over ``window_s``, background over ``background_window_s`` as
    :func:`detect.running.running_background`). Same length as ``snr_up``."""
    total = np.square(snr_up)
    width = max(2, round(window_s * fs_hz))
    for a in horizontal_mps2:                          # loop over the two horizontal axes
        rms = moving_rms(bandpass(a, band_hz, fs_hz), width)
        rms /= np.maximum(running_background(rms, fs_hz, background_window_s), SNR_FLOOR_MPS2)
        total += np.square(rms)
    return np.sqrt(total / (1 + len(horizontal_mps2)))


def trigger(cf: np.ndarray, thr: np.ndarray | float, *, release_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Start/stop indices (stop exclusive) of runs above ``release_ratio x thr`` (an array or one level) that
    exceed ``thr``. Both comparisons run chunk by chunk (:data:`detect.arrays.CHUNK_SAMPLES`, in cache); whether a
    run reaches the threshold is one ``logical_or.reduceat`` over the runs' bounds."""
    n = cf.size
    thr = np.broadcast_to(np.asarray(thr, dtype=float), (n,))
    above = np.empty(n + 2, dtype=bool)                # cf > release_ratio x thr, between two False
    above[0] = above[-1] = False
    strong = np.empty(n, dtype=bool)                   # cf > thr
    level = np.empty(min(CHUNK_SAMPLES, n))
    for c0 in range(0, n, CHUNK_SAMPLES):              # loop over chunks of samples
        part = level[:min(CHUNK_SAMPLES, n - c0)]
        np.multiply(thr[c0:c0 + part.size], release_ratio, out=part)
        np.greater(cf[c0:c0 + part.size], part, out=above[1 + c0:1 + c0 + part.size])
        np.greater(cf[c0:c0 + part.size], thr[c0:c0 + part.size], out=strong[c0:c0 + part.size])
    edges = np.flatnonzero(above[1:] != above[:-1])    # rises and falls alternate, a rise first
    starts, stops = edges[0::2], edges[1::2]
    if starts.size == 0:
        return starts, stops
    bounds = edges if edges[-1] < n else edges[:-1]    # runs and the gaps after them; the last to the end
    keep = np.logical_or.reduceat(strong, bounds)[0::2]
    return starts[keep], stops[keep]


def merge(starts: np.ndarray, stops: np.ndarray, max_gap_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge consecutive events whose gap is at most ``max_gap_samples`` (per event: the gap after it)."""
    if starts.size <= 1:
        return starts, stops
    gaps = starts[1:] - stops[:-1]
    new_group = np.concatenate(([True], gaps > max_gap_samples[:-1]))
    first = np.flatnonzero(new_group)
    last = np.concatenate((first[1:] - 1, [starts.size - 1]))
    return starts[first], stops[last]


LOUD_QUANTILE = 0.9    # the trip's loud level of road vibration: this quantile of its local background


LEVEL_BLOCK_S = 1.0    # the vibration level's blocks [s]


def vibration_level(a_impact_mps2: np.ndarray, valid: np.ndarray, fs_hz: float, window_s: float
                    ) -> tuple[np.ndarray, int]:
    """``(level, step)``: the running median over ``window_s`` of the RMS of the impact-band acceleration over
    blocks of ``step`` samples (a second), one value per block [m/s^2]; samples in gaps count as 0. The
    shaking itself, before any whitening: an idling engine shakes a phone about ten times less than tyres rolling
    on a road (:func:`driving_levels`)."""
    step = max(1, round(fs_hz * LEVEL_BLOCK_S))
    power = np.square(a_impact_mps2)
    if not valid.all():
        power[~valid] = 0.0
    rms = np.sqrt(block_means(power[:, None], step)[:, 0])
    k = max(1, round(window_s / LEVEL_BLOCK_S))
    return running_median(rms, k + (k + 1) % 2), step


def driving_levels(background_mps2: np.ndarray, level_mps2: np.ndarray, level_step: int, speed_mps: np.ndarray,
                   valid: np.ndarray, *, min_speed_mps: float, still_ratio: float) -> tuple[float, float]:
    """(typical, still) [m/s^2]: ``typical`` the median of a trip's local background (:func:`threshold`) while the
    car moved, ``still`` the vibration level (:func:`vibration_level`, blocks of ``level_step`` samples) below which
    a sample whose speed is unknown counts as the car standing.

    Moving: the GPS speed at least ``min_speed_mps`` where known; where it is not (no GPS, before the first fix),
    a vibration level of at least ``still = still_ratio x`` its :data:`LOUD_QUANTILE` over the trip (an idling engine
    shakes a phone about ten times less than tyres rolling on a road). So minutes parked with the app recording do
    not pull the typical level down (every stretch of road would then look rough). Both vary over seconds: every
    block's value is enough.
    """
    bg, v, ok = background_mps2[::level_step], speed_mps[::level_step], valid[::level_step]
    level = level_mps2[:bg.size]
    if not ok.any():
        return 0.0, 0.0
    still = still_ratio * float(np.quantile(level[ok], LOUD_QUANTILE))
    known = np.isfinite(v)
    moving = ok & np.where(known, v >= min_speed_mps, level >= still)
    return median(bg[moving] if moving.any() else bg[ok]), still
