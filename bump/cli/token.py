"""Manage API tokens in a database: create a crew or admin token (printed once, alone on the last line; only its
hash is stored), revoke a token by itself or a prefix of it, list tokens (prefixes only).

Phones get device tokens from the API (POST /v1/devices), not from here.

Examples:
  bump token create --role crew --label "north depot" --db build/bump.db
  bump token revoke Xy3k9Q --db build/bump.db
  bump token list --db build/bump.db
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bump import service, views
from bump.store import Store

NAME = "token"
HELP = "create, revoke and list API tokens (crew, admin)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="create a token and print it (once)")
    c.add_argument("--role", required=True, choices=["crew", "admin"])
    c.add_argument("--label", help="a name recorded with the crew's decisions (default: role-token-ID)")
    c.add_argument("--db", required=True, metavar="FILE", help="SQLite database")
    r = sub.add_parser("revoke", help="revoke a token")
    r.add_argument("token", metavar="TOKEN_OR_PREFIX", help="the token, or at least its first 6 characters (one "
                                                           "that starts with '-' goes after --: revoke --db FILE -- "
                                                           "-Xy3k9Q)")
    r.add_argument("--db", required=True, metavar="FILE", help="SQLite database")
    ls = sub.add_parser("list", help="list tokens (prefixes, roles, devices; never the secrets)")
    ls.add_argument("--db", required=True, metavar="FILE", help="SQLite database")


def _iso(t_s: float | None) -> str:
    """ISO 8601 UTC with "Z", as every other bump output; "-" when unknown."""
    return views.iso_time(t_s) or "-"


def run(args: argparse.Namespace) -> int:
    new_db = args.action == "create" and not Path(args.db).exists()
    with Store.open(args.db, create=args.action == "create") as store:   # revoke / list: a typo is an error
        if new_db:                                  # tokens may come before any data, but say where they went
            print(f"bump token: {args.db} did not exist: created a new, empty database for the token",
                  file=sys.stderr)
        if args.action == "create":
            token, token_id = service.create_token(store, args.role, label=args.label)
            print(f"{args.role} token #{token_id} created; it is shown only now:")
            print(token)
        elif args.action == "revoke":
            row = service.revoke_token(store, args.token)
            print(f"revoked {row['role']} token #{row['token_id']} ({row['prefix']}…"
                  f"{', device ' + row['device_id'] if row['device_id'] else ''})")
        else:
            for row in store.list_tokens():
                state = "revoked " + _iso(row["revoked_at_s"]) if row["revoked_at_s"] else "live"
                print(f"#{row['token_id']:<5} {row['prefix']}…  {row['role']:<6} {row['device_id'] or '-':<22} "
                      f"{row['label'] or '-':<20} created {_iso(row['created_at_s'])}  {state}")
    return 0
