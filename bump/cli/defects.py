"""List the defects of a database, ranked by priority, or record a crew's decision on one.

By default every status but repaired and dismissed is listed (candidates too, marked as such), and spot defects
only: rough stretches (see the roughness map) and designed features (speed bumps, joints) are left out;
``--status all`` and ``--kind all`` widen the list.

Formats: ``table`` (default), ``json`` ({"defects": [...], "next_cursor": ...}), ``geojson`` (RFC 7946
FeatureCollection, [lon, lat] with 6 decimals, every field a property), ``csv`` (lat, lon columns; opens in QGIS
and kepler.gl). At most --limit defects per page; when there are more, table, csv and geojson print the
``--cursor`` of the next page on stderr (json has it as ``next_cursor``).

--bbox W,S,E,N: west, south, east, north edges in degrees, -180..180 and -90..90 with S <= N. A box with W > E
crosses the antimeridian (180 deg): it holds longitudes >= W or <= E, so W and E swapped by mistake select
everything outside the intended box instead of inside it.

Examples:
  bump defects --db defects.db
  bump defects --db defects.db --status confirmed --kind pothole --format geojson --out potholes.geojson
  bump defects --db defects.db --bbox=-71.07,42.35,-71.04,42.37 --format csv     # "=" before a minus sign
  bump defects --db defects.db --show 12
  bump defects --db defects.db --set 12 repaired --reason "patched, work order 4411" --by "crew 3"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from bump import service, views
from bump.lifecycle import CREW_STATUSES, REOPEN
from bump.store import MAX_LIST_LIMIT as MAX_LIMIT
from bump.store import Store
from ingest.errors import BumpError

NAME = "defects"
HELP = "list defects ranked by priority (table, JSON, GeoJSON, CSV) or set a crew status"


FORMATS = ("table", "json", "geojson", "csv")


class CliInputError(BumpError, ValueError):
    code = "cli_input"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, metavar="FILE", help="database written by `bump ingest`")
    p.add_argument("--status", metavar="S[,S]", help="candidate, confirmed, likely_repaired, repaired, dismissed "
                                                     "or all (default: all but repaired and dismissed)")
    p.add_argument("--kind", metavar="K[,K]", help="pothole, cover, rough, unknown, speed_bump, joint or all "
                                                   "(default: pothole, cover, unknown)")
    p.add_argument("--bbox", metavar="W,S,E,N",
                   help="only defects inside this box [deg]; W > E crosses the antimeridian (write --bbox=W,S,E,N "
                        "when W is negative)")
    p.add_argument("--limit", type=int, default=100, metavar="N",
                   help=f"at most N defects per page, 1..{MAX_LIMIT} (default 100)")
    p.add_argument("--cursor", help="next page: the next_cursor of the previous page (JSON, or stderr otherwise)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout (missing folders are created)")
    p.add_argument("--show", type=int, metavar="ID", help="one defect with its history and passes (JSON)")
    p.add_argument("--set", nargs=2, metavar=("ID", "STATUS"),
                   help=f"crew decision: {', '.join(CREW_STATUSES)} or {REOPEN} (back to the automatic status)")
    p.add_argument("--reason", help="why (required with --set)")
    p.add_argument("--by", default="crew", help="who decided (with --set; default 'crew')")


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """--bbox W,S,E,N in degrees (W > E crosses the antimeridian), checked as the HTTP API checks it."""
    if text is None:
        return None
    if not text.strip():
        raise CliInputError("--bbox is empty; give W,S,E,N in degrees, or leave --bbox out for no box")
    try:
        return service.parse_bbox(text)
    except service.BadRequestError as exc:
        raise CliInputError(f"--{exc.message}") from None


def check_filter(value: str | None, option: str) -> str | None:
    """A --status / --kind value: None (the default) when not given; one naming nothing ('' or ',') is an error."""
    if value is not None and not any(v.strip() for v in value.split(",")):
        raise CliInputError(f"{option} {value!r} names nothing; give comma-separated values or all, or leave "
                            f"{option} out for the default")
    return value


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise CliInputError(f"--limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _write(args: argparse.Namespace, text: str) -> None:
    if not args.out:
        sys.stdout.write(text)
        return
    out = Path(args.out)
    if out.is_dir():
        raise CliInputError(f"--out {args.out} is a folder; give a file name, e.g. --out {out / 'defects.txt'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliInputError(f"--out {args.out} cannot be written ({exc.strerror}); give a writable file path") \
            from None


def _json(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n"


def table(records: list[dict[str, Any]]) -> str:
    head = (f"{'id':>6} {'kind':<10} {'status':<15} {'prio':>7} {'sev cm':>6} {'conf':>5} {'hits':>5} {'dev':>4} "
            f"{'pass':>5} {'rate':>5} {'±m':>5} {'lat':>10} {'lon':>11}  last seen")
    lines = [head]
    for r in records:
        rate = "" if r["hit_rate"] is None else f"{r['hit_rate']:.2f}"
        sev = "" if r["severity"] is None else f"{r['severity']:.1f}"
        lines.append(f"{r['id']:>6} {r['kind']:<10} {r['status']:<15} {r['priority']:>7.2f} {sev:>6} "
                     f"{r['confidence']:>5.2f} {r['hits']:>5} {r['devices']:>4} {r['traversals']:>5} {rate:>5} "
                     f"{r['uncertainty_m']:>5.1f} {r['lat']:>10.6f} {r['lon']:>11.6f}  {r['last_seen'] or ''}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if not (args.set or args.show is not None):          # the list's options, checked before the database opens
        check_filter(args.status, "--status")
        check_filter(args.kind, "--kind")
        check_limit(args.limit)
    bbox = parse_bbox(args.bbox)
    with Store.open(args.db, create=False) as store:
        if args.set:
            try:
                defect_id = int(args.set[0])
            except ValueError:
                raise CliInputError(f"--set needs a defect id number, got {args.set[0]!r}", field="set") from None
            rec = views.set_status(store, defect_id, args.set[1], reason=args.reason or "", actor=args.by)
            print(f"defect {defect_id}: {rec['status']} ({rec['history'][-1]['reason']})")
            return 0
        if args.show is not None:
            _write(args, _json(views.get_defect(store, args.show)))
            return 0
        page = views.list_defects(store, status=args.status, kind=args.kind, bbox=bbox, limit=args.limit,
                                  cursor=args.cursor)
    if args.format == "json":
        _write(args, _json({"defects": page.defects, "next_cursor": page.next_cursor}))
        return 0
    if args.format == "geojson":
        _write(args, _json(views.defects_geojson(page.defects)))
    elif args.format == "csv":
        _write(args, views.defects_csv(page.defects))
    else:
        _write(args, table(page.defects))
    if page.next_cursor:        # on stderr: the data stays plain CSV / GeoJSON / table
        print(f"bump defects: more defects than --limit {args.limit}; next page: --cursor {page.next_cursor}",
              file=sys.stderr)
    return 0
