"""The recordings a user names: files stay, folders contribute the recordings at their top level.

One place for what ``bump ingest``, ``bump detect`` and ``bump info`` read from a folder: a folder of traces (a
``bump simulate`` output's trips/, a folder of phone exports) gives every recording in it, not only the first.
"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import BumpError, FormatError
from ingest.read import detect_format, is_one_file_format
from ingest.source import open_source

TRACE_SUFFIXES = (".json", ".json.gz", ".zip", ".csv", ".txt")


def expand(paths: list[str], fmt: str | None = None) -> list[str]:
    """Trace inputs named by ``paths``: a file stays; a folder contributes its traces (those of its trips/
    subfolder when it has one): the files that are a recording each, and the export subfolders; a folder whose own
    files are the parts of one export (Sensor Logger, phyphox) is that export, with any whole trace files beside
    it. FormatError for the first path that names none."""
    found, errors = expand_each(paths, fmt)
    if errors:
        raise errors[0]
    return found


def expand_each(paths: list[str], fmt: str | None = None) -> tuple[list[str], list[BumpError]]:
    """:func:`expand` path by path: (the recordings found, the error of each path that names none), so one empty
    folder does not stop a command's other inputs."""
    found: list[str] = []
    errors: list[BumpError] = []
    for raw in paths:                                  # loop over the user's paths
        path = Path(raw)
        if not path.is_dir() or fmt is not None:
            found.append(raw)
            continue
        in_folder = recordings_in(path / "trips" if (path / "trips").is_dir() else path)
        if in_folder:
            found += in_folder
        else:
            errors.append(FormatError("holds no traces (*.json, *.json.gz, *.zip, *.csv or export folders)",
                                      source=raw))
    return found, errors


def recordings_in(folder: Path, *, known_only: bool = False) -> list[str]:
    """The recordings in a folder's top level (see :func:`expand`); files that look like no format are kept (their
    reader then says what is wrong) unless they sit beside the parts of an export, as its other files do, or
    ``known_only`` (then only files a reader recognises, and export folders)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.name.endswith(TRACE_SUFFIXES) and p.name != "truth.json")
    whole, unsniffed, unknown, parts = [], [], [], False
    for p in files:                                   # loop over files
        if not p.name.endswith((".csv", ".txt")):     # JSON, gzip, a zip (a whole export): one recording each,
            unsniffed.append(str(p))                  # read once, by the ingest (sniffed only beside an export)
            continue
        fmt = _format_of(p)
        if fmt is None:
            unknown.append(str(p))
        elif is_one_file_format(fmt):
            whole.append(str(p))
        else:
            parts = True
    exports = [str(p) for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")
               and _is_export(p)]
    export = parts and _is_export(folder)              # what looks like no format is the export's other files
    if export or known_only:
        unsniffed, unknown = [f for f in unsniffed if _format_of(Path(f)) is not None], []
    return sorted([*([str(folder)] if export else []), *whole, *unsniffed, *unknown, *exports])


def _format_of(path: Path) -> str | None:
    try:
        return detect_format(open_source(path))
    except BumpError:
        return None


def _is_export(folder: Path) -> bool:
    return _format_of(folder) is not None
