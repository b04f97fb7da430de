"""IRI accuracy of ``detect.roughness`` on the simulator, against the Golden Car IRI of the true wheel paths.

For every simulated trip: the trace goes through the pipeline's signal stage (``detect.pipeline.build_signals``:
uniform grid, GPS motion, orientation, ``a_up``), then ``detect.pipeline.trip_roughness`` (``roughness_windows``,
with the gyroscope's roll and pitch when the phone has one, as ``detect()`` does) and ``aggregate_windows`` (>= 100 m).
The reference is ``detect.iri.rectified_slope`` of the raw surface under the trip's left and right wheels (ISO
background, defects, lateral wander, junction connectors), averaged over the stretch the car's mid-wheelbase
covered during the window (simulator time -> path distance), left and right paths averaged (mean roughness index).

``bump.sim`` exposes no public "profile under this trip's wheels" yet, so while ``generate`` runs (in this
process) the bench records what the simulator's own steps returned: the car's motion (``motion_from_knots``) and
the wheel-path surfaces (``_wheel_profiles``), per trip (``simulate_trip``).

    .venv/bin/python bench/roughness_accuracy.py [--scenarios smoke city hard] [--seed 7] [--drivers N] [--trips N]

Prints, per configuration, scenario and phone rate (then over all scenarios by mount, vehicle and whether the
phone has a gyroscope): windows, median and p90 of |relative error|, median signed error, share of windows within
+-25 %.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from detect.iri import rectified_slope  # noqa: E402
from detect.params import DetectorParams  # noqa: E402
from detect.pipeline import build_signals, trip_roughness  # noqa: E402
from detect.roughness import REFERENCE_CAR, ReferenceCar, aggregate_windows  # noqa: E402
from ingest.read import read  # noqa: E402

RECOMMENDED_BAND_HZ = (0.5, 6.0)    # below phone-mount resonances (detect.roughness docstring)
gen = importlib.import_module("bump.sim.generate")   # the module (bump.sim re-exports a function of that name)


@dataclass(frozen=True)
class TruthTrip:
    """What the simulator knew about one trip: time -> path distance, and the rectified slopes of both paths."""

    t0_epoch_s: float
    t_sim_s: np.ndarray
    s_sim_m: np.ndarray
    dx_m: float
    rs_cum: np.ndarray          # cumulative mean of left and right |z'_u - z'_s| per profile step, from 0
    wheelbase_m: float


@contextmanager
def recording_truth() -> Iterator[dict[str, TruthTrip]]:
    """While active, every ``bump.sim.generate.simulate_trip`` call in this process records its trip's truth."""
    names = ("simulate_trip", "motion_from_knots", "_wheel_profiles")
    original = {name: getattr(gen, name) for name in names}
    seen: dict[str, object] = {}
    out: dict[str, TruthTrip] = {}

    def motion_from_knots(*args, **kwargs):
        seen["motion"] = original["motion_from_knots"](*args, **kwargs)
        return seen["motion"]

    def wheel_profiles(world, path, on_path, car, *args, **kwargs):
        result = original["_wheel_profiles"](world, path, on_path, car, *args, **kwargs)
        seen["raw"], seen["car"] = result[1], car
        return result

    def simulate_trip(*args, **kwargs):
        seen.clear()
        result = original["simulate_trip"](*args, **kwargs)
        motion, raw, car = seen["motion"], seen["raw"], seen["car"]
        dx = gen.PROFILE_DX_M
        rs = 0.5 * (rectified_slope(raw["left"], dx) + rectified_slope(raw["right"], dx))
        out[result.trip_id] = TruthTrip(t0_epoch_s=float(result.info["start_t"]), t_sim_s=motion.t_s,
                                        s_sim_m=motion.s_m, dx_m=dx, rs_cum=np.concatenate(([0.0], np.cumsum(rs))),
                                        wheelbase_m=car.wheelbase_m)
        return result

    gen.motion_from_knots, gen._wheel_profiles, gen.simulate_trip = motion_from_knots, wheel_profiles, simulate_trip
    try:
        yield out
    finally:
        for name, fn in original.items():
            setattr(gen, name, fn)


def reference_iri(truth: TruthTrip, t_start_s: np.ndarray, t_end_s: np.ndarray) -> np.ndarray:
    """Golden Car IRI [m/km] of the stretch the car's mid-wheelbase covered between the given epoch times."""
    s = [np.interp(t - truth.t0_epoch_s, truth.t_sim_s, truth.s_sim_m) - truth.wheelbase_m / 2
         for t in (t_start_s, t_end_s)]
    n = truth.rs_cum.size - 1
    i0, i1 = (np.clip(np.round(x / truth.dx_m).astype(np.int64), 0, n) for x in s)
    return 1000.0 * (truth.rs_cum[i1] - truth.rs_cum[i0]) / np.maximum(i1 - i0, 1)


@dataclass(frozen=True)
class Config:
    """One way of calling the roughness stage."""

    name: str
    band_hz: tuple[float, float]
    use_wheelbase: bool          # calibrate with the trace's reported wheelbase (else the reference car's)


def evaluate(scenario: str, seed: int, drivers: int | None, trips: int | None, out_dir: Path,
             params: DetectorParams, configs: list[Config], length_m: float) -> list[dict]:
    """One row per (config, aggregated window) of every trip of ``scenario``."""
    with recording_truth() as replay:
        sim_truth = gen.generate(scenario, seed, out_dir, drivers=drivers, trips_per_driver=trips, progress=False,
                                 workers=1)
    rows = []
    for info in sim_truth["trips"]:                              # loop over trips
        trace = read(out_dir / info["file"])
        sig, _ = build_signals(trace, params)
        non_road = [e["t"] for e in sim_truth["events"]
                    if e["trip_id"] == info["trip_id"] and e["type"] in ("handling", "remount")]
        wheelbase = trace.vehicle.get("wheelbase_m")
        for cfg in configs:                                      # loop over configurations
            car = ReferenceCar(wheelbase_m=float(wheelbase)) if cfg.use_wheelbase and wheelbase else REFERENCE_CAR
            w = trip_roughness(sig, sig.valid, params, car, band_hz=cfg.band_hz)   # as detect() (gyro if any)
            agg = aggregate_windows(w, length_m)
            if len(agg) == 0:
                continue
            ref = reference_iri(replay[info["trip_id"]], agg["t_start_s"], agg["t_end_s"])
            for k in range(len(agg)):
                t0, t1 = agg["t_start_s"][k], agg["t_end_s"][k]
                rows.append({"config": cfg.name, "scenario": scenario, "trip_id": info["trip_id"],
                             "fs_hz": info["fs_hz"], "mount": info["mount"], "vehicle": info["vehicle_kind"],
                             "gyroscope": "yes" if info["has_gyro"] else "no", "speed_mps": agg["speed_mps"][k],
                             "handled": any(t0 - 6.0 < te < t1 for te in non_road),
                             "est": agg["iri_m_per_km"][k], "ref": ref[k]})
    return rows


def summarise(rows: list[dict], key: str) -> None:
    """Error figures of ``rows`` grouped by ``key``: median and p90 of |est / ref - 1|, median signed error."""
    if not rows:
        print("    (no windows)")
        return
    groups = sorted({r[key] for r in rows}, key=str)
    print(f"    {key:>10} {'windows':>8} {'ref IRI':>8} {'med|err|':>9} {'p90|err|':>9} {'med err':>8} {'<=25%':>6}")
    for g in [*groups, "all"] if len(groups) > 1 else groups:
        sel = [r for r in rows if g == "all" or r[key] == g]
        rel = np.array([r["est"] / r["ref"] - 1.0 for r in sel])
        ref = np.array([r["ref"] for r in sel])
        print(f"    {g!s:>10} {len(sel):>8d} {np.median(ref):>8.2f} {np.median(np.abs(rel)):>9.1%} "
              f"{np.quantile(np.abs(rel), 0.9):>9.1%} {np.median(rel):>+8.1%} {np.mean(np.abs(rel) <= 0.25):>6.0%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="+", default=["smoke", "city", "hard"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--drivers", type=int, default=None, help="override the scenario's number of drivers")
    ap.add_argument("--trips", type=int, default=1, help="trips per driver (default 1)")
    ap.add_argument("--length-m", type=float, default=100.0, help="aggregated window length [m]")
    args = ap.parse_args(argv)
    params = DetectorParams()
    configs = [Config("pipeline", tuple(params.rough_band_hz), use_wheelbase=False),
               Config("low-band", RECOMMENDED_BAND_HZ, use_wheelbase=True)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bump-iri-") as tmp:
        for scenario in args.scenarios:                          # loop over scenarios
            t0 = time.perf_counter()
            rows += evaluate(scenario, args.seed, args.drivers, args.trips, Path(tmp) / scenario, params, configs,
                             args.length_m)
            print(f"simulated and measured {scenario} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(f"IRI error on windows of >= {args.length_m:.0f} m: estimate / Golden Car IRI of the true wheel paths - 1")
    for cfg in configs:
        print(f"\n[{cfg.name}] band {cfg.band_hz[0]}-{cfg.band_hz[1]} Hz, "
              f"{'reported wheelbase' if cfg.use_wheelbase else 'reference car'}; windows without phone handling")
        mine = [r for r in rows if r["config"] == cfg.name and not r["handled"]]
        for scenario in args.scenarios:
            print(f"  {scenario}:")
            summarise([r for r in mine if r["scenario"] == scenario], "fs_hz")
        print("  all scenarios:")
        summarise(mine, "fs_hz")
        summarise(mine, "mount")
        summarise(mine, "vehicle")
        summarise(mine, "gyroscope")
        handled = [r for r in rows if r["config"] == cfg.name and r["handled"]]
        if handled:
            print("  windows with phone handling or re-mounting (not road vibration):")
            summarise(handled, "scenario")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
