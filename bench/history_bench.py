"""Does a trip cost more as the defects it passes grow old? Store CPU per trip over a long run on one route.

The 10-minute 100 Hz trips of ``bench/service_bench.py`` (tiles of the two 100 Hz sample trips of one phone: the
same route there and back, so each trip passes the same few defects several times) are ingested one after another
into a fresh database through ``bump.pipeline.ingest_trace`` (detection done before, not timed). By the end each
defect holds ~5 hits and ~1 pass per trip so far: thousands of hits, as a speed bump on a busy street gathers
within months. Prints the median CPU time [ms] of the store path (SQL, clustering, traversals, maps, commit) per
block of trips, and the ratio of the last block to the first. A store path that counted each defect's whole
history on every pass would grow linearly with it.

    .venv/bin/python bench/history_bench.py [--trips 800] [--blocks 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_bench import trip_bodies

import ingest
from bump import pipeline
from bump.runtime import set_up_process
from bump.store import Store
from detect import detect
from ingest.source import gunzip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trips", type=int, default=800)
    ap.add_argument("--blocks", type=int, default=8, help="blocks of trips the medians are taken over")
    args = ap.parse_args(argv)
    set_up_process()
    bodies = trip_bodies(args.trips)
    cpu_ms = np.empty(len(bodies))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "history.db")
        for i, body in enumerate(tqdm(bodies, desc="trips", unit="trip", file=sys.stderr)):
            trace = ingest.read(gunzip(body, name=f"trip {i}"), format="bump", name=f"trip {i}")
            det = detect(trace)
            c0 = time.process_time()
            pipeline.ingest_trace(store, trace, detection=det, raw=body)
            cpu_ms[i] = 1e3 * (time.process_time() - c0)
        d = store.all_defects()
        store.close()
    size = max(1, len(bodies) // args.blocks)
    print(f"{len(bodies)} trips of 10 min on one route; by the end {len(d)} defects, up to {int(d['n_hits'].max())} "
          f"hits and {int(d['n_traversals'].max())} passes each")
    medians = []
    for lo in range(0, len(bodies), size):
        medians.append(float(np.median(cpu_ms[lo:lo + size])))
        print(f"  trips {lo + 1:5d}-{min(lo + size, len(bodies)):5d}: store CPU per trip, median {medians[-1]:6.1f} ms")
    print(f"  last block / first block: {medians[-1] / medians[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
