"""Candidate events: characteristic function -> adaptive, speed-aware threshold -> onsets and ends.

Structured like ObsPy's trigger module (``classic_sta_lta`` -> ``trigger_onset``):

* characteristic function: short-term RMS of the vertical acceleration in the impact band [m/s^2];
* threshold: ``max(ratio x local background, floor x (1 + speed / speed_ref))`` — the background (a running
  median) keeps a rough road from firing everywhere; the floor grows with speed as in Pothole Patrol's
  speed-vs-z filter (Eriksson et al., MobiSys 2008);
* events: runs above ``release_ratio x threshold`` that reach the threshold (hysteresis), merged when closer
  than the front/rear axle delay (wheelbase / speed) plus ``merge_gap_s``: one event per pass over a defect.
"""

from __future__ import annotations

import numpy as np

from detect.signal import moving_rms, running_background, true_runs


def characteristic_function(a_impact_mps2: np.ndarray, fs_hz: float, window_s: float) -> np.ndarray:
    """Short-term RMS of the impact-band vertical acceleration [m/s^2]; at least 2 samples wide."""
    return moving_rms(a_impact_mps2, max(2, round(window_s * fs_hz)))


def threshold(cf: np.ndarray, speed_mps: np.ndarray, fs_hz: float, *, background_window_s: float, ratio: float,
              floor_mps2: float, speed_ref_mps: float) -> tuple[np.ndarray, np.ndarray]:
    """(threshold, background) for a characteristic function, same length [m/s^2]."""
    background = running_background(cf, fs_hz, background_window_s)
    v = np.nan_to_num(speed_mps, nan=0.0)
    thr = np.maximum(ratio * background, floor_mps2 * (1.0 + v / speed_ref_mps))
    return thr, background


def trigger(cf: np.ndarray, thr: np.ndarray, *, release_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Start/stop indices (stop exclusive) of runs above ``release_ratio x thr`` that exceed ``thr``."""
    starts, stops = true_runs(cf > release_ratio * thr)
    if starts.size == 0:
        return starts, stops
    above = np.concatenate(([0], np.cumsum(cf > thr)))
    keep = above[stops] - above[starts] > 0
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
