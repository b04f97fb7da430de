"""Convert any supported input to the canonical bump.trace/1 JSON (gzip when the output ends in .gz).

Example:
  bump convert SensorLogger-export.zip --out trip.json.gz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ingest

NAME = "convert"
HELP = "write any supported input as bump.trace/1 JSON"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH", help="trace file, export folder or zip")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.json or .json.gz)")
    p.add_argument("--format", choices=ingest.format_names(), help="force a reader instead of sniffing")


def run(args: argparse.Namespace) -> int:
    trace = ingest.read(args.path, format=args.format)
    out = Path(args.out)
    out.write_bytes(ingest.dumps(trace, compress=out.suffix == ".gz"))
    print(f"{args.path} ({trace.source_format}) -> {out}: {trace.n_samples} samples, "
          f"{trace.quality.gps_fixes} GPS fixes")
    return 0
