"""Score detections against a simulator's truth.json.

Defects (positions): greedy one-to-one matching within --radius metres against the reportable truth defects
(potholes >= 3 cm deep, covers sunk > 2.5 cm), closest pairs first. FILE: a JSON list of {lat, lon, kind?,
confidence?}, a GeoJSON FeatureCollection of Points, or JSON Lines of such objects.

Impacts (times): per-wheel truth impacts on one defect within --group seconds are ONE expected pass (a detector
reports one impact per pass; front and rear axle hits are one pass). A detection matches a pass within --tol seconds
of any of its wheel hits, one-to-one, smallest |dt| first. FILE: `bump detect --json` output or a JSON list of
impacts with t. False positives are broken down by the nearest non-reportable feature or non-road event.

Defects are scored as of --as-of (default: the end of the truth's last trip, as `bump run` scores): a truth
pothole repaired by then is no longer reportable, and a defect still reported on it counts as a "repaired" false
positive. --as-of 0 scores every repaired pothole as still there.

Examples:
  bump evaluate --truth run/truth.json --defects defects.geojson --radius 10
  bump evaluate --truth run/truth.json --impacts detections.jsonl --trip all --json
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TypeVar

import orjson

from bump.evaluate import (
    DefectScore,
    EvaluationInputError,
    ImpactScore,
    Truth,
    evaluate_defects,
    evaluate_impacts,
    load_defects,
    load_impacts,
    load_truth,
)

T = TypeVar("T")
NAME = "evaluate"
HELP = "score detected defects or impacts against a simulator's truth.json"


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--truth", required=True, metavar="FILE", help="truth.json written by the simulator")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--defects", metavar="FILE",
                      help="reported defects: JSON list, GeoJSON, JSON Lines or CSV with lat,lon columns")
    what.add_argument("--impacts", metavar="FILE", help="detected impacts: `bump detect --json` output")
    p.add_argument("--radius", type=_positive, default=10.0, metavar="M",
                   help="match radius for defects [m] (default 10)")
    p.add_argument("--as-of", type=_non_negative, default=None, metavar="EPOCH_S",
                   help="with --defects: truth defects repaired at or before this time are no longer reportable "
                        "(default: the end of the truth's last trip, as `bump run` scores)")
    p.add_argument("--trip", default=None, metavar="ID",
                   help="with --impacts: the trip to score, or 'all' (default all)")
    p.add_argument("--tol", type=_non_negative, default=0.5, metavar="S",
                   help="largest |dt| between a detection and a truth hit [s] (default 0.5)")
    p.add_argument("--group", type=_non_negative, default=1.5, metavar="S",
                   help="largest gap between wheel hits of one pass [s] (default 1.5)")
    p.add_argument("--json", action="store_true", help="print the full score as one JSON object")


def _f(x: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def _breakdown(counts: dict[str, int]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())


def _print_defects(s: DefectScore) -> None:
    print(f"defects: {s.n_detected} reported, {s.n_reportable} reportable in truth (radius {s.radius_m:g} m)")
    print(f"  precision {_f(s.precision)}  recall {_f(s.recall)}  F1 {_f(s.f1)}  TP {s.tp}  FP {s.fp}  FN {s.fn}")
    print(f"  localisation error: median {_f(s.error_median_m, 2)} m, p90 {_f(s.error_p90_m, 2)} m")
    print(f"  false positives by nearest truth feature: {_breakdown(s.fp_by_kind)}")


def _print_impacts(s: ImpactScore) -> None:
    trips = s.trips[0] if len(s.trips) == 1 else f"{len(s.trips)} trips"
    print(f"impacts ({trips}): {s.n_detected} detected, {s.n_passes} passes over reportable defects "
          f"(tol {s.tol_s:g} s)")
    print(f"  precision {_f(s.precision)}  recall {_f(s.recall)}  F1 {_f(s.f1)}  TP {s.tp}  FP {s.fp}  FN {s.fn}")
    print(f"  timing error: median {_f(s.dt_median_s)} s, p90 {_f(s.dt_p90_s)} s")
    print(f"  false positives by nearest truth: {_breakdown(s.fp_by_kind)}")
    print(f"  near non-reportable features {s.n_near_features} (pothole-kind {s.n_pothole_on_features} "
          f"in {s.n_feature_passes} feature passes, rate {_f(s.false_pothole_rate)}), "
          f"near non-road events {s.n_near_events} (pothole-kind {s.n_pothole_on_events})")


def _load(loader: Callable[[str], T], path: str, option: str, what: str) -> T:
    """``loader(path)``, an unreadable file reported as an error naming the option and what it should hold."""
    try:
        return loader(path)
    except IsADirectoryError:
        raise EvaluationInputError(f"{option} {path} is a folder; give the path of {what}") from None
    except OSError as exc:
        raise EvaluationInputError(f"{option} {path} cannot be read ({exc.strerror}); give the path of {what}") \
            from None


def last_trip_end_s(truth: Truth) -> float | None:
    """End [epoch s] of the truth's last trip (None without trips): the time `bump run` scores defects at."""
    ends = [float(t["end_t"]) for t in truth.trips if isinstance(t.get("end_t"), int | float)]
    return max(ends) if ends else None


def run(args: argparse.Namespace) -> int:
    if args.defects is not None and args.trip is not None:
        raise EvaluationInputError("--trip applies to --impacts only; defects are scored over all trips (leave "
                                   "--trip out)")
    if args.impacts is not None and args.as_of is not None:
        raise EvaluationInputError("--as-of applies to --defects only (leave it out with --impacts)")
    truth = _load(load_truth, args.truth, "--truth", "the simulator's truth.json")
    if args.defects is not None:
        as_of_s = last_trip_end_s(truth) if args.as_of is None else args.as_of
        reported = _load(load_defects, args.defects, "--defects",
                         "reported defects (`bump defects --format json` or geojson output)")
        score: DefectScore | ImpactScore = evaluate_defects(truth, reported, args.radius, as_of_s=as_of_s)
    else:
        trip = None if args.trip in (None, "all") else args.trip
        detected = _load(load_impacts, args.impacts, "--impacts", "detected impacts (`bump detect --json` output)")
        try:
            score = evaluate_impacts(truth, detected, trip, args.tol, group_s=args.group)
        except EvaluationInputError as exc:
            if exc.source is not None:
                raise
            raise EvaluationInputError(exc.message, source=args.impacts, field=exc.field) from exc
    if args.json:
        sys.stdout.write(orjson.dumps(score.to_dict()).decode() + "\n")
    elif isinstance(score, DefectScore):
        _print_defects(score)
    else:
        _print_impacts(score)
    return 0
