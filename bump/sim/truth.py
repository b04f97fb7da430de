"""The truth of a simulated scenario: what a perfect observer of the world and the trips knows.

Truth (``bump.truth/1``):
  origin      {"lat", "lon"} of the local frame
  defects     [{"id", "type", "lat", "lon", "depth_m" | "height_m", "length_m", "width_m",
               "lateral_offset_m", "direction", "heading_deg", "road_id", "reportable", ["repaired_after"]}]
              direction: "forward" or "reverse" (the lane of the road that holds it, relative to the road's
              digitised direction) or "both" for full-width features; heading_deg: compass bearing of travel
              in that lane (for "both": of the forward direction); lateral_offset_m: distance of the centre
              from the centreline into its lane (0 for full width); repaired_after: epoch s after which a
              repaired pothole is gone.
  impacts     [{"trip_id", "t", "defect_id", "type", "wheel", "speed_mps", "overlap", "input_m"}] one per
              wheel that touched a defect; t (epoch s) when the wheel reached the defect's leading edge;
              overlap = share of the tyre's width that ran over it; input_m = how far the tyre envelope made
              the wheel drop (< 0) or rise (> 0) there (a short hole is bridged, a grazed one barely felt).
  passes      [{"trip_id", "defect_id", "t", "speed_mps", "in_lane", "hit", "present"}] every time a trip
              drove past a defect's spot (hit rate = hits / passes in the lane).
  events      [{"trip_id", "t", "type": "door_slam" | "handling" | "remount" | "gap", "duration_s"}] non-road
              events; "gap": the accelerometer recorded nothing for ``duration_s``.
  trips       [{"trip_id", "device_id", ...}] with the phone, mount, vehicle and GPS behind each trace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bump.sim.driving import Leg
from bump.sim.road import Defect
from bump.sim.scenario import START_EPOCH_S, ScenarioParams
from bump.sim.vehicle import Car
from bump.sim.world import World

TRUTH_FORMAT = "bump.truth/1"


@dataclass(frozen=True)
class OnPath:
    defect: Defect
    leg: Leg
    s_m: float                 # where the path passes the defect's centre


@dataclass(frozen=True)
class Contact:
    """A wheel path (left or right) running over a defect: where it first touches it and how much tread is on it."""

    defect: Defect
    side: str                  # "left" | "right"
    lead_s_m: float            # path distance of the first touch
    overlap: float             # share of the tread width that runs over the defect
    i0: int                    # the defect's span on the profile grid
    i1: int


@dataclass
class TripResult:
    trip_id: str
    path: str
    impacts: list[dict[str, Any]]
    passes: list[dict[str, Any]]
    events: list[dict[str, Any]]
    info: dict[str, Any]


# --------------------------------------------------------------------------------------------------------------
# One trip
# --------------------------------------------------------------------------------------------------------------

def felt_input_m(envelope_m: np.ndarray, background_m: np.ndarray, i0: int, i1: int) -> float:
    """Signed extreme over [i0, i1) of a wheel's effective road input minus what the road without the defect
    would give: how far the defect made the wheel drop (< 0) or rise (> 0)."""
    span = envelope_m[i0:i1] - background_m[i0:i1]
    return float(span[np.argmax(np.abs(span))]) if span.size else 0.0


def trip_truth(trip_id: str, t0_epoch: float, t: np.ndarray, s_t: np.ndarray, v_t: np.ndarray, car: Car,
                contacts: list[Contact], env: dict[str, np.ndarray], env_bg: dict[str, np.ndarray],
                on_path: list[OnPath]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Impacts (one per wheel contact, at the leading edge) and passes (one per time the path passes a defect)."""
    def at(s_target: float) -> int | None:
        i = int(np.searchsorted(s_t, s_target))
        return i if i < t.size else None

    impacts = []
    for c in contacts:
        felt = round(felt_input_m(env[c.side], env_bg[c.side], c.i0, c.i1), 4)
        for axle, offset in (("F", 0.0), ("R", car.wheelbase_m)):
            i = at(c.lead_s_m + offset)
            if i is None:
                continue
            impacts.append({"trip_id": trip_id, "t": round(t0_epoch + float(t[i]), 4), "defect_id": c.defect.defect_id,
                            "type": c.defect.kind, "wheel": axle + c.side[0].upper(),
                            "speed_mps": round(float(v_t[i]), 3), "overlap": round(c.overlap, 2), "input_m": felt})
    passes = []
    for op in on_path:
        i = at(op.s_m)
        if i is None:
            continue
        d = op.defect
        hit = any(c.defect is d and abs(c.lead_s_m - op.s_m) < 10.0 for c in contacts)
        passes.append({"trip_id": trip_id, "defect_id": d.defect_id, "t": round(t0_epoch + float(t[i]), 4),
                       "speed_mps": round(float(v_t[i]), 3), "in_lane": d.full_width or d.lane == op.leg.direction,
                       "hit": hit, "present": d.exists_at(t0_epoch)})
    return impacts, passes


def defect_truth(world: World, d: Defect) -> dict[str, Any]:
    road = world.network.roads[d.road_id]
    east, north = road.point(d.sigma_m, d.lat_m)
    lat, lon = world.projection.to_latlon(east, north)
    heading = road.bearing_deg(d.sigma_m)
    if d.lane == "reverse":
        heading = (heading + 180.0) % 360.0
    out: dict[str, Any] = {"id": d.defect_id, "type": d.kind, "lat": round(float(lat), 7),
                           "lon": round(float(lon), 7)}
    if d.depth_m:
        out["depth_m"] = round(d.depth_m, 4)
    if d.height_m or not d.depth_m:
        out["height_m"] = round(d.height_m, 4)
    out |= {"length_m": round(d.length_m, 3), "width_m": round(d.width_m, 3),
            "lateral_offset_m": round(abs(d.lat_m), 3), "direction": d.lane, "heading_deg": round(heading, 1),
            "road_id": d.road_id, "reportable": d.reportable}
    if d.repaired_after_s is not None:
        out["repaired_after"] = round(d.repaired_after_s, 3)
    return out


def build_truth(world: World, params: ScenarioParams, seed: int, results: Iterable[TripResult]) -> dict[str, Any]:
    results = sorted(results, key=lambda r: r.trip_id)
    proj = world.projection
    roads = []
    for road in world.network.roads.values():
        lat, lon = proj.to_latlon(road.xy_m[:, 0], road.xy_m[:, 1])
        step = max(1, road.xy_m.shape[0] // 60)
        roads.append({"road_id": road.road_id, "iso_class": road.iso_class, "length_m": round(road.length_m, 1),
                      "lat": [*np.round(lat[::step], 7).tolist(), round(float(lat[-1]), 7)],
                      "lon": [*np.round(lon[::step], 7).tolist(), round(float(lon[-1]), 7)]})
    return {
        "format": TRUTH_FORMAT,
        "scenario": params.name,
        "seed": seed,
        "origin": {"lat": proj.lat0_deg, "lon": proj.lon0_deg},
        "start_time": START_EPOCH_S,
        "roads": roads,
        "rough_patches": [{"road_id": r, "direction": ln, "from_m": round(a, 1), "to_m": round(b, 1), "iso_class": c}
                          for r, ln, a, b, c in world.rough_patches],
        "defects": [defect_truth(world, d) for d in world.defects],
        "impacts": sorted((i for r in results for i in r.impacts), key=lambda i: (i["t"], i["trip_id"], i["wheel"])),
        "passes": sorted((p for r in results for p in r.passes), key=lambda p: (p["t"], p["trip_id"])),
        "events": sorted((e for r in results for e in r.events), key=lambda e: (e["t"], e["trip_id"])),
        "trips": [r.info for r in results],
    }
