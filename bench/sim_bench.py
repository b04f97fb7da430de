"""Seconds to simulate each scenario (smoke, city, hard) into a temporary folder.

Budgets (issue): smoke a few seconds; city (20 drivers x 3 trips) under ~2 minutes on 2 cores.

  .venv/bin/python bench/sim_bench.py                # all three, one process
  .venv/bin/python bench/sim_bench.py --workers 2    # trips in two processes
  .venv/bin/python bench/sim_bench.py smoke city
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bump.sim.generate import generate
from bump.sim.scenario import SCENARIOS

BUDGET_S = {"smoke": 10.0, "city": 120.0, "hard": 120.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)} (default all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    over = False
    for name in args.scenarios or list(SCENARIOS):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            truth = generate(name, args.seed, tmp, progress=False, workers=args.workers)
            dt = time.perf_counter() - t0
            size_mb = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 1e6
        n = len(truth["trips"])
        flag = "" if dt <= BUDGET_S[name] else f"  OVER the {BUDGET_S[name]:.0f} s budget"
        over |= bool(flag)
        print(f"sim {name:6s} {dt:7.1f} s  {n:3d} trips  {dt / n:5.2f} s/trip  {size_mb:6.1f} MB  "
              f"workers={args.workers}{flag}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
