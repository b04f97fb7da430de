"""Plain CSV reader: exact values from hand-made files (tests/data/plain_csv/README.md), dialects and column order,
GPS rows empty or repeated between fixes, units, ids, and errors that name the column."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import ingest
from ingest.errors import FormatError, SchemaError, UnitError
from ingest.formats import plain_csv

DATA = Path(__file__).parent / "data" / "plain_csv"
FIX_ROWS = [10, 60, 110]
ARRAYS = ("t_s", "accel_mps2", "gyro_t_s", "gyro_rad_s", "gps_t_s", "lat_deg", "lon_deg", "speed_mps",
          "heading_deg", "accuracy_m")


def ref_columns(path: Path, sep: str = ",") -> dict[str, np.ndarray]:
    """A slow, obvious parse: csv module after the '#' lines, float() per cell, empty -> NaN."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter=sep) if r and not r[0].startswith("#")]
    header, body = rows[0], rows[1:]
    return {h: np.array([float(r[i].replace(",", ".")) if r[i] else np.nan for r in body])
            for i, h in enumerate(header)}


def assert_same(a: ingest.Trace, b: ingest.Trace) -> None:
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert (a.trip_id, a.device_id) == (b.trip_id, b.device_id)


def basic_lines() -> list[str]:
    return (DATA / "basic.csv").read_text().splitlines()


def read_text(text: str, name: str = "upload.csv") -> ingest.Trace:
    return ingest.read(text.encode(), name=name)


def test_basic_recovers_exact_values() -> None:
    tr = ingest.read(DATA / "basic.csv")
    assert tr.source_format == "csv"
    ref = ref_columns(DATA / "basic.csv")
    assert np.array_equal(tr.t_s, ref["t"])
    assert np.array_equal(tr.accel_mps2, np.column_stack([ref["ax"], ref["ay"], ref["az"]]))
    assert np.array_equal(tr.gyro_t_s, ref["t"])
    assert np.array_equal(tr.gyro_rad_s, np.column_stack([ref["gx"], ref["gy"], ref["gz"]]))
    # first data row, typed in: 1710000000.000,0.2902,-1.1968,9.6232,0.01539,-0.03357,0.04584,,,,,
    assert tr.t_s[0] == 1710000000.0
    assert tr.accel_mps2[0].tolist() == [0.2902, -1.1968, 9.6232]
    assert tr.gyro_rad_s[0].tolist() == [0.01539, -0.03357, 0.04584]
    assert np.allclose(tr.accel_mps2.mean(axis=0), [0.31, -1.18, 9.72], atol=0.03)
    assert (tr.trip_id, tr.device_id) == ("boston-demo-1", "pixel7-demo")
    assert tr.quality.dropped == {}


def test_gps_empty_between_fixes_keeps_the_fixes() -> None:
    tr = ingest.read(DATA / "basic.csv")
    ref = ref_columns(DATA / "basic.csv")
    assert tr.gps_t_s.tolist() == ref["t"][FIX_ROWS].tolist()
    assert tr.lat_deg.tolist() == [42.3601, 42.3601002, 42.3601004]
    assert tr.lon_deg.tolist() == [-71.0589, -71.0587784, -71.0586569]
    assert tr.speed_mps.tolist() == [10.0, 10.1, 10.2]
    assert tr.heading_deg.tolist() == [89.5, 89.8, 90.1]
    assert tr.accuracy_m.tolist() == [4.5, 4.0, 3.5]


@pytest.mark.parametrize("name", ["semicolon_decimal_comma.csv", "tab_reordered.csv"])
def test_dialects_and_column_order_give_identical_arrays(name: str) -> None:
    assert_same(ingest.read(DATA / name), ingest.read(DATA / "basic.csv"))


def test_decimal_comma_is_parsed() -> None:
    assert b"1710000000,000;0,2902;-1,1968;9,6232" in (DATA / "semicolon_decimal_comma.csv").read_bytes()
    tr = ingest.read(DATA / "semicolon_decimal_comma.csv")
    assert tr.t_s[1] == 1710000000.02
    assert tr.accel_mps2[0].tolist() == [0.2902, -1.1968, 9.6232]


def test_repeated_gps_collapses_to_the_fixes() -> None:
    tr = ingest.read(DATA / "repeated_gps.csv")
    basic = ingest.read(DATA / "basic.csv")
    assert tr.quality.gps_fixes == 3
    for name in ("gps_t_s", "lat_deg", "lon_deg", "speed_mps", "heading_deg", "accuracy_m"):
        assert np.array_equal(getattr(tr, name), getattr(basic, name)), name
    assert any("140 rows with a position hold 3 distinct fixes" in p for p in tr.quality.problems)
    assert not tr.has_gyro


def test_ids_derived_from_content_without_comment_lines() -> None:
    tr = ingest.read(DATA / "repeated_gps.csv")
    digest = hashlib.sha256((DATA / "repeated_gps.csv").read_bytes()).hexdigest()[:16]
    assert tr.trip_id == f"csv-{digest}"
    assert tr.device_id == "csv-unknown"
    assert any("device_id" in p for p in tr.quality.problems)
    assert ingest.read((DATA / "repeated_gps.csv").read_bytes(), name="other-name.csv").trip_id == tr.trip_id


def test_unit_comment_g_is_converted() -> None:
    tr = ingest.read(DATA / "unit_g.csv")
    ref = ref_columns(DATA / "unit_g.csv")
    assert np.array_equal(tr.accel_mps2, np.column_stack([ref["ax"], ref["ay"], ref["az"]]) * 9.80665)
    assert np.allclose(tr.accel_mps2.mean(axis=0), [0.31, -1.18, 9.72], atol=0.03)


def test_g_column_names_equal_unit_comment() -> None:
    lines = (DATA / "unit_g.csv").read_text().splitlines()
    assert lines[0] == "# unit: g" and lines[3] == "t,ax,ay,az"
    renamed = "\n".join([*lines[1:3], "t,ax_g,ay_g,az_g", *lines[4:]])
    assert_same(read_text(renamed), ingest.read(DATA / "unit_g.csv"))


def test_unit_comment_contradicting_column_names_is_refused() -> None:
    lines = (DATA / "unit_g.csv").read_text().splitlines()
    text = "\n".join(["# unit: m/s2", "t,ax_g,ay_g,az_g", *lines[4:]])
    with pytest.raises(SchemaError) as err:
        read_text(text)
    assert err.value.field == "unit"


def test_g_data_labelled_mps2_is_caught_by_validation() -> None:
    lines = (DATA / "unit_g.csv").read_text().splitlines()
    with pytest.raises(ingest.ValidationError, match="looks like g"):
        read_text("\n".join(lines[3:]))


@pytest.mark.parametrize("name", ["basic.csv", "semicolon_decimal_comma.csv", "tab_reordered.csv",
                                  "repeated_gps.csv", "unit_g.csv"])
def test_sniffing_picks_csv(name: str) -> None:
    assert ingest.detect_format(ingest.open_source(DATA / name)) == "csv"


def test_sniff_needs_t_and_three_axes() -> None:
    assert plain_csv.sniff(ingest.open_source(b"# x: y\nT;AX;AY;AZ\n1;2;3;4\n", name="u.csv"))
    assert not plain_csv.sniff(ingest.open_source(b"t,ax,ay\n1,2,3\n", name="u.csv"))
    with pytest.raises(FormatError, match="not a format bump knows"):
        ingest.read(b"t,ax,ay\n1,2,3\n", name="u.csv")


def test_missing_column_is_named_when_forced() -> None:
    text = "\n".join(line.rsplit(",", 9)[0] for line in basic_lines()[2:])   # keep t,ax,ay only
    with pytest.raises(SchemaError) as err:
        ingest.read(text.encode(), format="csv", name="u.csv")
    assert err.value.field == "az"
    assert "has no 'az' column (header: t,ax,ay)" in str(err.value)


def test_lat_without_lon_is_refused() -> None:
    lines = basic_lines()
    lines[2] = lines[2].replace(",lon,", ",longitude_typo,")
    with pytest.raises(SchemaError) as err:
        read_text("\n".join(lines))
    assert err.value.field == "lon"


def test_non_numeric_value_names_column_and_line() -> None:
    lines = basic_lines()
    cells = lines[9].split(",")
    cells[2] = "n/a?"
    lines[9] = ",".join(cells)
    with pytest.raises(SchemaError) as err:
        read_text("\n".join(lines))
    assert err.value.field == "ay"
    assert "'n/a?' on line 10" in str(err.value)


def test_missing_value_is_dropped_not_zeroed() -> None:
    lines = basic_lines()
    cells = lines[20].split(",")
    cells[1] = ""                      # ax empty, ay and az present: a damaged sample
    lines[20] = ",".join(cells)
    tr = read_text("\n".join(lines))
    assert tr.quality.dropped == {"accel_nonfinite": 1}
    assert tr.n_samples == 149
    assert not np.any(tr.accel_mps2[:, 0] == 0.0)


def test_rows_shorter_than_the_header_read_as_empty_cells() -> None:
    lines = basic_lines()
    short = [line.rstrip(",") for line in lines]                          # loggers that omit trailing empty cells
    first = next(i for i, line in enumerate(lines) if line[:1].isdigit())
    assert short[first].count(",") == 6 < lines[first].count(",")         # the first data row is a short one
    assert_same(read_text("\n".join(short)), read_text("\n".join(lines)))


def test_a_cut_first_row_loses_only_its_own_sample() -> None:
    lines = basic_lines()
    first = next(i for i, line in enumerate(lines) if line[:1].isdigit())
    lines[first] = lines[first].split(",")[0] + ",0.29"                   # t and ax only
    tr = read_text("\n".join(lines))
    assert tr.n_samples == 149 and tr.quality.dropped == {"accel_nonfinite": 1}
    assert tr.quality.gps_fixes == 3 and tr.gyro_t_s.size == 149 and tr.gyro_t_s[0] == tr.t_s[0]


@pytest.mark.parametrize("container", ["zip", "folder"])
def test_a_zip_or_folder_holding_one_csv_reads_as_that_file(tmp_path: Path, container: str) -> None:
    data = (DATA / "basic.csv").read_bytes()
    if container == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("trip.csv", data)
            zf.writestr("__MACOSX/._trip.csv", b"\x00\x05\x16\x07")        # macOS resource fork: ignored
        src: bytes | Path = buf.getvalue()
    else:
        src = tmp_path / "mail"
        (src / ".git").mkdir(parents=True)
        (src / ".git" / "config").write_text("[core]\n")                 # hidden: ignored
        (src / "trip.csv").write_bytes(data)
        (src / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert ingest.detect_format(ingest.open_source(src)) == "csv"
    tr = ingest.read(src)
    assert_same(tr, ingest.read(DATA / "basic.csv"))
    assert tr.source_format == "csv"


def test_gps_only_rows_are_not_accelerometer_samples() -> None:
    lines = basic_lines()
    lines.insert(30, "1710000000.545,,,,,,,42.3602,-71.0588,10.0,90.0,5.0")
    tr = read_text("\n".join(lines))
    assert tr.n_samples == 150 and tr.quality.dropped == {}
    assert tr.quality.gps_fixes == 4
    assert 1710000000.545 in tr.gps_t_s.tolist()


def test_gps_t_column_decides_what_is_a_new_fix() -> None:
    rows = ["t,ax,ay,az,lat,lon,gps_t"]
    for i in range(100):
        fix = i // 40                  # fixes 0, 1, 2; fix 1 has the same position as fix 0 (standing still)
        lat = 42.3601 if fix < 2 else 42.3602
        rows.append(f"{1710000000 + 0.02 * i:.2f},0.3,-1.2,9.7,{lat},-71.0589,{1709999999.5 + fix}")
    tr = read_text("\n".join(rows))
    assert tr.gps_t_s.tolist() == [1709999999.5, 1710000000.5, 1710000001.5]
    assert tr.lat_deg.tolist() == [42.3601, 42.3601, 42.3602]


@pytest.mark.parametrize("name", ["basic.csv", "repeated_gps.csv", "semicolon_decimal_comma.csv", "unit_g.csv"])
def test_round_trip_through_bump_json(name: str) -> None:
    first = ingest.read(DATA / name)
    again = ingest.read(ingest.dumps(first))
    assert_same(first, again)


# --- column names other apps, loggers and datasets write ---------------------------------------------------------
# A hand-made table of N rows at 10 Hz; every expected array is the float of the text written into the cells.

N = 25
DS = [17_100_000_000 + i for i in range(N)]                            # t in tenths of a second since the epoch
T_TEXT = [f"{d // 10}.{d % 10}" for d in DS]                           # "1710000000.0", "1710000000.1", ...
ACC_TEXT = [(f"0.{30 + i % 4}", f"-1.{20 + i % 3}", f"9.{70 + i % 5}") for i in range(N)]       # m/s^2
GYR_TEXT = [(f"0.0{10 + i % 3}", f"-0.0{20 + i % 4}", f"0.0{50 + i % 2}") for i in range(N)]    # rad/s
T_S = np.array([float(x) for x in T_TEXT])
ACC = np.array([[float(c) for c in row] for row in ACC_TEXT])
GYR = np.array([[float(c) for c in row] for row in GYR_TEXT])
FIXES = (0, 10, 20)                                                    # rows with a GPS fix, 1 s apart


def table(header: str, cells: Callable[[int], list[str]], *, sep: str = ",") -> bytes:
    """A device_id line, ``header`` and N rows of ``cells(i)``, every line ending in a line break."""
    lines = ["# device_id: test-phone", header, *(sep.join(cells(i)) for i in range(N))]
    return ("\n".join(lines) + "\n").encode()


def read_table(header: str, cells: Callable[[int], list[str]], **kw: str) -> ingest.Trace:
    return ingest.read(table(header, cells, **kw), name="alias.csv")


def t_acc(i: int) -> list[str]:
    return [T_TEXT[i], *ACC_TEXT[i]]


def t_acc_gyr(i: int) -> list[str]:
    return [T_TEXT[i], *ACC_TEXT[i], *GYR_TEXT[i]]


def gps_cells(i: int, speed: str = "10.0") -> list[str]:
    k = FIXES.index(i) if i in FIXES else None
    if k is None:
        return ["", "", "", "", ""]
    return [f"42.360{1 + k}", f"-71.058{9 - k}", speed, f"{90 + k}.5", f"{4 + k}.0"]


@pytest.mark.parametrize("header", [
    "timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z",
    "time_s,accel_x,accel_y,accel_z,gyr_x,gyr_y,gyr_z",
    "Time (s),AccX,AccY,AccZ,GyroX,GyroY,GyroZ",
    "epoch,accelerometer_x,accelerometer_y,accelerometer_z,rotation_rate_x,rotation_rate_y,rotation_rate_z",
    "T,ACC-X,ACC-Y,ACC-Z,Gyroscope X,Gyroscope Y,Gyroscope Z",
    "unix_time,acceleration_x [m/s^2],acceleration_y [m/s^2],acceleration_z [m/s^2],x (rad/s),y (rad/s),z (rad/s)",
    "timeStamp,a_x,a_y,a_z,angular_velocity_x,angular_velocity_y,angular_velocity_z",
    "t,ax_mps2,ay_mps2,az_mps2,gx_rad_s,gy_rad_s,gz_rad_s",
])
def test_time_accel_and_gyro_aliases_read_the_same_values(header: str) -> None:
    tr = read_table(header, t_acc_gyr)
    assert ingest.detect_format(ingest.open_source(table(header, t_acc_gyr), name="a.csv")) == "csv"
    assert np.array_equal(tr.t_s, T_S)
    assert np.array_equal(tr.accel_mps2, ACC)
    assert np.array_equal(tr.gyro_t_s, T_S) and np.array_equal(tr.gyro_rad_s, GYR)
    assumed = [p for p in tr.quality.problems if "read as" in p]           # nothing but a gyroscope's bare unit
    assert len(assumed) == (0 if "rad" in header else 1)
    assert all("angular rates are read as rad/s" in p for p in assumed)


def test_bare_x_y_z_with_an_acceleration_unit_are_the_accelerometer() -> None:
    tr = read_table("timestamp,X (m/s^2),Y (m/s^2),Z (m/s^2),x (µT)", lambda i: [*t_acc(i), "31.5"])
    assert np.array_equal(tr.accel_mps2, ACC) and not tr.has_gyro


def test_bare_x_y_z_without_a_unit_are_refused_with_a_hint() -> None:
    data = table("time,x,y,z", t_acc)
    with pytest.raises(FormatError, match="not a format bump knows"):
        ingest.read(data, name="u.csv")
    with pytest.raises(SchemaError) as err:
        ingest.read(data, name="u.csv", format="csv")
    assert err.value.field == "ax" and "'x' alone does not say which sensor" in str(err.value)


@pytest.mark.parametrize("header", [
    "t,ax,ay,az,latitude,longitude,speed_mps,bearing,horizontal_accuracy",
    "timestamp,acc_x,acc_y,acc_z,lat,lng,speed,course,accuracy_m",
    "time,AccX,AccY,AccZ,GPS Latitude,GPS Longitude,GPS Speed (m/s),heading_deg,hAcc",
    "time,AccX,AccY,AccZ,Latitude (°),long,ground_speed,course_over_ground,horizontalAccuracy",
])
def test_gps_aliases_read_the_same_fixes(header: str) -> None:
    tr = read_table(header, lambda i: [*t_acc(i), *gps_cells(i)])
    assert tr.gps_t_s.tolist() == [T_S[i] for i in FIXES]
    assert tr.lat_deg.tolist() == [42.3601, 42.3602, 42.3603]
    assert tr.lon_deg.tolist() == [-71.0589, -71.0588, -71.0587]
    assert tr.speed_mps.tolist() == [10.0, 10.0, 10.0]
    assert tr.heading_deg.tolist() == [90.5, 91.5, 92.5]
    assert tr.accuracy_m.tolist() == [4.0, 5.0, 6.0]


@pytest.mark.parametrize(("name", "written", "mps"), [
    ("speed_kmh", "36", 10.0), ("Speed (km/h)", "54", 15.0), ("speed_kph", "72", 20.0),
    ("speed_mph", "25", 11.176),                          # 1 mph = 0.44704 m/s exactly
    ("speed_knots", "10", 1852 / 360),                    # 1 kn = 1852 m/h
    ("speed (m/s)", "12.5", 12.5),
])
def test_speed_units_are_converted_to_mps(name: str, written: str, mps: float) -> None:
    header = f"t,ax,ay,az,lat,lon,{name},heading,accuracy"
    tr = read_table(header, lambda i: [*t_acc(i), *gps_cells(i, speed=written)])
    assert tr.speed_mps.tolist() == pytest.approx([mps] * 3, rel=1e-12)


@pytest.mark.parametrize("header", ["t,acc_x_g,acc_y_g,acc_z_g", "time,AccX (g),AccY (g),AccZ (g)",
                                    "t,X (G),Y (G),Z (G)", "t,accel_x [g],accel_y [g],accel_z [g]"])
def test_accel_in_g_named_in_the_header_is_converted(header: str) -> None:
    g_text = [(f"0.0{30 + i % 4}", f"-0.1{20 + i % 3}", f"0.9{90 + i % 5}") for i in range(N)]
    tr = read_table(header, lambda i: [T_TEXT[i], *g_text[i]])
    assert np.array_equal(tr.accel_mps2, np.array(g_text, dtype=float) * 9.80665)
    assert 9.6 < np.linalg.norm(tr.accel_mps2, axis=1).mean() < 9.9


@pytest.mark.parametrize("header", ["t,ax,ay,az,gyro_x_deg_s,gyro_y_deg_s,gyro_z_deg_s",
                                    "t,ax,ay,az,gx (°/s),gy (°/s),gz (°/s)",
                                    "t,ax,ay,az,gyro_x_dps,gyro_y_dps,gyro_z_dps",
                                    "t,ax,ay,az,x (deg/s),y (deg/s),z (deg/s)"])
def test_gyro_in_deg_s_named_in_the_header_is_converted(header: str) -> None:
    tr = read_table(header, lambda i: [*t_acc(i), "9", "-4.5", f"{i % 2 * 2.25}"])
    expected = [[np.pi / 20, -np.pi / 40, 0.0], [np.pi / 20, -np.pi / 40, np.pi / 80]]       # 9, -4.5, 0 / 2.25 deg/s
    np.testing.assert_allclose(tr.gyro_rad_s[:2], expected, rtol=1e-15, atol=0.0)


def test_gyro_in_deg_s_without_a_unit_is_refused_with_the_csv_way_to_say_so() -> None:
    with pytest.raises(UnitError, match="gyro_x_deg_s") as err:
        read_table("t,ax,ay,az,gyro_x,gyro_y,gyro_z", lambda i: [*t_acc(i), "9", "-4.5", "3"])
    assert "bump.trace/1" not in str(err.value)


def test_gyro_without_a_unit_is_read_as_rad_s_and_says_so() -> None:
    quiet = read_table("t,ax,ay,az,gyro_x,gyro_y,gyro_z", lambda i: [*t_acc(i), "0.02", "-0.01", "0.005"])
    np.testing.assert_allclose(quiet.gyro_rad_s[0], [0.02, -0.01, 0.005])
    note = [p for p in quiet.quality.problems if p.startswith("gyro_x, gyro_y, gyro_z: the names give no unit")]
    assert len(note) == 1 and "gyro_x_deg_s" in note[0]
    named = read_table("t,ax,ay,az,gyro_x_rad_s,gyro_y_rad_s,gyro_z_rad_s", lambda i: [*t_acc(i), "0.02", "0", "0"])
    assert not any("give no unit" in p for p in named.quality.problems)


def test_axes_in_different_units_are_refused() -> None:
    with pytest.raises(SchemaError, match="mixes units") as err:
        read_table("t,acc_x_g,acc_y,acc_z", t_acc)
    assert err.value.field == "acc_x_g"
    with pytest.raises(SchemaError, match="mixes units"):
        read_table("t,ax,ay,az,gyro_x_deg_s,gyro_y,gyro_z", t_acc_gyr)


def test_unit_comment_contradicting_a_bracketed_unit_is_refused() -> None:
    data = b"# unit: g\n" + table("t,AccX (m/s^2),AccY (m/s^2),AccZ (m/s^2)", t_acc)
    with pytest.raises(SchemaError, match="contradicts") as err:
        ingest.read(data, name="u.csv")
    assert err.value.field == "unit"


@pytest.mark.parametrize(("header", "column", "advice"), [
    ("t,ax,ay,az,lat,lon,speed_ms,heading,accuracy", "speed_ms", "m/s, km/h, mph, kn"),
    ("t,ax,ay,az,lat (rad),lon,speed,heading,accuracy", "lat (rad)", "write one of deg"),
    ("t,ax,ay,az,lat,lon,speed (GPS),heading,accuracy", "speed (GPS)", "speed_kmh"),
    ("t,ax,ay,az,gyro_x (rpm),gyro_y (rpm),gyro_z (rpm)", "gyro_x (rpm)", "rad/s, deg/s"),
])
def test_a_known_name_with_a_unit_bump_does_not_read_is_refused(header: str, column: str, advice: str) -> None:
    with pytest.raises(SchemaError) as err:
        read_table(header, lambda i: [*t_acc(i), *gps_cells(i)])
    assert err.value.field == column and advice in str(err.value)


def test_accelerometers_at_two_placements_are_refused_naming_both() -> None:
    header = ("timestamp,acc_x_dashboard,acc_y_dashboard,acc_z_dashboard,acc_x_above_suspension,"
              "acc_y_above_suspension,acc_z_above_suspension")
    other = [(f"0.{50 + i % 7}", f"-0.{80 + i % 3}", f"9.{60 + i % 9}") for i in range(N)]
    with pytest.raises(FormatError) as err:
        read_table(header, lambda i: [*t_acc(i), *other[i]])
    msg = str(err.value)
    assert "'acc_x_dashboard' and 'acc_x_above_suspension' both read as ax" in msg
    assert "'unused_acc_x_above_suspension'" in msg and err.value.field == "acc_x_above_suspension"
    fixed = header.replace(",acc_", ",unused_acc_").replace("unused_acc_x_dashboard", "acc_x_dashboard")
    fixed = fixed.replace("unused_acc_y_dashboard", "acc_y_dashboard").replace("unused_acc_z_dashboard",
                                                                                 "acc_z_dashboard")
    assert fixed.count("unused_") == 3
    assert np.array_equal(read_table(fixed, lambda i: [*t_acc(i), *other[i]]).accel_mps2, ACC)   # the fix works


def test_two_time_columns_are_refused() -> None:
    with pytest.raises(FormatError, match="columns 'time' and 'timestamp' both read as t") as err:
        read_table("time,timestamp,ax,ay,az", lambda i: [T_TEXT[i], *t_acc(i)])
    assert err.value.field == "timestamp"


def test_axes_of_different_placements_are_refused() -> None:
    with pytest.raises(SchemaError, match="name different sensors") as err:
        read_table("t,acc_x_dashboard,acc_y_dashboard,acc_z_left", t_acc)
    assert err.value.field == "acc_x_dashboard"


def test_linear_and_filtered_acceleration_are_not_read_as_the_raw_accelerometer() -> None:
    header = "t,linear_acc_x,linear_acc_y,linear_acc_z,acc_x,acc_y,acc_z,acc_x_filtered,acc_y_filtered,acc_z_filtered"
    tr = read_table(header, lambda i: [T_TEXT[i], "0.1", "0.2", "0.3", *ACC_TEXT[i], "0.4", "-1.1", "9.8"])
    assert np.array_equal(tr.accel_mps2, ACC)
    linear_only = table("t,linear_acc_x,linear_acc_y,linear_acc_z", lambda i: [T_TEXT[i], "0.1", "0.2", "0.3"])
    with pytest.raises(SchemaError, match="gravity removed") as err:
        ingest.read(linear_only, name="linear.csv", format="csv")
    assert err.value.field == "ax"


@pytest.mark.parametrize(("header", "scale", "assumed"), [
    ("timestamp", 100, "milliseconds"),              # tenths of a second * 100 = ms
    ("timestamp", 100_000, "microseconds"),
    ("time", 100_000_000, "nanoseconds"),
    ("timestamp_ms", 100, None),
    ("Time [ms]", 100, None),
    ("timestampMicros", 100_000, None),
    ("epoch_ns", 100_000_000, None),
    ("timestamp", None, None),                       # seconds: the default, nothing to note
])
def test_epoch_ms_us_ns_by_name_or_by_magnitude_with_a_note(header: str, scale: int | None,
                                                           assumed: str | None) -> None:
    written = T_TEXT if scale is None else [str(d * scale) for d in DS]
    tr = read_table(f"{header},ax,ay,az", lambda i: [written[i], *ACC_TEXT[i]])
    assert np.array_equal(tr.t_s, T_S)
    notes = [p for p in tr.quality.problems if "since the UNIX epoch" in p]
    if assumed is None:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith(f"{header}: the name gives no unit")
        assert f"read as {assumed} since the UNIX epoch" in notes[0]


def test_a_unit_in_the_name_wins_over_the_magnitude() -> None:
    with pytest.raises(ingest.ValidationError, match="after the year 2100"):
        read_table("t_s,ax,ay,az", lambda i: [str(DS[i] * 100), *ACC_TEXT[i]])


def test_gps_time_in_ms_is_converted_like_t() -> None:
    header = "timestamp_ms,ax,ay,az,lat,lon,speed,heading,accuracy,gps_time_ms"
    fix_ms = {0: "1709999999500", 10: "1710000000500", 20: "1710000001500"}
    tr = read_table(header, lambda i: [str(DS[i] * 100), *ACC_TEXT[i], *gps_cells(i), fix_ms.get(i, "")])
    assert tr.gps_t_s.tolist() == [1709999999.5, 1710000000.5, 1710000001.5]
    assert np.array_equal(tr.t_s, T_S)


ISO_T0_S = 1709992800                     # 2024-03-09T14:00:00Z


def iso(i: int, zone: str = "Z", sep: str = "T") -> str:
    return f"2024-03-09{sep}14:00:{i // 10:02d}.{i % 10}00{zone}"


@pytest.mark.parametrize(("zone", "sep", "offset_s"), [("Z", "T", 0), ("+01:00", "T", -3600), ("-0500", " ", 18000),
                                                        ("", " ", 0)])
def test_iso_8601_times_are_read(zone: str, sep: str, offset_s: int) -> None:
    tr = read_table("time,ax,ay,az", lambda i: [iso(i, zone, sep), *ACC_TEXT[i]])
    expected = np.array([float(f"{ISO_T0_S + offset_s + i // 10}.{i % 10}") for i in range(N)])
    assert np.array_equal(tr.t_s, expected)
    local = [p for p in tr.quality.problems if "without a UTC offset, read as UTC" in p]
    assert len(local) == (1 if zone == "" else 0)


def test_iso_times_in_a_column_named_utc_are_not_noted_and_decimal_comma_works() -> None:
    tr = read_table("time_utc;ax;ay;az", lambda i: [iso(i, "", " ").replace(".", ","),
                                                    *(c.replace(".", ",") for c in ACC_TEXT[i])], sep=";")
    assert np.array_equal(tr.t_s, np.array([float(f"{ISO_T0_S + i // 10}.{i % 10}") for i in range(N)]))
    assert np.array_equal(tr.accel_mps2, ACC)
    assert not any("UTC" in p for p in tr.quality.problems)


def test_iso_gps_time_next_to_iso_time() -> None:
    header = "time,ax,ay,az,lat,lon,speed,heading,accuracy,gps_time"
    fix = {0: "2024-03-09T13:59:59.500Z", 10: "2024-03-09T14:00:00.500Z", 20: "2024-03-09T14:00:01.500Z"}
    tr = read_table(header, lambda i: [iso(i), *ACC_TEXT[i], *gps_cells(i), fix.get(i, "")])
    assert tr.gps_t_s.tolist() == [ISO_T0_S - 0.5, ISO_T0_S + 0.5, ISO_T0_S + 1.5]


def test_a_bad_or_mixed_iso_time_names_its_line() -> None:
    def bad(i: int) -> list[str]:
        return ["2024-03-09 noon" if i == 7 else iso(i), *ACC_TEXT[i]]

    with pytest.raises(SchemaError) as err:
        read_table("time,ax,ay,az", bad)
    assert err.value.field == "time" and "'2024-03-09 noon' on line 10" in str(err.value)   # 2 header lines + 8th row

    with pytest.raises(SchemaError, match="UTC offset") as err:
        read_table("time,ax,ay,az", lambda i: [iso(i, "" if i == 3 else "Z"), *ACC_TEXT[i]])
    assert "line 6" in str(err.value)


def test_date_times_in_a_column_whose_name_gives_a_unit_are_refused() -> None:
    with pytest.raises(SchemaError, match="names the unit 'ms' but holds date-times") as err:
        read_table("timestamp_ms,ax,ay,az", lambda i: [iso(i), *ACC_TEXT[i]])
    assert err.value.field == "timestamp_ms"


def test_a_cut_last_line_is_dropped_and_noted() -> None:
    text = (DATA / "basic.csv").read_text()
    whole = ingest.read(DATA / "basic.csv")
    assert text.endswith(",0.3020,-1.1088,9.7891,0.01539,-0.03408,0.05186,,,,,\n")
    cut = text[:text.rindex("9.7891")] + "9.78"                         # "...,-1.1088,9.78": lost its other cells
    tr = ingest.read(cut.encode(), name="cut.csv")
    assert tr.n_samples == whole.n_samples - 1
    assert np.array_equal(tr.accel_mps2, whole.accel_mps2[:-1]) and np.array_equal(tr.t_s, whole.t_s[:-1])
    notes = [p for p in tr.quality.problems if "its last line" in p]
    assert len(notes) == 1
    assert notes[0].startswith("cut.csv: its last line ('1710000002.980,0.3020,-1.1088,9.78')")
    assert "dropped" in notes[0]


def test_a_complete_last_line_without_a_line_break_is_kept_and_noted() -> None:
    text = (DATA / "basic.csv").read_text()
    tr = ingest.read(text.rstrip("\n").encode(), name="nobreak.csv")
    assert_same(tr, ingest.read(DATA / "basic.csv"))
    assert any(p.startswith("nobreak.csv: its last line") and "was kept" in p for p in tr.quality.problems)
    assert not any("its last line" in p for p in ingest.read(DATA / "basic.csv").quality.problems)


@pytest.mark.parametrize(("cell", "role"), [
    ("t", "t"), ("t_s", "t"), ("time", "t"), ("timestamp", "t"), ("datetime", "t"), ("Date Time", "t"),
    ("epoch", "t"), ("epoch_time", "t"), ("unix_time", "t"), ("unix_timestamp", "t"), ("time_utc", "t"),
    ("utc_time", "t"),
    ("ax", "ax"), ("a_x", "ax"), ("acc_x", "ax"), ("accel_x", "ax"), ("accelerometer_x", "ax"),
    ("acceleration_x", "ax"), ("accelerometerAccelerationX(G)", "ax"), ("AccY", "ay"), ("acc_z [m/s^2]", "az"),
    ("gx", "gx"), ("gyr_y", "gy"), ("gyro_z", "gz"), ("gyroscope_x", "gx"), ("rotationRateY", "gy"),
    ("angular_velocity_z", "gz"), ("angular_rate_x", "gx"),
    ("lat", "lat"), ("latitude", "lat"), ("lon", "lon"), ("lng", "lon"), ("long", "lon"), ("longitude", "lon"),
    ("gps_lat", "lat"), ("location_longitude", "lon"),
    ("speed", "speed"), ("ground_speed", "speed"), ("gps_speed", "speed"),
    ("heading", "heading"), ("bearing", "heading"), ("course", "heading"), ("course_over_ground", "heading"),
    ("cog", "heading"), ("location_bearing", "heading"),
    ("accuracy", "accuracy"), ("horizontal_accuracy", "accuracy"), ("h_accuracy", "accuracy"), ("hacc", "accuracy"),
    ("gps_t", "gps_t"), ("gps_time", "gps_t"), ("gps_timestamp", "gps_t"), ("time_gps", "gps_t"),
    ("timestamp_gps", "gps_t"), ("fix_time", "gps_t"), ("location_time", "gps_t"),
    # documented as not read
    ("x", None), ("acc", None), ("hdop", None), ("velocity", None), ("direction", None), ("seconds_elapsed", None),
    ("linear_acc_x", None), ("user_acc_x", None), ("gravity_x", None), ("mag_x", None), ("unused_acc_x", None),
    ("acc_x_linear", None), ("gyro_x_bias", None), ("speed_accuracy", None), ("X (uT)", None),
])
def test_documented_names(cell: str, role: str | None) -> None:
    """The names in the module docstring's table (and those it says are not read) resolve as documented."""
    col = plain_csv._match(cell, 0)
    assert (None if col is None else col.role) == role
