"""Entry point of the ``bump`` command. Bad input exits 2 with a one-line error (``--debug`` for the traceback)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from bump.cli import convert, defects, detect, evaluate, info, ingest, reprocess, run, serve, simulate, token
from bump.runtime import set_up_process
from bump.store import BACKEND_ERRORS
from ingest.errors import BumpError


def _commands() -> list[ModuleType]:
    """Subcommand modules, each with ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``."""
    return [run, info, convert, detect, evaluate, simulate, ingest, defects, reprocess, serve, token]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bump",
        description="Find road defects from the phones of ordinary drivers.",
        epilog="Run 'bump COMMAND --help' for a command's options.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _commands():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_up_process()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:                          # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (BumpError, OSError) as exc:
        if args.debug:
            raise
        print(f"bump {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BACKEND_ERRORS as exc:
        if args.debug:
            raise
        print(f"bump {args.command}: error: the database refused: {exc} (is another process writing to it for "
              "long, or is the file or its folder read-only?)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
