"""The main job on a folder of traces: ingest every trip into a defect database and show the ranked defects.

Detects impacts, clusters them into defects, updates the roughness and coverage maps (a trip already stored is
skipped, so running it again changes nothing), prints the crew's ranked list and, when the folder holds a
simulator truth.json, scores the confirmed defects against it.

Example:
  bump run sample_traces --db build/bump.db
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bump import views
from bump.cli import defects as defects_cli
from bump.cli import ingest as ingest_cli
from bump.evaluate import evaluate_defects, load_truth
from bump.store import Store

NAME = "run"
HELP = "ingest a folder of traces into a database and list the ranked defects (the `make run` job)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="DIR", help="folder with trips/ (or trace files) and optional truth.json")
    p.add_argument("--db", default="build/bump.db", metavar="FILE", help="SQLite database (default: %(default)s)")
    p.add_argument("--limit", type=int, default=20, help="defects to list (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    defects_cli.check_limit(args.limit)              # before the whole folder is ingested
    folder = Path(args.folder)
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    status = ingest_cli.run(argparse.Namespace(paths=[str(folder)], db=args.db, format=None, device=None,
                                               json=False, debug=args.debug))
    with Store.open(args.db, create=False) as store:
        page = views.list_defects(store, limit=args.limit)
        confirmed = views.list_defects(store, status="confirmed", limit=5000).defects
    shown = len(page.defects)
    which = f"the top {shown}" if page.next_cursor else f"all {shown}"
    print(f"\nRanked defects ({which}; candidates need hits from 3 devices to be confirmed):")
    print(defects_cli.table(page.defects), end="")
    truth_path = folder / "truth.json"
    if truth_path.exists():
        truth = load_truth(truth_path)
        last_s = max((float(t.get("end_t", 0.0)) for t in truth.trips), default=None)
        score = evaluate_defects(truth, confirmed, radius_m=10.0, as_of_s=last_s).to_dict()
        print(f"\nConfirmed defects vs {truth_path}: precision {score['precision']:.2f}, recall {score['recall']:.2f}"
              f" (TP {score['tp']}, FP {score['fp']}, FN {score['fn']}), median error "
              f"{score['error_median_m'] if score['error_median_m'] is not None else float('nan'):.1f} m")
    return status
