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
    speed_floor = np.multiply(speed_mps, floor_mps2 / speed_ref_mps)
    speed_floor += floor_mps2                          # floor x (1 + v / v_ref); NaN where the speed is unknown
    thr = np.multiply(background, ratio)
    np.maximum(thr, floor_mps2, out=thr)               # unknown speed counts as 0
    np.fmax(thr, speed_floor, out=thr)                 # fmax: NaN loses
    return thr, background


def trigger(cf: np.ndarray, thr: np.ndarray, *, release_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Start/stop indices (stop exclusive) of runs above ``release_ratio x thr`` that exceed ``thr``."""
    starts, stops = true_runs(cf > release_ratio * thr)
    if starts.size == 0:
        return starts, stops
    # compare only the runs' samples (a tenth or so of the signal) with the threshold, all runs laid end to end
    lengths = stops - starts
    offsets = np.cumsum(lengths) - lengths                  # where each run begins in the concatenation
    idx = np.repeat(starts - offsets, lengths)
    idx += np.arange(idx.size)
    keep = np.logical_or.reduceat(np.take(cf, idx) > np.take(thr, idx), offsets)
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
