"""Serve the HTTP API and the crews' map page with uvicorn (``api.create_app``).

Settings come from the environment (``BUMP_DB_PATH``, ``BUMP_PUBLIC_READ``, ``BUMP_MAX_BODY_BYTES``, ...; see
``api/settings.py``); the options below override them. With ``--demo DIR`` the folder's traces are first ingested
into the database (trips already stored are skipped), the ranked defects are listed, and a new crew token is
printed: the `make run` path.

Client addresses (the per-address limit on device registrations) are the TCP peer's: X-Forwarded-For and
X-Forwarded-Proto are ignored unless ``--forwarded-allow-ips`` names the reverse proxies trusted to set them (else
anyone who can reach the port, or a proxy passing the header through, could pick their own address).

Examples:
  bump serve --db build/bump.db
  bump serve --demo sample_traces --db build/bump.db      # make run
  BUMP_PUBLIC_READ=false bump serve --db /srv/bump.db --host 0.0.0.0 --workers 2
  bump serve --db /srv/bump.db --forwarded-allow-ips 127.0.0.1   # behind nginx on the same host
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bump import service
from bump.cli import run as run_cli
from bump.store import Store

NAME = "serve"
HELP = "serve the HTTP API and the map page (uvicorn)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="FILE", help="SQLite database (default: $BUMP_DB_PATH or build/bump.db)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default: %(default)s)")
    p.add_argument("--public-read", action=argparse.BooleanOptionalAction, default=None,
                   help="defects, maps and Open311 readable without a token (default: on)")
    p.add_argument("--tile-url", metavar="URL", help="map tile URL template for the map page (default: none)")
    p.add_argument("--privacy-trim-m", type=float, metavar="M",
                   help="no GPS within M metres of a trip's start or end is shown (default: 200)")
    p.add_argument("--demo", metavar="DIR", help="first ingest DIR's traces, list the defects, print a crew token")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--forwarded-allow-ips", metavar="IPS", default=os.environ.get("BUMP_FORWARDED_ALLOW_IPS"),
                   help="comma-separated addresses or networks of reverse proxies whose X-Forwarded-For / "
                        "X-Forwarded-Proto headers are trusted ('*': any; only when every client comes through "
                        "the proxy). Default: $BUMP_FORWARDED_ALLOW_IPS, else none: the headers are ignored and "
                        "rate limits key on the connecting address")


def _environment(args: argparse.Namespace) -> Path:
    """Put the options into the environment the app's settings read (every worker process inherits it)."""
    db = Path(args.db or os.environ.get("BUMP_DB_PATH") or "build/bump.db")
    os.environ["BUMP_DB_PATH"] = str(db)
    if args.public_read is not None:
        os.environ["BUMP_PUBLIC_READ"] = "true" if args.public_read else "false"
    if args.tile_url:
        os.environ["BUMP_TILE_URL"] = args.tile_url
    if args.privacy_trim_m is not None:
        os.environ["BUMP_PRIVACY_TRIM_M"] = repr(float(args.privacy_trim_m))
    return db


def demo(folder: str, db: Path, *, debug: bool = False) -> str:
    """Ingest ``folder`` into ``db`` (idempotent), list the defects, create a crew token; returns the token."""
    db.parent.mkdir(parents=True, exist_ok=True)
    run_cli.run(argparse.Namespace(folder=folder, db=str(db), limit=10, debug=debug))
    with Store.open(db) as store:
        token, _ = service.create_token(store, "crew", label="demo crew")
    return token


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """uvicorn's settings for these options. Forwarded headers are trusted only from ``--forwarded-allow-ips``
    (uvicorn's own default trusts them from 127.0.0.1, where anyone on the host can set them)."""
    allow = (args.forwarded_allow_ips or "").strip()
    return {"host": args.host, "port": args.port, "workers": args.workers, "log_level": args.log_level,
            "proxy_headers": bool(allow), "forwarded_allow_ips": allow or None}


def run(args: argparse.Namespace) -> int:
    import uvicorn

    db = _environment(args)
    if args.demo:
        token = demo(args.demo, db, debug=args.debug)
        print(f"\nMap: http://{args.host}:{args.port}/   API docs: http://{args.host}:{args.port}/docs")
        print("Crew token (paste it into the map page to mark defects repaired or dismissed):")
        print(token, flush=True)
    uvicorn.run("api.app:create_app", factory=True, **uvicorn_options(args))
    return 0
