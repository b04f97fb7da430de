"""The privacy trim: no read returns a GPS position near the start or end of the trip it came from (see
:mod:`bump.service`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from bump.store import Store
from bump.traversals import Track
from detect.geo import haversine_m


class PrivacyZones:
    """Circles of ``trim_m`` around the first and last GPS fix of every trip, and the tests against them.

    A defect whose every hit lies in its trip's zone is withheld while fewer than ``min_devices`` distinct
    devices hit it: its position would reveal where one or two drivers start or end (a home). Hit by that many, it
    is a spot on a public road that several drivers pass at their trips' ends (a pothole outside a car park or at a
    school gate), and it is shown, its hits' positions still trimmed.

    A trip's end points come from its stored track (the fixes, unmodified in position) and are cached: a trip is
    immutable once stored. Thread-safe (one instance serves every request of a process)."""

    def __init__(self, trim_m: float = 200.0, *, min_devices: int = 3, max_cached: int = 200_000) -> None:
        self.trim_m = float(trim_m)
        self.min_devices = int(min_devices)
        self._ends: dict[str, tuple[float, float, float, float]] = {}
        self._lock = threading.Lock()
        self._max = max_cached

    def ends(self, store: Store, trip_ids: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
        """trip id -> (start lat, start lon, end lat, end lon) [deg]; NaN for a trip without GPS."""
        want = {str(t) for t in trip_ids}
        with self._lock:
            out = {t: self._ends[t] for t in want if t in self._ends}
        missing = sorted(want - set(out))
        if missing:
            found = {}
            for tid, (_dev, blob) in store.trip_tracks(missing).items():
                tr = Track.from_bytes(blob)
                ok = np.flatnonzero(np.isfinite(tr.lat_deg) & np.isfinite(tr.lon_deg))
                found[tid] = ((float(tr.lat_deg[ok[0]]), float(tr.lon_deg[ok[0]]), float(tr.lat_deg[ok[-1]]),
                               float(tr.lon_deg[ok[-1]])) if ok.size else (np.nan,) * 4)
            with self._lock:
                if len(self._ends) + len(found) > self._max:
                    self._ends.clear()
                self._ends.update(found)
            out.update(found)
        return out

    def private(self, store: Store, trip_ids: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
                margin_m: float = 0.0) -> np.ndarray:
        """True where a position of a trip lies within ``trim_m + margin_m`` of that trip's start or end."""
        trip_ids = np.asarray(trip_ids).astype(str)
        n = trip_ids.size
        if n == 0 or self.trim_m <= 0:
            return np.zeros(n, dtype=bool)
        uniq, inv = np.unique(trip_ids, return_inverse=True)
        ends = self.ends(store, uniq.tolist())
        e = np.array([ends.get(t, (np.nan,) * 4) for t in uniq.tolist()], dtype=np.float64)[inv.ravel()]
        lat, lon = np.asarray(lat_deg, dtype=np.float64), np.asarray(lon_deg, dtype=np.float64)
        d0 = haversine_m(lat, lon, e[:, 0], e[:, 1])
        d1 = haversine_m(lat, lon, e[:, 2], e[:, 3])
        limit = self.trim_m + margin_m
        return (np.nan_to_num(d0, nan=np.inf) <= limit) | (np.nan_to_num(d1, nan=np.inf) <= limit)

    def hidden_defects(self, store: Store, defect_ids: Sequence[int]) -> set[int]:
        """Defects whose every hit lies in its trip's privacy zone and that fewer than ``min_devices`` distinct
        devices hit (their position would reveal where those drivers start or end)."""
        if not len(defect_ids) or self.trim_m <= 0:
            return set()
        hits = store.hits_of_defects([int(d) for d in defect_ids], ("hit_id", "defect_id", "trip_id", "device_id",
                                                                      "lat_deg", "lon_deg"))
        if len(hits) == 0:
            return set()
        priv = self.private(store, hits["trip_id"], hits["lat_deg"], hits["lon_deg"])
        placed = set(np.unique(hits["defect_id"][~priv]).tolist())
        pairs = np.unique(np.stack([hits["defect_id"].astype(str), _one_unknown_device(hits["device_id"])]), axis=1)
        ids, n_devices = np.unique(pairs[0].astype(np.int64), return_counts=True)
        shared = set(ids[n_devices >= self.min_devices].tolist())
        return set(np.unique(hits["defect_id"]).tolist()) - placed - shared


def _one_unknown_device(device_ids: np.ndarray) -> np.ndarray:
    """Device ids with the per-recording ids that the Sensor Logger and SensorLog readers once gave recordings
    without a device id (``sensorlogger-anon-<hash>``, still in older databases) read as the one unknown device
    they give now (``sensorlogger-unknown``): one phone's trips are not several devices."""
    ids = np.asarray(device_ids).astype(str)
    head, sep, _ = np.char.partition(ids, "-anon-").T
    return np.where(sep != "", np.char.add(head, "-unknown"), ids)
