"""Driving: routes over the network, the path a car follows, its speed profile, stops and lateral wander.

A route is a list of lane traversals (road, direction). The car follows the lane centre lines (right-hand
traffic), joined at the nodes by short straight connectors; heading and curvature come from the path
smoothed over a few metres (a car cannot turn on the spot). The speed profile respects a target speed per
road, a comfortable lateral acceleration in curves and turns, slow-downs for bumps, and stops, with bounded
acceleration and deceleration (forward/backward passes in closed form: v^2(s) = min over s' of
v_max^2(s') + 2 a |s - s'|). Time follows from the speed; the car waits at stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from bump.sim.road import LANE_WIDTH_M, Network, cumulative_length_m, polyline_between

HEADING_SMOOTH_M = 3.0       # a car's path through a junction is rounded over a few metres
MOTION_RATE_HZ = 100.0       # rate at which the speed profile is smoothed before upsampling


@dataclass(frozen=True)
class Driver:
    """How one person drives. Speeds [m/s], accelerations [m/s^2], distances [m]."""

    speed_mps: float             # habitual cruising speed
    accel_mps2: float
    decel_mps2: float
    lateral_mps2: float          # comfortable lateral acceleration in curves and turns
    bump_speed_mps: float        # over speed bumps
    hump_speed_mps: float
    rail_speed_mps: float
    wander_m: float              # sigma of the lateral position in the lane
    wander_corr_m: float         # correlation length of the wander
    stop_prob: float             # chance of stopping at a junction


def draw_driver(rng: np.random.Generator, cruise_mps: tuple[float, float] = (9.5, 14.5)) -> Driver:
    """A driver's habits; ``cruise_mps``: the range of habitual cruising speeds [m/s]."""
    return Driver(
        speed_mps=float(rng.uniform(*cruise_mps)),
        accel_mps2=float(rng.uniform(1.0, 2.2)),
        decel_mps2=float(rng.uniform(1.5, 3.0)),
        lateral_mps2=float(rng.uniform(1.5, 3.0)),
        bump_speed_mps=float(rng.uniform(2.5, 5.0)),
        hump_speed_mps=float(rng.uniform(4.5, 7.5)),
        rail_speed_mps=float(rng.uniform(5.0, 9.0)),
        wander_m=float(rng.uniform(0.22, 0.38)),
        wander_corr_m=float(rng.uniform(25.0, 80.0)),
        stop_prob=float(rng.uniform(0.3, 0.7)),
    )


# --------------------------------------------------------------------------------------------------------------
# Routes and paths
# --------------------------------------------------------------------------------------------------------------

def random_route(network: Network, rng: np.random.Generator, *, start: str, min_length_m: float
                 ) -> list[tuple[str, str]]:
    """A random walk from node ``start`` that does not turn back unless it must, at least ``min_length_m`` long."""
    route: list[tuple[str, str]] = []
    node, length, came_by = start, 0.0, None
    while length < min_length_m:
        exits = network.exits(node)
        choices = [e for e in exits if e[0] != came_by] or exits
        rid, direction, nxt = choices[int(rng.integers(len(choices)))]
        route.append((rid, direction))
        length += network.roads[rid].length_m
        node, came_by = nxt, rid
    return route


@dataclass(frozen=True, eq=False)
class Leg:
    """A stretch of a path: a lane of a road, or a connector across a junction. Path distances [m]."""

    kind: str                 # "lane" | "connector"
    s0_m: float
    s1_m: float
    road_id: str | None = None
    direction: str | None = None
    lane_cum_m: np.ndarray | None = None   # distance along the lane polyline at its vertices
    sigma_m: np.ndarray | None = None      # the road's sigma at those vertices

    def sigma_at(self, s_m: np.ndarray) -> np.ndarray:
        """Road coordinate sigma [m] of path distances ``s_m`` on this lane leg."""
        return np.interp(np.asarray(s_m) - self.s0_m, self.lane_cum_m, self.sigma_m)

    def s_at(self, sigma_m: float) -> float:
        """Path distance [m] where this lane leg passes the road coordinate ``sigma_m``."""
        sig, cum = (self.sigma_m, self.lane_cum_m) if self.direction == "forward" else \
            (self.sigma_m[::-1], self.lane_cum_m[::-1])
        return float(self.s0_m + np.interp(sigma_m, sig, cum))

    @property
    def lane_lat_m(self) -> float:
        """Lateral position of the lane centre, left of the road's forward direction [m]."""
        return -LANE_WIDTH_M / 2 if self.direction == "forward" else LANE_WIDTH_M / 2

    @property
    def left_sign(self) -> float:
        """+1 if the car's left is the road's left (forward), -1 otherwise."""
        return 1.0 if self.direction == "forward" else -1.0


@dataclass(frozen=True, eq=False)
class Path:
    """The line a car follows: polyline (k, 2) [m], its cumulative length, legs and junction positions."""

    xy_m: np.ndarray
    cum_m: np.ndarray
    legs: tuple[Leg, ...]
    junctions_s_m: tuple[float, ...]

    @property
    def length_m(self) -> float:
        return float(self.cum_m[-1])

    def position(self, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.interp(s_m, self.cum_m, self.xy_m[:, 0]), np.interp(s_m, self.cum_m, self.xy_m[:, 1])

    def heading_curvature(self, ds_m: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(s, heading psi [rad, counter-clockwise from east], curvature [1/m], left turns positive)."""
        s = np.arange(0.0, self.length_m + ds_m, ds_m)
        x, y = self.position(s)
        psi = np.unwrap(np.arctan2(np.gradient(y, ds_m), np.gradient(x, ds_m)))
        psi = gaussian_filter1d(psi, HEADING_SMOOTH_M / ds_m, mode="nearest")
        return s, psi, np.gradient(psi, ds_m)


def build_path(network: Network, route: list[tuple[str, str]]) -> Path:
    """The path of a route: lane centre lines joined by straight connectors at the junctions."""
    pts: list[np.ndarray] = []
    legs: list[Leg] = []
    junctions: list[float] = []
    s = 0.0
    for road_id, direction in route:
        xy, sigma = network.roads[road_id].lane_polyline(direction)
        if pts:
            end = pts[-1][-1]
            gap = float(np.hypot(*(xy[0] - end)))
            junctions.append(s + gap / 2)
            if gap > 0.05:
                conn = polyline_between(tuple(end), tuple(xy[0]), spacing_m=0.5)
                legs.append(Leg("connector", s, s + gap))
                pts.append(conn[1:-1])
                s += gap
        cum = cumulative_length_m(xy)
        legs.append(Leg("lane", s, s + float(cum[-1]), road_id, direction, cum, sigma))
        pts.append(xy)
        s += float(cum[-1])
    xy_all = np.vstack([p for p in pts if len(p)])
    keep = np.concatenate(([True], np.hypot(*np.diff(xy_all, axis=0).T) > 1e-9))
    xy_all = xy_all[keep]
    return Path(xy_m=xy_all, cum_m=cumulative_length_m(xy_all), legs=tuple(legs), junctions_s_m=tuple(junctions))


# --------------------------------------------------------------------------------------------------------------
# Speed and time
# --------------------------------------------------------------------------------------------------------------

def limit_profile(s_m: np.ndarray, v_max_mps: np.ndarray, accel_mps2: float, decel_mps2: float) -> np.ndarray:
    """Fastest speed [m/s] under ``v_max_mps`` reachable with the given acceleration and deceleration."""
    v2 = np.asarray(v_max_mps, dtype=np.float64) ** 2
    fwd = 2 * accel_mps2 * s_m + np.minimum.accumulate(v2 - 2 * accel_mps2 * s_m)
    bwd = -2 * decel_mps2 * s_m + np.minimum.accumulate((v2 + 2 * decel_mps2 * s_m)[::-1])[::-1]
    return np.sqrt(np.clip(np.minimum(fwd, bwd), 0.0, None))


@dataclass(frozen=True)
class Motion:
    """The car's motion along its path at the simulation rate (time from the trip start)."""

    t_s: np.ndarray
    s_m: np.ndarray
    v_mps: np.ndarray
    a_mps2: np.ndarray


def time_knots(s_m: np.ndarray, v_mps: np.ndarray, stops: list[tuple[float, float]]
               ) -> tuple[np.ndarray, np.ndarray]:
    """(t, s) knots of travel along ``s_m`` at speeds ``v_mps``, waiting ``dwell_s`` at each (s, dwell_s)."""
    dt = 2 * np.diff(s_m) / np.maximum(v_mps[:-1] + v_mps[1:], 1e-3)
    t = np.concatenate(([0.0], np.cumsum(dt)))
    idx = np.array([int(np.argmin(np.abs(s_m - s))) for s, _ in stops], dtype=int)
    dwell = np.array([d for _, d in stops], dtype=np.float64)
    offset = np.zeros(s_m.size)
    np.add.at(offset, idx, dwell)
    t_dep = t + np.cumsum(offset)                    # departure time at every knot
    t_arr = t_dep[idx] - dwell                       # arrival at the stops
    tk = np.concatenate((t_dep, t_arr))
    sk = np.concatenate((s_m, s_m[idx]))
    order = np.argsort(tk, kind="stable")
    return tk[order], sk[order]


def motion_from_knots(t_knots: np.ndarray, s_knots: np.ndarray, fs_hz: float, *, smooth_s: float = 0.3
                      ) -> Motion:
    """Position, speed and acceleration at ``fs_hz`` from (t, s) knots, smoothed over ``smooth_s``.

    The smoothing stands for the drivetrain: acceleration changes over a fraction of a second, not at once.
    It preserves monotonicity (a positive kernel), so the car never rolls back.
    """
    t_end = float(t_knots[-1])
    tc = np.arange(0.0, t_end, 1.0 / MOTION_RATE_HZ)
    sc = gaussian_filter1d(np.interp(tc, t_knots, s_knots), smooth_s * MOTION_RATE_HZ, mode="nearest")
    vc = np.gradient(sc, 1.0 / MOTION_RATE_HZ)
    ac = np.gradient(vc, 1.0 / MOTION_RATE_HZ)
    t = np.arange(0.0, tc[-1], 1.0 / fs_hz)
    return Motion(t_s=t, s_m=np.interp(t, tc, sc), v_mps=np.maximum(np.interp(t, tc, vc), 0.0),
                  a_mps2=np.interp(t, tc, ac))


def wander_m(s_m: np.ndarray, sigma_m: float, corr_m: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth lateral wander [m] of a car in its lane (left positive) at path distances ``s_m`` (1 m grid)."""
    n = s_m.size
    pad = int(4 * corr_m)
    white = rng.standard_normal(n + 2 * pad)
    k_sigma = corr_m / 2.0
    x = np.arange(-int(4 * k_sigma), int(4 * k_sigma) + 1)
    kernel = np.exp(-0.5 * (x / k_sigma) ** 2)
    u = gaussian_filter1d(white, k_sigma, mode="wrap")[pad:pad + n]
    u *= sigma_m / (np.sqrt(np.sum(kernel**2)) / np.sum(kernel))
    return np.clip(u, -0.9, 0.9)
