"""Store traces in a defect database: detect impacts, cluster them into defects, update the road maps.

A trip already in the database is skipped (ingesting twice changes nothing). PATH may be a trace file of any
supported format, a phone app's export folder or zip, or a folder of traces (a ``bump simulate`` output folder:
its trips/ subfolder).

Examples:
  bump ingest sample_traces --db defects.db
  bump ingest ~/exports/*.zip --db defects.db --device my-phone
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from tqdm import tqdm

import ingest
from bump import pipeline
from bump.cli.inputs import inputs_of
from bump.store import Store
from ingest.errors import BumpError

NAME = "ingest"
HELP = "store traces in a defect database and update the defects"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="trace files, export folders or zips, folders of traces")
    p.add_argument("--db", required=True, metavar="FILE", help="SQLite database (created when missing)")
    p.add_argument("--format", choices=ingest.format_names(), help="force a reader instead of sniffing")
    p.add_argument("--device", metavar="ID", help="device id to record instead of the traces' own")
    p.add_argument("--json", action="store_true", help="one JSON summary per trip (JSON Lines) on stdout")


def _file_bytes(path: str | Path) -> bytes | None:
    """The bytes of a file (None for a folder, or when it cannot be read: the reader then says why)."""
    try:
        return Path(path).read_bytes() if Path(path).is_file() else None
    except OSError:
        return None


def run(args: argparse.Namespace) -> int:
    files, status = inputs_of(args, NAME)
    if not files:                                   # every path named nothing (reported): no database to make
        return status
    totals = {"trips": 0, "skipped": 0, "failed": 0, "impacts": 0, "new": set(), "updated": set(), "merged": set()}
    confirmed: list[int] = []
    with Store.open(args.db) as store:
        params = pipeline.database_params(store)            # those of its last reprocess, else the defaults
        bar = tqdm(files, unit="trip", file=sys.stderr, disable=not sys.stderr.isatty() or args.json)
        for k, path in enumerate(bar):
            try:
                data = _file_bytes(path)                     # stored as it came (gzip, zip), not re-serialised
                trace = ingest.read(data if data is not None else path, format=args.format, name=str(path))
                s = pipeline.ingest_trace(store, trace, params, device_id=args.device, raw=data)
            except KeyboardInterrupt:
                bar.close()
                print(f"bump ingest: stopped at file {k + 1} of {len(files)}: {totals['trips']} trips stored "
                      f"({totals['skipped']} already there), each committed whole; run the same command again to "
                      "ingest the rest", file=sys.stderr)
                raise
            except BumpError as exc:
                if args.debug or len(files) == 1:
                    raise
                tqdm.write(f"bump ingest: error: {exc}", file=sys.stderr)
                totals["failed"] += 1
                status = 2
                continue
            if args.json:
                sys.stdout.write(orjson.dumps(s.to_dict() | {"file": path}).decode() + "\n")
            if s.skipped:
                totals["skipped"] += 1
                continue
            totals["trips"] += 1
            totals["impacts"] += s.n_impacts
            totals["new"].update(s.new_defects)
            totals["updated"].update(s.updated_defects)
            totals["merged"].update(s.merged_defects)
            confirmed += [i for i, _, to in s.status_changes if to == "confirmed"]
            confirmed += [i for i in s.new_defects if store.get_defect(i)["status"] == "confirmed"]
        counts = store.count_defects()
    new = totals["new"] - totals["merged"]
    updated = totals["updated"] - new - totals["merged"]
    if not args.json:
        by_status: dict[str, int] = {}
        for (st, _), n in counts.items():
            by_status[st] = by_status.get(st, 0) + n
        print(f"{totals['trips']} trips ingested ({totals['skipped']} already stored, {totals['failed']} failed), "
              f"{totals['impacts']} impacts; defects: {len(new)} new, {len(updated)} updated, "
              f"{len(set(confirmed))} newly confirmed")
        print(f"{args.db}: " + (", ".join(f"{st} {n}" for st, n in sorted(by_status.items())) or "no defects yet"))
    return status
