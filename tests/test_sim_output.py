"""What `bump simulate` writes: traces that ingest reads, a consistent truth, determinism, and truth impacts that
line up with physical responses in the signals."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import orjson
import pytest

import ingest
from bump.cli.main import main
from bump.sim.generate import generate, plan_trips, scenario_world
from bump.sim.scenario import DEFAULT_ORIGIN, SCENARIOS, START_EPOCH_S, scenario_params
from bump.sim.truth import defect_truth
from detect.geo import LocalProjection

SEED = 11
TYPES = {"pothole", "cover", "speed_bump", "hump", "joint", "rail"}
WHEELS = {"FL", "FR", "RL", "RR"}
SAMPLE = Path(__file__).resolve().parents[1] / "sample_traces"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("smoke")
    generate("smoke", SEED, out, progress=False)
    return out, orjson.loads((out / "truth.json").read_bytes())


@pytest.fixture(scope="module")
def traces(smoke: tuple[Path, dict]) -> dict[str, ingest.Trace]:
    out, truth = smoke
    return {t["trip_id"]: ingest.read(out / t["file"]) for t in truth["trips"]}


def test_every_trace_reads_back_through_ingest(smoke, traces) -> None:
    out, truth = smoke
    files = sorted(p.name for p in (out / "trips").glob("*.json.gz"))
    assert files == sorted(Path(t["file"]).name for t in truth["trips"])
    assert len({t["device_id"] for t in truth["trips"]}) >= 4
    for info in truth["trips"]:
        tr = traces[info["trip_id"]]
        assert (tr.trip_id, tr.device_id) == (info["trip_id"], info["device_id"])
        assert tr.quality.accel_rate_hz == pytest.approx(info["fs_hz"], rel=0.02)
        assert tr.has_gyro == info["has_gyro"]
        assert tr.quality.gps_fixes > 0.6 * tr.duration_s
        assert tr.t_s[0] >= START_EPOCH_S and abs(tr.t_s[0] - info["start_t"]) < 0.1
        assert 0.9 * tr.duration_s * info["fs_hz"] < tr.n_samples < 1.001 * tr.duration_s * info["fs_hz"] + 1
        kind = tr.vehicle["kind"]
        assert kind in {"car", "suv", "pickup"} and tr.phone["model"]


def test_truth_has_the_promised_shape(smoke) -> None:
    _, truth = smoke
    assert truth["origin"] == {"lat": DEFAULT_ORIGIN[0], "lon": DEFAULT_ORIGIN[1]}
    kinds = defaultdict(int)
    for d in truth["defects"]:
        kinds[d["type"]] += 1
        assert d["type"] in TYPES
        assert {"id", "type", "lat", "lon", "length_m", "width_m", "lateral_offset_m", "direction",
                "reportable"} <= d.keys()
        assert "depth_m" in d or "height_m" in d
        assert abs(d["lat"] - DEFAULT_ORIGIN[0]) < 0.02 and abs(d["lon"] - DEFAULT_ORIGIN[1]) < 0.03
        if d["type"] in {"speed_bump", "hump", "joint", "rail"}:
            assert d["direction"] == "both" and d["reportable"] is False
        else:
            assert d["direction"] in {"forward", "reverse"} and 0.0 < d["lateral_offset_m"] < 3.5
        if d["type"] == "pothole":
            assert 0.03 <= d["depth_m"] <= 0.12 and 0.3 <= d["length_m"] <= 1.2 and 0.3 <= d["width_m"] <= 1.0
            assert d["reportable"] is True
        if d["type"] == "cover":
            assert d["reportable"] is (d.get("depth_m", 0.0) > 0.025)
        if d["type"] == "speed_bump":
            assert 0.07 <= d["height_m"] <= 0.10 and 0.3 <= d["length_m"] <= 0.9
    assert kinds["pothole"] >= 3 and kinds["cover"] >= 1 and kinds["speed_bump"] >= 1 and kinds["joint"] >= 1
    ids = {d["id"] for d in truth["defects"]}
    trips = {t["trip_id"] for t in truth["trips"]}
    for i in truth["impacts"]:
        assert i["defect_id"] in ids and i["trip_id"] in trips and i["wheel"] in WHEELS and i["type"] in TYPES
        assert 0.0 <= i["speed_mps"] < 17.0 and 0.0 < i["overlap"] <= 1.0 and abs(i["input_m"]) < 0.13
    for e in truth["events"]:
        assert e["type"] in {"door_slam", "handling", "remount", "gap"} and e["trip_id"] in trips


def test_rear_wheels_follow_front_wheels_by_wheelbase_over_speed(smoke) -> None:
    _, truth = smoke
    wheelbase = {t["trip_id"]: t["wheelbase_m"] for t in truth["trips"]}
    by_key = {(i["trip_id"], i["defect_id"], i["wheel"]): i for i in truth["impacts"]}
    n = 0
    for (trip, defect, wheel), front in by_key.items():
        if wheel[0] != "F" or (trip, defect, "R" + wheel[1]) not in by_key:
            continue
        rear = by_key[(trip, defect, "R" + wheel[1])]
        speed = (front["speed_mps"] + rear["speed_mps"]) / 2
        if speed < 1.0:
            continue
        assert rear["t"] - front["t"] == pytest.approx(wheelbase[trip] / speed, rel=0.15)
        n += 1
    assert n > 20


def test_full_width_features_are_hit_by_all_four_wheels_and_potholes_only_sometimes(smoke) -> None:
    _, truth = smoke
    wheels = defaultdict(set)
    for i in truth["impacts"]:
        wheels[(i["trip_id"], i["defect_id"])].add(i["wheel"])
    types = {d["id"]: d["type"] for d in truth["defects"]}
    pothole_passes, pothole_hits = 0, 0
    for p in truth["passes"]:
        if types[p["defect_id"]] in {"speed_bump", "hump", "joint"}:
            assert wheels[(p["trip_id"], p["defect_id"])] == WHEELS
        if types[p["defect_id"]] == "pothole" and p["in_lane"] and p["present"]:
            pothole_passes += 1
            pothole_hits += p["hit"]
            assert p["hit"] == bool(wheels[(p["trip_id"], p["defect_id"])])
            assert len(wheels[(p["trip_id"], p["defect_id"])]) <= 2                  # one side of the car
    assert 0.3 < pothole_hits / pothole_passes < 1.0                                     # wander: not every pass


def test_wheel_inputs_respect_the_geometry(smoke) -> None:
    """A speed bump lifts the wheel by about its height; a hole never drops it deeper than the hole, and a
    hole shorter than the tyre's footprint allows is bridged (R - sqrt(R^2 - L^2/4) with R <= 0.36 m)."""
    _, truth = smoke
    defects = {d["id"]: d for d in truth["defects"]}
    for i in truth["impacts"]:
        d = defects[i["defect_id"]]
        if d["type"] == "speed_bump":
            assert i["input_m"] == pytest.approx(d["height_m"], rel=0.2)
        if d["type"] == "pothole":
            bridge = 0.36 - np.sqrt(max(0.36**2 - (d["length_m"] / 2) ** 2, 0.0))
            assert -min(d["depth_m"], bridge) - 0.005 <= i["input_m"] <= 0.005


def test_a_repaired_pothole_is_hit_before_its_repair_and_never_after(smoke) -> None:
    _, truth = smoke
    repaired = [d for d in truth["defects"] if "repaired_after" in d]
    assert len(repaired) == 1
    d = repaired[0]
    hits = [i["t"] for i in truth["impacts"] if i["defect_id"] == d["id"]]
    assert hits and max(hits) < d["repaired_after"]
    later = [p for p in truth["passes"] if p["defect_id"] == d["id"] and p["t"] > d["repaired_after"]]
    assert later and all(not p["present"] and not p["hit"] for p in later)


def _dynamic(tr: ingest.Trace) -> np.ndarray:
    a = np.linalg.norm(tr.accel_mps2, axis=1)
    return np.abs(a - np.median(a))


def _window_max(x: np.ndarray, t_s: np.ndarray, t0: float, t1: float) -> float:
    m = (t_s >= t0) & (t_s <= t1)
    return float(x[m].max()) if m.sum() > 5 else np.nan


def _contrast(x: np.ndarray, t_s: np.ndarray, t: float, axle_lag_s: float) -> float:
    """Largest | |a| - g | within 0.25 s after ``t``, over the median of the same statistic in the 0.27 s windows
    of the 3 s around (leaving out the rear axle's hit)."""
    starts = np.concatenate((np.arange(t - 3.0, t - 0.5, 0.27), np.arange(t + axle_lag_s + 0.6, t + axle_lag_s + 3.0,
                                                                           0.27)))
    around = np.nanmedian([_window_max(x, t_s, s, s + 0.27) for s in starts])
    return _window_max(x, t_s, t - 0.02, t + 0.25) / around


def test_truth_impacts_line_up_with_transients_in_the_signal(smoke, traces) -> None:
    """At >= 100 Hz, every speed-bump impact and every pothole impact that drops a wheel by 3 cm or more (the tyre
    envelope's input, ``input_m``) stands out of its surroundings within 0.25 s after the front wheel's truth time;
    1.4 s earlier, almost never. (Grazing hits and short holes bridged by the tyre can drown in road noise: that is
    physics, and why they are left out here.)"""
    _, truth = smoke
    wheelbase = {t["trip_id"]: t["wheelbase_m"] for t in truth["trips"]}
    checked, shifted_loud = 0, 0
    for info in truth["trips"]:
        tr = traces[info["trip_id"]]
        if tr.quality.accel_rate_hz < 90:
            continue
        x = _dynamic(tr)
        for i in truth["impacts"]:
            relevant = i["type"] == "speed_bump" or (i["type"] == "pothole" and i["input_m"] <= -0.03)
            if i["trip_id"] != info["trip_id"] or i["wheel"][0] != "F" or not relevant:
                continue
            lag = wheelbase[info["trip_id"]] / max(i["speed_mps"], 1.0)
            here = _contrast(x, tr.t_s, i["t"], lag)
            if np.isnan(here):
                continue                                            # the phone dropped these samples
            assert here > 1.6, (i, here)
            shifted_loud += _contrast(x, tr.t_s, i["t"] - 1.4, lag) > 1.6
            checked += 1
    assert checked >= 10
    assert shifted_loud <= 0.25 * checked


def test_parked_phone_reads_one_g(smoke, traces) -> None:
    _, truth = smoke
    slams = defaultdict(list)
    for e in truth["events"]:
        slams[e["trip_id"]].append(e["t"])
    for info in truth["trips"]:
        tr = traces[info["trip_id"]]
        parked = (tr.t_s > info["start_t"] + 0.2) & (tr.t_s < info["drive_start_t"] - 0.5)
        for ts in slams[info["trip_id"]]:
            parked &= np.abs(tr.t_s - ts) > 1.0
        assert parked.sum() > 50
        assert np.median(np.linalg.norm(tr.accel_mps2[parked], axis=1)) == pytest.approx(9.81, abs=0.15)


def test_door_slams_happen_while_parked_and_shake_the_phone(smoke, traces) -> None:
    _, truth = smoke
    slams = [e for e in truth["events"] if e["type"] == "door_slam"]
    assert slams
    info = {t["trip_id"]: t for t in truth["trips"]}
    for e in slams:
        trip = info[e["trip_id"]]
        assert e["t"] < trip["drive_start_t"] or e["t"] > trip["end_t"] - 3.0        # parked before or after
        tr = traces[e["trip_id"]]
        near = (tr.t_s >= e["t"]) & (tr.t_s <= e["t"] + 0.3)
        calm = (tr.t_s >= e["t"] - 1.0) & (tr.t_s <= e["t"] - 0.2)
        if near.sum() > 5 and calm.sum() > 5:                               # the shell rings, mostly sideways
            dev = np.linalg.norm(tr.accel_mps2 - tr.accel_mps2[calm].mean(axis=0), axis=1)
            assert dev[near].max() > 2 * dev[calm].max()


def test_recording_gaps_in_the_truth_are_holes_in_the_trace(smoke, traces) -> None:
    _, truth = smoke
    gaps = [e for e in truth["events"] if e["type"] == "gap" and e["duration_s"] > 0.05]
    assert gaps, "the smoke scenario should lose a stretch of samples somewhere"
    for e in gaps:
        t = traces[e["trip_id"]].t_s
        inside = (t > e["t"] + 1e-3) & (t < e["t"] + e["duration_s"] - 1e-3)
        assert not inside.any()
        if e["t"] - t[0] > 1.0 and t[-1] - e["t"] - e["duration_s"] > 1.0:
            around = np.diff(t[(t > e["t"] - 0.5) & (t < e["t"] + e["duration_s"] + 0.5)])
            assert around.max() >= 0.9 * e["duration_s"]              # ... and the trace shows it


def _distance_to_polyline(px: np.ndarray, py: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    ax, ay, bx, by = xs[:-1], ys[:-1], xs[1:], ys[1:]
    dx, dy = bx - ax, by - ay
    u = np.clip(((px[:, None] - ax) * dx + (py[:, None] - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0, 1)
    return np.min(np.hypot(px[:, None] - (ax + u * dx), py[:, None] - (ay + u * dy)), axis=1)


def test_gps_fixes_scatter_around_the_roads_by_their_sigma(smoke, traces) -> None:
    _, truth = smoke
    proj = LocalProjection(truth["origin"]["lat"], truth["origin"]["lon"])
    roads = [proj.to_xy(np.array(r["lat"]), np.array(r["lon"])) for r in truth["roads"]]
    for info in truth["trips"]:
        tr = traces[info["trip_id"]]
        px, py = proj.to_xy(tr.lat_deg, tr.lon_deg)
        dist = np.min([_distance_to_polyline(px, py, *xy) for xy in roads], axis=0)
        sigma = info["gps_sigma_m"]
        assert np.median(dist) < 1.75 + 2.5 * sigma                        # lane offset + error
        assert np.all(tr.accuracy_m > 0.5 * sigma) and np.median(tr.accuracy_m) < 4 * sigma
        moving = tr.speed_mps > 3.0
        assert np.isfinite(tr.heading_deg[moving]).all()


def test_generation_is_deterministic_per_seed(tmp_path: Path) -> None:
    def files(d: Path) -> dict[str, bytes]:
        return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}

    a, b, c, w = (tmp_path / k for k in "abcw")
    generate("smoke", 5, a, drivers=2, trips_per_driver=1, progress=False)
    generate("smoke", 5, b, drivers=2, trips_per_driver=1, progress=False)
    generate("smoke", 6, c, drivers=2, trips_per_driver=1, progress=False)
    generate("smoke", 5, w, drivers=2, trips_per_driver=1, progress=False, workers=2)
    fa = files(a)
    assert len(fa) == 3 and fa == files(b) == files(w)
    assert fa["truth.json"] != files(c)["truth.json"]


def test_arterial_drivers_cruise_at_arterial_speeds(tmp_path: Path) -> None:
    generate("arterial", 4, tmp_path / "a", drivers=2, trips_per_driver=1, progress=False)
    generate("city", 4, tmp_path / "c", drivers=2, trips_per_driver=1, progress=False)
    speeds = {k: np.array([i["speed_mps"] for i in orjson.loads((tmp_path / k / "truth.json").read_bytes())["impacts"]
                           if i["type"] == "pothole"]) for k in "ac"}
    assert speeds["a"].size and speeds["c"].size
    assert np.median(speeds["a"]) > 16.0 and np.max(speeds["c"]) <= 16.0 + 1e-6      # city lanes stop at 16 m/s


def test_cli_simulate_writes_a_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--scenario", "smoke", "--seed", "3", "--out", str(tmp_path), "--drivers", "1",
                 "--trips-per-driver", "1"])
    assert code == 0
    assert (tmp_path / "truth.json").exists() and len(list((tmp_path / "trips").glob("*.json.gz"))) == 1
    assert "1 trips from 1 devices" in capsys.readouterr().out
    assert main(["simulate", "--scenario", "smoke", "--out", str(tmp_path), "--drivers", "0"]) == 2


@pytest.mark.parametrize("name", ["city", "hard"])
def test_bigger_worlds_hold_what_the_issue_asks(name: str) -> None:
    params = SCENARIOS[name]
    _, jobs = plan_trips(params, 1)
    world = scenario_world(params, 1)
    kinds = defaultdict(int)
    for d in world.defects:
        kinds[d.kind] += 1
    assert len(world.network.roads) == 8 and len(jobs) == 60
    assert kinds["pothole"] >= 10 and kinds["cover"] >= 5 and kinds["speed_bump"] and kinds["joint"]
    assert sum(d.repaired_after_s is not None for d in world.defects) == 1
    if name == "hard":
        assert kinds["cover"] + kinds["joint"] > 30
        assert params.fs_weights == {50.0: 1.0} and set(params.mount_weights) == {"cup_holder"}
        assert params.gps_sigma_m == (8.0, 8.0)


def test_dense_scenario_puts_potholes_in_groups_on_one_road() -> None:
    """``dense``: potholes in groups, neighbours 10-25 m apart on one road; every other pair of defects on a road
    still at least MIN_SPACING_M apart."""
    from itertools import pairwise

    from bump.sim.world import MIN_SPACING_M

    for seed in (1, 2):
        world = scenario_world(SCENARIOS["dense"], seed)
        by_road = defaultdict(list)
        for d in world.defects:
            by_road[d.road_id].append(d)
        close = 0
        for defects in by_road.values():
            defects.sort(key=lambda d: d.sigma_m)
            for a, b in pairwise(defects):
                gap = b.sigma_m - a.sigma_m
                if gap < MIN_SPACING_M:
                    assert a.kind == b.kind == "pothole" and 10.0 - 1e-9 <= gap <= 25.0 + 1e-9
                    close += 1
        assert close >= 4
        assert sum(d.kind == "pothole" for d in world.defects) == 15
    city = scenario_world(SCENARIOS["city"], 1)
    gaps = [abs(a.sigma_m - b.sigma_m) for a in city.defects for b in city.defects
            if a is not b and a.road_id == b.road_id]
    assert min(gaps) >= MIN_SPACING_M


def test_committed_sample_matches_its_readme_command(tmp_path: Path) -> None:
    """The README promises the same bytes from its command: a simulator change must regenerate the folder."""
    readme = (SAMPLE / "README.md").read_text()
    cmd = re.search(r"bump simulate --scenario (\w+) --seed (\d+) --out sample_traces", readme)
    assert cmd, "the README must give the exact command"
    truth = orjson.loads((SAMPLE / "truth.json").read_bytes())
    world = scenario_world(scenario_params(cmd.group(1)), int(cmd.group(2)))
    assert truth["defects"] == orjson.loads(orjson.dumps([defect_truth(world, d) for d in world.defects]))
    generate(cmd.group(1), int(cmd.group(2)), tmp_path, progress=False, workers=2)
    committed = sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*.json*"))
    assert committed == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json*"))
    stale = [str(p) for p in committed if (SAMPLE / p).read_bytes() != (tmp_path / p).read_bytes()]
    assert not stale, f"regenerate sample_traces with its README's command: {stale} differ"
    assert len({t["device_id"] for t in truth["trips"]}) >= 4
    for info in truth["trips"]:
        assert ingest.read(SAMPLE / info["file"]).trip_id == info["trip_id"]
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 5_000_000
