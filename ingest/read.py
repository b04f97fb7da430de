"""``ingest.read``: any supported input to a validated Trace, choosing the reader by content."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import FormatError
from ingest.formats import FORMATS
from ingest.source import Source, only_file, open_source
from ingest.trace import Limits, Trace


def format_names() -> list[str]:
    return [m.NAME for m in FORMATS]


def is_one_file_format(name: str) -> bool:
    """Whether a recording in format ``name`` is one file (False: an export of several files, read as a folder or
    a zip, whose files are its parts)."""
    return next(bool(m.ONE_FILE) for m in FORMATS if m.NAME == name)


def _resolve(src: Source) -> Source:
    """``src``, or the one file of a folder or zip that holds nothing else (a trace zipped to e-mail it)."""
    return only_file(src) or src


def detect_format(src: Source) -> str:
    """Name of the first reader whose signature matches ``src`` (or the one file it holds); FormatError if none
    does."""
    src = _resolve(src)
    for module in FORMATS:
        if module.sniff(src):
            return module.NAME
    listing = ", ".join(src.member_names()[:8])
    raise FormatError(
        f"is not a format bump knows (members: {listing}); supported: {', '.join(format_names())}. "
        "Use --format to force one, or export as bump.trace/1 JSON or a t,ax,ay,az CSV", source=src.name)


def read(source: str | Path | bytes | Source, format: str | None = None, *, name: str | None = None,
         limits: Limits = Limits()) -> Trace:
    """Read a trace from a path (file, folder, zip, .gz), bytes, or an opened Source.

    ``format`` forces a reader by name (see :func:`format_names`); by default the content decides. A folder or zip
    holding a single file is read as that file.
    Raises a subclass of :class:`ingest.errors.TraceError` (a ValueError) on bad input.
    """
    src = _resolve(source if isinstance(source, Source) else open_source(source, name=name))
    fmt = format or detect_format(src)
    for module in FORMATS:
        if module.NAME == fmt:
            return module.read(src, limits=limits)
    raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(format_names())}", source=src.name)
