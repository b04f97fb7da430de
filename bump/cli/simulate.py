"""Simulate drivers' phones on a road network with known defects: trips/*.json.gz plus truth.json.

Physics, not drawn waveforms: ISO 8608 roads, potholes, covers, bumps, joints and rail crossings under a
rolling tyre, four quarter-cars and a rigid body, drivers who slow for bumps and wander in their lane, phones
in cradles, cup holders or lying flat, and GPS with correlated error. Deterministic for a seed.

--out is created if missing (parents too); trips of an earlier run of a scenario in it are replaced.

Examples:
  bump simulate --scenario smoke --seed 9 --out /tmp/smoke     # the committed sample_traces/ (same bytes)
  bump simulate --scenario city --seed 1 --out /tmp/city --workers 2
  bump simulate --scenario hard --seed 2 --out /tmp/hard --drivers 5 --trips-per-driver 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bump.sim.generate import generate
from bump.sim.scenario import (
    DEFAULT_ORIGIN,
    MAX_ORIGIN_LAT_DEG,
    SCENARIOS,
)

NAME = "simulate"
HELP = "generate simulated phone traces and their truth"


def _scenario_defaults(attr: str) -> str:
    return ", ".join(f"{name} {getattr(SCENARIOS[name], attr)}" for name in sorted(SCENARIOS))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="smoke", help="parameter set (default smoke)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed, a whole number >= 0 (default 0); the same seed gives the same bytes")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (trips/ and truth.json); created if missing")
    p.add_argument("--drivers", type=int, metavar="K",
                   help=f"number of drivers, one phone each, 1..1000 (default the scenario's: "
                        f"{_scenario_defaults('n_drivers')})")
    p.add_argument("--trips-per-driver", type=int, metavar="M",
                   help=f"trips per driver, 1..1000 (default the scenario's: {_scenario_defaults('trips_per_driver')})")
    p.add_argument("--origin", type=float, nargs=2, metavar=("LAT", "LON"), default=None,
                   help=f"centre of the local frame (default Boston, {DEFAULT_ORIGIN[0]} {DEFAULT_ORIGIN[1]}); "
                        f"|LAT| <= {MAX_ORIGIN_LAT_DEG:g}, and LON far enough from +-180 that no road crosses it")
    p.add_argument("--workers", type=int, default=1, help="processes simulating trips in parallel, >= 1 (default 1)")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    origin = DEFAULT_ORIGIN if args.origin is None else tuple(args.origin)
    # generate() checks every option before it writes anything (bad ones: ScenarioError, exit 2)
    truth = generate(args.scenario, args.seed, args.out, drivers=args.drivers, trips_per_driver=args.trips_per_driver,
                     workers=args.workers, origin=origin)
    n_trips, n_dev = len(truth["trips"]), len({t["device_id"] for t in truth["trips"]})
    print(f"{Path(args.out) / 'trips'}: {n_trips} trips from {n_dev} devices; {len(truth['defects'])} defects, "
          f"{len(truth['impacts'])} wheel impacts -> {Path(args.out) / 'truth.json'} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0
