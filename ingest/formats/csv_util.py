"""CSV plumbing shared by the vendor readers: dialect sniffing and fast numeric column reads.

Phone apps write CSV in several dialects. phyphox alone offers five (its ``DataExport.exportFormats``): comma with
decimal point, tab or semicolon with decimal point, tab or semicolon with decimal comma (``9,80665``).
Spreadsheets in German or French locales write the semicolon + decimal comma kind. A comma separator always
means a decimal point.

Values are parsed by pandas' C engine (``pandas.read_csv``), which rounds decimal text to float64 exactly.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ingest.errors import SchemaError

if TYPE_CHECKING:
    import pandas as pd

# Text read as "unknown" (NaN). "\ufffd" is what old Java DecimalFormat wrote for NaN.
NA_STRINGS = ("", "NaN", "nan", "-NaN", "NA", "N/A", "n/a", "null", "NULL", "None", "\ufffd")
HEAD_BYTES = 65536
MAX_ID_CHARS = 200          # a trip_id or device_id given in a "# key: value" line
_DECIMAL_COMMA = re.compile(r"\d,\d")
_META_LINE = re.compile(r"^\s*#\s*(?P<key>[A-Za-z][\w ]*?)\s*[:=]\s*(?P<value>.*?)\s*$")
_DATE_TIME = r"(?:19|20)\d{2}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?"
_LOCAL_TIME = re.compile(_DATE_TIME)
_ZONED_TIME = re.compile(_DATE_TIME + r"\s*(?:Z|[+-]\d{2}:?\d{2})")
_OFFSET_GAP = r"\s+(?=(?:Z|[+-]\d{2}:?\d{2})$)"       # ISO 8601 has no space before the offset
_FAST_FORMAT = {False: "%Y-%m-%d %H:%M:%S.%f", True: "%Y-%m-%d %H:%M:%S.%f %z"}


@dataclass(frozen=True)
class Dialect:
    """Field separator and decimal mark of a CSV text."""

    sep: str
    decimal: str


def decode(data: bytes) -> str:
    """Text of ``data``: UTF-8 (a byte-order mark is dropped), else Windows-1252 (never fails)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def head_lines(data: bytes, n: int, *, max_bytes: int = HEAD_BYTES) -> list[str]:
    """Up to ``n`` lines from the start of ``data`` (at most ``max_bytes`` read; a cut last line is dropped)."""
    head = data[:max_bytes]
    lines = decode(head).splitlines()
    if len(data) > max_bytes and lines:
        lines = lines[:-1]
    return lines[:n]


@dataclass(frozen=True)
class MetaLines:
    """The ``# key: value`` lines (among blank and other ``#`` lines) before a CSV's header."""

    values: dict[str, str]       # keys lower-case with "_" for spaces; the first of a repeated key
    lines: dict[str, str]        # the same keys -> the line as written (for messages)
    n_lines: int                 # lines before the header (the header's index in the lines read)


def meta_lines(lines: list[str], max_lines: int | None = None) -> MetaLines:
    """The leading blank and ``#`` lines of ``lines`` (at most ``max_lines`` of them) and the ``key: value`` (or
    ``key = value``) pairs they hold."""
    values: dict[str, str] = {}
    written: dict[str, str] = {}
    i = 0
    limit = len(lines) if max_lines is None else min(len(lines), max_lines)
    while i < limit and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        m = _META_LINE.match(lines[i])
        if m:
            key = m["key"].lower().replace(" ", "_")
            values.setdefault(key, m["value"])
            written.setdefault(key, lines[i].strip())
        i += 1
    return MetaLines(values, written, i)


def check_id_lengths(meta: Mapping[str, str], *, source: str) -> None:
    """SchemaError when a ``trip_id`` or ``device_id`` line gives more than :data:`MAX_ID_CHARS` characters."""
    for key in ("trip_id", "device_id"):
        if len(meta.get(key, "")) > MAX_ID_CHARS:
            raise SchemaError(f"is {len(meta[key])} characters long; at most {MAX_ID_CHARS}", source=source,
                              field=key)


def sniff_dialect(header: str, rows: list[str]) -> Dialect:
    """Separator from the header line (tab, then semicolon, else comma), decimal mark from the data ``rows``."""
    if "\t" in header:
        sep = "\t"
    elif ";" in header:
        sep = ";"
    else:
        sep = ","
    decimal = "," if sep != "," and any(_DECIMAL_COMMA.search(r) for r in rows) else "."
    return Dialect(sep, decimal)


def split_header(line: str, sep: str) -> list[str]:
    """Header cells of ``line`` (quotes removed, whitespace stripped)."""
    cells = next(csv.reader([line], delimiter=sep, quotechar='"'), [])
    return [c.strip() for c in cells]


def field_name(where: str | None, column: str) -> str:
    """Error ``field`` for ``column``: ``file[column]`` inside an export, the bare column for a single file."""
    return f"{where}[{column}]" if where else column


def drop_cut_line(data: bytes, *, header_lines: int, where: str, problems: list[str] | None, sep: str = ",",
                  min_fields: int = 1) -> bytes:
    """``data`` without its last line when that line lacks a line break and looks cut: the file was cut short in
    transfer (a partial upload, a zip written while recording), so its last value may have lost digits or its
    exponent (``1.159E1`` read as ``1.15``) and is not data.

    The line looks cut when it has fewer ``sep``-separated fields than the line before, when its last value ends
    in a character no number ends in (``.``, ``,``, ``e``, ``E``, ``+``, ``-``), or when that value is shorter
    than the same field on the line before (apps write a column's values to one width). A line without a line
    break that looks complete is kept, and so is one with all its fields whose last is empty (it ends in a
    separator: every value on it is whole). Either way it is noted in ``problems`` (once per ``where``, the file's name
    in messages); without ``problems`` (a reader that cannot report it) ``data`` is returned as is. The first
    ``header_lines`` lines are never dropped, nor a line of fewer than ``min_fields`` fields (left for the caller's
    own check of its first cells).
    """
    if problems is None or not data or data.endswith((b"\n", b"\r")):
        return data
    end = data.rfind(b"\n")
    tail = data[end + 1:]
    if end < 0 or not tail.strip() or data.count(b"\n") < header_lines:
        return data
    sep_b = sep.encode()
    cells = tail.rstrip(b"\r").split(sep_b)
    if len(cells) < min_fields:
        return data
    prev_start = data.rfind(b"\n", 0, end) + 1
    prev = data[prev_start:end].rstrip(b"\r").split(sep_b)
    prev_is_data = data.count(b"\n", 0, prev_start) >= header_lines
    last = cells[-1].strip().strip(b'"')
    # a full line whose last cell is empty ends in a separator, so every value on it is whole (loggers leave the
    # cells of a sensor without a reading empty: GPS columns between fixes)
    cut = len(cells) < len(prev) or (bool(last) and (
        last[-1:] in (b".", b",", b"e", b"E", b"+", b"-")
        or (prev_is_data and len(last) < len(prev[len(cells) - 1].strip().strip(b'"')))))
    note = cut_line_note(where, tail, dropped=cut)
    if note not in problems:
        problems.append(note)
    return data[:end + 1] if cut else data


def cut_line_note(where: str, tail: bytes, *, dropped: bool) -> str:
    """The quality note for a last line ``tail`` of file ``where`` that lacks a line break."""
    text = decode(tail[:60]).strip() + ("..." if len(tail) > 60 else "")
    if dropped:
        return (f"{where}: its last line ({text!r}) does not end in a line break and is cut short (a partial upload "
                "or copy), so that row was dropped; export the recording again to keep it")
    return (f"{where}: its last line ({text!r}) does not end in a line break, so the file may have been cut short; "
            "the line looks complete and was kept")


def read_numeric(data: bytes, columns: Mapping[str, int], *, dialect: Dialect, skiprows: int, source: str,
                 where: str | None = None, problems: list[str] | None = None) -> dict[str, np.ndarray]:
    """Columns of ``data`` (by 0-based position; keys name them in messages) as float64 arrays.

    ``skiprows`` lines (header, comments) are skipped. Empty cells and :data:`NA_STRINGS` become NaN, never 0,
    and so do the cells a row lacks when it is shorter than the header (loggers omit trailing empty cells),
    whichever row comes first. With ``problems``, a last row without a line break that looks cut is dropped
    (:func:`drop_cut_line`). A table with a header but no rows gives empty arrays. Raises :class:`SchemaError`
    naming the file, column, line and value for text that is not a number.
    """
    import pandas as pd
    names = list(columns)
    positions = [columns[k] for k in names]
    if not names:
        return {}
    data = drop_cut_line(data, header_lines=skiprows, where=where or source, problems=problems, sep=dialect.sep)
    try:
        # Without names, pandas sizes the table by the first data row, so a short first row hides the columns
        # beyond it. Naming the columns up to the last one used pads short rows with NaN; index_col=False keeps
        # longer rows' extra cells out of an index (they are dropped, as usecols always did).
        frame = pd.read_csv(
            io.BytesIO(data), sep=dialect.sep, decimal=dialect.decimal, header=None, skiprows=skiprows,
            names=range(max(positions) + 1), index_col=False,
            usecols=sorted(set(positions)), engine="c", encoding="latin-1", quotechar='"',
            skipinitialspace=True, na_values=list(NA_STRINGS), keep_default_na=False, skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:
        return {k: np.empty(0) for k in names}
    except (pd.errors.ParserError, ValueError) as exc:
        raise SchemaError(f"cannot be read as {_sep_name(dialect.sep)}-separated CSV ({exc}); export it again "
                          "without editing, or fix the line named", source=source, field=where) from exc
    if not len(frame):                           # a header and no rows: every column is an empty object column
        return {k: np.empty(0) for k in names}
    out: dict[str, np.ndarray] = {}
    for name, pos in zip(names, positions, strict=True):
        if pos not in frame.columns:
            out[name] = np.full(len(frame), np.nan)
            continue
        col = frame[pos]
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            _raise_non_numeric(col, name=name, skiprows=skiprows, source=source, where=where, dialect=dialect)
        out[name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


@dataclass(frozen=True)
class DateTimes:
    """A column of date-time text read by :func:`parse_datetimes`.

    ``seconds`` is NaN where the cell is missing, unreadable, or ``mixed`` is set. ``bad`` is the first row that is
    not a date-time; ``mixed`` is (first row of the rarer kind, first row of the other kind) when some rows carry a
    UTC offset and others do not (local time: which zone the others are in is unknown, so nothing is guessed).
    """

    seconds: np.ndarray          # s since the UNIX epoch: UTC with an offset, else the local clock read as UTC
    zoned: bool                  # the rows carry a UTC offset
    bad: int | None = None
    mixed: tuple[int, int] | None = None


def read_text_column(data: bytes, index: int, *, dialect: Dialect, skiprows: int, source: str,
                     where: str | None = None) -> pd.Series:
    """Column ``index`` of a CSV as stripped text (one C parse, no per-row Python), missing cells and
    :data:`NA_STRINGS` as ""; SchemaError when the file does not parse."""
    import pandas as pd
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=dialect.sep, header=None, skiprows=skiprows,
                            names=range(index + 1), index_col=False, usecols=[index], dtype=str, engine="c",
                            encoding="latin-1", quotechar='"', keep_default_na=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        return pd.Series([], dtype=str)
    except (pd.errors.ParserError, ValueError) as exc:
        raise SchemaError(f"cannot be read as CSV ({exc}); export it again without editing, or fix the line named",
                          source=source, field=where) from exc
    text = frame[index].fillna("").astype(str).str.strip()
    return text.where(~text.isin(NA_STRINGS), "")


def parse_datetimes(text: pd.Series, missing: np.ndarray) -> DateTimes:
    """``YYYY-MM-DD HH:MM:SS[.fff]`` cells, each optionally followed by a UTC offset (`` -0400``, ``+02:00``,
    ``Z``), as s since the UNIX epoch; rows where ``missing`` is True are NaN.

    Fast path: every row in the format of the first (SensorLog's and PTSS's own). Otherwise each row is checked
    against the pattern (years 1900-2099, decimal point or comma) and the kinds are compared, so no pandas error
    (out-of-range years from ``-9999``, mixed zones) can escape: the result names the row instead.
    """
    import pandas as pd
    present = ~np.asarray(missing, dtype=bool)
    rows = np.flatnonzero(present)
    n = len(text)
    if not rows.size:
        return DateTimes(np.full(n, np.nan), False)
    first = str(text.iloc[rows[0]])
    zoned = bool(_ZONED_TIME.fullmatch(first))
    wanted = text.where(present)
    if zoned and _one_layout(text[present], first):      # pandas' "%z" reads ~25x slower than its ISO 8601 parser
        parsed = pd.to_datetime(wanted, format="ISO8601", errors="coerce", utc=True)
    else:
        parsed = pd.to_datetime(wanted, format=_FAST_FORMAT[zoned], errors="coerce", utc=True)
    failed = parsed.isna().to_numpy(dtype=bool) & present
    if failed.any():
        is_local = text.str.fullmatch(_LOCAL_TIME.pattern).fillna(False).to_numpy(dtype=bool) & present
        is_zoned = text.str.fullmatch(_ZONED_TIME.pattern).fillna(False).to_numpy(dtype=bool) & present
        bad = present & ~is_local & ~is_zoned
        if bad.any():
            return DateTimes(np.full(n, np.nan), zoned, bad=int(np.argmax(bad)))
        if is_local.any() and is_zoned.any():
            rare, common = ((is_zoned, is_local) if np.count_nonzero(is_zoned) <= np.count_nonzero(is_local)
                            else (is_local, is_zoned))
            return DateTimes(np.full(n, np.nan), zoned, mixed=(int(np.argmax(rare)), int(np.argmax(common))))
        zoned = bool(is_zoned.any())
        iso = wanted.str.replace(",", ".", regex=False).str.replace(_OFFSET_GAP, "", regex=True)
        parsed = pd.to_datetime(iso, format="ISO8601", errors="coerce", utc=True)
        failed = parsed.isna().to_numpy(dtype=bool) & present
        if failed.any():                                 # e.g. month 13
            return DateTimes(np.full(n, np.nan), zoned, bad=int(np.argmax(failed)))
    us = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[us]").astype(np.int64)
    seconds = (us // 1_000_000).astype(np.float64) + (us % 1_000_000).astype(np.float64) / 1e6
    seconds[~present] = np.nan
    return DateTimes(seconds, zoned)


def _one_layout(cells: pd.Series, first: str) -> bool:
    """Whether every cell is laid out as ``first`` (ASCII): as long, a digit wherever it has one, its character
    everywhere else. Cells of one layout are all zoned or all local, so a lenient parser cannot mix them."""
    width = len(first)
    try:
        template = np.frombuffer(first.encode("ascii"), dtype=np.uint8)
        raw = np.asarray(cells.tolist(), dtype=f"S{width + 1}")        # one byte more: a longer cell shows there
    except (UnicodeEncodeError, TypeError, ValueError):
        return False
    chars = raw.view(np.uint8).reshape(-1, width + 1)
    digit = (template - 48) <= 9                                    # uint8: below '0' wraps above 9
    return bool((chars[:, width] == 0).all() and ((chars[:, :width][:, digit] - 48) <= 9).all()
                and (chars[:, :width][:, ~digit] == template[~digit]).all())


def mixed_offset_error(text: pd.Series, mixed: tuple[int, int], *, skiprows: int, source: str,
                       field: str | None, lead: str = "") -> SchemaError:
    """The error for a date-time column whose rows ``mixed`` (one, another) differ in having a UTC offset
    (:attr:`DateTimes.mixed`); line numbers count ``skiprows`` lines before the first row; ``lead`` starts the
    message (e.g. which file and column)."""
    i, j = mixed
    has, others = ("with", "have none") if has_utc_offset(text.iloc[i]) else ("without", "have one")
    return SchemaError(f"{lead}holds {text.iloc[i]!r} on line {skiprows + i + 1}, {has} a UTC offset, while line "
                       f"{skiprows + j + 1} ({text.iloc[j]!r}) and most other rows {others}, so the rows' clocks "
                       "cannot be compared; write every time the same way (fix that row) or export again",
                       source=source, field=field)


def has_utc_offset(cell: str) -> bool:
    """True for a :func:`parse_datetimes` cell that ends in a UTC offset (`` -0400``, ``+02:00``, ``Z``)."""
    return _ZONED_TIME.fullmatch(cell) is not None


def _raise_non_numeric(col: pd.Series, *, name: str, skiprows: int, source: str, where: str | None,
                       dialect: Dialect) -> None:
    import pandas as pd
    as_num = pd.to_numeric(col.astype("string").str.replace(dialect.decimal, ".", regex=False), errors="coerce")
    bad = np.flatnonzero(as_num.isna().to_numpy() & col.notna().to_numpy())
    i = int(bad[0]) if bad.size else 0
    value = col.iloc[i] if len(col) else None
    raise SchemaError(f"holds a non-numeric value {value!r} on line {skiprows + i + 1}; every value of "
                      f"column {name!r} must be a number or empty", source=source, field=field_name(where, name))


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ";": "semicolon", ",": "comma"}.get(sep, repr(sep))
