"""Reader for Physics Toolbox Sensor Suite (Vieyra Software; Android and iOS) CSV exports.

One CSV per recording: optional ``#`` metadata lines (newer versions; older Android builds write a blank first
line instead), a header whose first column is ``time``, then one row per sensor update::

    # start: 2024-05-01T09:20:00+02:00        optional; also "# Recording started at: ...", "# trip_id:", "# device:"
    time;gFx;gFy;gFz;TgF;ax (m/s^2);ay (m/s^2);az (m/s^2);aT (m/s^2);wx (rad/s);wy (rad/s);wz (rad/s); Latitude;...
    0,012000;0,0321;−0,1207;0,9913;0,9992;0,0123;−0,0451;0,0087;0,0475;;;;45,7600000;4,8300000;12,00;170,0
    0,019000;;;;;;;;;0,0121;−0,0338;0,0507;45,7600000;4,8300000;12,00;170,0

Columns are matched by name, case-insensitively, ignoring a unit in brackets (``ax (m/s^2)``) and stray spaces
(`` Latitude``); any other column (``p``, ``Bx``, ``Azimuth``, ``Altitude``, ``Gain``, ...) is ignored:

==================  ==================================================================================
column              meaning [unit]
==================  ==================================================================================
time                elapsed s since the start (``0.076920``); or the Android wall clock ``HH:MM:SS:mmm``
                    (local, no date), also with a date ``YYYY-MM-DD HH:MM:SS:mmm``; or the iOS date-time
                    ``YYYY-MM-DD HH:MM:SS.ffff`` (local; a UTC offset such as ``+02:00`` after it is honoured, but
                    every row must then carry one)
gFx, gFy, gFz       g-force, the accelerometer INCLUDING gravity [g]: flat on a table gFz ~ +1 (Android)
TgF / gFTotal       its magnitude (Android / iOS); not used, but ``gFTotal`` marks an iOS export
ax, ay, az, aT      linear acceleration, gravity REMOVED [m/s^2]; not used (refused when it is all there is)
wx, wy, wz          gyroscope [rad/s] (``deg/s`` in the header is converted)
Latitude, Longitude WGS84 position [deg]; ``Speed`` [m/s] (``km/h``, ``mph`` converted). No heading or
                    accuracy columns: those stay NaN
==================  ==================================================================================

Rows: a Multi Record row carries only the sensors that updated. Some versions leave the other sensors' cells
empty, others repeat their last value (a zero-order hold), and a sensor that has not delivered yet reads exactly
0 in every axis. So a sensor's samples are the rows where its columns hold a value, are not all exactly 0, and
differ from its previous sample (:func:`_new_samples`); the sample's time is that of the row where it first
appears. The iOS g-force export writes each sample up to three times: the same rule keeps the first. GPS: a fix
is a row whose Latitude/Longitude differ from the previous fix's (a car standing still keeps one fix).

Dialects: comma, or semicolon with a decimal comma (``0,9913``); a Unicode minus (U+2212, ``−0,12``) is read as
``-``; a trailing separator on every line is ignored.

Absolute time (bump needs s since the UNIX epoch), in this order:

1. a date-time ``time`` column gives it; with a UTC offset it is exact; without, it is local time, taken as UTC
   (noted in the trace's problems) unless a ``# start:`` line with a UTC offset gives the zone;
2. elapsed seconds or a clock string need the start: a ``# start:`` (or ``# Recording started at:``) line, else
   the file name, which the app makes from the recording's local date-time (``2019-04-1115.36.29.csv``;
   ``-``, ``_``, ``.``, ``:`` and space separators accepted); a start without a zone is taken as UTC (noted);
3. otherwise :class:`FormatError`: nothing is guessed (epoch 0, the upload time or a file's mtime would misplace
   every impact in time).

A clock string that passes midnight moves on to the next day; the day of the first sample is the one whose
clock lies within 12 h of the start's.

Axes: bump uses Android's sign (flat, screen up: z = +1 g). Physics Toolbox on iOS writes Core Motion's
acceleration, which has the opposite sign on all three axes, so iOS exports (``gFTotal`` column or a date-time
``time`` column) are negated here; gyroscope rates agree on both platforms. The one unit conversion, g to
m/s^2, is ``build_trace``'s.

IDs: ``trip_id = "ptss-<start, ms since the epoch>"`` (or a ``# trip_id:`` line); ``device_id`` from a
``# device_id:`` line, else ``"ptss-<slug>"`` from ``# device:`` / ``# model:``, else ``"ptss-unknown"``
(noted in problems: all such files then count as one device, so a confirmation by distinct devices errs low).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from ingest.errors import FormatError, SchemaError
from ingest.formats.csv_util import (
    Dialect,
    check_id_lengths,
    drop_cut_line,
    field_name,
    head_lines,
    meta_lines,
    mixed_offset_error,
    parse_datetimes,
    read_numeric,
    read_text_column,
    sniff_dialect,
    split_header,
)
from ingest.source import Source
from ingest.trace import Limits, Trace
from ingest.units import SPEED_UNITS
from ingest.validate import build_trace

if TYPE_CHECKING:
    import pandas as pd

NAME = "physics_toolbox"
ONE_FILE = True                        # a recording is one file
APP = "Physics Toolbox Sensor Suite"
HEAD_BYTES = 16384                 # sniffing reads at most this much of a file
MAX_META_LINES = 64                # "#" and blank lines allowed before the header
DAY_S = 86400.0
ZONE_STEP_S = 900.0                # UTC offsets are whole quarter hours

TIME = "time"
ACCEL = ("gfx", "gfy", "gfz")      # g, gravity included
LINEAR = ("ax", "ay", "az")        # m/s^2, gravity removed
GYRO = ("wx", "wy", "wz")          # rad/s
GPS = ("latitude", "longitude")
SPEED = "speed"
IOS_TOTAL, ANDROID_TOTAL, LINEAR_TOTAL = "gftotal", "tgf", "at"

_GYRO_FACTOR = {"": 1.0, "rad/s": 1.0, "deg/s": np.pi / 180.0, "°/s": np.pi / 180.0}   # -> rad/s
_SPEED_FACTOR = {"": 1.0, "kmh": SPEED_UNITS["km/h"],                   # -> m/s, by the header's unit
                 **{u: SPEED_UNITS[u] for u in ("m/s", "km/h", "mph")}}
_START_KEYS = ("start", "start_time", "recording_started_at", "recording_start", "started_at", "started")
_DEVICE_KEYS = ("device", "device_model", "model", "phone")

_CELL = re.compile(r"^(?P<base>[^(\[]*?)\s*(?:[(\[](?P<unit>[^)\]]*)[)\]])?\s*$")
_CLOCK = re.compile(r"^\s*\d{1,2}:\d{2}:\d{2}[:.,]\d{1,6}\s*$")
_CLOCK_PARTS = r"^\s*(\d{1,2}):(\d{2}):(\d{2})([:.,])(\d{1,6})\s*$"
_DATE_CLOCK = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}):(\d{1,3})\s*$")
_DATETIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}:?\d{2})?\s*$")
_NAME_TIME = (re.compile(r"(\d{4})-(\d{2})-(\d{2})[ _T.-]?(\d{2})[.:_-](\d{2})[.:_-](\d{2})"),
              re.compile(r"(\d{4})(\d{2})(\d{2})[ _T-](\d{2})(\d{2})(\d{2})"))
_UNICODE_MINUS = "\u2212".encode()

ACCEL_HINT = ("export Physics Toolbox's g-Force Meter, or a Multi Record with g-Force enabled (columns time, "
              "gFx, gFy, gFz in g)")
START_HINT = ("rename the file to 'YYYY-MM-DD HH.MM.SS.csv' (the recording's local start, as the app names its "
              "exports) or add a line '# start: YYYY-MM-DDTHH:MM:SS+HH:MM' before the header")


@dataclass(frozen=True)
class _Layout:
    """Where the table starts and what its header says."""

    meta: dict[str, str]           # "# key: value" lines, keys lower-case with "_" for spaces
    meta_lines: dict[str, str]     # the same keys -> the line as written (for messages)
    skiprows: int                  # lines before the first data row (blank, "#", header)
    header: tuple[str, ...]        # the cells as written (quotes and outer spaces removed)
    bases: tuple[str, ...]         # lower-case names without their unit bracket
    units: tuple[str, ...]         # lower-case units from the brackets ("" without)
    dialect: Dialect
    first_cells: tuple[str, ...]   # the first column of the first data rows (to tell the time kind)

    def col(self, base: str) -> int | None:
        return self.bases.index(base) if base in self.bases else None

    def has(self, bases: tuple[str, ...]) -> bool:
        return all(b in self.bases for b in bases)


@dataclass(frozen=True)
class _Start:
    """The recording's start: s since the epoch and time of day on the phone's local clock."""

    epoch_s: float
    tod_s: float
    zoned: bool


def sniff(src: Source) -> bool:
    """A CSV whose header starts with ``time`` and names gFx, gFy, gFz (or PTSS's ax, ay, az, aT or wx, wy, wz)."""
    return _find_member(src) is not None


def read(src: Source, *, limits: Limits = Limits()) -> Trace:
    """Read a Physics Toolbox Sensor Suite CSV (a file, or the one inside a zip or folder) into a Trace."""
    name = src.name
    member = _find_member(src) or (src.member_names()[0] if src.single else None)
    if member is None:
        raise FormatError(f"holds no Physics Toolbox CSV (a header 'time,gFx,gFy,gFz,...'); {ACCEL_HINT}",
                          source=name)
    where = None if src.single else member
    data = src.read(member)
    if _UNICODE_MINUS in data:
        data = data.replace(_UNICODE_MINUS, b"-")
    layout = _layout(data)
    if layout is None:
        raise FormatError(f"has no header line; {ACCEL_HINT}", source=name, field=where)
    problems: list[str] = []
    data = drop_cut_line(data, header_lines=layout.skiprows, where=where or PurePosixPath(name).name,
                         problems=problems, sep=layout.dialect.sep)
    cols = _columns(layout, source=name, where=where)
    kind = _time_kind(layout.first_cells)
    ios = IOS_TOTAL in layout.bases or kind == "datetime"

    numeric = {r: i for r, i in cols.items() if not (r == TIME and kind != "elapsed")}
    got = read_numeric(data, {layout.header[i]: i for i in numeric.values()}, dialect=layout.dialect,
                       skiprows=layout.skiprows, source=name, where=where)
    if not next(iter(got.values())).size:
        raise SchemaError(f"has a header but no data rows, so the recording is empty; record again, then {ACCEL_HINT}",
                          source=name, field=field_name(where, layout.header[cols[TIME]]))
    v = {r: got[layout.header[i]] for r, i in numeric.items()}
    start = _start(layout, member if where else name, kind=kind, source=name, where=where,
                   time_col=layout.header[cols[TIME]], problems=problems)
    t, start_s = _epoch_times(data, layout, cols[TIME], kind, v.get(TIME), start, source=name, where=where,
                              problems=problems)

    rows = _new_samples([v[r] for r in ACCEL], label="accel", names=_names(layout, cols, ACCEL),
                        problems=problems)
    sign = -1.0 if ios else 1.0
    if ios:
        problems.append("iOS export: gFx, gFy, gFz negated from Core Motion's sign to bump's (Android's)")
    gyro_t = gyro_xyz = None
    if GYRO[0] in cols:
        g_rows = _new_samples([v[r] for r in GYRO], label="gyro", names=_names(layout, cols, GYRO),
                              problems=problems)
        factor = _factor(layout, cols[GYRO[0]], _GYRO_FACTOR, source=name, where=where)
        gyro_t, gyro_xyz = t[g_rows], [v[r][g_rows] * factor for r in GYRO]
    gps = _gps(v, layout, cols, t, source=name, where=where, problems=problems) if GPS[0] in cols else None

    trip_id, device_id = _ids(layout.meta, start_s, source=name, problems=problems)
    return build_trace(
        source=name,
        source_format=NAME,
        trip_id=trip_id,
        device_id=device_id,
        accel_t_s=t[rows],
        accel_xyz=[v[r][rows] * sign for r in ACCEL],
        accel_unit="g",
        gyro_t_s=gyro_t,
        gyro_xyz=gyro_xyz,
        gps_t_s=None if gps is None else gps["t"],
        lat_deg=None if gps is None else gps["lat"],
        lon_deg=None if gps is None else gps["lon"],
        speed_mps=None if gps is None else gps.get("speed"),
        phone=_phone(layout, kind, ios=ios),
        limits=limits,
        unit_hint=("Physics Toolbox writes gFx, gFy, gFz in g (g-force); export the recording again from Physics "
                   "Toolbox without converting its values"),
        problems=problems,
        field_prefix={"accel": _group(where, "accel", layout, cols, (TIME, *ACCEL)),
                      "gyro": _group(where, "gyro", layout, cols, (TIME, *GYRO)),
                      "gps": _group(where, "gps", layout, cols, (TIME, *GPS))},
    )


def _phone(layout: _Layout, kind: str, *, ios: bool) -> dict[str, str]:
    """App and, where the layout tells, the platform (gFTotal/date-times: iOS; TgF/clock strings: Android)."""
    if ios:
        return {"app": APP, "os": "iOS"}
    if kind in ("clock", "clock_date") or ANDROID_TOTAL in layout.bases:
        return {"app": APP, "os": "Android"}
    return {"app": APP}


# --- layout ----------------------------------------------------------------------------------------------------


def _find_member(src: Source) -> str | None:
    """The first member (the file itself for a single file) whose head is a Physics Toolbox table."""
    for member in src.member_names():
        if src.single or member.lower().endswith((".csv", ".txt")):
            head = src.read(member)[:HEAD_BYTES].replace(_UNICODE_MINUS, b"-")
            layout = _layout(head)
            if layout is not None and _is_ptss(layout.bases):
                return member
    return None


def _is_ptss(bases: tuple[str, ...]) -> bool:
    names = set(bases)
    return bool(bases) and bases[0] == TIME and (set(ACCEL) <= names or {*LINEAR, LINEAR_TOTAL} <= names
                                                 or set(GYRO) <= names)


def _layout(data: bytes) -> _Layout | None:
    """Metadata, header and dialect from the head of ``data``; None without a header line."""
    lines = head_lines(data, MAX_META_LINES + 34)
    meta = meta_lines(lines, MAX_META_LINES)
    i = meta.n_lines
    if i >= len(lines) or lines[i].lstrip().startswith("#"):
        return None
    rows = [r for r in lines[i + 1:i + 33] if r.strip()]
    dialect = sniff_dialect(lines[i], rows)
    header = split_header(lines[i], dialect.sep)
    while header and not header[-1]:                      # a trailing separator on every line
        header.pop()
    cells = [_CELL.match(h) for h in header]
    bases = tuple((m["base"] if m else h).strip().lower() for m, h in zip(cells, header, strict=True))
    units = tuple((m["unit"] or "").strip().lower() if m else "" for m in cells)
    first = tuple(next(csv.reader([r], delimiter=dialect.sep, quotechar='"'), [""])[0] for r in rows)
    return _Layout(meta.values, meta.lines, i + 1, tuple(header), bases, units, dialect, first)


def _columns(layout: _Layout, *, source: str, where: str | None) -> dict[str, int]:
    """Role (lower-case base name) -> column index of the columns used; SchemaError naming what is missing."""
    shown = ",".join(layout.header)
    wanted = (TIME, *ACCEL, *GYRO, *GPS, SPEED)
    cols: dict[str, int] = {}
    for i, base in enumerate(layout.bases):
        if base not in wanted:
            continue
        if base in cols:
            raise SchemaError(f"columns {layout.header[cols[base]]!r} and {layout.header[i]!r} both give {base}; "
                              "keep one", source=source, field=field_name(where, layout.header[i]))
        cols[base] = i
    if TIME not in cols:
        raise SchemaError(f"has no 'time' column (header: {shown}); {ACCEL_HINT}", source=source,
                          field=field_name(where, TIME))
    if not any(b in cols for b in ACCEL) and layout.has(LINEAR):
        linear = ", ".join(layout.header[layout.bases.index(b)] for b in LINEAR)
        raise SchemaError(f"holds only linear acceleration ({linear}: m/s^2 with gravity removed) and no 'gFx', "
                          "'gFy', 'gFz' columns; bump needs the acceleration including gravity to find the road's "
                          f"vertical: {ACCEL_HINT}", source=source, field=field_name(where, "gFx"))
    for group, spelled in ((ACCEL, ("gFx", "gFy", "gFz")), (GYRO, ("wx", "wy", "wz")),
                           (GPS, ("Latitude", "Longitude"))):
        have = [b for b in group if b in cols]
        if group == ACCEL or have:
            missing = [s for b, s in zip(group, spelled, strict=True) if b not in cols]
            if missing:
                hint = ACCEL_HINT if group == ACCEL else f"give all of {', '.join(spelled)} or none"
                raise SchemaError(f"has no {missing[0]!r} column (header: {shown}); {hint}", source=source,
                                  field=field_name(where, missing[0]))
    return cols


def _names(layout: _Layout, cols: dict[str, int], roles: tuple[str, ...]) -> str:
    return ", ".join(layout.header[cols[r]] for r in roles)


def _group(where: str | None, label: str, layout: _Layout, cols: dict[str, int], roles: tuple[str, ...]) -> str:
    """``accel[time,gFx,gFy,gFz]``: the block and the file's own column names, for validation messages."""
    inner = f"{label}[{','.join(layout.header[cols[r]] if r in cols else r for r in roles)}]"
    return f"{where}:{inner}" if where else inner


def _factor(layout: _Layout, col: int, table: dict[str, float], *, source: str, where: str | None) -> float:
    unit = layout.units[col]
    if unit not in table:
        accepted = ", ".join(repr(u) for u in table if u)
        raise SchemaError(f"has the unit {unit!r}; write one of {accepted}", source=source,
                          field=field_name(where, layout.header[col]))
    return table[unit]


# --- samples ---------------------------------------------------------------------------------------------------


def _new_samples(cols: list[np.ndarray], *, label: str, names: str, problems: list[str]) -> np.ndarray:
    """Rows holding a new sample of a sensor group (row indices, increasing).

    A row holds a value when any of ``cols`` is finite (a partly empty row is passed on and dropped, counted, by
    ``build_trace``); all exactly 0 means "no sample yet"; a row equal to the group's previous value is the
    app repeating it (hold). Both are noted in ``problems``.
    """
    block = np.column_stack(cols)
    present = np.isfinite(block).any(axis=1)
    zero = present & (block == 0.0).all(axis=1)
    rows = np.flatnonzero(present & ~zero)
    new = np.ones(rows.size, dtype=bool)
    if rows.size > 1:
        vals = block[rows]
        new[1:] = (vals[1:] != vals[:-1]).any(axis=1)
    n_zero, n_repeat = int(np.count_nonzero(zero)), int(rows.size - np.count_nonzero(new))
    if n_zero:
        problems.append(f"{label}: {n_zero} rows with {names} all exactly 0 read as 'no sample yet' and dropped")
    if n_repeat:
        problems.append(f"{label}: {n_repeat} rows repeat the previous {names} (the app repeats a sensor's last "
                        f"value until it has a new one); {int(np.count_nonzero(new))} samples kept")
    return rows[new]


def _gps(v: dict[str, np.ndarray], layout: _Layout, cols: dict[str, int], t: np.ndarray, *, source: str,
         where: str | None, problems: list[str]) -> dict[str, np.ndarray]:
    """The fixes: rows whose Latitude/Longitude differ from the previous fix's (values repeat between fixes)."""
    lat, lon = v[GPS[0]], v[GPS[1]]
    block = np.column_stack([lat, lon])
    valid = np.isfinite(block).all(axis=1) & ~(block == 0.0).all(axis=1)
    rows = np.flatnonzero(valid)
    new = np.ones(rows.size, dtype=bool)
    if rows.size > 1:
        new[1:] = (block[rows[1:]] != block[rows[:-1]]).any(axis=1)
    fixes = rows[new]
    if fixes.size < rows.size:
        problems.append(f"gps: {rows.size} rows with a position hold {fixes.size} distinct fixes; repeats dropped")
    out = {"t": t[fixes], "lat": lat[fixes], "lon": lon[fixes]}
    if SPEED in cols:
        out["speed"] = v[SPEED][fixes] * _factor(layout, cols[SPEED], _SPEED_FACTOR, source=source, where=where)
    return out


# --- time ------------------------------------------------------------------------------------------------------


def _time_kind(cells: tuple[str, ...]) -> str:
    """"clock" (``HH:MM:SS:mmm``), "clock_date" (``YYYY-MM-DD HH:MM:SS:mmm``, the Android clock with a date),
    "datetime" (``YYYY-MM-DD HH:MM:SS.ffff``) or "elapsed" (seconds)."""
    first = next((c for c in cells if c.strip()), "")
    if _CLOCK.match(first):
        return "clock"
    if _DATE_CLOCK.match(first):
        return "clock_date"
    if _DATETIME.match(first):
        return "datetime"
    return "elapsed"


def _epoch_times(data: bytes, layout: _Layout, col: int, kind: str, elapsed_s: np.ndarray | None,
                 start: _Start | None, *, source: str, where: str | None,
                 problems: list[str]) -> tuple[np.ndarray, float]:
    """Every row's time [s since the UNIX epoch] and the recording's start [s since the epoch]."""
    name = layout.header[col]
    if kind == "elapsed":
        assert elapsed_s is not None and start is not None
        return start.epoch_s + elapsed_s, start.epoch_s
    text = read_text_column(data, col, dialect=layout.dialect, skiprows=layout.skiprows, source=source,
                            where=where)
    if kind == "clock":
        assert start is not None
        clock_s = _clock_s(text, name, skiprows=layout.skiprows, source=source, where=where)
        return _unwrap_clock(clock_s, start), start.epoch_s
    if kind == "clock_date":                           # ":mmm" is milliseconds, as on the clock without a date
        parts = text.str.extract(_DATE_CLOCK.pattern)
        text = (parts[0] + "." + parts[1].str.zfill(3)).where(parts[0].notna(), text)
    t, zoned_column = _datetime_s(text, name, skiprows=layout.skiprows, source=source, where=where)
    first = t[np.isfinite(t)]
    if not zoned_column and start is not None and start.zoned and first.size:
        t = t - ZONE_STEP_S * round((float(first[0]) - start.epoch_s) / ZONE_STEP_S)   # local -> UTC
    elif not zoned_column:
        problems.append(f"{name}: date-times are local time without a zone; taken as UTC (add a line "
                        "'# start: YYYY-MM-DDTHH:MM:SS+HH:MM' before the header to give the zone)")
    first = t[np.isfinite(t)]
    return t, float(first.min()) if first.size else float("nan")


def _bad_value(text: pd.Series, parsed_ok: np.ndarray, name: str, example: str, *, skiprows: int, source: str,
               where: str | None) -> None:
    bad = np.flatnonzero(~parsed_ok & (text != "").to_numpy())
    if bad.size:
        i = int(bad[0])
        raise SchemaError(f"holds {text.iloc[i]!r} on line {skiprows + i + 1}, not a time like {example} as in the "
                          "rest of the column; fix that row or export again", source=source,
                          field=field_name(where, name))


def _clock_s(text: pd.Series, name: str, *, skiprows: int, source: str, where: str | None) -> np.ndarray:
    """``HH:MM:SS:mmm`` (Android; ``mmm`` = milliseconds) or ``HH:MM:SS.fff`` -> s since local midnight."""
    parts = text.str.extract(_CLOCK_PARTS)
    ok = parts[0].notna().to_numpy()
    _bad_value(text, ok, name, "'13:05:10:010' (HH:MM:SS:mmm)", skiprows=skiprows, source=source, where=where)
    num = parts[[0, 1, 2, 4]].astype(float).to_numpy()
    digits = parts[4].str.len().astype(float).to_numpy()
    frac_s = np.where((parts[3] == ":").to_numpy(), num[:, 3] / 1000.0, num[:, 3] / 10.0 ** digits)
    return num[:, 0] * 3600.0 + num[:, 1] * 60.0 + num[:, 2] + frac_s


def _unwrap_clock(clock_s: np.ndarray, start: _Start) -> np.ndarray:
    """Clock times -> s since the epoch, a day later after each pass through midnight (never backwards)."""
    t = np.full(clock_s.size, np.nan)
    ok = np.flatnonzero(np.isfinite(clock_s))
    if not ok.size:
        return t
    c = clock_s[ok]
    day = np.concatenate(([0.0], np.cumsum(np.diff(c) < -DAY_S / 2)))
    offset = c[0] - start.tod_s                        # the first sample lies within 12 h of the start
    shift_days = -np.round(offset / DAY_S) if abs(offset) > DAY_S / 2 else 0.0
    t[ok] = start.epoch_s + (c - start.tod_s) + (day + shift_days) * DAY_S
    return t


def _datetime_s(text: pd.Series, name: str, *, skiprows: int, source: str,
                where: str | None) -> tuple[np.ndarray, bool]:
    """iOS ``YYYY-MM-DD HH:MM:SS.ffff`` (optionally with a UTC offset) -> s since the epoch (as if UTC without an
    offset), zoned? A cell that is not such a time, or rows with and without an offset, raise SchemaError."""
    times = parse_datetimes(text, (text == "").to_numpy())
    if times.bad is not None:
        ok = np.ones(len(text), dtype=bool)
        ok[times.bad] = False
        _bad_value(text, ok, name, "'2019-07-15 10:18:10.1010' (YYYY-MM-DD HH:MM:SS.ffff)", skiprows=skiprows,
                   source=source, where=where)
    if times.mixed is not None:
        raise mixed_offset_error(text, times.mixed, skiprows=skiprows, source=source, field=field_name(where, name))
    return times.seconds, times.zoned


def _start(layout: _Layout, file_name: str, *, kind: str, source: str, where: str | None, time_col: str,
           problems: list[str]) -> _Start | None:
    """The start from a ``# start:`` line, else from the file name; FormatError when a relative time needs it."""
    for key in _START_KEYS:
        if layout.meta.get(key):
            text = layout.meta[key]
            try:
                dt = datetime.fromisoformat(text.strip())
            except ValueError as exc:
                raise SchemaError(f"is {text!r}, not a date-time; write '# start: YYYY-MM-DDTHH:MM:SS+HH:MM'",
                                  source=source, field=key) from exc
            return _make_start(dt, f"the line {layout.meta_lines[key]!r}", problems,
                               note=kind not in ("datetime", "clock_date"))
    if kind in ("datetime", "clock_date"):
        return None                                    # the column has its dates; a name without a zone adds nothing
    base = PurePosixPath(file_name.replace("\\", "/")).name
    for pattern in _NAME_TIME:
        for m in pattern.finditer(base):
            try:
                dt = datetime(*(int(g) for g in m.groups()))
            except ValueError:
                continue
            return _make_start(dt, f"the file name {base!r}", problems, note=True)
    what = "elapsed seconds" if kind == "elapsed" else "clock times without a date"
    raise FormatError(f"has {what} in column {time_col!r} but no start date and time, so its samples cannot be "
                      f"placed on the calendar; {START_HINT}", source=source, field=field_name(where, time_col))


def _make_start(dt: datetime, origin: str, problems: list[str], *, note: bool) -> _Start:
    tod_s = dt.hour * 3600.0 + dt.minute * 60.0 + dt.second + dt.microsecond / 1e6
    zoned = dt.tzinfo is not None and dt.utcoffset() is not None
    if not zoned:
        dt = dt.replace(tzinfo=UTC)
        if note:
            problems.append(f"start {dt:%Y-%m-%d %H:%M:%S} from {origin} is local time without a zone; taken as "
                            "UTC (add '+HH:MM' to a '# start:' line to fix)")
    epoch_s = (dt - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(seconds=1)
    return _Start(epoch_s, tod_s, zoned)


# --- ids -------------------------------------------------------------------------------------------------------


def _ids(meta: dict[str, str], start_s: float, *, source: str, problems: list[str]) -> tuple[str, str]:
    check_id_lengths(meta, source=source)
    trip_id = meta.get("trip_id") or (f"ptss-{round(start_s * 1000)}" if np.isfinite(start_s) else "ptss-unknown")
    device_id = meta.get("device_id")
    if not device_id:
        model = next((meta[k] for k in _DEVICE_KEYS if meta.get(k)), "")
        slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:60]
        device_id = f"ptss-{slug}" if slug else "ptss-unknown"
        if not slug:
            problems.append("no '# device_id: ...' line: device_id is ptss-unknown, so this trip cannot count as a "
                            "separate device when confirming defects")
    return trip_id, device_id
