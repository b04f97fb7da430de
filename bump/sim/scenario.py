"""Scenario parameter sets: ``smoke`` (the committed sample), ``city``, ``dense`` (the city with its potholes in
groups 10-25 m apart, as on a failing stretch of road) and ``hard``.

Every physical quantity of a trip is drawn from these ranges with the scenario's seed; nothing here says
what a detector should find.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ingest.errors import BumpError

DEFAULT_ORIGIN = (42.3601, -71.0589)     # Boston City Hall
START_EPOCH_S = datetime(2026, 5, 4, 8, 0, tzinfo=UTC).timestamp()
MAX_ORIGIN_LAT_DEG = 80.0                # the local flat frame and the roads' headings need a pole far away
WORLD_MARGIN_M = 5000.0                  # every scenario's roads, routes and GPS error stay this close to the origin
M_PER_DEG = 111_195.0                    # metres per degree of latitude (and of longitude at the equator)


class ScenarioError(BumpError, ValueError):
    """An unknown scenario or impossible scenario parameters."""

    code = "scenario"


@dataclass(frozen=True)
class ScenarioParams:
    """What a scenario is made of. Counts of defects, ranges and probabilities."""

    name: str
    network: str                                   # "line" (two roads end to end, ~1 km) or "grid" (~8 roads)
    n_drivers: int
    trips_per_driver: int
    route: str                                     # "out_and_back" (alternating directions) or "random"
    route_length_m: tuple[float, float] = (1500.0, 2800.0)
    defect_counts: dict[str, int] = field(default_factory=dict)
    repaired_potholes: int = 1
    pothole_group: tuple[int, int] = (1, 1)        # potholes come in groups of this many (a failing stretch) ...
    group_spacing_m: tuple[float, float] = (10.0, 25.0)   # ... this far apart along the road, neighbour to neighbour
    pothole_on_wheel_path: float = 0.7             # share of potholes centred near a wheel path
    cover_on_wheel_path: float = 0.4
    cover_sunk_share: float = 0.6
    iso_class_weights: dict[str, float] = field(default_factory=lambda: {"A": 0.35, "B": 0.45, "C": 0.2})
    rough_patches: int = 1                         # stretches of class D/E
    fs_weights: dict[float, float] = field(default_factory=lambda: {50.0: 0.25, 100.0: 0.45, 200.0: 0.3})
    mount_weights: dict[str, float] = field(default_factory=lambda: {"cradle": 0.4, "flat": 0.25,
                                                                     "cup_holder": 0.35})
    mount_habit: float = 0.8                       # chance a trip uses the driver's usual mount kind
    gyro_prob: float = 0.7
    gps_sigma_m: tuple[float, float] = (2.0, 8.0)
    vehicle_weights: dict[str, float] = field(default_factory=lambda: {"car": 0.65, "suv": 0.25, "pickup": 0.1})
    wheelbase_reported: float = 0.7                # share of traces that state their wheelbase
    days: int = 14                                 # trips spread over this many days from START_EPOCH_S
    handling_prob: float = 0.3
    remount_prob: float = 0.12
    door_slam_prob: float = 0.6
    internal_rate_hz: float = 1000.0
    cruise_mps: tuple[float, float] = (9.5, 14.5)    # drivers' habitual cruising speeds on lanes
    lane_speed_mps: tuple[float, float] = (8.0, 16.0)  # lowest and highest speed driven on a lane between junctions


SCENARIOS: dict[str, ScenarioParams] = {
    "smoke": ScenarioParams(
        name="smoke", network="line", n_drivers=6, trips_per_driver=2, route="out_and_back",
        defect_counts={"pothole": 5, "cover": 2, "speed_bump": 1, "hump": 1, "joint": 1},
        repaired_potholes=1, pothole_on_wheel_path=1.0, cover_on_wheel_path=1.0, cover_sunk_share=0.5,
        rough_patches=0, fs_weights={50.0: 0.2, 100.0: 0.4, 200.0: 0.4}, gps_sigma_m=(2.0, 5.0), days=6,
    ),
    "city": ScenarioParams(
        name="city", network="grid", n_drivers=20, trips_per_driver=3, route="random",
        defect_counts={"pothole": 12, "cover": 10, "speed_bump": 3, "hump": 2, "joint": 3, "rail": 1},
        repaired_potholes=1, rough_patches=2,
    ),
    "dense": ScenarioParams(                       # the city, its potholes in groups of 2-3 on failing stretches
        name="dense", network="grid", n_drivers=20, trips_per_driver=3, route="random",
        defect_counts={"pothole": 15, "cover": 10, "speed_bump": 3, "hump": 2, "joint": 3, "rail": 1},
        repaired_potholes=1, rough_patches=2, pothole_group=(2, 3),
    ),
    "arterial": ScenarioParams(                    # the city on arterials: 20-28 m/s (72-100 km/h) between junctions
        name="arterial", network="grid", n_drivers=20, trips_per_driver=3, route="random",
        defect_counts={"pothole": 12, "cover": 10, "speed_bump": 3, "hump": 2, "joint": 3, "rail": 1},
        repaired_potholes=1, rough_patches=2, cruise_mps=(20.0, 28.0), lane_speed_mps=(16.0, 30.0),
    ),
    "hard": ScenarioParams(
        name="hard", network="grid", n_drivers=20, trips_per_driver=3, route="random",
        defect_counts={"pothole": 12, "cover": 28, "speed_bump": 3, "hump": 2, "joint": 10, "rail": 2},
        repaired_potholes=1, rough_patches=4, iso_class_weights={"A": 0.1, "B": 0.5, "C": 0.4},
        fs_weights={50.0: 1.0}, mount_weights={"cup_holder": 1.0}, mount_habit=1.0, gyro_prob=0.4,
        gps_sigma_m=(8.0, 8.0), handling_prob=0.4, remount_prob=0.2,
    ),
}


def scenario_params(name: str, *, drivers: int | None = None, trips_per_driver: int | None = None
                    ) -> ScenarioParams:
    """The named scenario, with the number of drivers and trips per driver optionally overridden."""
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    p = SCENARIOS[name]
    for label, value in (("drivers", drivers), ("trips per driver", trips_per_driver)):
        if value is not None and not 1 <= int(value) <= 1000:
            raise ScenarioError(f"{label} is {value}; use 1..1000")
    if drivers is not None:
        p = replace(p, n_drivers=int(drivers))
    if trips_per_driver is not None:
        p = replace(p, trips_per_driver=int(trips_per_driver))
    return p


def _integer(value: Any) -> int | None:
    """``value`` as an int if it is an integer (not a bool, not a float), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_seed(seed: Any) -> int:
    """A simulation seed: a whole number >= 0 (numpy's SeedSequence takes no negative entropy)."""
    value = _integer(seed)
    if value is None or value < 0:
        raise ScenarioError(f"must be a whole number >= 0, got {seed!r}", field="seed")
    return value


def check_workers(workers: Any) -> int:
    """A number of worker processes: a whole number >= 1."""
    value = _integer(workers)
    if value is None or value < 1:
        raise ScenarioError(f"must be a whole number >= 1 (1 = no extra processes), got {workers!r}",
                            field="workers")
    return value


def check_origin(origin: Any) -> tuple[float, float]:
    """The centre (lat_deg, lon_deg) of a simulated world: finite, |lat| <= :data:`MAX_ORIGIN_LAT_DEG` and far
    enough from the antimeridian that no road (within :data:`WORLD_MARGIN_M`) crosses it (no longitude wraps)."""
    try:
        lat, lon = (float(v) for v in origin)
    except (TypeError, ValueError):
        raise ScenarioError(f"must be two numbers (lat_deg, lon_deg), got {origin!r}",
                            field="origin") from None
    if not (math.isfinite(lat) and abs(lat) <= MAX_ORIGIN_LAT_DEG):
        raise ScenarioError(f"latitude {lat} is not within -{MAX_ORIGIN_LAT_DEG:g}..{MAX_ORIGIN_LAT_DEG:g} "
                            "degrees", field="origin")
    max_lon = 180.0 - WORLD_MARGIN_M / (M_PER_DEG * math.cos(math.radians(lat)))
    if not (math.isfinite(lon) and abs(lon) <= max_lon):
        raise ScenarioError(f"longitude {lon} is not within -{max_lon:.2f}..{max_lon:.2f} degrees (at "
                            f"latitude {lat} the simulated roads, up to {WORLD_MARGIN_M / 1000:g} km from the "
                            "origin, would cross the antimeridian, where longitudes wrap)", field="origin")
    return lat, lon
