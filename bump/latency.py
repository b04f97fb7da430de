"""The GPS latency calibrations a database keeps (in its meta table): the fleet's, every device's together, and
each device's own (:class:`bump.cluster.LatencyCalibration` histograms), and the latency each hit is corrected by.
How the samples are found is in :mod:`bump.cluster` (module docstring, "GPS latency"); :mod:`bump.pipeline` adds
them as trips come in.
"""

from __future__ import annotations

import numpy as np

from bump.cluster import DefectParams, LatencyCalibration, device_latency_s
from bump.store import Store

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
    (:func:`bump.cluster.device_latency_s`)."""
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
