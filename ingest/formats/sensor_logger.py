"""Reader for Sensor Logger (Kelvin Choi; iOS and Android) exports: a zip or folder with one CSV per sensor.

Layout, from the app's own notes (github.com/tszheichoi/awesome-sensor-logger: UNITS.md, COORDINATES.md,
CROSSPLATFORM.md) and the project's field notes on phone export formats:

* every CSV has ``time`` [ns since the UNIX epoch, int] and ``seconds_elapsed`` [s since Start];
* axis files (``TotalAcceleration.csv``, ``Accelerometer.csv``, ``Gravity.csv``, ``Gyroscope.csv``,
  ``*Uncalibrated.csv``) store their columns as ``z,y,x``: they are read by name, never by position;
* ``TotalAcceleration`` [m/s^2] includes gravity (Android only). ``Accelerometer`` [m/s^2] has gravity removed;
  ``Gravity`` [m/s^2] is added back after interpolation onto the accelerometer times (iOS has no
  TotalAcceleration). ``AccelerometerUncalibrated`` includes gravity and is in g on iOS, m/s^2 on Android and
  whenever "Standardise Units & Frames" is on. Preference: TotalAcceleration, Accelerometer + Gravity,
  AccelerometerUncalibrated;
* iOS acceleration and gravity have the opposite sign of Android on all three axes unless "Standardise Units &
  Frames" is on (``Metadata.csv`` column ``standardisation``). bump uses the Android convention (phone flat on
  a table, screen up: z = +9.81 m/s^2), so iOS axes are negated here. Gyroscope rates agree on both platforms;
* ``Location.csv``: latitude, longitude [deg], speed [m/s], bearing [deg], horizontalAccuracy [m]; negative
  values mean invalid (-> NaN). Older app versions have fewer columns; all are read by name;
* ``Metadata.csv`` (one row): device name, recording epoch time [ms], platform, appVersion, device id, ...;
* ``Annotation.csv`` (driver's marks, may be empty) is not used;
* an empty (0-byte) sensor file is read as if it were missing (noted in the trace's problems): the next
  accelerometer choice is used, or the recording has no gyroscope or GPS. A ``time`` column too small to be ns
  (ms, us or s written instead) is refused, naming the unit it looks like.

All unit handling is in :func:`_epoch_s` (ns -> s), :data:`_ACCEL_FILES` with :func:`_accel_frame` (unit and
axis sign per accelerometer file; ``build_trace`` applies the g factor) and :data:`GPS_COLUMNS`.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from ingest.errors import FormatError, SchemaError, TimestampError, TraceError
from ingest.formats.csv_util import drop_cut_line
from ingest.source import Source
from ingest.trace import Limits, Trace
from ingest.units import NS_PER_S
from ingest.validate import build_trace, unknown_device_note

if TYPE_CHECKING:
    import pandas as pd

NAME = "sensor_logger"
ONE_FILE = False                       # a recording is an export of several files (a folder or a zip)

TIME_COLUMN = "time"                       # int ns since the UNIX epoch, in every file
AXIS_COLUMNS = ("x", "y", "z")             # stored as z, y, x: always read by name
GPS_COLUMNS = {                            # canonical name -> Location.csv column (unit already canonical)
    "lat_deg": "latitude",
    "lon_deg": "longitude",
    "speed_mps": "speed",
    "heading_deg": "bearing",
    "accuracy_m": "horizontalAccuracy",
}
GPS_REQUIRED = ("lat_deg", "lon_deg")
GPS_NEGATIVE_INVALID = ("speed_mps", "heading_deg", "accuracy_m")
IOS_ACCEL_SIGN = -1.0                      # iOS (not standardised) -> Android axis convention

TOTAL, LINEAR, GRAVITY, UNCALIBRATED = ("TotalAcceleration.csv", "Accelerometer.csv", "Gravity.csv",
                                        "AccelerometerUncalibrated.csv")
GYRO, LOCATION, METADATA, ANNOTATION = "Gyroscope.csv", "Location.csv", "Metadata.csv", "Annotation.csv"
IOS_LOCATION_COLUMN = "altitudeAboveMeanSeaLevel"   # Location.csv column only iOS writes
_ACCEL_LOWER = tuple(n.lower() for n in (TOTAL, LINEAR, GRAVITY, UNCALIBRATED))      # in order of preference
_SENSOR_FILES = (TOTAL, LINEAR, GRAVITY, UNCALIBRATED, GYRO, LOCATION)
_SENSOR_LOWER = {n.lower() for n in _SENSOR_FILES}
_KNOWN = {*_SENSOR_LOWER, METADATA.lower(), ANNOTATION.lower()}

ENABLE_HINT = ("in Sensor Logger enable 'Accelerometer' and 'Gravity' (iOS), or 'Accelerometer' with total "
               "acceleration (Android), record again and export as 'Zipped CSV'")
REEXPORT_HINT = "export the recording again from Sensor Logger as 'Zipped CSV'"
AXIS_HINT = f"{REEXPORT_HINT} (its sensor files have columns time, seconds_elapsed, z, y, x)"
LOCATION_HINT = ("export the recording again with 'Location' enabled (Location.csv has columns time, latitude, "
                 "longitude, ...)")
_SECOND_LINE = re.compile(rb"[\r\n]\s*\S")     # a line break followed by more text
MIN_EPOCH_NS = 1e17                        # 1973-03-03: smaller `time` values are not ns since the epoch


def sniff(src: Source) -> bool:
    """True if a member named like a Sensor Logger sensor file has a ``time,seconds_elapsed`` header."""
    for member in src.members:
        name = PurePosixPath(member).name.lower()
        if name == METADATA.lower():
            if "recording epoch time" in _header(src.read(member)):
                return True
        elif name in _SENSOR_LOWER:
            if {TIME_COLUMN, "seconds_elapsed"} <= set(_header(src.read(member))):
                return True
    return False


def read(src: Source, *, limits: Limits = Limits()) -> Trace:
    """Read a Sensor Logger export (zip, folder, or a single TotalAcceleration.csv) into a Trace."""
    files = _Recording(src)
    problems = [f"{m} {why}: read as if it were missing" for m, why in files.empty.items()]
    meta = files.metadata(problems)
    platform = meta.get("platform", "").strip().lower()
    standardised = meta.get("standardisation", "").strip().lower() == "true"
    if not platform:
        platform, standardised = _infer_platform(files, problems)

    accel_label, accel_member, t_s, xyz, unit, sign = _read_accel(files, platform=platform, standardised=standardised,
                                                                  limits=limits, problems=problems)
    gyro_member = files.member(GYRO)
    gyro_t_s, gyro_xyz = files.axes(gyro_member) if gyro_member else (None, None)

    loc_member = files.member(LOCATION)
    gps = _read_location(files, loc_member, problems) if loc_member else {}
    n_marks = files.annotation_count()
    if n_marks:
        problems.append(f"{ANNOTATION}: {n_marks} driver annotations not used")

    digest = hashlib.sha256(src.read(accel_member)).hexdigest()[:16]
    device_id = meta.get("device id") or meta.get("device name")
    if not device_id:                     # one id for every such export: they never count as distinct phones
        device_id = "sensorlogger-unknown"
        problems.append(unknown_device_note(f"device id or name in {METADATA}", device_id))
    if len(device_id) > 150:
        device_id = f"sensorlogger-{hashlib.sha256(device_id.encode()).hexdigest()[:16]}"
    epoch_ms = meta.get("recording epoch time")
    trip_id = f"sensorlogger-{epoch_ms}-{device_id}" if epoch_ms else f"sensorlogger-{digest}"
    if len(trip_id) > 200:
        trip_id = f"sensorlogger-{digest}"
    phone = {key: meta[col] for key, col in (("os", "platform"), ("model", "device name"),
                                             ("app_version", "appVersion")) if meta.get(col)}
    if platform and "os" not in phone:               # inferred from the export (noted in the problems)
        phone["os"] = platform
    phone["app"] = "Sensor Logger"
    return build_trace(
        source=src.name,
        source_format=NAME,
        trip_id=trip_id,
        device_id=device_id,
        accel_t_s=t_s,
        accel_xyz=xyz * sign,
        accel_unit=unit,
        gyro_t_s=gyro_t_s,
        gyro_xyz=gyro_xyz,
        gps_t_s=gps.get("t_s"),
        lat_deg=gps.get("lat_deg"),
        lon_deg=gps.get("lon_deg"),
        speed_mps=gps.get("speed_mps"),
        heading_deg=gps.get("heading_deg"),
        accuracy_m=gps.get("accuracy_m"),
        phone=phone,
        limits=limits,
        problems=[*problems, *files.notes],
        unit_hint=(f"Sensor Logger writes {PurePosixPath(accel_member).name} in "
                   f"{'g' if unit == 'g' else 'm/s2'}; export the recording again from Sensor Logger without "
                   "converting its values"),
        field_prefix={"accel": accel_label, "gyro": gyro_member or GYRO, "gps": loc_member or LOCATION},
    )


# --- shared CSV helpers (also used by ingest.formats.sensorlog) ---------------------------------------------


def member_field(member: str | None, column: str | None = None) -> str | None:
    """Error ``field``: ``file.column`` inside an export; the bare column (or None) for a single file, whose name
    is the error's ``source`` already."""
    if member is None:
        return column
    return f"{member}.{column}" if column else member


def member_lead(member: str | None) -> str:
    """``"Gyroscope.csv "`` to start a message about a member; nothing for a single file (the source names it)."""
    return f"{member} " if member else ""


def read_table(data: bytes, *, source: str, member: str | None, sep: str = ",", decimal: str = ".",
               usecols: object = None, hint: str = AXIS_HINT, problems: list[str] | None = None) -> pd.DataFrame:
    """Parse CSV bytes with pandas' C engine; header names are stripped of spaces and a BOM. ``member`` is None
    for a single file; ``hint`` says how to fix an empty file. A last row without a line break (a file cut short)
    is dropped (:func:`~ingest.formats.csv_util.drop_cut_line`), and noted in ``problems`` when given."""
    import pandas as pd
    data = drop_cut_line(data, header_lines=1, where=member or PurePosixPath(source).name, problems=problems,
                         sep=sep)
    try:
        df = pd.read_csv(io.BytesIO(data), sep=sep, decimal=decimal, engine="c", low_memory=False,
                         usecols=usecols, encoding="utf-8", encoding_errors="replace")
    except pd.errors.EmptyDataError as exc:
        raise SchemaError(f"{member_lead(member)}is empty; {hint}", source=source, field=member) from exc
    except pd.errors.ParserError as exc:
        raise FormatError(f"{member_lead(member)}is not a readable CSV ({exc}); export it again", source=source,
                          field=member) from exc
    df.columns = [str(c).strip().lstrip("\ufeff").strip() for c in df.columns]
    return df


def require_columns(df: pd.DataFrame, columns: Iterable[str], *, source: str, member: str | None,
                    hint: str) -> None:
    """SchemaError naming the file and the first missing column, and listing the columns it does have."""
    for column in columns:
        if column not in df.columns:
            have = ", ".join(map(str, df.columns)) or "none"
            raise SchemaError(f"{member_lead(member)}has no column {column!r} (it has: {have}); {hint}", source=source,
                              field=member_field(member, column))


def numeric_column(df: pd.DataFrame, column: str, *, source: str, member: str | None) -> np.ndarray:
    """Column as float64; empty cells become NaN; any other non-number raises SchemaError with its line."""
    import pandas as pd
    col = df[column]
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    num = pd.to_numeric(col, errors="coerce")
    text = col.astype("string").str.strip()
    bad = (num.isna() & text.notna() & (text != "")).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise SchemaError(f"{member_lead(member)}column {column!r} holds {text.iloc[i]!r} on line {i + 2}, not a "
                          "number; fix or delete that row, or export the recording again", source=source,
                          field=member_field(member, column))
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


def _header(data: bytes) -> list[str]:
    line = data[:4096].split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    return [c.strip().strip('"') for c in line.split(",")]


# --- the export --------------------------------------------------------------------------------------------


class _Recording:
    """The members of one recording inside a Source: the folder holding the shallowest Sensor Logger CSVs."""

    def __init__(self, src: Source) -> None:
        self.src = src
        folders: dict[str, int] = {}
        for member in src.members:
            path = PurePosixPath(member)
            if path.name.lower() in _KNOWN:
                folders[_folder(member)] = len(path.parts)
        if not folders:
            raise FormatError(f"holds no Sensor Logger CSV files; {ENABLE_HINT}", source=src.name)
        depth = min(folders.values())
        top = sorted(f for f, d in folders.items() if d == depth)
        if len(top) > 1:
            raise FormatError(f"holds several recordings ({', '.join(top)}); upload one recording at a time",
                              source=src.name)
        self.folder = top[0]
        self.by_name = {PurePosixPath(m).name.lower(): m for m in src.members if _folder(m) == self.folder}
        # an empty sensor file (a sensor that was on but delivered nothing, or a failed copy), or one holding only
        # its header line, counts as missing
        self.empty: dict[str, str] = {}                   # member -> "is empty" or "has a header but no data rows"
        for n, m in list(self.by_name.items()):
            why = _blank(src.read(m)) if n in _SENSOR_LOWER else None
            if why:
                self.empty[m] = why
                del self.by_name[n]
        self.all_names = {PurePosixPath(m).name.lower() for m in src.members if _folder(m) == self.folder}
        self.notes: list[str] = []                        # quality notes from reading the tables (cut last lines)

    def member(self, name: str) -> str | None:
        return self.by_name.get(name.lower())

    def table(self, member: str, required: Iterable[str], hint: str = AXIS_HINT) -> pd.DataFrame:
        df = read_table(self.src.read(member), source=self.src.name, member=member, hint=hint, problems=self.notes)
        require_columns(df, required, source=self.src.name, member=member, hint=hint)
        return df

    def axes(self, member: str) -> tuple[np.ndarray, np.ndarray]:
        """``time`` [s since the epoch] and the (n, 3) x, y, z columns of an axis file, in file units."""
        df = self.table(member, (TIME_COLUMN, *AXIS_COLUMNS))
        xyz = np.column_stack([numeric_column(df, c, source=self.src.name, member=member) for c in AXIS_COLUMNS])
        return _epoch_s(df, member, self.src.name), xyz

    def metadata(self, problems: list[str]) -> dict[str, str]:
        import pandas as pd
        member = self.member(METADATA)
        if member is None:
            problems.append(f"no {METADATA}: platform unknown, trip id derived from the data")
            return {}
        try:
            df = pd.read_csv(io.BytesIO(self.src.read(member)), dtype=str, keep_default_na=False, engine="c")
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            df = pd.DataFrame()
        if df.empty:
            problems.append(f"{member} is empty or unreadable: ignored")
            return {}
        return {str(k).strip(): str(v).strip() for k, v in df.iloc[0].items()}

    def annotation_count(self) -> int:
        import pandas as pd
        member = self.member(ANNOTATION)
        if member is None or not self.src.read(member).strip():
            return 0
        try:
            return len(pd.read_csv(io.BytesIO(self.src.read(member)), dtype=str, engine="c"))
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            return 0


def _blank(data: bytes) -> str | None:
    """Why a sensor file holds no samples: "is empty" (nothing but whitespace: 0 bytes, a lone newline) or "has a
    header but no data rows" (one line); None when it has more lines."""
    if not data[:64].strip() and not data.strip():
        return "is empty"
    if _SECOND_LINE.search(data.lstrip()) is None:       # stops at the second line of a file with data
        return "has a header but no data rows"
    return None


def _folder(member: str) -> str:
    parent = str(PurePosixPath(member).parent)
    return "" if parent == "." else parent


def _epoch_s(df: pd.DataFrame, member: str, source: str) -> np.ndarray:
    """``time`` [int ns since the epoch] -> float64 s, split into whole seconds and remainder to stay exact.

    TimestampError when the values are too small to be ns since the epoch (ms, us or s written instead)."""
    import pandas as pd
    col = df[TIME_COLUMN]
    if pd.api.types.is_integer_dtype(col.dtype):
        ns = col.to_numpy(dtype=np.int64)
        _check_ns(ns, member=member, source=source)
        return (ns // NS_PER_S).astype(np.float64) + (ns % NS_PER_S).astype(np.float64) / NS_PER_S
    ns_float = numeric_column(df, TIME_COLUMN, source=source, member=member)
    _check_ns(ns_float, member=member, source=source)
    return ns_float / NS_PER_S


_TIME_UNITS = ((1e14, "us"), (1e11, "ms"), (1e8, "s"))     # smallest epoch-like value of each unit (1973)


def _check_ns(time: np.ndarray, *, member: str, source: str) -> None:
    """TimestampError naming the likely unit when the largest ``time`` is below 1973 in ns."""
    finite = time[np.isfinite(time)] if time.dtype.kind == "f" else time
    if not finite.size:
        return
    last = finite.max()
    if last >= MIN_EPOCH_NS:
        return
    unit = next((u for lim, u in _TIME_UNITS if last >= lim), None)
    looks = f"these look like {unit} since the epoch" if unit else "these are not times since the epoch"
    raise TimestampError(f"{member} column {TIME_COLUMN!r} runs to {last:.0f}: {looks}, but Sensor Logger writes "
                         "ns since the UNIX epoch (19 digits, like 1714568400000000000); export the recording again "
                         "from Sensor Logger without editing the times", source=source,
                         field=member_field(member, TIME_COLUMN))


def _accel_frame(name: str, *, platform: str, standardised: bool, xyz: np.ndarray) -> tuple[str, float]:
    """Unit and axis sign of accelerometer file ``name`` for this platform (the one place that decides)."""
    ios = platform == "ios" and not standardised
    sign = IOS_ACCEL_SIGN if ios and name != TOTAL else 1.0
    if name != UNCALIBRATED:
        return "m/s2", sign
    if platform:
        return ("g" if ios else "m/s2"), sign
    norm = float(np.nanmedian(np.linalg.norm(xyz, axis=1))) if xyz.size else 0.0
    return ("g" if norm < 4.0 else "m/s2"), sign


def _read_accel(files: _Recording, *, platform: str, standardised: bool, limits: Limits,
                problems: list[str]) -> tuple[str, str, np.ndarray, np.ndarray, str, float]:
    """(label, member, t_s, xyz, unit, sign) of the best accelerometer-with-gravity the export holds."""
    total, linear, gravity, uncal = (files.member(n) for n in (TOTAL, LINEAR, GRAVITY, UNCALIBRATED))
    if total:
        t_s, xyz = files.axes(total)
        name, member, label = TOTAL, total, total
    elif linear and gravity:
        t_s, xyz = files.axes(linear)
        g_t_s, g_xyz = files.axes(gravity)
        g_at = _interp_rows(t_s, g_t_s, g_xyz)
        _check_gravity_span(t_s, g_t_s, np.isnan(g_at[:, 0]), linear=linear, gravity=gravity,
                            source=files.src.name, limits=limits, problems=problems)
        xyz = xyz + g_at
        name, member, label = LINEAR, linear, f"{linear}+{GRAVITY}"
    elif uncal:
        t_s, xyz = files.axes(uncal)
        name, member, label = UNCALIBRATED, uncal, uncal
    elif linear:
        raise FormatError(f"{linear} has gravity removed and the export has no {GRAVITY} or {TOTAL}; "
                          f"{ENABLE_HINT}", source=files.src.name, field=f"{linear}")
    else:
        no_rows = sorted((m for m, why in files.empty.items()
                          if why != "is empty" and PurePosixPath(m).name.lower() in _ACCEL_LOWER),
                         key=lambda m: _ACCEL_LOWER.index(PurePosixPath(m).name.lower()))
        if no_rows:
            verb = "has" if len(no_rows) == 1 else "have"
            raise FormatError(f"has no accelerometer samples: {', '.join(no_rows)} {verb} a header but no data rows, "
                              "so the recording is empty; record again with the "
                              "accelerometer on, or export the recording again from Sensor Logger as 'Zipped CSV'",
                              source=files.src.name, field=no_rows[0])
        empty = f" ({', '.join(files.empty)} empty)" if files.empty else ""
        raise FormatError(f"has no accelerometer file ({TOTAL}, {LINEAR} + {GRAVITY}, or {UNCALIBRATED}){empty}; "
                          f"{ENABLE_HINT}", source=files.src.name, field=TOTAL)
    unit, sign = _accel_frame(name, platform=platform, standardised=standardised, xyz=xyz)
    if not platform and name != TOTAL:
        problems.append(f"{label}: platform unknown (no {METADATA}, and nothing in the export tells); axis signs "
                        "taken as Android's")
    return label, member, t_s, xyz, unit, sign


def _infer_platform(files: _Recording, problems: list[str]) -> tuple[str, bool]:
    """(platform, standardised) of an export without a platform in ``Metadata.csv``, from what only one platform
    writes (the app's UNITS.md and CROSSPLATFORM.md); ("", False) when nothing tells. Noted in ``problems``.

    Android: a ``TotalAcceleration.csv`` (even an empty one; iOS never writes it). iOS: ``altitudeAboveMeanSeaLevel``
    in ``Location.csv``, ``AccelerometerUncalibrated.csv`` in g (median |a| below 4; Android writes m/s^2), or
    ``Accelerometer.csv`` + ``Gravity.csv`` without ``TotalAcceleration.csv``. iOS with "Standardise Units &
    Frames" on writes ``AccelerometerUncalibrated.csv`` in m/s^2 (Android's frame, so its axes are kept); without
    that file it is taken as off, the app's default.
    """
    if TOTAL.lower() in files.all_names:
        return "android", False
    uncal, location = files.member(UNCALIBRATED), files.member(LOCATION)
    uncal_in_g: bool | None = None
    if uncal:
        try:
            _, xyz = files.axes(uncal)
        except TraceError:                        # a broken file tells nothing here; reading it for data says why
            xyz = np.empty((0, 3))
        norm = np.linalg.norm(xyz, axis=1)
        norm = norm[np.isfinite(norm)]
        uncal_in_g = float(np.median(norm)) < 4.0 if norm.size else None
    if uncal_in_g:
        why = f"{uncal} is in g"
    elif location and IOS_LOCATION_COLUMN in _header(files.src.read(location)):
        why = f"{location} has {IOS_LOCATION_COLUMN!r}"
    elif files.member(LINEAR) and files.member(GRAVITY):
        why = f"{LINEAR} + {GRAVITY} without {TOTAL}"
    else:
        return "", False
    standardised = uncal_in_g is False
    frame = ("'Standardise Units & Frames' on (AccelerometerUncalibrated.csv in m/s2): axes kept" if standardised
             else "axes negated to Android's convention"
             + ("" if uncal else " ('Standardise Units & Frames' taken as off, the app's default)"))
    problems.append(f"no {METADATA}: platform taken as iOS ({why}); {frame}")
    return "ios", standardised


def _check_gravity_span(t_s: np.ndarray, g_t_s: np.ndarray, no_gravity: np.ndarray, *, linear: str, gravity: str,
                        source: str, limits: Limits, problems: list[str]) -> None:
    """Accelerometer samples outside Gravity.csv's time span get no gravity (never extrapolated): noted, or a
    TimestampError naming both files' spans when more than ``limits.max_nonfinite_fraction`` of them lack it."""
    outside = no_gravity & np.isfinite(t_s)
    n_out = int(np.count_nonzero(outside))
    if not n_out:
        return
    g_ok = g_t_s[np.isfinite(g_t_s)]
    g_span = f"{g_ok.min():.3f}..{g_ok.max():.3f} s" if g_ok.size else "no valid time"
    a_ok = t_s[np.isfinite(t_s)]
    what = (f"{n_out} of {t_s.size} {linear} samples lie outside {gravity}'s time span ({g_span}; {linear}: "
            f"{a_ok.min():.3f}..{a_ok.max():.3f} s), so they have no gravity to add")
    if n_out > limits.max_nonfinite_fraction * t_s.size:
        raise TimestampError(f"{what}; export a recording whose {gravity} covers it (Sensor Logger writes both for "
                             "the whole recording with 'Gravity' enabled), or record again", source=source,
                             field=member_field(gravity, TIME_COLUMN))
    problems.append(f"{what}: dropped")


def _interp_rows(t_s: np.ndarray, src_t_s: np.ndarray, src_xyz: np.ndarray) -> np.ndarray:
    """``src_xyz`` linearly interpolated at ``t_s``; NaN outside the source's time span (never extrapolated)."""
    ok = np.isfinite(src_t_s) & np.all(np.isfinite(src_xyz), axis=1)
    st, sv = src_t_s[ok], src_xyz[ok]
    out = np.full((t_s.size, 3), np.nan)
    if st.size == 0:
        return out
    order = np.argsort(st, kind="stable")
    st, sv = st[order], sv[order]
    inside = (t_s >= st[0]) & (t_s <= st[-1])
    for i in range(3):
        out[inside, i] = np.interp(t_s[inside], st, sv[:, i])
    return out


def _read_location(files: _Recording, member: str, problems: list[str]) -> dict[str, np.ndarray]:
    required = (TIME_COLUMN, *(GPS_COLUMNS[k] for k in GPS_REQUIRED))
    df = files.table(member, required, hint=LOCATION_HINT)
    out = {"t_s": _epoch_s(df, member, files.src.name)}
    for key, column in GPS_COLUMNS.items():
        if column in df.columns:
            out[key] = numeric_column(df, column, source=files.src.name, member=member)
    n_invalid = 0
    for key in GPS_NEGATIVE_INVALID:
        if key in out:
            neg = out[key] < 0
            n_invalid += int(np.count_nonzero(neg))
            out[key] = np.where(neg, np.nan, out[key])
    if n_invalid:
        problems.append(f"{member}: {n_invalid} negative speed/bearing/accuracy values (invalid) set to unknown")
    return out
