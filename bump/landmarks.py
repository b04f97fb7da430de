"""A trip's GPS error, read at the established defects it hit (landmarks), and taken off its other positions.

A phone's GPS error is not white: it is correlated over tens of seconds (FIELD_NOTES: 7-13 m in cities), as a
first-order Gauss-Markov process with that correlation time. So where a trip hit a defect that
many other trips have already placed (a landmark: confirmed, ``landmark_min_hits`` hits), the landmark's position
minus the trip's hit there is the trip's error at that moment, and seconds later it is still most of the error.
Every other hit, and the trip's track, moves by the landmarks' offsets weighted by exp(-|dt| / ``gps_error_tau_s``),
shrunk towards no move by ``landmark_prior_weight`` (one landmark at dt = 0 moves a hit by 1 / (1 + that) of its
offset: the landmark and the hit there are both a little off). A hit never moves by its own landmark's offset, so a
landmark's hits stay independent readings of its position. Errors of different trips are independent, so this
only removes error: in the simulated hard city (8 m per axis) it cut hits' median error from 9.3 to 7.1 m.

Pure functions over arrays; positions in a local metric projection [m], times in seconds.
"""

from __future__ import annotations

import numpy as np


def offsets_at(t_s: np.ndarray, obs_t_s: np.ndarray, obs_dx_m: np.ndarray, obs_dy_m: np.ndarray, *, tau_s: float,
               prior_weight: float, key: np.ndarray | None = None, obs_key: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) [m] to add to positions taken at times ``t_s`` [s]: the observed offsets ``obs_dx_m``,
    ``obs_dy_m`` (landmark minus hit, at ``obs_t_s``) weighted by exp(-|dt| / ``tau_s``) over the sum of the
    weights plus ``prior_weight``. With ``key`` and ``obs_key`` (one defect id per position and per observation),
    observations with a position's own key are left out. (0, 0) where nothing was observed."""
    t = np.asarray(t_s, dtype=np.float64)
    if obs_t_s.size == 0 or t.size == 0:
        return np.zeros(t.size), np.zeros(t.size)
    w = np.exp(-np.abs(t[:, None] - np.asarray(obs_t_s, dtype=np.float64)[None, :]) / tau_s)     # (n, m)
    if key is not None and obs_key is not None:
        w = np.where(np.asarray(key)[:, None] == np.asarray(obs_key)[None, :], 0.0, w)
    den = w.sum(axis=1) + prior_weight
    return w @ np.asarray(obs_dx_m, dtype=np.float64) / den, w @ np.asarray(obs_dy_m, dtype=np.float64) / den


def trip_moves(t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, landmark: np.ndarray, landmark_x_m: np.ndarray,
               landmark_y_m: np.ndarray, is_landmark: np.ndarray, track_t_s: np.ndarray, *, tau_s: float,
               prior_weight: float) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
    """((dx, dy) per hit, (dx, dy) per track point) [m] of one trip: its GPS error read where its hits (times
    ``t_s``, positions ``x_m``, ``y_m``) joined a defect ``landmark`` (an index into ``landmark_x_m``,
    ``landmark_y_m``, ``is_landmark``; -1: none) that is a landmark, a hit's own left out (:func:`offsets_at`);
    None when no hit joined a landmark."""
    lm = np.asarray(landmark)
    if len(is_landmark) == 0:
        return None
    on = (lm >= 0) & np.asarray(is_landmark, dtype=bool)[np.maximum(lm, 0)]
    if not on.any():
        return None
    k = lm[on]
    obs = (np.asarray(t_s)[on], np.asarray(landmark_x_m)[k] - np.asarray(x_m)[on],
           np.asarray(landmark_y_m)[k] - np.asarray(y_m)[on])
    kw = {"tau_s": tau_s, "prior_weight": prior_weight}
    return offsets_at(t_s, *obs, key=lm, obs_key=k, **kw), offsets_at(track_t_s, *obs, **kw)
