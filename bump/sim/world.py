"""The world of a scenario: a road network, its surfaces and its defects, drawn from the scenario's ranges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bump.sim.road import (
    LANE_WIDTH_M,
    ROAD_WIDTH_M,
    Defect,
    Network,
    Road,
    RoadSurface,
    build_surface,
    polyline_between,
)
from bump.sim.scenario import ScenarioError, ScenarioParams
from detect.geo import LocalProjection

INNER_PATH_M = LANE_WIDTH_M / 2 - 0.775      # typical wheel paths, distance from the centreline [m]
OUTER_PATH_M = LANE_WIDTH_M / 2 + 0.775
MIN_SPACING_M = 30.0                          # between defects on one road
END_CLEARANCE_M = 25.0                        # from either end of a road (junctions)


@dataclass(frozen=True, eq=False)
class World:
    """Everything that does not change from trip to trip (except repaired potholes)."""

    projection: LocalProjection
    network: Network
    surfaces: dict[str, RoadSurface]
    defects: tuple[Defect, ...]
    rough_patches: tuple[tuple[str, str, float, float, str], ...]     # road, lane, sigma from, to, class
    start_epoch_s: float

    def defects_on(self, road_id: str) -> list[Defect]:
        return [d for d in self.defects if d.road_id == road_id]


def weighted_choice(rng: np.random.Generator, weights: dict) -> Any:
    """A key of ``weights`` drawn with probability proportional to its value."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def line_network(rng: np.random.Generator, params: ScenarioParams) -> Network:
    """Two roads end to end, ~1 km: a straight one and a curved one."""
    ang1 = np.radians(rng.uniform(10.0, 35.0))
    len1 = rng.uniform(560.0, 640.0)
    b = (len1 * np.cos(ang1), len1 * np.sin(ang1))
    ang2 = ang1 - np.radians(rng.uniform(20.0, 40.0))
    len2 = rng.uniform(360.0, 420.0)
    c = (b[0] + len2 * np.cos(ang2), b[1] + len2 * np.sin(ang2))
    nodes = {"A": (0.0, 0.0), "B": b, "C": c}
    roads = {
        "r1": Road("r1", "A", "B", polyline_between(nodes["A"], nodes["B"]),
                   str(weighted_choice(rng, params.iso_class_weights))),
        "r2": Road("r2", "B", "C", polyline_between(nodes["B"], nodes["C"], bulge_m=rng.uniform(25.0, 45.0)),
                   str(weighted_choice(rng, params.iso_class_weights))),
    }
    return Network(nodes=nodes, roads=roads)


def grid_network(rng: np.random.Generator, params: ScenarioParams) -> Network:
    """A 2 x 3 grid of junctions (7 streets, some curved) plus a curved diagonal: 8 roads, ~3 km."""
    sx, sy = rng.uniform(330.0, 400.0), rng.uniform(290.0, 350.0)
    rot = np.radians(rng.uniform(-25.0, 25.0))
    c, s = np.cos(rot), np.sin(rot)
    nodes: dict[str, tuple[float, float]] = {}
    for r in range(2):
        for col in range(3):
            x, y = (col - 1) * sx + rng.uniform(-25, 25), (r - 0.5) * sy + rng.uniform(-25, 25)
            nodes[f"N{r}{col}"] = (c * x - s * y, s * x + c * y)
    pairs = [("N00", "N01"), ("N01", "N02"), ("N10", "N11"), ("N11", "N12"),
             ("N00", "N10"), ("N01", "N11"), ("N02", "N12")]
    roads: dict[str, Road] = {}
    for k, (a, b) in enumerate(pairs):
        bulge = rng.uniform(15.0, 40.0) * rng.choice([-1.0, 1.0]) if rng.random() < 0.4 else 0.0
        roads[f"r{k + 1}"] = Road(f"r{k + 1}", a, b, polyline_between(nodes[a], nodes[b], bulge_m=bulge),
                                  str(weighted_choice(rng, params.iso_class_weights)))
    roads["r8"] = Road("r8", "N00", "N11", polyline_between(nodes["N00"], nodes["N11"],
                                                            bulge_m=rng.uniform(30.0, 60.0) * rng.choice([-1, 1])),
                       str(weighted_choice(rng, params.iso_class_weights)))
    return Network(nodes=nodes, roads=roads)


def _lane_offset(rng: np.random.Generator, half_width: float, on_path: bool) -> float:
    """Distance [m] of a lane defect's centre from the centreline, inside its lane."""
    lo, hi = half_width + 0.15, LANE_WIDTH_M - half_width - 0.15
    if on_path:
        o = rng.choice([INNER_PATH_M, OUTER_PATH_M]) + rng.normal(0.0, 0.15)
    else:
        o = rng.uniform(lo, hi)
    return float(np.clip(o, lo, hi))


def _draw_defect(rng: np.random.Generator, kind: str, params: ScenarioParams, *, on_path: bool | None = None
                 ) -> dict:
    """Shape of one defect (no position along the road yet)."""
    lane = str(rng.choice(["forward", "reverse"]))
    if kind == "pothole":
        length, width = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.0)
        near = rng.random() < params.pothole_on_wheel_path if on_path is None else on_path
        off = _lane_offset(rng, width / 2, near)
        depth = 0.03 + 0.09 * rng.beta(1.3, 2.0)                  # 3-12 cm, shallower ones commoner
        return dict(kind=kind, lane=lane, offset=off, length_m=length, width_m=width, depth_m=depth,
                    wall_exponent=rng.uniform(4.0, 10.0))
    if kind == "cover":
        diameter = rng.uniform(0.58, 0.66)
        off = _lane_offset(rng, diameter / 2, rng.random() < params.cover_on_wheel_path)
        sunk = rng.random() < params.cover_sunk_share
        step = rng.uniform(0.01, 0.04)
        return dict(kind=kind, lane=lane, offset=off, length_m=diameter, width_m=diameter,
                    depth_m=step if sunk else 0.0, height_m=0.0 if sunk else step)
    full = dict(kind=kind, lane="both", offset=0.0, width_m=ROAD_WIDTH_M)
    if kind == "speed_bump":
        return full | dict(length_m=rng.uniform(0.3, 0.9), height_m=rng.uniform(0.07, 0.10))
    if kind == "hump":
        return full | dict(length_m=rng.uniform(3.5, 3.9), height_m=rng.uniform(0.075, 0.10))
    if kind == "joint":
        sign = rng.choice([-1.0, 1.0])
        if rng.random() < 0.5:                                     # a faulted step
            return full | dict(length_m=0.0, height_m=sign * rng.uniform(0.01, 0.025), ramp_m=rng.uniform(4, 10))
        return full | dict(length_m=rng.uniform(0.05, 0.08), depth_m=rng.uniform(0.02, 0.04),   # a gap whose
                           height_m=sign * rng.uniform(0.002, 0.006), ramp_m=6.0)              # edges differ
    if kind == "rail":                  # a raised crossing panel, flangeway gaps, rail heads off the panel
        return full | dict(length_m=rng.uniform(2.6, 3.6), height_m=rng.uniform(0.01, 0.025), depth_m=0.04,
                           extra={"head_offset_m": float(rng.uniform(-0.01, 0.01)),
                                  "edge_m": float(rng.uniform(0.05, 0.15))})
    raise ValueError(f"unknown defect kind {kind!r}")


def place_defects(network: Network, rng: np.random.Generator, params: ScenarioParams, start_epoch_s: float
                  ) -> tuple[Defect, ...]:
    """Defects at random places on the network, at least MIN_SPACING_M apart on a road; potholes in groups of
    ``params.pothole_group`` members ``params.group_spacing_m`` apart (one group's members only)."""
    roads = list(network.roads.values())
    lengths = np.array([r.length_m for r in roads])
    taken: dict[str, list[float]] = {r.road_id: [] for r in roads}
    out: list[Defect] = []
    n_repaired = params.repaired_potholes
    counter = 0
    companions: list[tuple[Road, float]] = []                      # spots kept for the rest of a pothole group
    for kind in ("pothole", "cover", "speed_bump", "hump", "joint", "rail"):
        for k in range(params.defect_counts.get(kind, 0)):
            repaired = kind == "pothole" and k < n_repaired
            shape = _draw_defect(rng, kind, params, on_path=True if repaired else None)
            if kind == "pothole" and companions:
                road, sigma = companions.pop(0)
            else:
                for _ in range(200):                               # rejection: a free spot
                    road = roads[int(rng.choice(len(roads), p=lengths / lengths.sum()))]
                    sigma = rng.uniform(END_CLEARANCE_M, road.length_m - END_CLEARANCE_M)
                    if all(abs(sigma - o) >= MIN_SPACING_M for o in taken[road.road_id]):
                        break
                else:
                    raise ScenarioError(f"no room left for a {kind} on a {network.length_m:.0f} m network; "
                                        "ask for fewer defects")
                taken[road.road_id].append(sigma)
                if kind == "pothole" and params.pothole_group[1] > 1:
                    companions = _group_spots(rng, road, sigma, taken[road.road_id], params)
                    taken[road.road_id].extend(s for _, s in companions)
            counter += 1
            lane = shape.pop("lane")
            offset = shape.pop("offset")
            lat = 0.0 if lane == "both" else (-offset if lane == "forward" else offset)
            repaired_after = None
            if repaired:
                repaired_after = start_epoch_s + rng.uniform(0.4, 0.6) * params.days * 86400.0
            out.append(Defect(defect_id=f"{kind[0].upper()}{counter:03d}", road_id=road.road_id,
                              sigma_m=float(sigma), lat_m=float(lat), lane=lane, repaired_after_s=repaired_after,
                              **{k2: (float(v) if isinstance(v, float | np.floating) else v)
                                 for k2, v in shape.items()}))
    return tuple(out)


def _group_spots(rng: np.random.Generator, road: Road, sigma_m: float, taken: list[float], params: ScenarioParams
                 ) -> list[tuple[Road, float]]:
    """Spots for the other members of a pothole group starting at ``sigma_m``, one way along the road, each
    ``group_spacing_m`` from the one before; those off the road or within MIN_SPACING_M of another defect are
    dropped (the group is smaller)."""
    size = int(rng.integers(params.pothole_group[0], params.pothole_group[1] + 1))
    step = np.cumsum(rng.uniform(*params.group_spacing_m, size - 1)) * rng.choice([-1.0, 1.0])
    spots = []
    for s in (sigma_m + step).tolist():                            # loop over a group's few members
        on_road = END_CLEARANCE_M <= s <= road.length_m - END_CLEARANCE_M
        if on_road and all(abs(s - o) >= MIN_SPACING_M for o in taken if o != sigma_m):
            spots.append((road, s))
    return spots


def build_world(params: ScenarioParams, rng: np.random.Generator, *, origin: tuple[float, float],
                start_epoch_s: float) -> World:
    """Network, surfaces (ISO 8608 backgrounds + rough patches) and defects of a scenario."""
    network = line_network(rng, params) if params.network == "line" else grid_network(rng, params)
    patches: list[tuple[str, str, float, float, str]] = []
    road_ids = list(network.roads)
    for _ in range(params.rough_patches):
        road = network.roads[road_ids[int(rng.integers(len(road_ids)))]]
        length = rng.uniform(40.0, 120.0)
        a = rng.uniform(10.0, max(11.0, road.length_m - length - 10.0))
        patches.append((road.road_id, str(rng.choice(["forward", "reverse"])), float(a), float(a + length),
                        "E" if rng.random() < 0.25 else "D"))
    surfaces = {rid: build_surface(road, rng, rough_patches=[(ln, a, b, c) for (r, ln, a, b, c) in patches
                                                             if r == rid])
                for rid, road in network.roads.items()}
    defects = place_defects(network, rng, params, start_epoch_s)
    return World(projection=LocalProjection(*origin), network=network, surfaces=surfaces, defects=defects,
                 rough_patches=tuple(patches), start_epoch_s=start_epoch_s)
