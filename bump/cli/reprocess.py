"""Re-run detection on every stored raw trace and re-cluster all defects from scratch.

Use it after the detector changes (new DetectorParams or a new detector version): every hit, defect, traversal
and road cell is rebuilt from the raw traces kept in the database; crews' decisions (repaired, dismissed) move to
the re-clustered defect at the same spot. One transaction: an interrupted run changes nothing.

Examples:
  bump reprocess --db defects.db
  bump reprocess --db defects.db --params detector.json      # {"threshold_ratio": 5.0, ...}
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from tqdm import tqdm

from bump import pipeline
from bump.store import Store
from detect.params import DetectorParams
from ingest.errors import BumpError

NAME = "reprocess"
HELP = "re-run detection and clustering on every stored trace"


class ParamsFileError(BumpError, ValueError):
    code = "params_file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, metavar="FILE", help="database written by `bump ingest`")
    p.add_argument("--params", metavar="JSON", help="detector parameters to change (JSON object; others default)")


def load_params(path: str | None) -> DetectorParams:
    if path is None:
        return DetectorParams()
    try:
        data = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ParamsFileError(f"is not valid JSON ({exc})", source=path) from None
    if not isinstance(data, dict):
        raise ParamsFileError("must be a JSON object of DetectorParams fields", source=path)
    try:
        return DetectorParams.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ParamsFileError(str(exc), source=path) from None


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
