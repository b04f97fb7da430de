"""Reader for a plain CSV: the catch-all for people exporting from any other app or logger.

::

    # trip_id: boston-2024-03-09-a       optional "# key: value" lines before the header
    # device_id: pixel7-anna
    # unit: g                              optional accelerometer unit, "g" or "m/s2" (default m/s2)
    t,ax,ay,az,gx,gy,gz,lat,lon,speed,heading,accuracy
    1710000000.000,0.31,-1.18,9.74,0.010,-0.020,0.050,42.3601000,-71.0589000,10.0,90.0,4.5
    1710000000.020,0.29,-1.22,9.69,0.011,-0.019,0.049,,,,,

Columns are matched by name (case-insensitive, any order); only t, ax, ay, az are required:

=====================  =================================================================  =====================
column                 meaning [unit]                                                     also accepted
=====================  =================================================================  =====================
t                      sample time [s since the UNIX epoch]                               t_s
ax, ay, az             acceleration in the phone frame INCLUDING gravity [m/s^2]           ax_mps2; ax_g [g]
gx, gy, gz             angular rate [rad/s]                                               gx_rad_s
lat, lon               WGS84 position [deg]                                               lat_deg, lon_deg
speed                  ground speed [m/s]                                                 speed_mps
heading                course over ground, clockwise from north [deg]                     heading_deg
accuracy               horizontal accuracy [m]                                            accuracy_m
gps_t                  time of the fix [s since the UNIX epoch], when it differs from t   gps_t_s
=====================  =================================================================  =====================

Rows: a row whose ax, ay, az are all empty is not an accelerometer sample (GPS-only rows are fine), likewise for
gx, gy, gz. GPS: loggers leave lat/lon empty between fixes or repeat the last fix on every row; a fix is a row
with lat and lon whose GPS values (or ``gps_t``) differ from the previous fix's. Its time is ``gps_t``, else the
``t`` of the row where it first appears. A car standing still with an unchanged fix therefore keeps one fix.

Dialects: comma, semicolon or tab separated; with semicolon or tab also a decimal comma (``9,81``).
IDs: from the comment lines, else ``trip_id = "csv-<16 hex digits of the file's SHA-256>"`` and
``device_id = "csv-unknown"`` (noted in the trace's problems; all such files then count as one device, so a
confirmation by distinct devices errs low, never high). The one unit conversion (g) is ``build_trace``'s.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ingest.errors import FormatError, SchemaError
from ingest.formats.csv_util import (
    Dialect,
    check_id_lengths,
    head_lines,
    meta_lines,
    read_numeric,
    sniff_dialect,
    split_header,
)
from ingest.source import Source
from ingest.trace import Limits, Trace
from ingest.validate import build_trace, unknown_device_note

NAME = "csv"
ONE_FILE = True                        # a recording is one file
HEADER_HINT = ("the header needs t, ax, ay, az (t in s since the UNIX epoch, acceleration in m/s^2 including "
               "gravity), optionally gx, gy, gz, lat, lon, speed, heading, accuracy")

_ROLES: dict[str, tuple[str, ...]] = {
    "t": ("t", "t_s"),
    "ax": ("ax", "ax_mps2", "ax_g"), "ay": ("ay", "ay_mps2", "ay_g"), "az": ("az", "az_mps2", "az_g"),
    "gx": ("gx", "gx_rad_s"), "gy": ("gy", "gy_rad_s"), "gz": ("gz", "gz_rad_s"),
    "lat": ("lat", "lat_deg"), "lon": ("lon", "lon_deg"), "speed": ("speed", "speed_mps"),
    "heading": ("heading", "heading_deg"), "accuracy": ("accuracy", "accuracy_m"), "gps_t": ("gps_t", "gps_t_s"),
}
_ROLE_OF = {alias: role for role, aliases in _ROLES.items() for alias in aliases}
_UNITS = {"g": "g", "m/s2": "m/s2", "m/s^2": "m/s2", "m/s²": "m/s2", "mps2": "m/s2"}
_GPS_VALUES = ("lat", "lon", "speed", "heading", "accuracy")


@dataclass(frozen=True)
class _Layout:
    """Where the table starts and what its header says."""

    meta: dict[str, str]         # "# key: value" lines, keys lower-case
    skiprows: int                # comment lines + the header line
    header: list[str]
    dialect: Dialect


def sniff(src: Source) -> bool:
    """A single file whose header (after any ``#`` lines) names t, ax, ay and az."""
    if not src.single:
        return False
    layout = _layout(src.head(16384))
    if layout is None:
        return False
    roles = {_ROLE_OF.get(h.lower()) for h in layout.header}
    return {"t", "ax", "ay", "az"} <= roles


def read(src: Source, *, limits: Limits = Limits()) -> Trace:
    """Read a plain ``t,ax,ay,az[,gx,gy,gz][,lat,lon,...]`` CSV into a validated Trace."""
    name = src.name
    data = src.data
    layout = _layout(data)
    if layout is None:
        raise FormatError(f"has no header line; {HEADER_HINT}", source=name)
    cols = _columns(layout.header, source=name)
    unit = _accel_unit(cols, layout.meta, source=name)
    problems: list[str] = []

    values = read_numeric(data, {cols[r]: i for r, i in _positions(layout.header, cols).items()},
                          dialect=layout.dialect, skiprows=layout.skiprows, source=name)
    v = {role: values[col] for role, col in cols.items()}
    t = v["t"]

    is_accel = np.isfinite(v["ax"]) | np.isfinite(v["ay"]) | np.isfinite(v["az"])
    gyro_t = gyro_xyz = None
    if "gx" in v:
        is_gyro = np.isfinite(v["gx"]) | np.isfinite(v["gy"]) | np.isfinite(v["gz"])
        if is_gyro.any():
            gyro_t, gyro_xyz = t[is_gyro], [v[k][is_gyro] for k in ("gx", "gy", "gz")]
    gps = _gps_fixes(t, v, problems) if "lat" in v else None

    trip_id, device_id = _ids(layout.meta, data, source=name, problems=problems)
    return build_trace(
        source=name,
        source_format=NAME,
        trip_id=trip_id,
        device_id=device_id,
        accel_t_s=t[is_accel],
        accel_xyz=[v[k][is_accel] for k in ("ax", "ay", "az")],
        accel_unit=unit,
        gyro_t_s=gyro_t,
        gyro_xyz=gyro_xyz,
        gps_t_s=None if gps is None else gps["t"],
        lat_deg=None if gps is None else gps["lat"],
        lon_deg=None if gps is None else gps["lon"],
        speed_mps=None if gps is None else gps.get("speed"),
        heading_deg=None if gps is None else gps.get("heading"),
        accuracy_m=None if gps is None else gps.get("accuracy"),
        limits=limits,
        problems=problems,
        field_prefix={"accel": _group("accel", cols, ("t", "ax", "ay", "az")),
                      "gyro": _group("gyro", cols, ("t", "gx", "gy", "gz")),
                      "gps": _group("gps", cols, ("gps_t" if "gps_t" in cols else "t", "lat", "lon"))},
    )


def _layout(data: bytes) -> _Layout | None:
    lines = head_lines(data, 256)
    meta = meta_lines(lines)
    i = meta.n_lines
    if i >= len(lines):
        return None
    dialect = sniff_dialect(lines[i], lines[i + 1:i + 32])
    return _Layout(meta.values, i + 1, split_header(lines[i], dialect.sep), dialect)


def _columns(header: list[str], *, source: str) -> dict[str, str]:
    """Role -> the header's own column name; SchemaError for missing, duplicate or half groups."""
    cols: dict[str, str] = {}
    for h in header:
        role = _ROLE_OF.get(h.lower())
        if role is None:
            continue
        if role in cols:
            raise SchemaError(f"columns {cols[role]!r} and {h!r} both give {role}; keep one", source=source, field=h)
        cols[role] = h
    shown = ",".join(header)
    for role in ("t", "ax", "ay", "az"):
        if role not in cols:
            raise SchemaError(f"has no {role!r} column (header: {shown}); {HEADER_HINT}", source=source, field=role)
    for group in (("gx", "gy", "gz"), ("lat", "lon")):
        have = [r for r in group if r in cols]
        if have and len(have) < len(group):
            missing = ", ".join(repr(r) for r in group if r not in cols)
            raise SchemaError(f"has {', '.join(repr(cols[r]) for r in have)} but no {missing} column (header: "
                              f"{shown}); give all of {', '.join(group)} or none", source=source,
                              field=next(r for r in group if r not in cols))
    return cols


def _positions(header: list[str], cols: dict[str, str]) -> dict[str, int]:
    return {role: header.index(name) for role, name in cols.items()}


def _accel_unit(cols: dict[str, str], meta: dict[str, str], *, source: str) -> str:
    """"g" for ax_g/ay_g/az_g columns or a ``# unit: g`` line, else "m/s2"; SchemaError when they disagree."""
    suffix_g = [cols[r].lower().endswith("_g") for r in ("ax", "ay", "az")]
    if any(suffix_g) and not all(suffix_g):
        raise SchemaError(f"mixes units: {', '.join(cols[r] for r in ('ax', 'ay', 'az'))}; name all three ax_g, ay_g, "
                          "az_g (in g) or ax, ay, az (in m/s^2)", source=source, field=cols["ax"])
    from_columns = "g" if all(suffix_g) else None
    if any(cols[r].lower().endswith("_mps2") for r in ("ax", "ay", "az")):
        from_columns = "m/s2"
    stated = meta.get("unit")
    from_comment = None
    if stated is not None:
        from_comment = _UNITS.get(stated.strip().lower())
        if from_comment is None:
            raise SchemaError(f"is {stated!r}; write '# unit: g' or '# unit: m/s2'", source=source, field="unit")
    if from_columns and from_comment and from_columns != from_comment:
        raise SchemaError(f"'# unit: {stated}' contradicts column {cols['ax']!r}; keep one of them", source=source,
                          field="unit")
    return from_columns or from_comment or "m/s2"


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


def _group(label: str, cols: dict[str, str], roles: tuple[str, ...]) -> str:
    """``accel[t,ax,ay,az]``: the block and the user's own column names, for validation messages."""
    return f"{label}[{','.join(cols.get(r, r) for r in roles)}]"
