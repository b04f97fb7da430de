"""GPS latency: how it is measured from hits, the histograms a database keeps of it (in its meta table: the
fleet's, every device's together and each device's own) and the correction of hit positions by it;
:mod:`bump.pipeline` adds samples as trips come in.

A fix reported at time t shows where the phone was at t - latency (0-1 s on phones), so every hit
lies latency x speed behind its defect, metres at city speeds. Features spanning the road are hit from both
directions, and there the two directions' hits are 2 x latency x speed apart along the road: pairs of such hits
feed a histogram (:class:`LatencyCalibration`, stored with the database) whose median corrects every hit position
(:func:`corrected_xy`) and every track, once ``latency_min_pairs`` pairs are in. Phones differ (0-1 s): each
device's hits on well-established defects (``device_latency_min_hits`` hits, confirmed) lie along their heading
ahead of or behind the defect's centre by the rest of its latency times its speed (:func:`device_latency_samples`);
a histogram per device, compared with that of every device's samples and weighted by its number of samples
(:func:`device_latency_s`), moves that device's hits from the fleet's correction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import orjson

from bump.cluster import DefectParams, pairs_within
from bump.store import Store

LATENCY_EDGES_S = np.round(np.arange(-1.0, 2.0 + 1e-9, 0.05), 2)


@dataclass(frozen=True)
class LatencyCalibration:
    """Histogram of GPS-latency estimates [s]: the fleet's from pairs of hits on one road-spanning feature from
    opposite directions, or one device's from its hits on established defects; its median is the latency to
    correct hit positions and tracks by. ``n_pairs`` counts the samples."""

    counts: tuple[int, ...] = (0,) * (LATENCY_EDGES_S.size - 1)

    @property
    def n_pairs(self) -> int:
        return int(sum(self.counts))

    def add(self, latency_s: np.ndarray) -> LatencyCalibration:
        v = np.asarray(latency_s, dtype=np.float64)
        h, _ = np.histogram(v[np.isfinite(v)], bins=LATENCY_EDGES_S)
        return LatencyCalibration(tuple(int(a + b) for a, b in zip(self.counts, h.tolist(), strict=True)))

    def estimate_s(self, params: DefectParams) -> float:
        """The median latency [s] (0 until ``latency_min_pairs`` pairs, or with calibration off)."""
        if not params.latency_calibration or self.n_pairs < params.latency_min_pairs:
            return 0.0
        return self.median_s()

    def median_s(self) -> float:
        """The median of the samples [s], interpolated within its bin (0 without samples)."""
        if self.n_pairs == 0:
            return 0.0
        cum = np.cumsum(self.counts)
        half = 0.5 * cum[-1]
        k = int(np.searchsorted(cum, half))
        below = cum[k - 1] if k else 0
        frac = (half - below) / max(self.counts[k], 1)
        return float(LATENCY_EDGES_S[k] + frac * (LATENCY_EDGES_S[k + 1] - LATENCY_EDGES_S[k]))

    def to_json(self) -> str:
        return json.dumps({"edges_s": [float(LATENCY_EDGES_S[0]), float(LATENCY_EDGES_S[-1])],
                           "counts": list(self.counts)})

    @classmethod
    def from_json(cls, text: str | None) -> LatencyCalibration:
        if not text:
            return cls()
        counts = orjson.loads(str(text)).get("counts", [])        # str(): orjson reads no str subclass
        return cls(tuple(map(int, counts))) if len(counts) == LATENCY_EDGES_S.size - 1 else cls()


def latency_samples(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], params: DefectParams, *,
                    same: bool = False) -> np.ndarray:
    """GPS-latency estimates [s] from pairs of road-spanning hits (a_i, b_j), each given as (x [m], y [m],
    heading [deg], speed [m/s], trip index): opposite directions, within ``latency_lateral_m`` across the road
    and ``max_join_radius_m`` along it, different trips. A fix reported at t shows where the phone was at
    t - latency, so each hit lies latency x speed behind the feature: along the first hit's heading the pair is
    ``-(latency) (v_a + v_b)`` apart. ``same``: a and b are one set (each pair once)."""
    ax, ay, ah, av, at = a
    bx, by, bh, bv, bt = b
    i, j, _ = pairs_within(np.column_stack([ax, ay]), np.column_stack([bx, by]), params.max_join_radius_m)
    if same:
        keep = i < j
        i, j = i[keep], j[keep]
    hi, hj = np.deg2rad(ah[i]), np.deg2rad(bh[j])
    ux, uy = np.sin(hi), np.cos(hi)
    dx, dy = ax[i] - bx[j], ay[i] - by[j]
    along = dx * ux + dy * uy
    across = np.abs(dx * uy - dy * ux)
    v = av[i] + bv[j]
    ok = (np.cos(hi - hj) < -0.7) & (across <= params.latency_lateral_m) & (at[i] != bt[j]) & (v > 4.0)
    return -along[ok] / v[ok]


def device_latency_samples(x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray, speed_mps: np.ndarray,
                           centre_x_m: np.ndarray, centre_y_m: np.ndarray, used_latency_s: float) -> np.ndarray:
    """Latency estimates [s] of one device from its hits (positions corrected by ``used_latency_s``) and the
    centres of the defects they joined: a hit still ``r`` metres ahead of its defect along its heading was
    corrected by ``r / speed`` too much. Hits slower than 4 m/s or without a heading give none."""
    h = np.deg2rad(np.asarray(heading_deg, dtype=np.float64))
    v = np.asarray(speed_mps, dtype=np.float64)
    along = (np.asarray(x_m) - centre_x_m) * np.sin(h) + (np.asarray(y_m) - centre_y_m) * np.cos(h)
    ok = np.isfinite(along) & np.isfinite(v) & (v > 4.0)
    return used_latency_s - along[ok] / v[ok]


def device_latency_s(device: LatencyCalibration, every_device: LatencyCalibration, fleet_s: float,
                     params: DefectParams) -> float:
    """A device's GPS latency [s]: the fleet's value plus how much later its samples lie than every device's
    (median against median), weighted by n / (n + prior). Only the difference counts: the defects' centres move
    with the corrections, so the samples tell devices apart but not where the road is; the fleet's value from
    features hit both ways (absolute) keeps the level."""
    n = device.n_pairs
    if not params.device_latency or n == 0 or every_device.n_pairs == 0:
        return fleet_s
    w = n / (n + params.device_latency_prior)
    return float(fleet_s + w * (device.median_s() - every_device.median_s()))


def corrected_xy(x_m: np.ndarray, y_m: np.ndarray, heading_deg: np.ndarray, speed_mps: np.ndarray,
                 latency_s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Hit positions moved ``latency_s`` (one for all, or one per hit) x speed forward along their heading
    (unchanged where unknown)."""
    if np.all(np.asarray(latency_s) == 0.0):
        return np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64)
    h = np.deg2rad(np.asarray(heading_deg, dtype=np.float64))
    step = np.nan_to_num(latency_s * np.asarray(speed_mps, dtype=np.float64) * np.ones_like(h), nan=0.0)
    step = np.where(np.isfinite(h), step, 0.0)
    h = np.nan_to_num(h)
    return x_m + step * np.sin(h), y_m + step * np.cos(h)


# -------------------------------------------------------------------------------------- stored calibrations

FLEET_KEY = "gps_latency"                  # meta key of the fleet's latency histogram
EVERY_DEVICE_KEY = "gps_latency:every_device"
# meta key of the number of devices with latency samples of their own (it only grows). A summary whose hits were
# all corrected by the fleet's latency stores that latency and this number (defects.latency_s, latency_devices):
# while both stand, its hits are corrected as they were (a device without samples of its own takes the fleet's)
OWN_DEVICES_KEY = "gps_latency:devices"


def device_key(device: str) -> str:
    return f"gps_latency:device:{device}"


def fleet_latency(store: Store, dp: DefectParams) -> tuple[float, int]:
    """(the fleet's GPS latency [s], the number of devices with samples of their own)."""
    stored = store.get_metas([FLEET_KEY, OWN_DEVICES_KEY])
    return (LatencyCalibration.from_json(stored.get(FLEET_KEY)).estimate_s(dp),
            int(stored.get(OWN_DEVICES_KEY) or 0))


def hit_latencies_s(store: Store, device_ids: np.ndarray, dp: DefectParams,
                    own_latency_s: np.ndarray | None = None) -> np.ndarray:
    """The GPS latency [s] each hit's position is corrected by: 0 for a hit whose trip told its own (its position
    carries it: ``own_latency_s`` finite), else its device's, blended with the fleet's
    (:func:`device_latency_s`)."""
    return latencies(store, device_ids, dp, own_latency_s)[0]


def latencies(store: Store, device_ids: np.ndarray, dp: DefectParams, own_latency_s: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, tuple[float, int]]:
    """(:func:`hit_latencies_s`, per hit whether its device's samples of its own correct it,
    :func:`fleet_latency`), from one read of the stored calibrations."""
    latency, own, fleet = _device_latencies(store, device_ids, dp)
    if own_latency_s is not None:
        told = np.isfinite(np.asarray(own_latency_s, dtype=np.float64))
        latency, own = np.where(told, 0.0, latency), own & ~told
    return latency, own, fleet


def _device_latencies(store: Store, device_ids: np.ndarray, dp: DefectParams
                      ) -> tuple[np.ndarray, np.ndarray, tuple[float, int]]:
    """:func:`latencies` by device alone."""
    devices, inverse = np.unique(np.asarray(device_ids).astype(str), return_inverse=True)
    keys = [device_key(d) for d in devices.tolist()]           # loop over devices
    stored = store.get_metas([FLEET_KEY, OWN_DEVICES_KEY, *([EVERY_DEVICE_KEY] if keys else []),
                              *keys])
    fleet = LatencyCalibration.from_json(stored.get(FLEET_KEY)).estimate_s(dp)
    fleet_and_devices = (fleet, int(stored.get(OWN_DEVICES_KEY) or 0))
    if not devices.size:
        return np.empty(0), np.zeros(0, dtype=bool), fleet_and_devices
    every = LatencyCalibration.from_json(stored.get(EVERY_DEVICE_KEY))
    texts = [stored.get(k) for k in keys]
    by_text: dict[str | None, tuple[float, bool]] = {}      # devices without samples (most) share one value
    for text in texts:
        if text not in by_text:
            own = LatencyCalibration.from_json(text)
            by_text[text] = (device_latency_s(own, every, fleet, dp), own.n_pairs > 0)
    latency, own_samples = zip(*(by_text[t] for t in texts), strict=True)
    inverse = inverse.ravel()
    return np.array(latency)[inverse], np.array(own_samples, dtype=bool)[inverse], fleet_and_devices


def add_fleet_samples(store: Store, samples: np.ndarray, *, reset: bool = False) -> None:
    """Add latency samples [s] of opposite-direction hit pairs to the fleet's histogram (to an empty one with
    ``reset``)."""
    before = LatencyCalibration() if reset else LatencyCalibration.from_json(store.get_meta(FLEET_KEY))
    store.set_meta(FLEET_KEY, before.add(samples).to_json())


def reset_fleet(store: Store) -> None:
    """Forget the fleet's latency (a re-cluster estimates it again from all hits)."""
    store.set_meta(FLEET_KEY, LatencyCalibration().to_json())


def add_device_samples(store: Store, device: str, samples: np.ndarray) -> None:
    """Add a device's latency samples [s] to its own histogram and to every device's; count it among the devices
    with a latency of their own once it has one."""
    for key in (device_key(device), EVERY_DEVICE_KEY):
        before = LatencyCalibration.from_json(store.get_meta(key))
        after = before.add(samples)
        store.set_meta(key, after.to_json())
        if key != EVERY_DEVICE_KEY and before.n_pairs == 0 < after.n_pairs:     # its own latency now
            store.set_meta(OWN_DEVICES_KEY, str(int(store.get_meta(OWN_DEVICES_KEY) or 0) + 1))
