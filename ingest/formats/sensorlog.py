"""Reader for SensorLog (Bernd Thomas, iOS) exports: one wide CSV, one row per logging tick.

Layout (the project's field notes on phone export formats; header names carry the unit in brackets):
``loggingTime(txt)`` (wall clock of the row, ``YYYY-MM-DD HH:MM:SS.fff``, local time, sometimes followed by a
UTC offset such as `` -0400``),
``locationTimestamp_since1970(s)``, ``locationLatitude(WGS84)``, ``locationLongitude(WGS84)``,
``locationSpeed(m/s)``, ``locationCourse(°)``, ``locationHorizontalAccuracy(m)``,
``accelerometerTimestamp_sinceReboot(s)``, ``accelerometerAcceleration{X,Y,Z}(G)`` (g, gravity included),
``gyroTimestamp_sinceReboot(s)``, ``gyroRotation{X,Y,Z}(rad/s)``, ``motionTimestamp_sinceReboot(s)``,
``motionUserAcceleration{X,Y,Z}(G)``, ``motionGravity{X,Y,Z}(G)``, ``motionRotationRate{X,Y,Z}(rad/s)``.
Columns are matched by the name before the bracket, so a mangled unit (``locationCourse(Â°)``) still matches.
Comma or semicolon separated (semicolon files may use a decimal comma).

Quirks handled here:

* every row repeats the latest value of each sensor: accelerometer, gyroscope and GPS samples are the rows where
  their own timestamp changes (GPS fixes: ``locationTimestamp_since1970`` changes);
* -9999 means n/a in any numeric column, -9999 or -1 in ``loggingTime(txt)``; negative speed, course, accuracy
  and timestamps mean invalid (-> NaN). ``loggingTime`` rows with and without a UTC offset in one file are refused
  (the zone of the others is unknown);
* without ``accelerometerAcceleration*`` the raw acceleration is ``motionUserAcceleration + motionGravity``
  (Core Motion's definition) on ``motionTimestamp_sinceReboot``;
* Core Motion reports acceleration with the opposite sign of Android on all three axes; bump uses Android's
  (phone flat, screen up: z = +1 g), so the axes are negated here. Rotation rates already agree;
* sensor times count from the last reboot. See :func:`_reboot_offset_s` for how they are put on the UNIX epoch.

All unit handling is in the column table below (``_UNITS``) and :func:`_accel_and_gyro`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from ingest.errors import FormatError, SchemaError
from ingest.formats.csv_util import drop_cut_line, mixed_offset_error, parse_datetimes
from ingest.formats.sensor_logger import member_field, member_lead, numeric_column, read_table
from ingest.source import Source
from ingest.trace import Limits, Trace
from ingest.validate import build_trace, unknown_device_note

if TYPE_CHECKING:
    import pandas as pd

NAME = "sensorlog"
ONE_FILE = True                        # a recording is one file

LOGGING_TIME = "loggingTime(txt)"
GPS_T = "locationTimestamp_since1970(s)"
ACCEL_T = "accelerometerTimestamp_sinceReboot(s)"
GYRO_T = "gyroTimestamp_sinceReboot(s)"
MOTION_T = "motionTimestamp_sinceReboot(s)"
GPS_COLUMNS = {                          # canonical -> SensorLog header (units already canonical)
    "lat_deg": "locationLatitude(WGS84)",
    "lon_deg": "locationLongitude(WGS84)",
    "speed_mps": "locationSpeed(m/s)",
    "heading_deg": "locationCourse(°)",
    "accuracy_m": "locationHorizontalAccuracy(m)",
}
ACCEL = tuple(f"accelerometerAcceleration{a}(G)" for a in "XYZ")
USER_ACCEL = tuple(f"motionUserAcceleration{a}(G)" for a in "XYZ")
GRAVITY = tuple(f"motionGravity{a}(G)" for a in "XYZ")
GYRO = tuple(f"gyroRotation{a}(rad/s)" for a in "XYZ")
MOTION_GYRO = tuple(f"motionRotationRate{a}(rad/s)" for a in "XYZ")
ID_COLUMNS = ("identifierForVendor(txt)", "deviceID(txt)")

_UNITS = {"accel": "g", "accel_sign": -1.0}   # Core Motion g, inertial-force sign -> bump's m/s^2 via build_trace
NA_SENTINEL = -9999.0
NEGATIVE_INVALID = ("speed_mps", "heading_deg", "accuracy_m")
ZONE_STEP_S = 900.0                      # UTC offsets are whole quarter hours

_SIGNATURE = (LOGGING_TIME, ACCEL_T, GPS_T, MOTION_T)
_NUMERIC = (GPS_T, ACCEL_T, GYRO_T, MOTION_T, *GPS_COLUMNS.values(), *ACCEL, *USER_ACCEL, *GRAVITY, *GYRO,
            *MOTION_GYRO)
_TEXT = (LOGGING_TIME, *ID_COLUMNS)
NA_TEXT = ("-9999", "-1", "-9999.0", "-1.0")    # loggingTime(txt) n/a (SensorLog writes -9999 or -1)
ENABLE_HINT = ("in SensorLog enable the accelerometer ('ACC') or device motion ('DM') and record again; "
               "export CSV with comma or semicolon separators")
REEXPORT_HINT = "export the log again from SensorLog as CSV (comma or semicolon separated)"


def _base(column: str) -> str:
    """Header name without its unit bracket: ``locationCourse(°)`` -> ``locationCourse``."""
    return column.split("(", 1)[0].strip()


def _find_member(src: Source) -> str | None:
    for member in src.members:
        if src.single or member.lower().endswith((".csv", ".txt")):
            head = src.read(member)[:4096].split(b"\n", 1)[0].decode("utf-8", errors="replace")
            if any(sig in head for sig in _SIGNATURE):
                return member
    return None


def sniff(src: Source) -> bool:
    """True for a file (or an archive's CSV) whose header line carries SensorLog's column names."""
    return _find_member(src) is not None


def read(src: Source, *, limits: Limits = Limits()) -> Trace:
    """Read a SensorLog CSV into a Trace (sensor times aligned to the UNIX epoch, GPS fixes de-duplicated)."""
    member = _find_member(src)
    if member is None:
        raise FormatError(f"has no SensorLog CSV (a header with {LOGGING_TIME} or {ACCEL_T}); {ENABLE_HINT}",
                          source=src.name)
    data = src.read(member)
    where = None if src.single else member          # a single file is named by the source already
    lines = data[:65536].split(b"\n", 2)
    header, first_row = lines[0], (lines[1] if len(lines) > 1 else b"")
    sep = ";" if header.count(b";") > header.count(b",") else ","
    decimal = "," if sep == ";" and re.search(rb"\d,\d", first_row) else "."    # semicolon + decimal comma
    wanted = {_base(c) for c in (*_NUMERIC, *_TEXT)}
    problems: list[str] = []
    # a last line cut inside its first cell (loggingTime) is kept: _logging_time_s refuses it, naming the line
    data = drop_cut_line(data, header_lines=1, where=where or PurePosixPath(src.name).name, problems=problems,
                         sep=sep, min_fields=2)
    df = read_table(data, source=src.name, member=where, sep=sep, decimal=decimal,
                    usecols=lambda c: _base(str(c)) in wanted, hint=REEXPORT_HINT)
    if not len(df):
        raise SchemaError(f"{member_lead(where)}has a header but no data rows, so the log is empty; record again "
                          f"(in SensorLog, start logging before you drive), or {REEXPORT_HINT}", source=src.name,
                          field=member_field(where, ACCEL_T))
    df.columns = [_canonical_header(c) for c in df.columns]
    num = {c: _numeric(df, c, source=src.name, where=where) for c in _NUMERIC if c in df.columns}

    accel_name, accel_t, accel, gyro_name, gyro_t, gyro = _accel_and_gyro(num, df, source=src.name, member=member,
                                                                          where=where, problems=problems)
    gps_t, gps = _gps(num, df.columns, source=src.name, where=where)
    offset_s = _reboot_offset_s(df, num, accel_t, gps_t, source=src.name, member=member, where=where,
                                problems=problems)

    keep_a = _fresh(accel_t)
    keep_g = _fresh(gyro_t) if gyro_t is not None else None
    keep_f = _fresh(gps_t) if gps_t is not None else None
    digest = hashlib.sha256(data).hexdigest()[:16]
    device_id = _first_text(df, ID_COLUMNS)
    if not device_id:                     # one id for every such file: they never count as distinct phones
        device_id = "sensorlog-unknown"
        problems.append(unknown_device_note("deviceID column", device_id))
    return build_trace(
        source=src.name,
        source_format=NAME,
        trip_id=f"sensorlog-{digest}",
        device_id=device_id[:150],
        accel_t_s=accel_t[keep_a] + offset_s,
        accel_xyz=accel[keep_a] * _UNITS["accel_sign"],
        accel_unit=_UNITS["accel"],
        gyro_t_s=None if keep_g is None else gyro_t[keep_g] + offset_s,
        gyro_xyz=None if keep_g is None else gyro[keep_g],
        gps_t_s=None if keep_f is None else gps_t[keep_f],
        **({} if keep_f is None else {k: v[keep_f] for k, v in gps.items()}),
        phone={"os": "iOS", "app": "SensorLog"},
        limits=limits,
        unit_hint=(f"SensorLog writes its (G) columns ({accel_name}) in g, Core Motion's unit; {REEXPORT_HINT} "
                   "without converting their values"),
        problems=problems,
        field_prefix={"accel": _prefixed(where, accel_name), "gyro": _prefixed(where, gyro_name),
                      "gps": _prefixed(where, "location")},
    )


def _canonical_header(column: str) -> str:
    """Map a header to the documented spelling when only its unit bracket differs (encoding damage)."""
    base = _base(column)
    for known in (*_NUMERIC, *_TEXT):
        if _base(known) == base:
            return known
    return column


def _prefixed(where: str | None, block: str) -> str:
    """``export/log.csv:location`` inside an archive, ``location`` for a single file (the source names it)."""
    return f"{where}:{block}" if where else block


def _numeric(df: pd.DataFrame, column: str, *, source: str, where: str | None) -> np.ndarray:
    arr = numeric_column(df, column, source=source, member=where)
    return np.where(arr == NA_SENTINEL, np.nan, arr)


def _fresh(t: np.ndarray) -> np.ndarray:
    """Rows whose timestamp is finite and differs from the previous finite one (a new sample)."""
    finite = np.isfinite(t)
    idx = np.flatnonzero(finite)
    keep = np.zeros(t.size, dtype=bool)
    if idx.size:
        vals = t[idx]
        keep[idx[np.concatenate(([True], vals[1:] != vals[:-1]))]] = True
    return keep


def _first_text(df: pd.DataFrame, columns: tuple[str, ...]) -> str | None:
    for column in columns:
        if column in df.columns:
            vals = df[column].dropna().astype(str).str.strip()
            vals = vals[vals != ""]
            if len(vals):
                return str(vals.iloc[0])
    return None


def _missing(columns: tuple[str, ...], num: dict[str, np.ndarray]) -> list[str]:
    return [c for c in columns if c not in num]


def _has_block(t_col: str, columns: tuple[str, ...], num: dict[str, np.ndarray]) -> bool:
    """The block's columns are all there and its time column holds a valid time (-9999 and empty cells are NaN:
    a log of another sensor has these columns empty)."""
    return not _missing((t_col, *columns), num) and bool(np.any(num[t_col] >= 0))


def _accel_and_gyro(num: dict[str, np.ndarray], df: pd.DataFrame, *, source: str, member: str, where: str | None,
                    problems: list[str]) -> tuple[str, np.ndarray, np.ndarray, str, np.ndarray | None,
                                                  np.ndarray | None]:
    """Per row: accel name, time since reboot [s] and values [g, Core Motion sign]; gyro name, time, [rad/s]."""
    if _has_block(ACCEL_T, ACCEL, num):
        accel_name, accel_t, accel = "accelerometerAcceleration", num[ACCEL_T], np.column_stack(
            [num[c] for c in ACCEL])
    elif _has_block(MOTION_T, (*USER_ACCEL, *GRAVITY), num):
        accel_name, accel_t = "motionUserAcceleration+motionGravity", num[MOTION_T]
        accel = np.column_stack([num[u] + num[g] for u, g in zip(USER_ACCEL, GRAVITY, strict=True)])
        why = "are empty" if not _missing((ACCEL_T, *ACCEL), num) else "are missing"
        problems.append(f"{member}: the accelerometerAcceleration columns {why}; used motionUserAcceleration + "
                        "motionGravity (device motion)")
    elif present := [t for t, cols in ((ACCEL_T, ACCEL), (MOTION_T, (*USER_ACCEL, *GRAVITY)))
                     if not _missing((t, *cols), num)]:
        empty = " and ".join(repr(c) for c in present)
        raise SchemaError(f"{member_lead(where)}has no accelerometer data: {empty} hold no time in any row (every "
                          "cell is empty or -9999), so the log recorded neither the accelerometer nor device motion; "
                          f"{ENABLE_HINT}", source=source, field=member_field(where, present[0]))
    else:
        missing = _missing((ACCEL_T, *ACCEL), num)[0]
        have = ", ".join(map(str, df.columns)) or "none"
        raise SchemaError(f"{member_lead(where)}has no column {missing!r} (nor motionUserAcceleration* + "
                          f"motionGravity* with {MOTION_T}); it has: {have}; {ENABLE_HINT}", source=source,
                          field=member_field(where, missing))
    accel_t = np.where(accel_t < 0, np.nan, accel_t)
    for t_col, cols in ((GYRO_T, GYRO), (MOTION_T, MOTION_GYRO)):
        if _has_block(t_col, cols, num):
            gyro_t = np.where(num[t_col] < 0, np.nan, num[t_col])
            return accel_name, accel_t, accel, _base(cols[0])[:-1], gyro_t, np.column_stack([num[c] for c in cols])
    if any(c in num for c in GYRO) and _missing((GYRO_T, *GYRO), num):
        problems.append(f"{member}: incomplete gyroscope columns ({', '.join(_missing((GYRO_T, *GYRO), num))} "
                        "missing): gyroscope ignored")
    return accel_name, accel_t, accel, "gyroRotation", None, None


def _gps(num: dict[str, np.ndarray], columns: pd.Index, *, source: str,
         where: str | None) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Per-row GPS time [s since the epoch] and values; (None, {}) without location columns."""
    if GPS_T not in num:
        return None, {}
    for key in ("lat_deg", "lon_deg"):
        if GPS_COLUMNS[key] not in num:
            raise SchemaError(f"{member_lead(where)}has {GPS_T} but no column {GPS_COLUMNS[key]!r}; export again with "
                              "location enabled", source=source, field=member_field(where, GPS_COLUMNS[key]))
    t = np.where(num[GPS_T] > 0, num[GPS_T], np.nan)
    out = {k: num[c] for k, c in GPS_COLUMNS.items() if c in num}
    for key in NEGATIVE_INVALID:
        if key in out:
            out[key] = np.where(out[key] < 0, np.nan, out[key])
    return t, out


def _logging_time_s(df: pd.DataFrame, *, source: str, where: str | None) -> tuple[np.ndarray, bool] | None:
    """``loggingTime(txt)`` as s since 1970 and whether it carried a UTC offset (else it is local time).

    ``-9999`` and ``-1`` (SensorLog's n/a) and empty cells are missing (NaN). A cell that is not a time, or rows with
    and without a UTC offset in one file, raise SchemaError naming the line."""
    if LOGGING_TIME not in df.columns:
        return None
    text = df[LOGGING_TIME].astype("string").str.strip().fillna("")
    missing = ((text == "") | text.isin(NA_TEXT)).to_numpy(dtype=bool)
    if missing.all():
        return None
    times = parse_datetimes(text, missing)
    field = member_field(where, LOGGING_TIME)
    if times.bad is not None:
        i = times.bad
        cut = "; the file may be cut short (send it whole)" if i == len(text) - 1 else ""
        raise SchemaError(f"{member_lead(where)}column {LOGGING_TIME!r} holds {text.iloc[i]!r} on line {i + 2}, not a "
                          "time like '2024-05-01 09:15:00.123' (optionally with a UTC offset ' -0400'); fix that row "
                          f"or export again{cut}", source=source, field=field)
    if times.mixed is not None:
        raise mixed_offset_error(text, times.mixed, skiprows=1, source=source, field=field,
                                 lead=f"{member_lead(where)}column {LOGGING_TIME!r} ")
    return times.seconds, times.zoned


def _reboot_offset_s(df: pd.DataFrame, num: dict[str, np.ndarray], accel_t: np.ndarray, gps_t: np.ndarray | None,
                     *, source: str, member: str, where: str | None, problems: list[str]) -> float:
    """Offset [s] from seconds-since-reboot to seconds since the UNIX epoch.

    The accelerometer sample of a row was taken just before the row was logged, so the offset is
    ``median(loggingTime - accelerometerTimestamp)`` over the rows carrying a new sample (error: about half a
    sample period). ``loggingTime`` is read as UTC when it carries an offset; otherwise it is local time and its
    zone is ``median(loggingTime - locationTimestamp_since1970)`` over new GPS fixes, rounded to a quarter hour
    (fix latency is well under that). Fallbacks, each noted in ``problems``: without ``loggingTime``,
    ``median(locationTimestamp - accelerometerTimestamp)`` over new fixes (late by the fix latency, ~0.1-1 s);
    local ``loggingTime`` without GPS is taken as UTC.
    """
    fresh_a = _fresh(accel_t)
    fresh_f = _fresh(gps_t) if gps_t is not None else np.zeros(accel_t.size, dtype=bool)
    logging = _logging_time_s(df, source=source, where=where)
    if logging is not None:
        log_s, zoned = logging
        if not zoned:
            zone_rows = fresh_f & np.isfinite(log_s)
            if zone_rows.any():
                assert gps_t is not None
                zone_s = float(np.median(log_s[zone_rows] - gps_t[zone_rows]))
                log_s = log_s - ZONE_STEP_S * round(zone_s / ZONE_STEP_S)
            else:
                problems.append(f"{member}: {LOGGING_TIME} has no UTC offset and there is no GPS fix to find the "
                                "time zone; local time taken as UTC")
        rows = fresh_a & np.isfinite(log_s)
        if rows.any():
            return float(np.median(log_s[rows] - accel_t[rows]))
    rows = fresh_f & np.isfinite(accel_t)
    if rows.any():
        assert gps_t is not None
        problems.append(f"{member}: no usable {LOGGING_TIME}; sensor times aligned through GPS fix times "
                        "(expect 0.1-1 s of offset)")
        return float(np.median(gps_t[rows] - accel_t[rows]))
    raise FormatError(f"{member_lead(where)}has neither {LOGGING_TIME} nor GPS fixes ({GPS_T}), so its sensor times "
                      "(since reboot) cannot be placed on a clock; in SensorLog enable logging time or location",
                      source=source, field=member_field(where, LOGGING_TIME))

