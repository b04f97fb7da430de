"""Reader for phyphox exports (https://phyphox.org): a zip or folder of CSV tables and a ``meta/`` folder.

Layout, as phyphox-android writes it (``DataExport.CsvFormat``, ``SimpleExperimentCreator``):

* one CSV per export set, named after the set: ``Accelerometer.csv``, ``Gyroscope.csv``, ``Location.csv`` in a
  "simple experiment", ``Raw Data.csv`` in the ready-made "Acceleration with g" experiment. Names vary with the
  experiment and the language, so tables are recognised by their HEADER of quoted ``"Label (unit)"`` cells;
* ``"Time (s)"`` is seconds since the experiment start; values look like ``9.806650000E0``; ``NaN`` pads short
  columns and marks "no fix yet" in ``Location.csv``;
* five dialects: comma, tab or semicolon with a decimal point; tab or semicolon with a decimal comma;
* ``meta/time.csv``: ``"event","experiment time","system time","system time text"`` with START/PAUSE rows,
  ``system time`` in s since the UNIX epoch. Experiment time stands still while paused, so each START row
  anchors the samples after it: ``t_epoch_s = system_time[k] + (t - experiment_time[k])`` (:func:`to_epoch_s`,
  the reader's only unit conversion; every other phyphox unit is already canonical);
* ``meta/device.csv``: ``"property","value"`` rows (``deviceModel``, ``deviceBrand``, ``deviceRelease``, ...).

Tables used (unit from the header; the axis is the label's last word x/y/z):

* acceleration including gravity: three ``(m/s^2)`` columns such as ``"Acceleration x (m/s^2)"`` whose label is
  neither "linear" nor "gravity" and whose median |a| is above 0.3 g; ``"Absolute acceleration"`` is ignored;
* ``"Linear Acceleration x (m/s^2)"`` is gravity-free: it is used only with a ``"Gravity x (m/s^2)"`` table (gravity
  interpolated onto its times and added); alone it is refused with a message asking for "Acceleration with g";
* gyroscope: three ``(rad/s)`` columns; location: ``Latitude``/``Longitude`` columns, or phyphox's fixed
  ``s, °, °, m, m/s, °, m, m`` layout when the labels are in another language.

No ``meta/time.csv`` (a single-table or "minimal" export): the absolute start is unknown and the reader raises
:class:`FormatError` asking for the full CSV zip. Epoch 0, the upload time or a zip entry's clock (local time, no
zone) would each misplace impacts in time and silently break ordering across trips, so nothing is guessed.

IDs: ``trip_id = "phyphox-<start, ms since the epoch>"``, the same for every export variant of one recording;
``device_id = "phyphox-<brand>-<model>"`` from ``meta/device.csv``, else ``"phyphox-unknown"``. phyphox exports
no per-handset id, so two phones of one model share an id: counting distinct devices then errs low, never high.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from ingest.errors import FormatError, SchemaError, UnitError
from ingest.formats.csv_util import (
    Dialect,
    decode,
    drop_cut_line,
    field_name,
    head_lines,
    read_numeric,
    sniff_dialect,
    split_header,
)
from ingest.source import Source
from ingest.trace import Limits, Trace
from ingest.units import G_MPS2
from ingest.validate import build_trace

NAME = "phyphox"
ONE_FILE = False                       # a recording is an export of several files (a folder or a zip)

GRAVITY_FREE_MAX_MPS2 = 0.3 * G_MPS2   # a median |a| below this cannot include gravity
GRAVITY_EDGE_S = 0.5                   # gravity is held this far beyond its first/last sample, NaN further out
LOCATION_LAYOUT = ("s", "°", "°", "m", "m/s", "°", "m", "m")   # Time, Lat, Lon, Height, Velocity, Dir, Acc, VAcc
EXPORT_HINT = ('record with phyphox\'s "Acceleration with g" experiment (or a simple experiment with the '
               'Accelerometer sensor) and export "CSV" as a zip')

_CELL = re.compile(r"^(?P<label>.*?)\s*\((?P<unit>[^()]*)\)\s*$")
_AXIS = re.compile(r"^(?:(?P<base>.*\S)[\s_-]+)?(?P<axis>[xyz])$", re.IGNORECASE)
_LINEAR = re.compile(r"lin[eé]a", re.IGNORECASE)
_GRAVITY = re.compile(r"grav", re.IGNORECASE)
_TIME_FIRST = re.compile(rb'^(?:\xef\xbb\xbf)?"?[^"\t;,\r\n]*\(s\)"?[\t;,]')
_UNIT_ALIASES = {"m/s²": "m/s^2", "m/s2": "m/s^2", "deg": "°", "sec": "s"}


@dataclass(frozen=True)
class _Table:
    """One CSV table of the export: its bytes and parsed header."""

    member: str
    data: bytes
    header: tuple[str, ...]
    labels: tuple[str, ...]
    units: tuple[str, ...]
    dialect: Dialect

    def time_col(self, first: int) -> int:
        """The ``(s)`` column nearest to the left of column ``first`` (the table's first one otherwise)."""
        left = [i for i in range(first) if self.units[i] == "s"]
        return left[-1] if left else self.units.index("s")

    def read(self, cols: dict[str, int], *, source: str) -> dict[str, np.ndarray]:
        return read_numeric(self.data, cols, dialect=self.dialect, skiprows=1, source=source, where=self.member)


@dataclass(frozen=True)
class _Triple:
    """Three x, y, z columns sharing a unit and a label, with their time column."""

    table: _Table
    base: str
    t_col: int
    cols: tuple[int, int, int]
    kind: str   # "accel" (gravity included), "linear", "gravity", "gyro"

    def read(self, *, source: str) -> tuple[np.ndarray, list[np.ndarray]]:
        h = self.table.header
        got = self.table.read({h[self.t_col]: self.t_col, **{h[c]: c for c in self.cols}}, source=source)
        return got[h[self.t_col]], [got[h[c]] for c in self.cols]


def sniff(src: Source) -> bool:
    """A ``meta/time.csv`` or ``meta/device.csv`` of phyphox, or a CSV whose first header cell is ``... (s)``."""
    for member in src.member_names():
        if _is_meta(member):
            head = src.read(member)[:64].lstrip(b"\xef\xbb\xbf").lstrip(b'"').lower()
            if head.startswith((b"event", b"property")):
                return True
        elif (src.single or member.lower().endswith(".csv")) and _TIME_FIRST.match(src.read(member)[:512]):
            return True
    return False


def read(src: Source, *, limits: Limits = Limits()) -> Trace:
    """Read a phyphox export (zip, folder or a single table) into a validated Trace."""
    name = src.name
    problems: list[str] = []
    tables = _tables(src, problems)
    if not tables:
        raise FormatError(f'holds no phyphox table (a CSV whose header starts with "Time (s)"); {EXPORT_HINT}',
                          source=name)
    ref = _time_reference(src)
    device_id, phone = _device(src)

    accel_member, accel_t, accel_xyz = _accelerometer(tables, source=name, problems=problems)
    gyro = _best([tr for t in tables for tr in _triples(t, "rad/s", kind="gyro")[0]])
    gyro_t = gyro_xyz = None
    if gyro is not None:
        gyro_t, gyro_xyz = gyro.read(source=name)
    gps = _location(tables, source=name)

    return build_trace(
        source=name,
        source_format=NAME,
        trip_id=f"phyphox-{round(float(ref[1][0]) * 1000)}",
        device_id=device_id,
        accel_t_s=to_epoch_s(accel_t, ref),
        accel_xyz=accel_xyz,
        accel_unit="m/s2",
        gyro_t_s=None if gyro_t is None else to_epoch_s(gyro_t, ref),
        gyro_xyz=gyro_xyz,
        gps_t_s=None if gps is None else to_epoch_s(gps[1]["t"], ref),
        lat_deg=None if gps is None else gps[1]["lat"],
        lon_deg=None if gps is None else gps[1]["lon"],
        speed_mps=None if gps is None else gps[1].get("speed"),
        heading_deg=None if gps is None else gps[1].get("heading"),
        accuracy_m=None if gps is None else gps[1].get("accuracy"),
        phone=phone,
        limits=limits,
        problems=problems,
        unit_hint=(f"phyphox writes {accel_member}'s (m/s^2) columns in m/s2; export the experiment again from "
                   "phyphox without converting its values"),
        field_prefix={"accel": accel_member, "gyro": gyro.table.member if gyro else "gyro",
                      "gps": gps[0] if gps else "gps"},
    )


def to_epoch_s(t_experiment_s: np.ndarray, ref: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Experiment time [s] -> s since the UNIX epoch, through the START rows ``ref = (experiment_s, system_s)``.

    A sample belongs to the last START at or before it (experiment time does not run while paused).
    """
    start_exp_s, start_sys_s = ref
    k = np.clip(np.searchsorted(start_exp_s, t_experiment_s, side="right") - 1, 0, None)
    return start_sys_s[k] + (t_experiment_s - start_exp_s[k])


# --- tables ----------------------------------------------------------------------------------------------------


def _is_meta(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return len(parts) >= 2 and parts[-2].lower() == "meta" and parts[-1].lower() in ("time.csv", "device.csv")


def _norm_unit(unit: str) -> str:
    unit = unit.strip()
    return _UNIT_ALIASES.get(unit, unit)


def _tables(src: Source, problems: list[str]) -> list[_Table]:
    """Every CSV with a ``(s)`` header column, in member order; ``meta/`` files excluded. A last line without a
    line break (a file cut short) is dropped and noted in ``problems``."""
    out = []
    for member in sorted(src.member_names()):
        if _is_meta(member) or not (src.single or member.lower().endswith(".csv")):
            continue
        data = src.read(member)
        lines = head_lines(data, 8)
        if not lines:
            continue
        dialect = sniff_dialect(lines[0], lines[1:])
        header = tuple(split_header(lines[0], dialect.sep))
        cells = [_CELL.match(h) for h in header]
        units = tuple(_norm_unit(m["unit"]) if m else "" for m in cells)
        if "s" not in units:
            continue
        labels = tuple(m["label"].strip() if m else h for m, h in zip(cells, header, strict=True))
        data = drop_cut_line(data, header_lines=1, where=member, problems=problems, sep=dialect.sep)
        out.append(_Table(member, data, header, labels, units, dialect))
    return out


def _triples(table: _Table, unit: str, *, kind: str) -> tuple[list[_Triple], list[str]]:
    """Complete x/y/z column groups of ``unit``, and messages for groups missing an axis."""
    groups: dict[str, dict[str, int]] = {}
    for i, (label, u) in enumerate(zip(table.labels, table.units, strict=True)):
        m = _AXIS.match(label) if u == unit else None
        if m:
            groups.setdefault(m["base"] or "", {}).setdefault(m["axis"].lower(), i)
    found, incomplete = [], []
    for base, axes in groups.items():
        if len(axes) < 3:
            have = ", ".join(f'"{table.header[i]}"' for i in axes.values())
            missing = ", ".join(f'"{base} {a} ({unit})"' for a in "xyz" if a not in axes)
            incomplete.append(f"{table.member} has {have} but no {missing} column")
            continue
        cols = (axes["x"], axes["y"], axes["z"])
        k = kind
        if kind == "accel":
            k = "gravity" if _GRAVITY.search(base) else "linear" if _LINEAR.search(base) else "accel"
        found.append(_Triple(table, base, table.time_col(min(cols)), cols, k))
    return found, incomplete


def _best(triples: list[_Triple]) -> _Triple | None:
    """The triple from the largest table in bytes (the most samples), the first by member name on ties."""
    return max(triples, key=lambda tr: len(tr.table.data), default=None)


def _accelerometer(tables: list[_Table], *, source: str,
                   problems: list[str]) -> tuple[str, np.ndarray, list[np.ndarray]]:
    """(member, experiment times, x/y/z) of the acceleration including gravity; errors say what to export."""
    triples: list[_Triple] = []
    incomplete: list[str] = []
    for table in tables:
        found, missing = _triples(table, "m/s^2", kind="accel")
        triples += found
        incomplete += missing
    with_g = [tr for tr in triples if tr.kind == "accel"]
    linear = [tr for tr in triples if tr.kind == "linear"]
    gravity = [tr for tr in triples if tr.kind == "gravity"]
    for tr in sorted(with_g, key=lambda tr: -len(tr.table.data)):
        t, xyz = tr.read(source=source)
        if not t.size:
            raise SchemaError("has a header but no data rows, so the recording is empty; record again (start the "
                              "experiment before you drive) and export it again as \"CSV\"", source=source,
                              field=tr.table.member)
        norm = np.sqrt(xyz[0] ** 2 + xyz[1] ** 2 + xyz[2] ** 2)
        norm = norm[np.isfinite(norm)]
        if norm.size and float(np.median(norm)) < GRAVITY_FREE_MAX_MPS2 and not _looks_like_g(norm):
            problems.append(f'{tr.table.member}: median |a| is {float(np.median(norm)):.2f} m/s2, so '
                            f'"{tr.base}" is gravity-free (linear acceleration)')
            linear.append(tr)
            continue
        if len(with_g) > 1:
            problems.append(f"accelerometer: {len(with_g)} tables with acceleration; used {tr.table.member}")
        return tr.table.member, t, xyz
    if linear and gravity:
        return _linear_plus_gravity(_best(linear), _best(gravity), source=source, problems=problems)
    if linear:
        tr = linear[0]
        cols = ", ".join(f'"{tr.table.header[c]}"' for c in tr.cols)
        raise SchemaError(f"holds only gravity-free linear acceleration ({cols}); bump needs the acceleration "
                          f"including gravity to find the road's vertical: {EXPORT_HINT}", source=source,
                          field=tr.table.member)
    if incomplete:
        raise SchemaError(f"{'; '.join(incomplete)}; export the table again with all three axes", source=source,
                          field=incomplete[0].split(" has ")[0])
    in_g = [tr for t in tables for tr in _triples(t, "g", kind="accel")[0]]
    if in_g:
        tr = in_g[0]
        cols = ", ".join(f'"{tr.table.header[c]}"' for c in tr.cols)
        raise UnitError(f"holds acceleration in g ({cols}), but phyphox writes acceleration in m/s^2 "
                        f"(\"Acceleration x (m/s^2)\"), so these values were converted: {EXPORT_HINT}, without "
                        "converting its values", source=source, field=tr.table.member)
    listing = "; ".join(f"{t.member}: {', '.join(t.header)}" for t in tables)
    raise FormatError(f'has no accelerometer table: no CSV has "Time (s)", "Acceleration x (m/s^2)", '
                      f'"Acceleration y (m/s^2)", "Acceleration z (m/s^2)" columns (as in Accelerometer.csv or '
                      f'"Raw Data.csv"); found {listing}. {EXPORT_HINT[0].upper()}{EXPORT_HINT[1:]}',
                      source=source)


def _looks_like_g(norm: np.ndarray) -> bool:
    """Whether magnitudes |a| labelled m/s^2 are g: a median of 0.5-2 held within 30% (inter-quartile range),
    as gravity holds |a| near 1 g; gravity-free linear acceleration spreads as widely as its median."""
    q25, med, q75 = np.percentile(norm, [25, 50, 75])
    return bool(0.5 < med < 2.0 and q75 - q25 < 0.3 * med)


def _linear_plus_gravity(linear: _Triple | None, gravity: _Triple | None, *, source: str,
                         problems: list[str]) -> tuple[str, np.ndarray, list[np.ndarray]]:
    """Linear acceleration + gravity interpolated onto its times (gravity varies slowly)."""
    assert linear is not None and gravity is not None
    t, lin = linear.read(source=source)
    gt, g = gravity.read(source=source)
    ok = np.isfinite(gt) & np.isfinite(g[0]) & np.isfinite(g[1]) & np.isfinite(g[2])
    gt, g = gt[ok], [a[ok] for a in g]
    if gt.size < 2:
        raise SchemaError(f"has fewer than 2 gravity samples; cannot add gravity to {linear.table.member}: "
                          f"{EXPORT_HINT}", source=source, field=gravity.table.member)
    order = np.argsort(gt, kind="stable")
    gt, g = gt[order], [a[order] for a in g]
    outside = (t < gt[0] - GRAVITY_EDGE_S) | (t > gt[-1] + GRAVITY_EDGE_S)
    xyz = [np.where(outside, np.nan, a + np.interp(t, gt, ga)) for a, ga in zip(lin, g, strict=True)]
    problems.append(f"accelerometer: {linear.table.member} (linear) + {gravity.table.member} (gravity) added")
    return linear.table.member, t, xyz


def _location(tables: list[_Table], *, source: str) -> tuple[str, dict[str, np.ndarray]] | None:
    """(member, arrays t, lat, lon[, speed, heading, accuracy]) of the first location table, if any."""
    for table in tables:
        low = [lab.lower() for lab in table.labels]
        deg = [i for i, u in enumerate(table.units) if u == "°"]
        lat = next((i for i in deg if low[i].startswith("lat")), None)
        lon = next((i for i in deg if low[i].startswith("lon")), None)
        cols: dict[str, int] = {}
        if lat is not None and lon is not None:
            cols = {"t": table.time_col(lat), "lat": lat, "lon": lon}
            for role, words, unit in (("speed", ("velocity", "speed"), "m/s"),
                                      ("heading", ("direction", "bearing", "heading", "course"), "°"),
                                      ("accuracy", ("horizontal accuracy", "accuracy"), "m")):
                i = next((i for w in words for i, lab in enumerate(low) if lab == w and table.units[i] == unit),
                         None)
                if i is not None:
                    cols[role] = i
        elif table.units[:len(LOCATION_LAYOUT)] == LOCATION_LAYOUT:
            cols = {"t": 0, "lat": 1, "lon": 2, "speed": 4, "heading": 5, "accuracy": 6}
        if cols:
            got = table.read({table.header[i]: i for i in cols.values()}, source=source)
            return table.member, {role: got[table.header[i]] for role, i in cols.items()}
    return None


# --- meta ------------------------------------------------------------------------------------------------------


def _meta(src: Source, basename: str) -> str | None:
    hits = [m for m in src.member_names() if _is_meta(m) and PurePosixPath(m).name.lower() == basename]
    if len(hits) > 1:
        raise FormatError(f"holds {len(hits)} phyphox exports ({', '.join(sorted(hits))}); upload one at a time",
                          source=src.name)
    return hits[0] if hits else None


def _rows(data: bytes) -> tuple[list[str], list[list[str]], Dialect]:
    lines = decode(data).splitlines()
    if not lines:
        return [], [], Dialect(",", ".")
    dialect = sniff_dialect(lines[0], lines[1:])
    rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=dialect.sep, quotechar='"') if r]
    return [c.lower() for c in rows[0]], rows[1:], dialect


def _time_reference(src: Source) -> tuple[np.ndarray, np.ndarray]:
    """(experiment time, system time) of every START row of ``meta/time.csv``, sorted, both in s."""
    member = _meta(src, "time.csv")
    if member is None:
        raise FormatError('is missing, so the absolute start time of the recording is unknown; export '
                          'the whole experiment from phyphox as "CSV" (a zip with its meta folder), not a single '
                          'table', source=src.name, field="meta/time.csv")
    header, rows, dialect = _rows(src.read(member))
    cols = {}
    for col in ("event", "experiment time", "system time"):
        if col not in header:
            raise SchemaError(f'has no "{col}" column (header: {", ".join(header)}); export the experiment again',
                              source=src.name, field=field_name(member, col))
        cols[col] = header.index(col)
    starts = []
    for line, row in enumerate(rows, start=2):   # a handful of START/PAUSE events
        if len(row) <= max(cols.values()) or row[cols["event"]].upper() != "START":
            continue
        values = []
        for col in ("experiment time", "system time"):
            text = row[cols[col]]
            try:
                values.append(float(text.replace(dialect.decimal, ".")))
            except ValueError as exc:
                raise SchemaError(f"holds {text!r} on line {line}, not a number", source=src.name,
                                  field=field_name(member, col)) from exc
        starts.append(values)
    if not starts:
        raise FormatError("has no START event, so the recording's start time is unknown; export the experiment "
                          "again after recording", source=src.name, field=member)
    ref = np.array(sorted(starts, key=lambda r: r[0]), dtype=np.float64)
    if not np.all(np.isfinite(ref)) or not np.all(ref[:, 1] > 0):
        raise SchemaError("START times must be finite seconds since the UNIX epoch", source=src.name,
                          field=field_name(member, "system time"))
    return ref[:, 0], ref[:, 1]


def _device(src: Source) -> tuple[str, dict[str, str]]:
    """``device_id`` and phone info from ``meta/device.csv`` (``"phyphox-unknown"`` without it)."""
    phone = {"app": "phyphox"}
    member = _meta(src, "device.csv")
    if member is None:
        return "phyphox-unknown", phone
    _, rows, _ = _rows(src.read(member))
    props = {r[0]: r[1] for r in rows if len(r) >= 2 and r[1] and r[1].lower() not in ("null", "n/a")}
    for key, prop in (("app_version", "version"), ("brand", "deviceBrand"), ("manufacturer", "deviceManufacturer"),
                      ("model", "deviceModel"), ("os_version", "deviceRelease")):
        if prop in props:
            phone[key] = props[prop][:100]
    slug = "-".join(s for s in (_slug(phone.get("brand", "")), _slug(phone.get("model", ""))) if s)
    return (f"phyphox-{slug}" if slug else "phyphox-unknown"), phone


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]
