"""Defects on city geometry the simulator lacks: intersections, two-way streets, divided roads, an overpass,
late-GPS phones, urban-canyon GPS, a failing stretch, and the order in which the same trips are ingested.

Each scenario is one or more sites (1.5 km apart, so they never share a defect): roads drawn as polylines in
local metres, trips driven along them (400 m before and after the scene, so no privacy trim applies), written as
``bump.trace/1`` files and ingested in time order with ``bump.pipeline.ingest_trace`` into a fresh
``bump.store.Store``. The trips' physics is plain and knows nothing of the detector's rules: a car at 10 m/s whose
speed swings +-25 % over 16 s; a pothole within ``width_m`` of the lane is hit on a pass with probability
``p_hit`` (lateral wander), and a hit is a one-wheel wheel-hop (first motion down, a lateral kick in step) on the
front and then the rear axle when the car is closest to it; GPS at 1 Hz is the true position ``latency`` seconds
ago plus Gauss-Markov noise (sigma, 30 s correlation) and an optional constant bias (urban canyon).

Printed (figures, nothing asserted), one line per scenario and seed:
- truth: potholes, with true hits / passes, and the detector's impacts (a hit should give one);
- defects found (any status and kind) and how many the crews' default list shows (``bump.views.list_defects``
  defaults: candidate, confirmed, likely_repaired; pothole, cover, unknown);
- kinds and statuses of the defects found;
- per site: position error of each pothole's own defects (a defect belongs to the nearest pothole within 10 m,
  preferring one whose traffic runs in the defect's direction), the main defect's hits / traversals, and the
  symptoms QA found on these scenes (README.md, "Known limits"): "listed as joint" (a kind the crews' list
  leaves out), "split into N", "merged with X" (one defect for two potholes), "stands for N potholes over X m",
  "likely_repaired while still hit", "not in crews' list", "missed", and phantoms (defects more than 10 m from
  every pothole, with their offset along travel);
- unless ``--no-reprocess``: whether ``bump.pipeline.reprocess`` (full re-cluster) changes the list;
- ``order``: the same trips ingested in time order, reversed and shuffled into fresh databases, each then
  reprocessed twice: whether the list differs by ingest order and whether reprocess converges.
At the end, per scenario, how often each symptom appeared over the seeds.

Usage:
  python bench/geometry_bench.py                                  # every scenario, seeds 1 2 3
  python bench/geometry_bench.py --scenario intersection order --seeds 1 2 3
  python bench/geometry_bench.py --scenario late_gps --latency-s 0.8 --seeds 4
  python bench/geometry_bench.py --scenario late_gps --late-rounds 10     # long enough for phones to learn
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter

import ingest
from bump import pipeline, views
from bump.cluster import LISTED_KINDS
from bump.runtime import set_up_process
from bump.store import Store
from detect.geo import LocalProjection
from ingest.formats.bump_json import dumps_document

ORIGIN_DEG = (42.36, -71.06)
PROJ = LocalProjection(*ORIGIN_DEG)
T0_S = 1_777_881_600.0                 # 2026-05-04 00:00 UTC
G_MPS2 = 9.80665
APPROACH_M = 400.0                     # road before and after each scene
LANE_M = 1.75                          # lane centre from the road's centre line
SITE_SPACING_M = 1500.0                # sites of one scenario, east of each other
MATCH_RADIUS_M = 10.0                  # a defect belongs to a pothole this close; farther from all: a phantom
WHEELBASE_M = 2.7
SCENARIOS = ("intersection", "twoway", "divided", "overpass", "late_gps", "canyon", "stretch", "order")


# ------------------------------------------------------------------------------------------------- trip physics


@dataclass(frozen=True)
class Pothole:
    """A pothole at (x_m, y_m) in local metres; ``site`` groups the potholes of one scene."""

    name: str
    site: str
    x_m: float
    y_m: float
    p_hit: float = 1.0             # probability that a pass within width_m hits it (lateral wander)
    width_m: float = 1.0           # a lane whose centre passes this close passes over it
    amp_mps2: float = 8.0          # wheel-hop amplitude


@dataclass(frozen=True)
class Trip:
    """One drive along a polyline (local metres), with its phone's GPS behaviour."""

    trip_id: str
    device_id: str
    path_m: tuple[tuple[float, float], ...]
    t0_s: float
    seed: int
    potholes: tuple[Pothole, ...]
    speed_mps: float = 10.0
    gps_sigma_m: float = 3.0
    gps_tau_s: float = 30.0
    gps_bias_m: tuple[float, float] = (0.0, 0.0)
    gps_latency_s: float = 0.0
    accuracy_m: float | None = None          # reported accuracy; default max(3 m, gps_sigma_m)
    fs_hz: float = 100.0


@dataclass(frozen=True)
class Pass:
    """A trip's pass over a pothole: whether it hit it, and the direction of travel [deg]."""

    pothole: str
    trip_id: str
    hit: bool
    heading_deg: float


def _polyline(path_m: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (n, 2) [m] and cumulative distance along them [m]."""
    p = np.asarray(path_m, dtype=float)
    return p, np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])


def _along(p: np.ndarray, s_m: np.ndarray, q_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x [m], y [m] and heading [deg, clockwise from north] at distances ``q_m`` along the polyline."""
    k = np.clip(np.searchsorted(s_m, q_m, side="right") - 1, 0, len(s_m) - 2)
    f = np.clip((q_m - s_m[k]) / np.maximum(s_m[k + 1] - s_m[k], 1e-9), 0.0, 1.0)
    d = p[k + 1] - p[k]
    return p[k, 0] + f * d[:, 0], p[k, 1] + f * d[:, 1], np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0


def _wheel_hop(t_s: np.ndarray, t_hit_s: float, amp_mps2: float) -> np.ndarray:
    """Vertical acceleration [m/s2] of a wheel dropping into a hole at ``t_hit_s``: an 11 Hz ring-down (70 ms
    decay), first motion down."""
    tau = np.clip(t_s - t_hit_s, 0.0, None)
    return np.where(t_s >= t_hit_s, -amp_mps2 * np.exp(-tau / 0.07) * np.sin(2 * np.pi * 11.0 * tau), 0.0)


def _gauss_markov(rng: np.random.Generator, n: int, sigma_m: float, tau_s: float, dt_s: float) -> np.ndarray:
    """First-order Gauss-Markov error [m] at ``n`` steps of ``dt_s``: stationary, std ``sigma_m``."""
    a = np.exp(-dt_s / tau_s)
    u = rng.normal(0.0, sigma_m, n) * np.sqrt(1.0 - a * a)
    u[:1] /= np.sqrt(1.0 - a * a)                       # the first value from the stationary distribution
    return lfilter([1.0], [1.0, -a], u)


def trip_document(trip: Trip) -> tuple[dict[str, Any], list[Pass]]:
    """The trip's ``bump.trace/1`` document (accelerometer in the car's frame: x lateral, y forward, z up, gravity
    included; 1 Hz GPS) and its true passes over the potholes."""
    rng = np.random.default_rng(trip.seed)
    p, s_m = _polyline(trip.path_m)
    fs = trip.fs_hz
    t_long = np.arange(int(3 * s_m[-1] / trip.speed_mps * fs)) / fs
    v_long = trip.speed_mps * (1.0 + 0.25 * np.sin(2 * np.pi * t_long / 16.0))
    q_long = np.concatenate([[0.0], np.cumsum(v_long[:-1]) / fs])
    n = int(np.searchsorted(q_long, s_m[-1]))
    t_s, q_m, v_mps = t_long[:n], q_long[:n], v_long[:n]
    x_m, y_m, heading_deg = _along(p, s_m, q_m)
    up = rng.normal(0.0, 0.15, n)
    lateral = rng.normal(0.0, 0.1, n)
    forward = rng.normal(0.0, 0.1, n) + np.gradient(v_mps, t_s)
    passes = []
    for ph in trip.potholes:                                   # loop over potholes
        d_m = np.hypot(x_m - ph.x_m, y_m - ph.y_m)
        i = int(np.argmin(d_m))
        if d_m[i] > ph.width_m or i in (0, n - 1):
            continue
        hit = bool(rng.random() < ph.p_hit)
        passes.append(Pass(ph.name, trip.trip_id, hit, float(heading_deg[i])))
        if hit:
            for t_hit in (t_s[i], t_s[i] + WHEELBASE_M / v_mps[i]):     # front, then rear axle
                pulse = _wheel_hop(t_s, t_hit, ph.amp_mps2)
                up += pulse
                lateral += 0.8 * pulse                          # one wheel: the body rolls
    t_gps = np.arange(0.0, t_s[-1], 1.0)
    q_gps = np.interp(t_gps - trip.gps_latency_s, t_s, q_m)
    gx, gy, g_heading = _along(p, s_m, q_gps)
    gx = gx + _gauss_markov(rng, t_gps.size, trip.gps_sigma_m, trip.gps_tau_s, 1.0) + trip.gps_bias_m[0]
    gy = gy + _gauss_markov(rng, t_gps.size, trip.gps_sigma_m, trip.gps_tau_s, 1.0) + trip.gps_bias_m[1]
    lat, lon = PROJ.to_latlon(gx, gy)
    accuracy_m = trip.accuracy_m if trip.accuracy_m is not None else max(3.0, trip.gps_sigma_m)
    doc = {"format": "bump.trace/1", "trip_id": trip.trip_id, "device_id": trip.device_id,
           "accel": {"t": trip.t0_s + t_s, "x": lateral, "y": forward, "z": G_MPS2 + up, "unit": "m/s2"},
           "gps": {"t": trip.t0_s + t_gps, "lat": np.asarray(lat), "lon": np.asarray(lon),
                   "speed": np.interp(t_gps - trip.gps_latency_s, t_s, v_mps), "heading": g_heading,
                   "accuracy": np.full(t_gps.size, accuracy_m)}}
    return doc, passes


def write_trips(trips: list[Trip], folder: Path) -> tuple[dict[str, Path], list[Pass]]:
    """Write each trip as gzip ``bump.trace/1``; return their paths by trip id and every true pass."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, passes = {}, []
    for trip in trips:                                         # loop over trips
        doc, trip_passes = trip_document(trip)
        paths[trip.trip_id] = folder / f"{trip.trip_id}.json.gz"
        paths[trip.trip_id].write_bytes(dumps_document(doc, compress=True))
        passes.extend(trip_passes)
    return paths, passes


# ---------------------------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    trips: list[Trip]
    potholes: list[Pothole]
    sites: dict[str, str]                      # site -> what it is


def _trip_seed(seed: int, scenario: str, k: int) -> int:
    return zlib.crc32(f"{scenario}/{seed}/{k}".encode())


def _street(x0_m: float, y0_m: float, heading_deg: float, offset_m: float = 0.0
            ) -> tuple[tuple[float, float], tuple[float, float]]:
    """A straight lane through (x0_m, y0_m) + ``offset_m`` to the right of travel, APPROACH_M each side."""
    h = np.radians(heading_deg)
    ux, uy = np.sin(h), np.cos(h)
    cx, cy = x0_m + offset_m * uy, y0_m - offset_m * ux
    return ((float(cx - APPROACH_M * ux), float(cy - APPROACH_M * uy)),
            (float(cx + APPROACH_M * ux), float(cy + APPROACH_M * uy)))


class _Builder:
    """Collects a scenario's trips and potholes; sites are placed SITE_SPACING_M apart."""

    def __init__(self, name: str, seed: int, opts: argparse.Namespace) -> None:
        self.name, self.seed, self.opts = name, seed, opts
        self.trips: list[Trip] = []
        self.potholes: list[Pothole] = []
        self.sites: dict[str, str] = {}
        self.rng = np.random.default_rng(_trip_seed(seed, name, -1))

    def site(self, name: str, what: str) -> float:
        """Register a site; return its x origin [m]."""
        self.sites[name] = what
        return SITE_SPACING_M * (len(self.sites) - 1)

    def pothole(self, name: str, site: str, x_m: float, y_m: float, **kw: float) -> Pothole:
        ph = Pothole(name, site, x_m, y_m, **kw)
        self.potholes.append(ph)
        return ph

    def drive(self, site: str, route: str, device: str, path_m: tuple[tuple[float, float], ...],
              potholes: list[Pothole], t0_s: float | None = None, **kw: Any) -> None:
        k = len(self.trips)
        self.trips.append(Trip(f"{site}-{route}-{k:03d}", f"{site}-{device}", path_m,
                               T0_S + 600.0 * k if t0_s is None else t0_s, _trip_seed(self.seed, self.name, k),
                               tuple(potholes), **kw))

    def build(self) -> Scenario:
        return Scenario(self.name, self.trips, self.potholes, self.sites)


FOUR_WAYS = {"NB": 0.0, "EB": 90.0, "SB": 180.0, "WB": 270.0}


def _intersection(b: _Builder, site: str, x0_m: float, ph: list[Pothole], devices: int = 4, reps: int = 2,
                  times: Callable[[], float] | None = None) -> None:
    """Two two-way streets crossing at (x0_m, 0), each direction in its lane, ``devices`` x ``reps`` trips each."""
    for route, h in FOUR_WAYS.items():
        for dev in range(devices):
            for _ in range(reps):
                b.drive(site, route, f"{route}{dev}", _street(x0_m, 0.0, h, LANE_M), ph,
                        t0_s=None if times is None else times())


def scenario_intersection(b: _Builder) -> Scenario:
    for site, p_hit in (("box85", 0.85), ("box60", 0.6)):
        x0 = b.site(site, f"pothole in the middle of an intersection, all 4 directions, p_hit {p_hit}")
        _intersection(b, site, x0, [b.pothole(site, site, x0, 0.0, p_hit=p_hit, width_m=2.6)])
    x0 = b.site("ne", "pothole in the NE quadrant of an intersection (NB and EB traffic), p_hit 0.6")
    _intersection(b, "ne", x0, [b.pothole("ne", "ne", x0 + LANE_M, -LANE_M, p_hit=0.6)])
    return b.build()


def scenario_twoway(b: _Builder) -> Scenario:
    for site, what, p_hit in (("lanes", "one pothole in each lane at the same spot", 0.9),
                              ("centre90", "pothole on the centre line, hit from both directions", 0.9),
                              ("centre60", "pothole on the centre line, hit from both directions", 0.6)):
        x0 = b.site(site, f"two-way street, {what}, p_hit {p_hit}")
        if site == "lanes":
            ph = [b.pothole("NBlane", site, x0 + LANE_M, 0.0, p_hit=p_hit),
                  b.pothole("SBlane", site, x0 - LANE_M, 0.0, p_hit=p_hit)]
        else:
            ph = [b.pothole(site, site, x0, 0.0, p_hit=p_hit, width_m=2.0)]
        for route, h in (("NB", 0.0), ("SB", 180.0)):
            for dev in range(4):
                for _ in range(2):
                    b.drive(site, route, f"{route}{dev}", _street(x0, 0.0, h, LANE_M), ph)
    return b.build()


def scenario_divided(b: _Builder) -> Scenario:
    for sep_m, sigma_m, p_hit in ((15.0, 6.0, 1.0), (12.0, 6.0, 0.7), (20.0, 6.0, 1.0)):
        site = f"sep{sep_m:.0f}"
        x0 = b.site(site, f"divided road, carriageways {sep_m:.0f} m apart, GPS sigma {sigma_m:.0f} m, "
                          f"p_hit {p_hit}")
        ph_nb = b.pothole(f"{site}NB", site, x0 + sep_m / 2, 0.0, p_hit=p_hit)
        ph_sb = b.pothole(f"{site}SB", site, x0 - sep_m / 2, 0.0, p_hit=p_hit)
        for route, h, ph in (("NB", 0.0, ph_nb), ("SB", 180.0, ph_sb)):
            for dev in range(4):
                for _ in range(2):
                    b.drive(site, route, f"{route}{dev}", _street(x0, 0.0, h, sep_m / 2), [ph], gps_sigma_m=sigma_m)
    return b.build()


def scenario_overpass(b: _Builder) -> Scenario:
    for crossing_deg in (90.0, 70.0):
        site = f"cross{crossing_deg:.0f}"
        x0 = b.site(site, f"street under an overpass crossing at {crossing_deg:.0f} deg, a pothole on each at "
                          "the same lat/lon")
        street = b.pothole(f"{site}street", site, x0, 0.0)
        deck = b.pothole(f"{site}deck", site, x0, 0.0)
        for route, h, ph, v in (("street", 0.0, street, 10.0), ("deck", crossing_deg, deck, 20.0)):
            for dev in range(4):
                for _ in range(2):
                    b.drive(site, route, f"{route}{dev}", _street(x0, 0.0, h), [ph], speed_mps=v)
    return b.build()


def _three_potholes(b: _Builder, site: str, x0_m: float) -> list[Pothole]:
    return [b.pothole(f"P{y:.0f}", site, x0_m + LANE_M, y, p_hit=0.7) for y in (0.0, 40.0, 80.0)]


def scenario_late_gps(b: _Builder) -> Scenario:
    lat_s, rounds = b.opts.latency_s, b.opts.late_rounds
    x0 = b.site("late", "northbound street, 3 potholes 40 m apart, p_hit 0.7; " + (
        f"8 devices x 3 trips, devices 5-7 (one phone model, trips last in time) report GPS {lat_s} s late"
        if rounds is None else f"devices 0-4 drive 2 trips, then {rounds} rounds of all 8 devices in turn; devices "
        f"5-7 (one phone model) report GPS {lat_s} s late"))
    street = _street(x0, 0.0, 0.0, LANE_M)
    ph = _three_potholes(b, "late", x0)
    if rounds is None:
        order = [dev for dev in range(8) for _ in range(3)]
    else:                            # the phones that had the street to themselves keep driving it
        order = [dev for dev in range(5) for _ in range(2)] + [dev for _ in range(rounds) for dev in range(8)]
    for dev in order:
        b.drive("late", "NB", f"dev{dev}", street, ph, gps_latency_s=lat_s if dev >= 5 else 0.0)
    return b.build()


def _canyon_street(b: _Builder, x0: float, devices: int, times: Callable[[], float] | None = None) -> None:
    """The canyon street's trips: 3 potholes 40 m apart, ``devices`` x 3 trips, the second of each device's with a
    10-30 m GPS bias while reporting 5 m accuracy; ``times`` draws each trip's start (default: in turn)."""
    ph = _three_potholes(b, "canyon", x0)
    for dev in range(devices):
        for rep in range(3):
            kw: dict[str, Any] = {}
            if rep == 1:
                bias_m, a = b.rng.uniform(10.0, 30.0), b.rng.uniform(0.0, 2 * np.pi)
                kw = {"gps_bias_m": (float(bias_m * np.cos(a)), float(bias_m * np.sin(a))), "accuracy_m": 5.0}
            if times is not None:
                kw["t0_s"] = times()
            b.drive("canyon", "NB", f"dev{dev}", _street(x0, 0.0, 0.0, LANE_M), ph, **kw)


def scenario_canyon(b: _Builder) -> Scenario:
    x0 = b.site("canyon", "northbound street, 3 potholes 40 m apart, p_hit 0.7; 8 devices x 3 trips, every third "
                          "trip with a 10-30 m GPS bias while reporting 5 m accuracy")
    _canyon_street(b, x0, 8)
    return b.build()


def scenario_stretch(b: _Builder) -> Scenario:
    for site, spacing_m, p_hit, sigma_m in (("every5m", 5.0, 0.5, 8.0), ("every2m", 2.0, 0.7, 3.0)):
        x0 = b.site(site, f"failing stretch: potholes every {spacing_m:.0f} m over 100 m, p_hit {p_hit}, "
                          f"GPS sigma {sigma_m:.0f} m; 6 devices x 2 trips")
        ph = [b.pothole(f"{site}@{y:.0f}", site, x0 + LANE_M, float(y), p_hit=p_hit)
              for y in np.arange(0.0, 100.0 + 1e-9, spacing_m)]
        for dev in range(6):
            for _ in range(2):
                b.drive(site, "NB", f"dev{dev}", _street(x0, 0.0, 0.0, LANE_M), ph, gps_sigma_m=sigma_m)
    return b.build()


def scenario_order(b: _Builder) -> Scenario:
    """QA's order reproducer: an intersection pothole (p_hit 0.6, 4 directions x 3 devices x 2 trips) and the
    urban-canyon street, trips at random times over 3 days."""
    def when() -> float:
        return T0_S + float(b.rng.uniform(0.0, 3 * 86400.0))

    x0 = b.site("box", "pothole in the middle of an intersection, all 4 directions, p_hit 0.6, times over 3 days")
    _intersection(b, "box", x0, [b.pothole("box", "box", x0, 0.0, p_hit=0.6, width_m=2.6)], devices=3, times=when)
    x0 = b.site("canyon", "canyon street (3 potholes, every third trip biased 10-30 m), 6 devices x 3 trips")
    _canyon_street(b, x0, 6, times=when)
    return b.build()


BUILDERS: dict[str, Callable[[_Builder], Scenario]] = {
    "intersection": scenario_intersection, "twoway": scenario_twoway, "divided": scenario_divided,
    "overpass": scenario_overpass, "late_gps": scenario_late_gps, "canyon": scenario_canyon,
    "stretch": scenario_stretch, "order": scenario_order}


# --------------------------------------------------------------------------------------------- ingest and read


def ingest_paths(db: Path, paths: list[Path], now_s: float) -> int:
    """Ingest the files in the order given into a fresh database at ``db``, the clock fixed at ``now_s``;
    return the number of impacts the detector found."""
    for p in db.parent.glob(db.name + "*"):
        p.unlink()
    n_impacts = 0
    with Store.open(db) as store:
        for path in paths:                                     # loop over trips
            n_impacts += pipeline.ingest_trace(store, ingest.read(path), clock=lambda: now_s).n_impacts
    return n_impacts


def reprocess(db: Path, now_s: float) -> None:
    with Store.open(db) as store:
        pipeline.reprocess(store, clock=lambda: now_s)


def read_defects(db: Path) -> tuple[list[dict[str, Any]], set[int]]:
    """Every defect (any status and kind), with local x_m, y_m; and the ids in the crews' default list."""
    with Store.open(db, create=False) as store:
        every = views.list_defects(store, status="all", kind="all", limit=100_000).defects
        crews = {d["id"] for d in views.list_defects(store, limit=100_000).defects}
    for d in every:
        x, y = PROJ.to_xy(np.array([d["lat"]]), np.array([d["lon"]]))
        d["x_m"], d["y_m"] = float(np.ravel(x)[0]), float(np.ravel(y)[0])
    return every, crews


# ------------------------------------------------------------------------------------------------------- scoring


def _angle_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@dataclass
class Outcome:
    """A database's defects against a scenario's truth."""

    defects: list[dict[str, Any]]
    crews: set[int]
    owner: dict[int, str | None] = field(default_factory=dict)      # defect id -> pothole name (None: phantom)
    distance_m: dict[int, float] = field(default_factory=dict)      # defect id -> distance to its pothole
    label: dict[int, str] = field(default_factory=dict)             # its pothole, or site if it has > 3

    def signature(self) -> tuple[tuple[str, str, str], ...]:
        """(pothole, site of many potholes, or "phantom"; kind; status) of every defect, sorted: what a crew
        would see differ."""
        return tuple(sorted((self.label[d["id"]], d["kind"], d["status"]) for d in self.defects))


def assign(sc: Scenario, passes: list[Pass], defects: list[dict[str, Any]], crews: set[int]) -> Outcome:
    """Give each defect to the nearest pothole within MATCH_RADIUS_M whose traffic runs within 45 deg of the
    defect's heading (any pothole within the radius when none does; none: a phantom)."""
    headings: dict[str, list[float]] = {}
    for ps in passes:
        headings.setdefault(ps.pothole, []).append(ps.heading_deg)
    out = Outcome(defects, crews)
    for d in defects:                                          # loop over defects
        near = [(float(np.hypot(d["x_m"] - ph.x_m, d["y_m"] - ph.y_m)), ph.name) for ph in sc.potholes]
        near = sorted(c for c in near if c[0] <= MATCH_RADIUS_M)
        h = d["heading_deg"]
        along = [c for c in near if h is not None
                 and any(_angle_deg(h, t) <= 45.0 for t in headings.get(c[1], []))]
        best = (along or near or [(np.inf, None)])[0]
        out.owner[d["id"]], out.distance_m[d["id"]] = best[1], best[0]
        site = next((p.site for p in sc.potholes if p.name == best[1]), None)
        many = site is not None and sum(p.site == site for p in sc.potholes) > 3
        out.label[d["id"]] = "phantom" if best[1] is None else site if many else best[1]
    return out


def _along_travel_m(d: dict[str, Any], ph: Pothole) -> float:
    """Signed offset of a defect from a pothole along the defect's heading [m] (+: ahead in travel)."""
    h = np.radians(d["heading_deg"] or 0.0)
    return float((d["x_m"] - ph.x_m) * np.sin(h) + (d["y_m"] - ph.y_m) * np.cos(h))


@dataclass(frozen=True)
class Symptom:
    """A QA symptom: ``key`` names it the same way in every seed (for the summary), ``text`` gives details."""

    key: str
    text: str


def site_symptoms(sc: Scenario, site: str, oc: Outcome) -> list[Symptom]:
    """The QA symptoms of one site's potholes, the potholes named (up to 3) or counted."""
    ph = [p for p in sc.potholes if p.site == site]
    by_name = {p.name: p for p in ph}
    found: dict[tuple[str, str], list[str]] = {}

    def note(key: str, detail: str, pothole: str) -> None:
        found.setdefault((key, detail), []).append(pothole)

    for p in ph:                                               # loop over potholes
        mine = sorted((d for d in oc.defects if oc.owner[d["id"]] == p.name), key=lambda d: -d["hits"])
        if not mine:
            near = [d for d in oc.defects if np.hypot(d["x_m"] - p.x_m, d["y_m"] - p.y_m) <= MATCH_RADIUS_M]
            others = sorted({oc.owner[d["id"]] for d in near if oc.owner[d["id"]] in by_name})
            if not others:
                note("missed", "", p.name)
            else:
                note("merged into a neighbour's defect", f" ({'/'.join(others)})" if len(ph) <= 3 else "", p.name)
            continue
        if mine[0]["kind"] not in LISTED_KINDS:               # the defect with most hits
            note(f"listed as {mine[0]['kind']}", "", p.name)
        if len(mine) >= 2:
            n_conf = sum(d["status"] == "confirmed" for d in mine)
            note("split", f" into {len(mine)} ({n_conf} confirmed)", p.name)
        if any(d["status"] == "likely_repaired" for d in mine):
            note("likely_repaired while still hit", "", p.name)
        if not any(d["id"] in oc.crews for d in mine):
            note("not in crews' list", "", p.name)
    out = [Symptom(f"[{site}] {key}",
                   f"{', '.join(n) if len(ph) <= 3 else f'{len(n)} of {len(ph)}'}: {key}{detail}")
           for (key, detail), n in found.items()]
    # a defect standing for several potholes: those whose nearest defect (within the radius) it is
    nearest: dict[int, list[Pothole]] = {}
    for p in ph:
        cand = [(float(np.hypot(d["x_m"] - p.x_m, d["y_m"] - p.y_m)), d["id"]) for d in oc.defects]
        cand = [c for c in cand if c[0] <= MATCH_RADIUS_M]
        if cand:
            nearest.setdefault(min(cand)[1], []).append(p)
    wide = [(float(np.hypot(np.ptp([q.x_m for q in g]), np.ptp([q.y_m for q in g]))), len(g), i)
            for i, g in nearest.items() if len(g) >= 2 and len(ph) > 3]
    if wide:
        span_m, k, i = max(wide)
        unc = next(d["uncertainty_m"] for d in oc.defects if d["id"] == i)
        out.append(Symptom(f"[{site}] a defect stands for several potholes",
                           f"a defect stands for {k} potholes over {span_m:.0f} m (claims +-{unc} m)"))
    return out


def site_line(sc: Scenario, site: str, passes: list[Pass], oc: Outcome) -> str:
    """One site's part of the line: true hits, errors, main defect's counts, symptoms."""
    ph = [p for p in sc.potholes if p.site == site]
    hits = sum(ps.hit for ps in passes if ps.pothole in {p.name for p in ph})
    n_pass = sum(1 for ps in passes if ps.pothole in {p.name for p in ph})
    own = [d for d in oc.defects if oc.owner[d["id"]] in {p.name for p in ph}]
    if len(ph) <= 3:
        errs = []
        for p in ph:
            e = sorted(oc.distance_m[d["id"]] for d in own if oc.owner[d["id"]] == p.name)
            dd = [float(np.hypot(d["x_m"] - p.x_m, d["y_m"] - p.y_m)) for d in oc.defects]
            errs.append(f"{p.name} " + ("/".join(f"{v:.1f}" for v in e) if e else
                                        f"- (nearest defect {min(dd):.1f})" if dd else "-"))
        err = ", ".join(errs) + " m"
    else:
        best = []
        for p in ph:
            dd = [float(np.hypot(d["x_m"] - p.x_m, d["y_m"] - p.y_m)) for d in oc.defects]
            best.append(min(dd) if dd else np.inf)
        b = np.array(best)
        err = (f"nearest defect median {np.median(b):.1f} m, max {np.max(b):.1f} m"
               if np.isfinite(b).any() else "no defect")
    main = max(own, key=lambda d: d["hits"], default=None)
    main_txt = (f"main {main['kind']}/{main['status']} {main['hits']} hits/{main['traversals']} passes"
                if main else "no defect")
    sym = site_symptoms(sc, site, oc)
    return (f"[{site}] {len(ph)} pothole{'s' if len(ph) > 1 else ''} {hits}/{n_pass} true hits/passes, "
            f"{len(own)} defect{'s' if len(own) != 1 else ''}, {main_txt}; errors {err}; "
            f"symptoms: {'; '.join(x.text for x in sym) if sym else 'none'}")


def phantoms_text(sc: Scenario, oc: Outcome) -> tuple[str, int]:
    """The defects farther than MATCH_RADIUS_M from every pothole: count, confirmed, listed, offsets."""
    ph = [d for d in oc.defects if oc.owner[d["id"]] is None]
    if not ph:
        return "phantoms 0", 0
    parts = []
    for d in sorted(ph, key=lambda d: -d["hits"])[:4]:
        p = min(sc.potholes, key=lambda p: np.hypot(d["x_m"] - p.x_m, d["y_m"] - p.y_m))
        parts.append(f"{d['status']} {d['hits']} hits {np.hypot(d['x_m'] - p.x_m, d['y_m'] - p.y_m):.1f} m from "
                     f"{p.name} ({_along_travel_m(d, p):+.1f} m along travel)")
    n_conf = sum(d["status"] == "confirmed" for d in ph)
    n_list = sum(d["id"] in oc.crews for d in ph)
    more = f", +{len(ph) - 4} more" if len(ph) > 4 else ""
    return (f"phantoms {len(ph)} ({n_conf} confirmed, {n_list} in crews' list): {'; '.join(parts)}{more}",
            len(ph))


def _counts(values: list[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(Counter(values).items())) or "-"


def outcome_line(sc: Scenario, passes: list[Pass], oc: Outcome) -> tuple[str, list[str]]:
    """The figures of one database, and the symptoms seen (for the summary over seeds)."""
    listed = sum(d["id"] in oc.crews for d in oc.defects)
    ph_txt, n_ph = phantoms_text(sc, oc)
    sites = [site_line(sc, s, passes, oc) for s in sc.sites]
    symptoms = [x.key for s in sc.sites for x in site_symptoms(sc, s, oc)]
    if n_ph:
        symptoms.append("phantoms")
    if any(oc.owner[d["id"]] is None and d["status"] == "confirmed" for d in oc.defects):
        symptoms.append("confirmed phantoms")
    head = (f"truth {len(sc.potholes)} potholes; found {len(oc.defects)} defects, {listed} in crews' list; "
            f"kinds {_counts([d['kind'] for d in oc.defects])}; statuses {_counts([d['status'] for d in oc.defects])}")
    return f"{head}; {ph_txt} || " + " || ".join(sites), symptoms


def _short(oc: Outcome) -> str:
    """A database's list in a few words: defects, listed, and pothole:kind/status per defect (kind left out
    for potholes)."""
    sig = Counter(oc.signature())
    parts = [f"{o}:{'' if k == 'pothole' else k + '/'}{s}" + (f"x{n}" if n > 1 else "")
             for (o, k, s), n in sorted(sig.items())]
    return f"{len(oc.defects)} defects/{sum(d['id'] in oc.crews for d in oc.defects)} listed [{' '.join(parts)}]"


# ------------------------------------------------------------------------------------------------------- running


def run_scenario(name: str, seed: int, opts: argparse.Namespace) -> tuple[str, list[str]]:
    """Build, write, ingest and score one scenario; return its line and symptoms."""
    t_start = time.perf_counter()
    sc = BUILDERS[name](_Builder(name, seed, opts))
    folder = Path(opts.workdir) / f"{name}-{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    paths, passes = write_trips(sc.trips, folder / "trips")
    by_time = [paths[t.trip_id] for t in sorted(sc.trips, key=lambda t: t.t0_s)]
    now_s = max(t.t0_s for t in sc.trips) + 86400.0
    if name == "order":
        return _run_order(sc, seed, passes, folder, by_time, now_s, t_start)
    db = folder / "bench.db"
    n_impacts = ingest_paths(db, by_time, now_s)
    oc = assign(sc, passes, *read_defects(db))
    line, symptoms = outcome_line(sc, passes, oc)
    line = f"{sum(ps.hit for ps in passes)} true hits, {n_impacts} detector impacts; {line}"
    if opts.reprocess:
        reprocess(db, now_s)
        again = assign(sc, passes, *read_defects(db))
        if again.signature() == oc.signature():
            line += " || after reprocess: same list"
        else:
            line += f" || after reprocess: differs: {_short(oc)} -> {_short(again)}"
            symptoms.append("differs after reprocess")
    return f"{name} seed {seed} ({len(sc.trips)} trips, {time.perf_counter() - t_start:.0f} s): {line}", symptoms


def _run_order(sc: Scenario, seed: int, passes: list[Pass], folder: Path, by_time: list[Path], now_s: float,
               t_start: float) -> tuple[str, list[str]]:
    """The same trips in three ingest orders, each reprocessed twice."""
    shuffled = [by_time[i] for i in np.random.default_rng(seed).permutation(len(by_time))]
    orders = {"time": by_time, "reverse": by_time[::-1], "shuffled": shuffled}
    sigs: dict[str, list[tuple[Any, ...]]] = {}
    parts, symptoms = [], []
    for label, order in orders.items():                        # loop over orders
        db = folder / f"{label}.db"
        ingest_paths(db, order, now_s)
        steps = [assign(sc, passes, *read_defects(db))]
        for _ in range(2):
            reprocess(db, now_s)
            steps.append(assign(sc, passes, *read_defects(db)))
        sigs[label] = [s.signature() for s in steps]
        conv = "same" if steps[2].signature() == steps[1].signature() else f"{_short(steps[2])}"
        parts.append(f"{label}: {_short(steps[0])} -> reprocess {_short(steps[1])} -> again {conv}")
        for s in sc.sites:
            symptoms += [f"{x.key} (some order)" for x in site_symptoms(sc, s, steps[0])]
    by_order = len({v[0] for v in sigs.values()})
    after = len({v[1] for v in sigs.values()})

    def which(step: int) -> str:
        """The potholes (or "phantom") whose defects differ between the orders at this step."""
        labels = {x[0] for v in sigs.values() for x in v[step]}
        return ", ".join(sorted(lb for lb in labels
                                if len({tuple(x for x in v[step] if x[0] == lb) for v in sigs.values()}) > 1))

    changed = sum(v[0] != v[1] for v in sigs.values())
    unstable = sum(v[1] != v[2] for v in sigs.values())
    verdict = []
    if by_order > 1:
        verdict.append(Symptom("differs by ingest order", f"differs by ingest order ({by_order} different lists "
                                                          f"of 3, at {which(0)})"))
    if after > 1:
        verdict.append(Symptom("differs after reprocess", f"differs after reprocess ({after} different lists of 3, "
                                                          f"at {which(1)}: reprocess does not converge)"))
    if changed:
        verdict.append(Symptom("reprocess changes the list", f"reprocess changes the list in {changed} of 3"))
    if unstable:
        verdict.append(Symptom("a second reprocess changes it again",
                               f"a second reprocess changes it again in {unstable} of 3"))
    symptoms += [v.key for v in verdict]
    truth = ", ".join(f"{p.name} {sum(x.hit for x in passes if x.pothole == p.name)}/"
                      f"{sum(1 for x in passes if x.pothole == p.name)}" for p in sc.potholes)
    head = (f"order seed {seed} ({len(sc.trips)} trips x 3 orders, {time.perf_counter() - t_start:.0f} s): "
            f"truth {len(sc.potholes)} potholes (true hits/passes {truth})")
    return f"{head}; {' | '.join(parts)}; symptoms: {'; '.join(v.text for v in verdict) or 'none'}", symptoms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--latency-s", type=float, default=1.5, help="GPS latency of the late phone model (late_gps)")
    ap.add_argument("--late-rounds", type=int, default=None, metavar="N",
                    help="late_gps: after 2 trips of each normal phone, N rounds of all 8 phones in turn (default: "
                         "3 trips per phone, the late ones last)")
    ap.add_argument("--no-reprocess", dest="reprocess", action="store_false",
                    help="skip the full re-cluster after each scenario (order always reprocesses)")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "bump-geometry-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the trips and databases in --workdir")
    args = ap.parse_args(argv)
    set_up_process()
    t0 = time.perf_counter()
    seen: dict[str, Counter[str]] = {}
    for name in args.scenario:
        for seed in args.seeds:
            line, symptoms = run_scenario(name, seed, args)
            print(line, flush=True)
            seen.setdefault(name, Counter()).update(set(symptoms))
            if not args.keep:
                shutil.rmtree(Path(args.workdir) / f"{name}-{seed}", ignore_errors=True)
    print(f"symptoms over seeds {' '.join(map(str, args.seeds))} (how many seeds showed each):")
    for name, c in seen.items():
        print(f"  {name}: " + ("; ".join(f"{k} {v}/{len(args.seeds)}" for k, v in sorted(c.items())) or "none"))
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
