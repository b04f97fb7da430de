"""``ingest.read``: any supported input to a validated Trace, choosing the reader by content.

Arguments of the wrong type (a Trace, a number, None, a dict for ``limits``) raise TypeError naming what was
given and what to pass instead; wrong content raises :class:`ingest.errors.TraceError` (a ValueError).
"""

from __future__ import annotations

import os
from pathlib import Path

from ingest.errors import FormatError
from ingest.formats import FORMATS
from ingest.source import Source, only_file, open_source
from ingest.trace import Limits, Trace

INPUT_TYPES = "a path (str or pathlib.Path: a file, folder, zip or .gz), bytes, or an ingest.Source"


def format_names() -> list[str]:
    """Names of the readers, in sniffing order (most specific signature first, plain CSV last): the values
    ``read(..., format=NAME)`` and ``bump --format`` accept."""
    return [m.NAME for m in FORMATS]


def is_one_file_format(name: str) -> bool:
    """Whether a recording in format ``name`` is one file (False: an export of several files, read as a folder or
    a zip, whose files are its parts). FormatError (a ValueError) for a name not in :func:`format_names`."""
    for module in FORMATS:
        if module.NAME == name:
            return bool(module.ONE_FILE)
    raise FormatError(f"unknown format {name!r}; choose one of {', '.join(format_names())}", field="format")


def _type_name(obj: object) -> str:
    return "None" if obj is None else type(obj).__name__


def _as_source(source: object, *, name: str | None, caller: str) -> Source:
    """``source`` as a Source (opened when a path or bytes), or TypeError naming what ``caller`` takes."""
    if isinstance(source, Source):
        return source
    if isinstance(source, str) and source.lstrip().startswith(("{", "[")) and not os.path.exists(source):
        raise FormatError(f"is no file, and looks like JSON text rather than a path; to read the text itself, pass "
                          f"its bytes: {caller}(text.encode())", source=f"{source[:40]}...")
    if isinstance(source, str | os.PathLike | bytes | bytearray | memoryview):
        return open_source(source, name=name)             # type: ignore[arg-type]  # PathLike: Path() takes it
    hint = ""
    if isinstance(source, Trace):
        hint = ("; this is already a Trace: pass it on to detect.detect(trace) or bump.replay(trace), or write it "
                "with ingest.dumps(trace)")
    raise TypeError(f"{caller}() takes {INPUT_TYPES}, not {_type_name(source)}{hint}")


def _resolve(src: Source) -> Source:
    """``src``, or the one file of a folder or zip that holds nothing else (a trace zipped to e-mail it)."""
    return only_file(src) or src


def _one_recording(folder: Path) -> None:
    """FormatError for a folder that holds several recordings (files of a one-file format, export folders): read
    would otherwise take one of them and say nothing of the others."""
    from ingest.inputs import recordings_in  # ingest.inputs builds on this module

    found = recordings_in(folder, known_only=True)
    if len(found) > 1 and str(folder) not in found:         # the folder itself an export: read is that export
        names = ", ".join(Path(f).name for f in found[:5]) + (", ..." if len(found) > 5 else "")
        raise FormatError(f"holds {len(found)} recordings ({names}); read one of them, or give the folder to "
                          "bump ingest, bump detect or bump info, which read each (ingest.inputs.expand lists them)",
                          source=str(folder))


def detect_format(src: Source | str | os.PathLike[str] | bytes) -> str:
    """The name (one of :func:`format_names`) of the first reader whose signature matches ``src`` (or the one
    file it holds). ``src``: an :class:`ingest.Source` or anything :func:`read` takes (path, bytes), which is
    opened first. FormatError (a ValueError) if no reader matches; TypeError for any other argument."""
    src = _resolve(_as_source(src, name=None, caller="detect_format"))
    for module in FORMATS:
        if module.sniff(src):
            return module.NAME
    listing = ", ".join(src.member_names()[:8])
    raise FormatError(
        f"is not a format bump knows (members: {listing}); supported: {', '.join(format_names())}. "
        "Use --format to force one, or export as bump.trace/1 JSON or a t,ax,ay,az CSV", source=src.name)


def _check_options(format: object, name: object, limits: object) -> None:
    """TypeError for a ``format``, ``name`` or ``limits`` of the wrong type, saying what to pass."""
    if format is not None and not isinstance(format, str):
        raise TypeError(f"read() format= takes a format name (one of {', '.join(format_names())}) or None to "
                        f"let the content decide, not {_type_name(format)}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"read() name= takes a str (the name errors show) or None, not {_type_name(name)}")
    if not isinstance(limits, Limits):
        example = ""
        if isinstance(limits, dict) and all(isinstance(k, str) for k in limits):
            example = f": limits=ingest.Limits({', '.join(f'{k}={v!r}' for k, v in limits.items())})"
        raise TypeError(f"read() limits= takes an ingest.Limits, not {_type_name(limits)}; build one with the fields "
                        f"to change{example or ', e.g. limits=ingest.Limits(max_samples=1_000_000)'}")


def read(source: str | os.PathLike[str] | bytes | Source, format: str | None = None, *, name: str | None = None,
         limits: Limits = Limits()) -> Trace:
    """Read one trace from a path (file, folder, zip, .gz), bytes, or an opened :class:`ingest.Source`.

    Returns a validated :class:`ingest.Trace` in canonical units: times in s since the UNIX epoch, acceleration
    in m/s^2 including gravity, angular rate in rad/s, positions in degrees, speed in m/s (see ``Trace``).

    ``format`` forces a reader by name (see :func:`format_names`); by default the content decides. A folder or zip
    holding a single file is read as that file. ``name`` replaces the path in error messages (e.g. an upload's
    file name). ``limits``: the bounds validation enforces (:class:`ingest.Limits`: rates, durations, sizes).
    Raises a subclass of :class:`ingest.errors.TraceError` (a ValueError) on bad input, TypeError for arguments
    of the wrong type (e.g. a Trace, a number, or a dict for ``limits``).
    """
    _check_options(format, name, limits)
    src = _resolve(_as_source(source, name=name, caller="read"))    # a folder's size cap is checked before reading
    fmt = format or detect_format(src)
    if (format is None and not src.single and is_one_file_format(fmt) and isinstance(source, str | os.PathLike)
            and Path(source).is_dir()):                # the reader would take one file of the folder: is it the one?
        _one_recording(Path(source))
    for module in FORMATS:
        if module.NAME == fmt:
            return module.read(src, limits=limits)
    raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(format_names())}", source=src.name)
