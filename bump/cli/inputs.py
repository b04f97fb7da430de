"""The recordings a command's paths name (:func:`ingest.inputs.expand_each`); a path that names none is reported
and skipped, so one empty or unreadable folder does not stop the command's other inputs."""

from __future__ import annotations

import argparse
import sys

from ingest.inputs import expand_each


def inputs_of(args: argparse.Namespace, command: str) -> tuple[list[str], int]:
    """(recordings, exit status so far: 2 when a path named none). A lone path's error, or any with --debug, is
    raised (the CLI prints it as its one-line error)."""
    found, errors = expand_each(args.paths, args.format)
    if errors and (getattr(args, "debug", False) or len(args.paths) == 1):
        raise errors[0]
    for exc in errors:
        print(f"bump {command}: error: {exc}", file=sys.stderr)
    return found, 2 if errors else 0
