"""The main job on a folder of traces: detect impacts and roughness in every trip and summarise.

When the folder holds a simulator truth.json, each trip's impacts are also scored against it.

Example:
  bump run sample_traces
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

import ingest
from bump.evaluate import evaluate_impacts, load_truth
from detect import DetectorParams, detect

NAME = "run"
HELP = "detect impacts in every trace of a folder and summarise (the `make run` job)"
TRACE_SUFFIXES = (".json", ".json.gz", ".zip", ".csv")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="DIR", help="folder with trips/ (or trace files) and optional truth.json")


def trace_files(folder: Path) -> list[Path]:
    root = folder / "trips" if (folder / "trips").is_dir() else folder
    return sorted(p for p in root.iterdir() if p.name.endswith(TRACE_SUFFIXES) and p.name != "truth.json")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    files = trace_files(folder)
    if not files:
        raise ingest.FormatError("holds no trace files (*.json, *.json.gz, *.zip, *.csv)", source=str(folder))
    truth = load_truth(folder / "truth.json") if (folder / "truth.json").exists() else None
    params = DetectorParams()
    kinds: dict[str, int] = {}
    detections = []
    for path in tqdm(files, unit="trip", file=sys.stderr, disable=not sys.stderr.isatty()):
        trace = ingest.read(path)
        det = detect(trace, params)
        detections.append(det)
        for k in det.impacts["kind"].tolist():
            kinds[k] = kinds.get(k, 0) + 1
    n_imp = sum(d.n_impacts for d in detections)
    print(f"{len(files)} trips, {n_imp} impacts: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    if truth is not None:
        records = {d.trip_id: [{"t": t, "kind": k} for t, k in
                               zip(d.impacts["t_s"].tolist(), d.impacts["kind"].tolist(), strict=True)]
                   for d in detections}
        score = evaluate_impacts(truth, records, trip_id=None)
        s = score.to_dict()
        print(f"against truth.json: impact recall {s['recall']:.2f}, precision {s['precision']:.2f} "
              f"(TP {s['tp']}, FP {s['fp']}, FN {s['fn']})")
    return 0
