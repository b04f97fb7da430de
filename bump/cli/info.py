"""Print a quality summary of each trace: format, duration, sample rate, jitter, GPS fixes, problems.

Examples:
  bump info sample_traces/trips/*.json.gz
  bump info --json export.zip
"""

from __future__ import annotations

import argparse
import sys

import orjson

import ingest
from bump.cli.inputs import inputs_of
from ingest.errors import BumpError

NAME = "info"
HELP = "quality summary of trace files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="trace files, export folders or zips, folders of traces (each recording is read)")
    p.add_argument("--json", action="store_true", help="one JSON object per trace (JSON Lines)")
    p.add_argument("--format", choices=ingest.format_names(), help="force a reader instead of sniffing")


def summary(trace: ingest.Trace, path: str) -> dict:
    q = trace.quality
    return {"file": path, "format": trace.source_format, "trip_id": trace.trip_id,
            "device_id": trace.device_id, "duration_s": round(q.duration_s, 3),
            "accel_rate_hz": round(q.accel_rate_hz, 3), "gps_fixes": q.gps_fixes,
            "problems": list(q.problems), "quality": q.to_dict()}


def run(args: argparse.Namespace) -> int:
    paths, status = inputs_of(args, NAME)                  # a folder of recordings: each of them
    for path in paths:
        try:
            trace = ingest.read(path, format=args.format)
        except BumpError as exc:
            if args.debug or len(paths) == 1:
                raise
            print(f"bump info: error: {exc}", file=sys.stderr)
            status = 2
            continue
        s = summary(trace, path)
        if args.json:
            sys.stdout.write(orjson.dumps(s).decode() + "\n")
            continue
        q = trace.quality
        dropped = ", ".join(f"{k}={v}" for k, v in q.dropped.items()) or "none"
        print(f"{path}\n  format {s['format']}  trip {trace.trip_id}  device {trace.device_id}\n"
              f"  {q.n_samples} samples over {q.duration_s:.1f} s at {q.accel_rate_hz:.1f} Hz "
              f"(jitter {q.jitter_s * 1e3:.2f} ms, {q.n_gaps} gaps, longest {q.longest_gap_s:.2f} s)\n"
              f"  gyro {f'{q.gyro_rate_hz:.1f} Hz' if trace.has_gyro else 'none'}  GPS fixes {q.gps_fixes}"
              f"  dropped: {dropped}")
        for problem in q.problems:
            print(f"  ! {problem}")
    return status
