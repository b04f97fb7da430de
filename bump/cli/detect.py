"""Detect impacts and measure roughness in trace files.

Without --json: a readable table per trace. With --json: JSON Lines, one object per trace:
  {"trip_id", "file", "detector", "impacts": [{"t", "lat", "lon", "kind", "severity", "confidence",
   "speed_mps", ...}], "roughness": [{"t_start_s", "t_end_s", "lat", "lon", "heading_deg", "distance_start_m",
   "length_m", "speed_mps", "rms_mps2", "iri_m_per_km", "valid"}], "quality": {...}}
Times in epoch seconds, positions in degrees (WGS84; null where unknown), severity in cm.

Examples:
  bump detect sample_traces/trips/*.json.gz
  bump detect --json clips/*.json > impacts.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from tqdm import tqdm

import ingest
from bump.cli.inputs import inputs_of
from bump.report import detection_summary
from detect import DetectorParams, detect
from ingest.errors import BumpError

NAME = "detect"
HELP = "find impacts (potholes, bumps, joints, covers) and roughness in traces"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="trace files, export folders or zips, folders of traces (each recording is read)")
    p.add_argument("--json", action="store_true", help="JSON Lines, one object per trace")
    p.add_argument("--format", choices=ingest.format_names(), help="force a reader instead of sniffing")
    p.add_argument("--params", metavar="FILE", help="JSON file of DetectorParams overrides")
    p.add_argument("--all-candidates", action="store_true", help="table: also list rejected candidates")


class ParamsFileError(BumpError, ValueError):
    code = "params_file"


def load_params(path: str | None) -> DetectorParams:
    """DetectorParams from a JSON file of fields to change (the rest default); defaults without a file. Every
    problem (unreadable file, bad JSON, unknown name, bad value) is a one-line :class:`ParamsFileError`."""
    if path is None:
        return DetectorParams()
    if path.lstrip().startswith("{"):
        raise ParamsFileError("--params takes the path of a JSON file, not inline JSON; write the object to a file "
                              f"(e.g. detector.json holding {path.strip()}) and pass its path")
    try:
        data = orjson.loads(Path(path).read_bytes())
    except IsADirectoryError:
        raise ParamsFileError("is a folder; give the path of a JSON file of DetectorParams fields", source=path) \
            from None
    except OSError as exc:
        raise ParamsFileError(f"cannot be read ({exc.strerror}); give the path of a JSON object of DetectorParams "
                              "fields, e.g. {\"threshold_ratio\": 3.0}", source=path) from None
    except orjson.JSONDecodeError as exc:
        raise ParamsFileError(f"is not valid JSON ({exc})", source=path) from None
    if not isinstance(data, dict):
        raise ParamsFileError("must be a JSON object of DetectorParams fields", source=path)
    try:
        return DetectorParams.from_dict(data)      # names and values checked (detect.params.ParamsError)
    except (TypeError, ValueError) as exc:
        raise ParamsFileError(str(exc), source=path) from None


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    paths, status = inputs_of(args, NAME)                  # a folder of recordings: each of them
    bar = tqdm(paths, unit="trace", disable=len(paths) < 20 or not sys.stderr.isatty(), file=sys.stderr)
    for path in bar:
        try:
            trace = ingest.read(path, format=args.format)
        except BumpError as exc:
            if len(paths) == 1:
                raise
            print(f"bump detect: error: {exc}", file=sys.stderr)
            status = 2
            continue
        det = detect(trace, params)
        summary = detection_summary(det, trace, file=str(path))
        if args.json:
            sys.stdout.write(orjson.dumps(summary).decode() + "\n")
            continue
        _print_table(summary, det, args.all_candidates)
    return status


def _print_table(summary: dict, det, all_candidates: bool) -> None:
    """A readable table of one trace's impacts, written past the progress bar (tqdm.write), not over it."""
    lines = [f"{summary['file']}  trip {summary['trip_id']}  {len(summary['impacts'])} impacts, "
             f"{len(summary['roughness'])} roughness windows",
             f"  {'time (s)':>10} {'kind':<10} {'sev':>6} {'conf':>5} {'speed':>6} {'lat':>10} {'lon':>11}"]
    lines[1:1] = [f"  ! {problem}" for problem in summary["quality"].get("problems", [])]   # what reading changed
    t0 = det.signals.t_s[0]
    for imp in summary["impacts"]:
        lat = f"{imp['lat']:.6f}" if imp["lat"] is not None else "-"
        lon = f"{imp['lon']:.6f}" if imp["lon"] is not None else "-"
        speed = f"{imp['speed_mps']:.1f}" if imp["speed_mps"] is not None else "-"
        lines.append(f"  {imp['t'] - t0:10.2f} {imp['kind']:<10} {imp['severity']:6.1f} {imp['confidence']:5.2f} "
                     f"{speed:>6} {lat:>10} {lon:>11}")
    if all_candidates:
        cand = det.candidates
        for i in range(len(cand)):
            if cand["rejected"][i]:
                lines.append(f"  {cand['t_s'][i] - t0:10.2f} rejected: {cand['rejected'][i]}")
    tqdm.write("\n".join(lines), file=sys.stdout)
