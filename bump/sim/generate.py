"""Assemble trips from the physics and write them with the scenario's truth.

``generate(scenario, seed, out_dir)`` writes ``out_dir/trips/<trip_id>.json.gz`` (bump.trace/1, gzip) and
``out_dir/truth.json``. Deterministic for a seed: one ``SeedSequence`` per scenario, a child for the world,
one per driver and, under it, one per trip, so a trip does not depend on which others are generated.

The truth it writes is described in :mod:`bump.sim.truth`.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from bump.sim.driving import (
    Driver,
    Path,
    build_path,
    draw_driver,
    limit_profile,
    motion_from_knots,
    random_route,
    time_knots,
    wander_m,
)
from bump.sim.gps import draw_gps, simulate_gps
from bump.sim.phone import (
    CarKinematics,
    Handling,
    Mount,
    PhoneModel,
    body_angular_rate,
    body_specific_force,
    door_slam_ring,
    draw_handling,
    draw_mount,
    draw_phone,
    engine_vibration,
    mount_filter,
    orientation_track,
    read_accelerometer,
    read_gyroscope,
    sample_times,
    to_phone_frame,
)
from bump.sim.road import (
    ISO8608_GD_N0_M3,
    PROFILE_DX_M,
    defect_footprint,
    defect_height_m,
    iso8608_profile,
)
from bump.sim.scenario import (
    DEFAULT_ORIGIN,
    SCENARIOS,
    START_EPOCH_S,
    ScenarioError,
    ScenarioParams,
    check_origin,
    check_seed,
    check_workers,
    scenario_params,
)
from bump.sim.truth import Contact, OnPath, TripResult, build_truth, trip_truth
from bump.sim.tyre import tyre_envelope_m
from bump.sim.vehicle import CORNERS, BodyMotion, Car, body_motion, draw_car, simulate_corner
from bump.sim.world import World, build_world, weighted_choice
from ingest.formats.bump_json import dumps_document
from ingest.trace import FORMAT_ID

SLOWED_FOR = ("speed_bump", "hump", "rail")


@dataclass(frozen=True)
class DriverProfile:
    """One driver with their car and phone (one device per driver)."""

    index: int
    device_id: str
    driver: Driver
    car: Car
    phone: PhoneModel
    mount_kind: str
    report_wheelbase: bool
    trip_starts_s: tuple[float, ...]


def draw_profile(rng: np.random.Generator, params: ScenarioParams, index: int) -> DriverProfile:
    kind = str(weighted_choice(rng, params.vehicle_weights))
    car = draw_car(rng, kind)
    fs = float(weighted_choice(rng, params.fs_weights))
    phone = draw_phone(rng, fs, bool(rng.random() < params.gyro_prob))
    mount_kind = str(weighted_choice(rng, params.mount_weights))
    report_wb = bool(rng.random() < params.wheelbase_reported)
    device_id = f"dev-{rng.integers(16**8):08x}"
    driver = draw_driver(rng, params.cruise_mps)
    n = params.trips_per_driver
    days = rng.choice(params.days, size=n, replace=n > params.days)
    hours = rng.uniform(3.0, 15.0, n)                       # after 08:00 UTC: 07:00-19:00 in Boston (UTC-4)
    starts = np.sort(START_EPOCH_S + days * 86400.0 + np.round(hours * 3600.0))
    for k in range(1, n):                                                # one phone, one trip at a time
        starts[k] = max(starts[k], starts[k - 1] + 1800.0)
    return DriverProfile(index=index, device_id=device_id, driver=driver, car=car, phone=phone,
                         mount_kind=mount_kind, report_wheelbase=report_wb, trip_starts_s=tuple(starts.tolist()))


def _route(world: World, params: ScenarioParams, leg_no: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Out and back: even ``leg_no`` along the roads, odd back (drivers start at either end); else a random walk."""
    net = world.network
    if params.route == "out_and_back":
        ids = list(net.roads)
        return [(r, "forward") for r in ids] if leg_no % 2 == 0 else [(r, "reverse") for r in reversed(ids)]
    nodes = list(net.nodes)
    start = nodes[int(rng.integers(len(nodes)))]
    return random_route(net, rng, start=start, min_length_m=float(rng.uniform(*params.route_length_m)))


def _defects_on_path(world: World, path: Path) -> list[OnPath]:
    out = []
    for leg in path.legs:
        if leg.kind == "lane":
            out.extend(OnPath(d, leg, leg.s_at(d.sigma_m)) for d in world.defects_on(leg.road_id))
    return out


def _speed_plan(path: Path, on_path: list[OnPath], prof: DriverProfile, rng: np.random.Generator,
                lane_speed_mps: tuple[float, float] = (8.0, 16.0)
                ) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """Speed profile on a 0.5 m grid and the stops (s, dwell) of one trip; lanes are driven within
    ``lane_speed_mps`` [m/s], junction connectors at 8 m/s at most."""
    drv, car = prof.driver, prof.car
    length = path.length_m
    s = np.append(np.arange(0.0, length, 0.5), length)
    s_h, _, kappa_h = path.heading_curvature()
    kappa = np.interp(s, s_h, kappa_h)
    v_max = np.full(s.size, 8.0)
    for leg in path.legs:
        if leg.kind == "lane":
            m = (s >= leg.s0_m) & (s <= leg.s1_m)
            v_max[m] = np.clip(drv.speed_mps * rng.uniform(0.85, 1.15), *lane_speed_mps)
    fluct = np.interp(s, np.arange(0.0, length + 200.0, 100.0), rng.normal(0.0, 0.05, int(length // 100) + 3))
    v_max = np.minimum(v_max * (1.0 + fluct), lane_speed_mps[1])
    v_max = np.minimum(v_max, np.sqrt(drv.lateral_mps2 / np.maximum(np.abs(kappa), 1e-6)))
    limits = {"speed_bump": drv.bump_speed_mps, "hump": drv.hump_speed_mps, "rail": drv.rail_speed_mps}
    for op in on_path:
        d = op.defect
        if d.kind in SLOWED_FOR:
            m = (s >= op.s_m - d.length_m / 2 - 2.0) & (s <= op.s_m + d.length_m / 2 + car.wheelbase_m + 1.0)
            v_max[m] = np.minimum(v_max[m], limits[d.kind] * rng.uniform(0.85, 1.15))
    stops = [(0.0, float(rng.uniform(5.0, 15.0)))]
    for sj in path.junctions_s_m:
        if rng.random() < drv.stop_prob:
            stops.append((sj, float(rng.exponential(8.0) + 1.5)))
    if rng.random() < 0.3:                                         # traffic: a stop between junctions
        sm = float(rng.uniform(0.2, 0.8) * length)
        if all(abs(sm - op.s_m) > 15.0 for op in on_path):
            stops.append((sm, float(rng.uniform(3.0, 15.0))))
    stops.append((length, float(rng.uniform(3.0, 8.0))))
    stops.sort()
    for sp, _ in stops:
        v_max[int(np.argmin(np.abs(s - sp)))] = 0.0
    v = limit_profile(s, v_max, drv.accel_mps2, drv.decel_mps2)
    return s, v, stops


def _connector_profile(n: int, rng: np.random.Generator) -> np.ndarray:
    if n < 4:
        return np.zeros(n)
    z = iso8608_profile(n, PROFILE_DX_M, ISO8608_GD_N0_M3["A"], rng)
    return (z - z.mean()) * np.sin(np.pi * np.linspace(0.0, 1.0, n))


def _wheel_profiles(world: World, path: Path, on_path: list[OnPath], car: Car, drv: Driver, t0_epoch: float,
                    rng: np.random.Generator
                    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], list[Contact]]:
    """Surface under the left and right wheel paths of this trip (raw heights on a PROFILE_DX_M grid), the same
    without the defects, and the geometric contacts of the wheels with the defects."""
    dx = PROFILE_DX_M
    n = int(np.ceil(path.length_m / dx)) + 2
    s = np.arange(n) * dx
    s1 = np.arange(0.0, path.length_m + 2.0, 1.0)
    u = np.interp(s, s1, wander_m(s1, drv.wander_m, drv.wander_corr_m, rng))
    raw = {"left": np.zeros(n), "right": np.zeros(n)}
    for leg in path.legs:
        i0, i1 = np.searchsorted(s, [leg.s0_m, leg.s1_m])
        if i1 <= i0:
            continue
        if leg.kind == "lane":
            sig = leg.sigma_at(s[i0:i1])
            surf = world.surfaces[leg.road_id]
            raw["left"][i0:i1] = surf.height(leg.direction, "inner", sig)
            raw["right"][i0:i1] = surf.height(leg.direction, "outer", sig)
        else:
            raw["left"][i0:i1] = _connector_profile(i1 - i0, rng)
            raw["right"][i0:i1] = _connector_profile(i1 - i0, rng)
    background = {side: z.copy() for side, z in raw.items()}
    tread = np.linspace(-0.4, 0.4, 5) * car.tyre_width_m              # five points across the tread
    contacts = []
    for op in on_path:
        d, leg = op.defect, op.leg
        if not d.exists_at(t0_epoch):
            continue
        lo, hi = d.along_extent_m()
        sa, sb = sorted((leg.s_at(d.sigma_m + lo), leg.s_at(d.sigma_m + hi)))
        j0, j1 = np.searchsorted(s, [sa, sb])
        if j1 <= j0:
            continue
        ds = leg.sigma_at(s[j0:j1]) - d.sigma_m
        for side, sign in (("left", 1.0), ("right", -1.0)):
            car_lat = u[j0:j1, None] + sign * car.track_m / 2 + tread[None, :]   # left of the lane centre
            dl = leg.lane_lat_m + leg.left_sign * car_lat - d.lat_m
            raw[side][j0:j1] += defect_height_m(d, ds[:, None], dl).mean(axis=1)
            inside = defect_footprint(d, ds[:, None], dl)
            if inside.any():
                first = int(np.argmax(inside.any(axis=1)))
                contacts.append(Contact(d, side, float(s[j0 + first]), float(inside.any(axis=0).mean()), int(j0),
                                        int(j1)))
    return s, raw, background, contacts


def _mount_plan(params: ScenarioParams, prof: DriverProfile, duration_s: float, rng: np.random.Generator
                ) -> tuple[Mount, list[Handling], list[dict[str, Any]]]:
    kind = prof.mount_kind if rng.random() < params.mount_habit else str(weighted_choice(rng, params.mount_weights))
    first = draw_mount(rng, kind, prof.car.wheelbase_m)
    plans = []
    if rng.random() < params.handling_prob:
        plans.append(("handling", float(rng.uniform(0.1, 0.9) * duration_s)))
    if rng.random() < params.remount_prob:
        plans.append(("remount", float(rng.uniform(0.15, 0.85) * duration_s)))
    plans.sort(key=lambda p: p[1])
    handlings, events = [], []
    current, free_from = first, 0.0
    for what, t in plans:
        dur = float(rng.uniform(2.0, 5.0))
        t = max(t, free_from + 1.0)
        if t + dur > duration_s - 1.0:
            continue
        after = current
        if what == "remount":
            new_kind = str(weighted_choice(rng, params.mount_weights)) if rng.random() < 0.5 else kind
            after = draw_mount(rng, new_kind, prof.car.wheelbase_m)
        handlings.append(draw_handling(rng, t, dur, current, after))
        events.append({"t": t, "type": what, "duration_s": round(dur, 3)})
        current, free_from = after, t + dur
    return first, handlings, events


def _door_slams(t: np.ndarray, v_t: np.ndarray, forces: dict[str, np.ndarray], parked_s: float,
                params: ScenarioParams, rng: np.random.Generator) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Door slams while parked (after getting in, before getting out): an impulse into the body on the door's
    side (added to ``forces``) and the shell's ringing (returned, body frame)."""
    ring = np.zeros((t.size, 3))
    events: list[dict[str, Any]] = []
    slam_times = []
    if rng.random() < params.door_slam_prob:
        slam_times.append(float(rng.uniform(1.0, max(1.5, parked_s - 1.5))))
    if rng.random() < params.door_slam_prob / 2:
        slam_times.append(float(t[-1]) - float(rng.uniform(0.8, 2.0)))
    for ts in slam_times:
        i = int(np.searchsorted(t, ts))
        if i >= t.size or v_t[i] > 0.05:
            continue
        side = "L" if rng.random() < 0.7 else "R"
        impulse = rng.uniform(15.0, 40.0)                            # N s, into the body on the door's side
        pulse_s = 0.015
        tau = (t - ts) / pulse_s
        shape = np.where((tau >= 0) & (tau <= 1), np.sin(np.pi * np.clip(tau, 0, 1)), 0.0)
        for c in (f"F{side}", f"R{side}"):
            forces[c] = forces[c] - impulse / 2 * np.pi / (2 * pulse_s) * shape
        ring += door_slam_ring(t, ts, rng)
        events.append({"t": ts, "type": "door_slam", "duration_s": 0.3})
    return ring, events


def _mount_segments(first: Mount, handlings: list[Handling]) -> list[tuple[float, Mount]]:
    """(start [s since the trip's start], mount) of each stretch the phone sits in one mount, in time order."""
    return [(0.0, first)] + [(h.t0_s, h.after) for h in handlings if h.after is not h.before]


def _phone_streams(t: np.ndarray, kin: CarKinematics, body: BodyMotion, extra: np.ndarray, first: Mount,
                   handlings: list[Handling], fs: float) -> tuple[np.ndarray, np.ndarray]:
    """True specific force and angular rate in the phone frame at the simulation rate."""
    orient = orientation_track(t, first, handlings)
    segments = _mount_segments(first, handlings)
    f_body = np.empty((t.size, 3))
    for k, (ta, mount) in enumerate(segments):                     # one lever arm and resonance per mount
        tb = segments[k + 1][0] if k + 1 < len(segments) else np.inf
        m = (t >= ta) & (t < tb)
        f_mount = body_specific_force(kin, body, mount.position_m) + extra
        f_body[m] = mount_filter(f_mount, mount.resonance_hz, mount.damping, fs)[m]
    f_phone = to_phone_frame(orient, f_body + orient.hand_acc)
    w_phone = to_phone_frame(orient, body_angular_rate(kin, body)) + orient.omega_phone
    return f_phone, w_phone


def simulate_trip(world: World, params: ScenarioParams, prof: DriverProfile, trip_no: int,
                  rng: np.random.Generator, out_dir: FsPath | None, scenario: str) -> TripResult:
    """Simulate one trip, write its trace (when ``out_dir`` is given) and return its truth."""
    fs = params.internal_rate_hz
    car, drv, phone = prof.car, prof.driver, prof.phone
    t0_epoch = prof.trip_starts_s[trip_no]
    trip_id = f"{scenario}-d{prof.index:02d}-t{trip_no:02d}"

    # --- where and how fast -----------------------------------------------------------------------------------
    route = _route(world, params, prof.index + trip_no, rng)
    path = build_path(world.network, route)
    on_path = _defects_on_path(world, path)
    s_grid, v_grid, stops = _speed_plan(path, on_path, prof, rng, params.lane_speed_mps)
    motion = motion_from_knots(*time_knots(s_grid, v_grid, stops), fs)
    t, s_t, v_t = motion.t_s, motion.s_m, motion.v_mps
    duration = float(t[-1])

    # --- road under each wheel ----------------------------------------------------------------------------------
    s_sp, raw, raw_bg, contacts = _wheel_profiles(world, path, on_path, car, drv, t0_epoch, rng)
    patch_m = float(rng.uniform(0.10, 0.16))
    env, env_bg = ({side: tyre_envelope_m(z, PROFILE_DX_M, radius_m=car.tyre_radius_m, patch_m=patch_m)
                    for side, z in profiles.items()} for profiles in (raw, raw_bg))

    # --- horizontal kinematics, loads, door slams ---------------------------------------------------------------
    s_h, psi_h, kappa_h = path.heading_curvature()
    psi_t = np.interp(s_t, s_h, psi_h)
    yaw = v_t * np.interp(s_t, s_h, kappa_h)
    kin = CarKinematics(a_long_mps2=motion.a_mps2, a_lat_mps2=v_t * yaw, yaw_rate_rad_s=yaw,
                        yaw_acc_rad_s2=np.gradient(yaw, 1.0 / fs))
    forces = car.load_transfer_n(kin.a_long_mps2, kin.a_lat_mps2)
    ring, events = _door_slams(t, v_t, forces, stops[0][1], params, rng)

    # --- vehicle ----------------------------------------------------------------------------------------------
    responses = {}
    for c in CORNERS:
        offset = car.wheelbase_m if c[0] == "R" else 0.0
        road = np.interp(s_t - offset, s_sp, env["left" if c[1] == "L" else "right"])
        responses[c] = simulate_corner(car.corners[c], road, fs, forces[c])
    body = body_motion(responses, car)

    # --- phone ------------------------------------------------------------------------------------------------
    first, handlings, mount_events = _mount_plan(params, prof, duration, rng)
    events.extend(mount_events)
    extra = engine_vibration(t, v_t, kin.a_long_mps2, rng, fs) + ring
    f_phone, w_phone = _phone_streams(t, kin, body, extra, first, handlings, fs)
    t_acc, acc_gaps = sample_times(duration, phone, rng)
    events.extend({"t": start, "type": "gap", "duration_s": round(length, 3)} for start, length in acc_gaps)
    accel = read_accelerometer(t, f_phone, t_acc, phone, rng)
    gyro_block = None
    if phone.has_gyro:
        t_gyr, _ = sample_times(duration, phone, rng)
        gyro = read_gyroscope(t, w_phone, t_gyr, phone, rng)
        gyro_block = {"t": np.round(t0_epoch + t_gyr, 4), "x": np.round(gyro[:, 0], 5),
                      "y": np.round(gyro[:, 1], 5), "z": np.round(gyro[:, 2], 5)}

    # --- GPS --------------------------------------------------------------------------------------------------
    gps_model = draw_gps(rng, params.gps_sigma_m)
    dec = slice(None, None, max(1, int(fs // 50)))
    # the receiver is the phone's: behind the front axle (whose arc length s_t is) by half the wheelbase less how
    # far forward of mid-wheelbase the phone is mounted at that time (a re-mount moves it)
    mounts = _mount_segments(first, handlings)
    seg = np.searchsorted([ta for ta, _ in mounts], t[dec], side="right") - 1
    phone_behind_m = car.wheelbase_m / 2 - np.array([m.position_m[0] for _, m in mounts])[seg]
    east, north = path.position(np.maximum(s_t[dec] - phone_behind_m, 0.0))
    course = np.mod(90.0 - np.degrees(psi_t[dec]), 360.0)
    fixes = simulate_gps(t[dec], east, north, v_t[dec], course, gps_model, rng)
    lat, lon = world.projection.to_latlon(fixes.east_m, fixes.north_m)

    # --- the trace --------------------------------------------------------------------------------------------
    vehicle: dict[str, Any] = {"kind": car.kind}
    if prof.report_wheelbase:
        vehicle["wheelbase_m"] = round(car.wheelbase_m, 2)
    doc: dict[str, Any] = {
        "format": FORMAT_ID, "trip_id": trip_id, "device_id": prof.device_id, "vehicle": vehicle,
        "phone": {"model": phone.name, "os": phone.os},
        "accel": {"t": np.round(t0_epoch + t_acc, 4), "x": np.round(accel[:, 0], 4),
                  "y": np.round(accel[:, 1], 4), "z": np.round(accel[:, 2], 4), "unit": "m/s2"},
    }
    if gyro_block is not None:
        doc["gyro"] = gyro_block
    doc["gps"] = {"t": np.round(t0_epoch + fixes.t_s, 3), "lat": np.round(lat, 7), "lon": np.round(lon, 7),
                  "speed": np.round(fixes.speed_mps, 2), "heading": np.round(fixes.heading_deg, 1),
                  "accuracy": np.round(fixes.accuracy_m, 1)}
    rel_path = f"trips/{trip_id}.json.gz"
    if out_dir is not None:
        (out_dir / rel_path).write_bytes(dumps_document(doc, compress=True))

    # --- truth ------------------------------------------------------------------------------------------------
    impacts, passes = trip_truth(trip_id, t0_epoch, t, s_t, v_t, car, contacts, env, env_bg, on_path)
    for e in events:
        e["trip_id"] = trip_id
        e["t"] = round(t0_epoch + e["t"], 4)
    info = {"trip_id": trip_id, "device_id": prof.device_id, "driver": prof.index,
            "file": rel_path, "start_t": round(t0_epoch, 3), "end_t": round(t0_epoch + duration, 3),
            "fs_hz": phone.fs_hz, "has_gyro": phone.has_gyro, "accel_range_g": phone.range_g,
            "mount": first.kind, "remounted": any(h.after is not h.before for h in handlings),
            "vehicle_kind": car.kind, "wheelbase_m": round(car.wheelbase_m, 3), "track_m": round(car.track_m, 3),
            "gps_sigma_m": round(gps_model.sigma_m, 2), "gps_latency_s": round(gps_model.latency_s, 3),
            "route": [list(r) for r in route], "length_m": round(path.length_m, 1),
            "drive_start_t": round(t0_epoch + stops[0][1], 3)}
    return TripResult(trip_id=trip_id, path=rel_path, impacts=impacts, passes=passes,
                      events=sorted(events, key=lambda e: e["t"]), info=info)


# --------------------------------------------------------------------------------------------------------------
# A scenario
# --------------------------------------------------------------------------------------------------------------

def plan_trips(params: ScenarioParams, seed: int) -> tuple[np.random.SeedSequence, list[tuple]]:
    """The world's seed and the trips to simulate: (driver profile, trip number, trip seed) for each."""
    root = np.random.SeedSequence(seed)
    world_seq, drivers_seq = root.spawn(2)
    jobs = []
    for i, dseq in enumerate(drivers_seq.spawn(params.n_drivers)):
        profile_seq, *trip_seqs = dseq.spawn(1 + params.trips_per_driver)
        prof = draw_profile(np.random.default_rng(profile_seq), params, i)
        jobs.extend((prof, j, tseq) for j, tseq in enumerate(trip_seqs))
    return world_seq, jobs


def scenario_world(params: ScenarioParams, seed: int, *, origin: tuple[float, float] = DEFAULT_ORIGIN) -> World:
    """The world (network, surfaces, defects) a scenario and seed simulate on."""
    seed, origin = check_seed(seed), check_origin(origin)
    world_seq, _ = plan_trips(params, seed)
    return build_world(params, np.random.default_rng(world_seq), origin=origin, start_epoch_s=START_EPOCH_S)


_WORKER: dict[str, Any] = {}


def _init_worker(world: World, params: ScenarioParams, out_dir: FsPath, scenario: str) -> None:
    _WORKER.update(world=world, params=params, out_dir=out_dir, scenario=scenario)


def _run_job(job: tuple) -> TripResult:
    prof, j, tseq = job
    w = _WORKER
    return simulate_trip(w["world"], w["params"], prof, j, np.random.default_rng(tseq), w["out_dir"], w["scenario"])


def generate(scenario: str | ScenarioParams, seed: int, out_dir: str | os.PathLike, *, drivers: int | None = None,
             trips_per_driver: int | None = None, origin: tuple[float, float] = DEFAULT_ORIGIN,
             progress: bool | None = None, workers: int = 1) -> dict[str, Any]:
    """Simulate a scenario into ``out_dir`` (trips/*.json.gz and truth.json); returns the truth.

    ``progress``: a tqdm bar (None = only on a terminal). ``workers`` > 1 simulates trips in processes; the
    output is the same bytes either way. ``seed``, ``workers`` and ``origin`` are checked before anything is
    written (:func:`bump.sim.scenario.check_origin`); bad ones raise ScenarioError (a ValueError).
    """
    params = scenario if isinstance(scenario, ScenarioParams) else scenario_params(
        scenario, drivers=drivers, trips_per_driver=trips_per_driver)
    seed, workers, origin = check_seed(seed), check_workers(workers), check_origin(origin)   # before any writing
    out = FsPath(out_dir)
    for folder in (out, out / "trips"):
        if folder.exists() and not folder.is_dir():
            raise ScenarioError(f"{folder} is a file, not a folder; give another output folder", field="out_dir")
    (out / "trips").mkdir(parents=True, exist_ok=True)
    world_seq, jobs = plan_trips(params, seed)
    world = build_world(params, np.random.default_rng(world_seq), origin=origin, start_epoch_s=START_EPOCH_S)
    bar = tqdm(total=len(jobs), desc=f"simulate {params.name}", unit="trip", disable=None if progress is None
               else not progress)
    results: list[TripResult] = []
    _init_worker(world, params, out, params.name)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                 initargs=(world, params, out, params.name)) as pool:
            for res in pool.map(_run_job, jobs, chunksize=1):
                results.append(res)
                bar.update()
    else:
        for job in jobs:
            results.append(_run_job(job))
            bar.update()
    bar.close()
    written = {FsPath(r.path).name for r in results}
    ours = re.compile("(" + "|".join(SCENARIOS) + r")-d\d+-t\d+\.json\.gz")
    for stale in (out / "trips").glob("*.json.gz"):             # trips of an earlier run of a scenario
        if stale.name not in written and ours.fullmatch(stale.name):
            stale.unlink()
    truth = build_truth(world, params, seed, results)
    (out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    return truth
