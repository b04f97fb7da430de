"""Reader for a plain CSV: the catch-all for recordings exported from other apps, loggers and public datasets.

::

    # trip_id: boston-2024-03-09-a       optional "# key: value" lines before the header
    # device_id: pixel7-anna
    # unit: g                              optional accelerometer unit, "g" or "m/s2" (default m/s2)
    t,ax,ay,az,gx,gy,gz,lat,lon,speed,heading,accuracy
    1710000000.000,0.31,-1.18,9.74,0.010,-0.020,0.050,42.3601000,-71.0589000,10.0,90.0,4.5
    1710000000.020,0.29,-1.22,9.69,0.011,-0.019,0.049,,,,,

Columns are matched by name in any order; only a time and the three accelerometer axes are required. A name is
compared without case, spaces, ``_``, ``-`` or ``.`` and split at camelCase (``AccX``, ``acc_x``, ``Acc X`` and
``ACC-X`` are one name). A unit may follow the name as a last word (``speed_kmh``, ``gyro_x_deg_s``,
``timestamp_ms``) or in brackets (``acc_x [m/s^2]``, ``Speed (km/h)``); it is converted. A name bump knows with a
unit it does not know for that quantity (``speed_ms``, ``lat (rad)``) is refused, never guessed:

==========  ===================================================  ====================================================
role        names (after the rules above)                        meaning [unit]; other units read
==========  ===================================================  ====================================================
t           t, time, timestamp, datetime, epoch, epoch_time,     sample time [s since the UNIX epoch]; ``_ms``,
            unix_time, unix_timestamp, time_utc, utc_time        ``_us``, ``_ns`` (or ``(ms)``...) epoch times; an
                                                                 ISO 8601 date-time (see Time)
ax ay az    ax, a_x, acc_x, accel_x, accelerometer_x,            acceleration in the phone frame INCLUDING gravity
            acceleration_x, accelerometer_acceleration_x;        [m/s^2]; ``g`` (``ax_g``, ``AccX (g)``, or a
            x, y, z only with an acceleration unit (``X (g)``)   ``# unit: g`` line)
gx gy gz    gx, gyr_x, gyro_x, gyroscope_x, rotation_rate_x,     angular rate [rad/s]; ``deg/s`` (``gyro_x_deg_s``,
            angular_velocity_x, angular_rate_x; x, y, z only     ``gx (°/s)``, ``_dps``)
            with an angular-rate unit (``x (rad/s)``)
lat lon     lat, latitude; lon, lng, long, longitude             WGS84 position [deg]
speed       speed, ground_speed                                  ground speed [m/s]; ``km/h`` (``kmh``, ``kph``),
                                                                 ``mph``, knots (``kn``, ``kt``)
heading     heading, bearing, course, course_over_ground, cog    course over ground, clockwise from north [deg]
accuracy    accuracy, horizontal_accuracy, h_accuracy, hacc      horizontal accuracy [m]
gps_t       gps_t, gps_time, gps_timestamp, time_gps,            time of the fix, when it differs from t (same
            timestamp_gps, fix_time, location_time               units as t)
==========  ===================================================  ====================================================

The GPS names may also start with ``gps`` or ``location`` (``gps_lat``, ``GPS Speed (km/h)``, ``location_bearing``).
Accelerometer and gyroscope names may end in words naming a placement (``acc_x_dashboard``); the three axes of one
sensor must then carry the same words. Words that name another quantity (``linear``, ``user``, ``gravity``,
``bias``, ``std``, ``error``, ``filtered``, ``mean``...) make a column no sensor axis, and so do names that start
with other words (``linear_acc_x``, ``user_acc_x``, ``gravity_x``, ``mag_x``, ``unused_acc_x``): bump needs the
raw acceleration, gravity included. Not read, on purpose: ``x``, ``y``, ``z`` without a unit (accelerometer,
gyroscope or magnetometer?), ``acc`` alone (acceleration or accuracy?), ``hdop`` (no unit, not metres),
``velocity`` and ``direction`` (a component? a label?), elapsed times (``seconds_elapsed``: not an epoch).

Two columns of one role (``acc_x_dashboard`` and ``acc_x_above_suspension``, or ``time`` and ``timestamp``) are
refused with a :class:`FormatError` naming both: delete the columns you do not want, or rename them (``unused_...``).

Time: a time column without a unit in its name is read by magnitude: below 1e11 s since the epoch, below 1e14
ms, below 1e17 us, else ns (each range spans the years 1973-5138); anything but seconds is noted in the trace's
problems. A column whose first value is a date-time ``YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+HH:MM]`` is read as ISO 8601
(vectorised, :func:`ingest.formats.csv_util.parse_datetimes`); without a UTC offset it is taken as UTC, noted
unless the name says UTC (``time_utc``, ``Time (UTC)``).

Rows: a row whose ax, ay, az are all empty is not an accelerometer sample (GPS-only rows are fine), likewise for
gx, gy, gz. GPS: loggers leave lat/lon empty between fixes or repeat the last fix on every row; a fix is a row
with lat and lon whose GPS values (or ``gps_t``) differ from the previous fix's. Its time is ``gps_t``, else the
``t`` of the row where it first appears. A car standing still with an unchanged fix therefore keeps one fix.
A last line without a line break that looks cut short (a partial upload) is dropped; either way it is noted
(:func:`ingest.formats.csv_util.drop_cut_line`).

Dialects: comma, semicolon or tab separated; with semicolon or tab also a decimal comma (``9,81``).
IDs: from the comment lines, else ``trip_id = "csv-<16 hex digits of the file's SHA-256>"`` and
``device_id = "csv-unknown"`` (noted in the trace's problems; all such files then count as one device, so a
confirmation by distinct devices errs low, never high). Accelerometer g and gyroscope deg/s are converted by
``build_trace``; times and speeds here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from ingest.errors import FormatError, SchemaError
from ingest.formats.csv_util import (
    Dialect,
    check_id_lengths,
    drop_cut_line,
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
from ingest.validate import build_trace, unknown_device_note

NAME = "csv"
ONE_FILE = True                        # a recording is one file
HEADER_HINT = ("the header needs a time column (t, time or timestamp: s, ms, us or ns since the UNIX epoch, or ISO "
               "8601 date-times) and the accelerometer's three axes including gravity (ax, ay, az or acc_x, "
               "accel_x, ...: m/s^2, or g as in ax_g or 'acc_x (g)'), optionally gyro_x..., lat, lon, speed, "
               "heading, accuracy; the accepted names are listed in bump's plain CSV reader "
               "(ingest/formats/plain_csv.py)")

ACCEL = ("ax", "ay", "az")
GYRO = ("gx", "gy", "gz")
TIMES = ("t", "gps_t")
_GPS_VALUES = ("lat", "lon", "speed", "heading", "accuracy")

# --- names ------------------------------------------------------------------------------------------------------
_SCALAR_NAMES: dict[str, tuple[str, ...]] = {
    "t": ("t", "time", "timestamp", "datetime", "epoch", "epochtime", "unixtime", "unixtimestamp", "timeutc",
          "utctime"),
    "gps_t": ("gpst", "gpstime", "gpstimestamp", "timegps", "timestampgps", "fixtime", "locationtime"),
    "lat": ("lat", "latitude"),
    "lon": ("lon", "lng", "long", "longitude"),
    "speed": ("speed", "groundspeed"),
    "heading": ("heading", "bearing", "course", "courseoverground", "cog"),
    "accuracy": ("accuracy", "horizontalaccuracy", "haccuracy", "hacc"),
}
_GPS_PREFIXES = ("", "gps", "location")
_SCALAR = {prefix + alias: role for role, aliases in _SCALAR_NAMES.items() for alias in aliases
           for prefix in (_GPS_PREFIXES if role in _GPS_VALUES else ("",))}
_ACCEL_WORDS = ("a", "acc", "accel", "accelerometer", "acceleration", "accelerometeracceleration")
_GYRO_WORDS = ("g", "gyr", "gyro", "gyroscope", "rotationrate", "angularvelocity", "angularrate")
_AXIS = {**{w + a: "a" + a for w in _ACCEL_WORDS for a in "xyz"},
         **{w + a: "g" + a for w in _GYRO_WORDS for a in "xyz"},
         **{a: a for a in "xyz"}}                  # bare x, y, z: the unit must say which sensor
_OTHER_QUANTITY = frozenset({"linear", "lin", "user", "gravity", "grav", "bias", "uncal", "uncalibrated", "std",
                             "stdev", "sd", "var", "variance", "err", "error", "accuracy", "offset", "mean", "avg",
                             "min", "max", "rms", "filtered", "filt", "kf", "smoothed", "magnitude", "abs"})

# --- units: written form (lower case, no spaces, µ -> u, ² -> 2, ° -> deg, ^ dropped) -> canonical -------------
_UNIT_NAMES: dict[str, tuple[str, ...]] = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "ms": ("ms", "msec", "millis", "millisecond", "milliseconds"),
    "us": ("us", "usec", "micros", "microsecond", "microseconds"),
    "ns": ("ns", "nsec", "nanos", "nanosecond", "nanoseconds"),
    "utc": ("utc",),                                # a time's zone, not its unit
    "m/s2": ("m/s2", "ms-2", "m/s/s", "mps2", "ms2", "m/sec2"),
    "g": ("g", "gs", "g0"),
    "rad/s": ("rad/s", "rads", "radps", "rad/sec"),
    "deg/s": ("deg/s", "degs", "degps", "dps", "deg/sec"),
    "m/s": ("m/s", "mps", "ms-1", "m/sec"),
    "km/h": ("km/h", "kmh", "kph", "kmph", "km/hr"),
    "mph": ("mph",),
    "kn": ("kn", "kt", "kts", "knot", "knots"),
    "deg": ("deg", "degree", "degrees", "wgs84"),
    "m": ("m", "meter", "meters", "metre", "metres"),
}
_UNIT_OF = {written: unit for unit, names in _UNIT_NAMES.items() for written in names}
_TIME_UNITS = ("s", "ms", "us", "ns", "utc")
_ALLOWED: dict[str, tuple[str, ...]] = {
    "t": _TIME_UNITS, "gps_t": _TIME_UNITS,
    **{r: ("m/s2", "g") for r in ACCEL}, **{r: ("rad/s", "deg/s") for r in GYRO},
    "lat": ("deg",), "lon": ("deg",), "heading": ("deg",), "accuracy": ("m",),
    "speed": ("m/s", "km/h", "mph", "kn"),
}
_QUANTITY = {"t": "a time", "gps_t": "a time", **dict.fromkeys(ACCEL, "an acceleration"),
             **dict.fromkeys(GYRO, "an angular rate"), "lat": "an angle", "lon": "an angle",
             "heading": "an angle", "accuracy": "a length", "speed": "a speed"}
_EXAMPLE = {"t": "timestamp_ms or 'time (s)'", "gps_t": "gps_time_ms", **dict.fromkeys(ACCEL, "acc_x_g"),
            **dict.fromkeys(GYRO, "gyro_x_deg_s"), "lat": "lat", "lon": "lon", "heading": "heading_deg",
            "accuracy": "accuracy_m", "speed": "speed_kmh or speed_mps"}
EPOCH_MIN_S = 1e8                      # 1973-03-03: a smaller first time is elapsed, not since the UNIX epoch
_DIVISOR_TO_S = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}

_BRACKET = re.compile(r"^(?P<base>.*?)\s*[\[(](?P<unit>[^\[\]()]*)[\])]\s*$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")
_DATE_TIME_START = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@dataclass(frozen=True)
class _Column:
    """A header cell read as a role: its name as written, position, unit and placement words."""

    name: str
    index: int
    role: str
    unit: str | None           # canonical unit the name states; None when it states none; "?" when not one known
    written_unit: str          # the unit as the header writes it ("" when none)
    qualifier: str             # words after a sensor axis (a placement such as "dashboard"); "" for none


@dataclass(frozen=True)
class _Layout:
    """Where the table starts and what its header says."""

    meta: dict[str, str]         # "# key: value" lines, keys lower-case
    skiprows: int                # comment lines + the header line
    header: list[str]
    dialect: Dialect
    rows: list[list[str]]        # the first data rows, split (to tell a date-time column)


def sniff(src: Source) -> bool:
    """A single file whose header (after any ``#`` lines) names a time and the accelerometer's three axes."""
    if not src.single:
        return False
    layout = _layout(src.head(16384))
    if layout is None:
        return False
    cols = {c.role: c for c in (_match(h, i) for i, h in enumerate(layout.header)) if c is not None}
    return {"t", *ACCEL} <= cols.keys() and _looks_like_epoch(layout, cols["t"])


def _first_cell(layout: _Layout, col: _Column) -> str:
    """The column's first non-blank cell among the rows the layout sniffed ("" when there is none)."""
    return next((r[col.index] for r in layout.rows if len(r) > col.index and r[col.index].strip()), "")


def _looks_like_epoch(layout: _Layout, col: _Column) -> bool:
    """For a time named other than ``t``: whether its first cell is a date-time or a number of s (or ms, us, ns)
    since the epoch after 1973. Other apps' ``time`` runs from 0 (Physics Toolbox's, beside its own ``ax``: gravity
    removed), and their files are not this format's whatever their headers share with it."""
    if col.name.strip().lower() in ("t", "t_s"):
        return True
    first = _first_cell(layout, col)
    if _DATE_TIME_START.match(first):
        return True
    try:
        return float(first.strip().replace(layout.dialect.decimal, ".")) >= EPOCH_MIN_S
    except ValueError:
        return False


def read(src: Source, *, limits: Limits = Limits()) -> Trace:
    """Read a plain CSV of a time, acceleration and optionally gyroscope and GPS columns into a validated Trace."""
    name = src.name
    layout = _layout(src.data)
    if layout is None:
        raise FormatError(f"has no header line; {HEADER_HINT}", source=name)
    cols = _columns(layout.header, source=name)
    accel_unit = _axes_unit(cols, ACCEL, default=_comment_unit(layout.meta, source=name), source=name)
    gyro_unit = _axes_unit(cols, GYRO, default="rad/s", source=name) if "gx" in cols else "rad/s"
    problems: list[str] = []
    data = drop_cut_line(src.data, header_lines=layout.skiprows, where=PurePosixPath(name).name, problems=problems,
                         sep=layout.dialect.sep)

    text_roles = [r for r in TIMES if r in cols and _holds_date_times(layout, cols[r], source=name)]
    values = read_numeric(data, {c.name: c.index for r, c in cols.items() if r not in text_roles},
                          dialect=layout.dialect, skiprows=layout.skiprows, source=name)
    v = {role: values[c.name] for role, c in cols.items() if role not in text_roles}
    n_rows = len(v["ax"])
    for role in TIMES:
        if role in text_roles:
            v[role] = _date_time_s(data, layout, cols[role], n_rows, source=name, problems=problems)
        elif role in cols:
            v[role] = _epoch_s(v[role], cols[role], problems)
    if "speed" in cols:
        v["speed"] = v["speed"] * SPEED_UNITS[cols["speed"].unit or "m/s"]
    t = v["t"]

    is_accel = np.isfinite(v["ax"]) | np.isfinite(v["ay"]) | np.isfinite(v["az"])
    gyro_t = gyro_xyz = None
    if "gx" in v:
        is_gyro = np.isfinite(v["gx"]) | np.isfinite(v["gy"]) | np.isfinite(v["gz"])
        if is_gyro.any():
            gyro_t, gyro_xyz = t[is_gyro], [v[k][is_gyro] for k in GYRO]
            if all(cols[r].unit is None for r in GYRO):
                problems.append(f"{', '.join(cols[r].name for r in GYRO)}: the names give no unit, so the angular "
                                "rates are read as rad/s; if they are deg/s (as some loggers and datasets write), "
                                "name them gyro_x_deg_s, gyro_y_deg_s, gyro_z_deg_s")
    gps = _gps_fixes(t, v, problems) if "lat" in v else None

    trip_id, device_id = _ids(layout.meta, src.data, source=name, problems=problems)
    return build_trace(
        source=name,
        source_format=NAME,
        trip_id=trip_id,
        device_id=device_id,
        accel_t_s=t[is_accel],
        accel_xyz=[v[k][is_accel] for k in ACCEL],
        accel_unit=accel_unit,
        gyro_t_s=gyro_t,
        gyro_xyz=gyro_xyz,
        gyro_unit=gyro_unit,
        gyro_unit_hint="name the gyroscope columns with the unit, e.g. gyro_x_deg_s, gyro_y_deg_s, gyro_z_deg_s",
        gps_t_s=None if gps is None else gps["t"],
        lat_deg=None if gps is None else gps["lat"],
        lon_deg=None if gps is None else gps["lon"],
        speed_mps=None if gps is None else gps.get("speed"),
        heading_deg=None if gps is None else gps.get("heading"),
        accuracy_m=None if gps is None else gps.get("accuracy"),
        limits=limits,
        problems=problems,
        field_prefix={"accel": _group("accel", cols, ("t", *ACCEL)),
                      "gyro": _group("gyro", cols, ("t", *GYRO)),
                      "gps": _group("gps", cols, ("gps_t" if "gps_t" in cols else "t", "lat", "lon"))},
    )


def _layout(data: bytes) -> _Layout | None:
    lines = head_lines(data, 256)
    meta = meta_lines(lines)
    i = meta.n_lines
    if i >= len(lines):
        return None
    dialect = sniff_dialect(lines[i], lines[i + 1:i + 32])
    rows = [split_header(r, dialect.sep) for r in lines[i + 1:i + 32] if r.strip()]
    return _Layout(meta.values, i + 1, split_header(lines[i], dialect.sep), dialect, rows)


# --- column names -----------------------------------------------------------------------------------------------


def _match(cell: str, index: int) -> _Column | None:
    """The role a header cell names (see the module's table), or None for a column bump does not read."""
    bracket = _BRACKET.match(cell)
    base, written = (bracket["base"], bracket["unit"].strip()) if bracket else (cell, "")
    words = _WORD.findall(_CAMEL.sub("_", base).lower())
    unit = _unit_of(written) if written else None
    for n in (2, 1):                                   # a unit as the last word(s): speed_kmh, gyro_x_deg_s
        said = _UNIT_OF.get("/".join(words[-n:])) if len(words) > n else None
        if said is not None:
            if unit is not None and unit != said:      # "time_ms (s)"
                unit, written = "?", f"{'_'.join(words[-n:])} and {written}"
            else:
                unit, written = said, written or "_".join(words[-n:])
            words = words[:-n]
            break
    if not words:
        return None
    role = _SCALAR.get("".join(words))
    if role is not None:
        if role in TIMES and unit is None and "utc" in words:
            unit = "utc"
        return _Column(cell, index, role, unit, written, "")
    for n in range(len(words), 0, -1):                 # a sensor axis, then placement words
        axis = _AXIS.get("".join(words[:n]))
        if axis is not None:
            break
    else:
        return None
    qualifier = words[n:]
    if _OTHER_QUANTITY.intersection(qualifier):
        return None
    if len(axis) == 1:                                 # bare x, y, z: only with a unit that names the sensor
        family = "a" if unit in _ALLOWED["ax"] else "g" if unit in _ALLOWED["gx"] else None
        if family is None:
            return None
        axis = family + axis
    return _Column(cell, index, axis, unit, written, "_".join(qualifier))


def _unit_of(written: str) -> str:
    """Canonical unit of a unit as written (``m/s^2``, ``°/s``, ``km/h``, ``µs``), "?" when not one bump knows."""
    key = (written.lower().replace(" ", "").replace("µ", "u").replace("μ", "u").replace("²", "2")
           .replace("°", "deg").replace("^", ""))
    return _UNIT_OF.get(key, "?")


def _columns(header: list[str], *, source: str) -> dict[str, _Column]:
    """Role -> the header's column; FormatError for two columns of one role, SchemaError for a missing role, a
    unit that is not one of the role's, an incomplete group, or axes of different sensors."""
    cols: dict[str, _Column] = {}
    for i, cell in enumerate(header):
        col = _match(cell, i)
        if col is None:
            continue
        if col.role in cols:
            first = cols[col.role].name
            raise FormatError(f"columns {first!r} and {cell!r} both read as {col.role} ({_QUANTITY[col.role]}), "
                              "so bump cannot tell which one to use (sensors at several placements?); keep one: "
                              f"delete the other column (and its sensor's other axes) or rename it, e.g. "
                              f"'unused_{cell}'", source=source, field=cell)
        if col.unit is not None and col.unit not in _ALLOWED[col.role]:
            raise SchemaError(f"names the unit {col.written_unit!r}, not one bump reads for "
                              f"{_QUANTITY[col.role]} ({col.role}); write one of "
                              f"{', '.join(u for u in _ALLOWED[col.role] if u != 'utc')} "
                              f"(e.g. {_EXAMPLE[col.role]})", source=source, field=cell)
        cols[col.role] = col
    shown = ",".join(header)
    for role in ("t", *ACCEL):
        if role not in cols:
            raise SchemaError(f"has no {role!r} column (header: {shown}){_why_missing(header, role)}; "
                              f"{HEADER_HINT}", source=source, field=role)
    for group in (GYRO, ("lat", "lon")):
        have = [r for r in group if r in cols]
        if have and len(have) < len(group):
            missing = ", ".join(repr(r) for r in group if r not in cols)
            raise SchemaError(f"has {', '.join(repr(cols[r].name) for r in have)} but no {missing} column (header: "
                              f"{shown}); give all of {', '.join(group)} or none", source=source,
                              field=next(r for r in group if r not in cols))
    for group in (ACCEL, GYRO):
        if group[0] in cols and len({cols[r].qualifier for r in group}) > 1:
            names = ", ".join(repr(cols[r].name) for r in group)
            raise SchemaError(f"columns {names} name different sensors; give the three axes of one sensor the same "
                              "name apart from x, y, z (e.g. acc_x_dashboard, acc_y_dashboard, acc_z_dashboard)",
                              source=source, field=cols[group[0]].name)
    return cols


def _why_missing(header: list[str], role: str) -> str:
    """Why a header that looks like it has the role's column does not count, for the missing-column error."""
    if role not in ACCEL:
        return ""
    words = [set(_WORD.findall(_CAMEL.sub("_", h).lower())) for h in header]
    if any(w & {"linear", "lin", "user"} for w in words):
        return (": linear or user acceleration has gravity removed, and bump needs the raw acceleration including "
                "gravity (Android's TYPE_ACCELEROMETER, iOS's acceleration + gravity)")
    if any(w & {role[1]} and len(w) == 1 for w in words):
        return (f": {role[1]!r} alone does not say which sensor; name the columns ax, ay, az (or acc_x, ...) or "
                f"give the unit, e.g. '{role[1]} (m/s^2)'")
    return ""


def _comment_unit(meta: dict[str, str], *, source: str) -> str | None:
    """The accelerometer unit a ``# unit:`` line gives, None without one; SchemaError for another unit."""
    stated = meta.get("unit")
    if stated is None:
        return None
    unit = _unit_of(stated.strip())
    if unit not in _ALLOWED["ax"]:
        raise SchemaError(f"is {stated!r}; write '# unit: g' or '# unit: m/s2'", source=source, field="unit")
    return unit


def _axes_unit(cols: dict[str, _Column], axes: tuple[str, ...], *, default: str | None, source: str) -> str:
    """The one unit of a sensor's three axes: the one their names state, else ``default`` (a ``# unit:`` line for
    the accelerometer), else the SI unit. SchemaError when the names mix units or contradict the comment."""
    si = _ALLOWED[axes[0]][0]
    units = [cols[r].unit for r in axes]
    stated = {u for u in units if u is not None}
    names = ", ".join(cols[r].name for r in axes)
    if len(stated) > 1 or (stated and stated != {si} and None in units):
        raise SchemaError(f"mixes units: {names}; give all three axes one unit (e.g. ax_g, ay_g, az_g or "
                          "ax, ay, az for the accelerometer in g or m/s^2; gyro_x_deg_s, ... for deg/s)",
                          source=source, field=cols[axes[0]].name)
    from_names = next(iter(stated), None)
    if axes == ACCEL and from_names and default and from_names != default:
        raise SchemaError(f"'# unit: {default}' contradicts column {cols[axes[0]].name!r}; keep one of them",
                          source=source, field="unit")
    return from_names or default or si


# --- times ------------------------------------------------------------------------------------------------------


def _epoch_s(values: np.ndarray, col: _Column, problems: list[str]) -> np.ndarray:
    """Numeric times -> s since the UNIX epoch, in the unit the name states, else by magnitude (noted unless s)."""
    unit = col.unit if col.unit in _DIVISOR_TO_S else None
    if unit is None:
        finite = np.abs(values[np.isfinite(values)])
        magnitude = float(np.median(finite)) if finite.size else 0.0
        unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us" if magnitude < 1e17 else "ns"
        if unit != "s":
            problems.append(f"{col.name}: the name gives no unit and the values (median {magnitude:.4g}) are read as "
                            f"{_UNIT_WORDS[unit]} since the UNIX epoch; to say so, name the column e.g. "
                            f"'timestamp_{unit}'")
    return values / _DIVISOR_TO_S[unit]


def _holds_date_times(layout: _Layout, col: _Column, *, source: str) -> bool:
    """Whether the column's first value is a date-time (``2024-03-09T14:00:00``); SchemaError if its name says a
    unit of numbers (``time_ms``)."""
    first = _first_cell(layout, col)
    if not _DATE_TIME_START.match(first):
        return False
    if col.unit in _DIVISOR_TO_S:
        raise SchemaError(f"names the unit {col.written_unit!r} but holds date-times ({first!r}); rename the column "
                          f"without the unit (e.g. 'time') to read them as ISO 8601", source=source, field=col.name)
    return True


def _date_time_s(data: bytes, layout: _Layout, col: _Column, n_rows: int, *, source: str,
                 problems: list[str]) -> np.ndarray:
    """ISO 8601 date-times of a column -> s since the UNIX epoch (without a UTC offset: read as UTC, noted)."""
    text = read_text_column(data, col.index, dialect=layout.dialect, skiprows=layout.skiprows, source=source)
    if len(text) != n_rows:
        raise SchemaError(f"has {len(text)} rows as text but {n_rows} as numbers; export the file again without "
                          "editing", source=source, field=col.name)
    times = parse_datetimes(text, (text == "").to_numpy())
    if times.bad is not None:
        i = times.bad
        raise SchemaError(f"holds {text.iloc[i]!r} on line {layout.skiprows + i + 1}, not a date-time like "
                          "'2024-03-09T14:00:00.020+01:00' (ISO 8601) as in the rest of the column; fix that row or "
                          "export again", source=source, field=col.name)
    if times.mixed is not None:
        raise mixed_offset_error(text, times.mixed, skiprows=layout.skiprows, source=source, field=col.name)
    if not times.zoned and col.unit != "utc" and np.isfinite(times.seconds).any():
        problems.append(f"{col.name}: date-times without a UTC offset, read as UTC; add the offset (e.g. "
                        "'2024-03-09T14:00:00+01:00' or '...Z') or name the column 'time_utc' if they are UTC")
    return times.seconds


# --- GPS, ids -----------------------------------------------------------------------------------------------------


def _gps_fixes(t: np.ndarray, v: dict[str, np.ndarray], problems: list[str]) -> dict[str, np.ndarray]:
    """The distinct fixes among rows with lat and lon: a fix repeated on following rows is kept once."""
    rows = np.flatnonzero(np.isfinite(v["lat"]) & np.isfinite(v["lon"]))
    keys = ["gps_t"] if "gps_t" in v else [k for k in _GPS_VALUES if k in v]
    new = np.ones(rows.size, dtype=bool)
    if rows.size > 1:
        changed = np.zeros(rows.size - 1, dtype=bool)
        for k in keys:
            a = v[k][rows]
            changed |= ~((a[1:] == a[:-1]) | (np.isnan(a[1:]) & np.isnan(a[:-1])))
        new[1:] = changed
    fixes = rows[new]
    if fixes.size < rows.size:
        problems.append(f"gps: {rows.size} rows with a position hold {fixes.size} distinct fixes; repeats dropped")
    out = {k: v[k][fixes] for k in _GPS_VALUES if k in v}
    out["t"] = v["gps_t"][fixes] if "gps_t" in v else t[fixes]
    return out


def _ids(meta: dict[str, str], data: bytes, *, source: str, problems: list[str]) -> tuple[str, str]:
    check_id_lengths(meta, source=source)
    trip_id = meta.get("trip_id") or f"csv-{hashlib.sha256(data).hexdigest()[:16]}"
    device_id = meta.get("device_id")
    if not device_id:
        device_id = "csv-unknown"
        problems.append(unknown_device_note("'# device_id: ...' line", device_id))
    return trip_id, device_id


def _group(label: str, cols: dict[str, _Column], roles: tuple[str, ...]) -> str:
    """``accel[t,ax,ay,az]``: the block and the user's own column names, for validation messages."""
    return f"{label}[{','.join(cols[r].name if r in cols else r for r in roles)}]"
