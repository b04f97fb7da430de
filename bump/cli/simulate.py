"""Simulate drivers' phones on a road network with known defects: trips/*.json.gz plus truth.json.

Physics, not drawn waveforms: ISO 8608 roads, potholes, covers, bumps, joints and rail crossings under a
rolling tyre, four quarter-cars and a rigid body, drivers who slow for bumps and wander in their lane, phones
in cradles, cup holders or lying flat, and GPS with correlated error. Deterministic for a seed.

Examples:
  bump simulate --scenario smoke --seed 7 --out sample_traces
  bump simulate --scenario city --seed 1 --out /tmp/city --workers 2
  bump simulate --scenario hard --seed 2 --out /tmp/hard --drivers 5 --trips-per-driver 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bump.sim.generate import generate
from bump.sim.scenario import SCENARIOS

NAME = "simulate"
HELP = "generate simulated phone traces and their truth"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="smoke", help="parameter set (default smoke)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (trips/ and truth.json)")
    p.add_argument("--drivers", type=int, metavar="K", help="number of drivers (one phone each)")
    p.add_argument("--trips-per-driver", type=int, metavar="M", help="trips per driver")
    p.add_argument("--origin", type=float, nargs=2, metavar=("LAT", "LON"), default=None,
                   help="centre of the local frame (default Boston, 42.3601 -71.0589)")
    p.add_argument("--workers", type=int, default=1, help="processes simulating trips in parallel (default 1)")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    kwargs = {} if args.origin is None else {"origin": tuple(args.origin)}
    truth = generate(args.scenario, args.seed, args.out, drivers=args.drivers, trips_per_driver=args.trips_per_driver,
                     workers=max(1, args.workers), **kwargs)
    n_trips, n_dev = len(truth["trips"]), len({t["device_id"] for t in truth["trips"]})
    print(f"{Path(args.out) / 'trips'}: {n_trips} trips from {n_dev} devices; {len(truth['defects'])} defects, "
          f"{len(truth['impacts'])} wheel impacts -> {Path(args.out) / 'truth.json'} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0
