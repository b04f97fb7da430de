"""Re-run detection on every stored raw trace and re-cluster all defects from scratch.

Use it after the detector changes (new DetectorParams or a new detector version): every hit, defect, traversal
and road cell is rebuilt from the raw traces kept in the database; crews' decisions (repaired, dismissed) move to
the re-clustered defect at the same spot. One transaction: an interrupted run changes nothing.

Examples:
  bump reprocess --db defects.db
  bump reprocess --db defects.db --params detector.json      # a file holding {"threshold_ratio": 5.0, ...}
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from bump import pipeline
from bump.cli.detect import load_params
from bump.store import Store

NAME = "reprocess"
HELP = "re-run detection and clustering on every stored trace"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, metavar="FILE", help="database written by `bump ingest`")
    p.add_argument("--params", metavar="FILE",
                   help="JSON file of DetectorParams fields to change, e.g. {\"threshold_ratio\": 5.0} (the rest "
                        "default); a path, not inline JSON")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    with Store.open(args.db, create=False) as store:
        n = len(store.trips())
        with tqdm(total=n, unit="trip", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
            summary = pipeline.reprocess(store, params, progress=bar.update)
    s = summary.to_dict()
    print(f"{s['trips']} trips re-detected with {params.version} ({params.digest()}): {s['hits']} hits, "
          f"{s['defects']} defects (" + ", ".join(f"{k} {v}" for k, v in sorted(s["by_status"].items())) + ")"
          + (f"; crew decisions carried over {s['crew_decisions_carried_over']}, lost {s['crew_decisions_lost']}"
             if s["crew_decisions_carried_over"] or s["crew_decisions_lost"] else ""))
    return 0
