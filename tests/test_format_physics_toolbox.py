"""Physics Toolbox Sensor Suite reader against hand-made exports (tests/data/physics_toolbox/README.md).

The truth (starts, which rows carry which sensor's samples) is the one ``make_fixtures.py`` built into the files;
values are parsed independently here with the stdlib ``csv`` module and ``float()``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import ingest
from ingest.errors import FormatError, SchemaError
from ingest.formats import FORMATS, physics_toolbox

DATA = Path(__file__).parent / "data"
PTSS = DATA / "physics_toolbox"
GFORCE = PTSS / "2024-05-0109.15.00.csv"
CLOCK = PTSS / "2024-05-01_23-59-55.csv"
IOS = PTSS / "ios_sensor.csv"
MULTI = PTSS / "multi_record_semicolon.csv"
HOLD = PTSS / "2024-05-02 10.00.00.csv"
FIXTURES = (GFORCE, CLOCK, IOS, MULTI, HOLD)
GFORCE_START_S = 1714554900.0      # 2024-05-01 09:15:00, from the file name, read as UTC
CLOCK_START_S = 1714607995.0       # 2024-05-01 23:59:55
MULTI_START_S = 1714548000.0       # "# start: 2024-05-01T09:20:00+02:00"
HOLD_START_S = 1714644000.0        # 2024-05-02 10:00:00
G = 9.80665
ARRAYS = ("t_s", "accel_mps2", "gyro_t_s", "gyro_rad_s", "gps_t_s", "lat_deg", "lon_deg", "speed_mps",
          "heading_deg", "accuracy_m")


def table(path: Path, sep: str = ",") -> tuple[list[str], list[list[str]]]:
    """Header (stripped) and data rows as text: a slow, obvious parse after the blank and '#' lines."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter=sep) if r and not r[0].startswith("#")]
    return [h.strip() for h in rows[0]], rows[1:]


def column(path: Path, name: str, sep: str = ",") -> np.ndarray:
    """A numeric column by header name; '' -> NaN, decimal comma and Unicode minus undone by hand."""
    header, rows = table(path, sep)
    i = header.index(name)
    return np.array([float(r[i].replace("\u2212", "-").replace(",", ".")) if r[i] else np.nan for r in rows])


def columns(path: Path, names: tuple[str, ...], sep: str = ",") -> np.ndarray:
    return np.column_stack([column(path, n, sep) for n in names])


def assert_same(a: ingest.Trace, b: ingest.Trace) -> None:
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert (a.trip_id, a.device_id, a.phone) == (b.trip_id, b.device_id, b.phone)


def problems(trace: ingest.Trace) -> str:
    return "\n".join(trace.quality.problems)


# --- values recovered -------------------------------------------------------------------------------------------


def test_gforce_elapsed_time_with_start_from_file_name() -> None:
    tr = ingest.read(GFORCE)
    assert tr.source_format == "physics_toolbox"
    elapsed_s = column(GFORCE, "time")
    g = columns(GFORCE, ("gFx", "gFy", "gFz"))
    assert np.array_equal(tr.t_s, GFORCE_START_S + elapsed_s)
    assert np.array_equal(tr.accel_mps2, g * G)                         # g -> m/s^2, Android sign kept
    # first row, typed in: 0.012345,0.0328,-0.1206,0.9958,1.0036
    assert tr.t_s[0] == 1714554900.0 + 0.012345
    assert tr.accel_mps2[0].tolist() == [0.0328 * G, -0.1206 * G, 0.9958 * G]
    assert np.median(tr.accel_mps2, axis=0) == pytest.approx(np.array([0.0321, -0.1207, 0.9913]) * G, abs=0.02)
    assert np.argmax(np.abs(tr.accel_mps2[:, 2] - 0.9913 * G)) in range(150, 154)   # the impact, not moved
    assert (tr.trip_id, tr.device_id) == ("ptss-1714554900000", "ptss-unknown")
    assert tr.phone == {"app": "Physics Toolbox Sensor Suite", "os": "Android"}
    assert "'2024-05-0109.15.00.csv' is local time without a zone; taken as UTC" in problems(tr)
    assert "device_id is ptss-unknown" in problems(tr)
    assert not tr.has_gyro and not tr.has_gps


def test_android_clock_time_across_midnight_never_goes_back() -> None:
    tr = ingest.read(CLOCK)
    _, rows = table(CLOCK)
    ms_of_day = np.array([(int(h) * 3600 + int(m) * 60 + int(s)) * 1000 + int(ms)
                          for h, m, s, ms in (r[0].split(":") for r in rows)], dtype=np.int64)
    ms_since = ms_of_day + 86_400_000 * np.cumsum(np.r_[0, np.diff(ms_of_day) < 0])   # next day after 23:59:59
    truth_s = CLOCK_START_S + (ms_since - 86_395_000) / 1000.0
    np.testing.assert_allclose(tr.t_s, truth_s, rtol=0, atol=1e-6)
    assert np.all(np.diff(tr.t_s) > 0)
    first_after = next(i for i, r in enumerate(rows) if r[0].startswith("00:"))
    assert rows[first_after][0] == "00:00:00:003" and rows[first_after - 1][0] == "23:59:59:982"
    assert tr.t_s[first_after] - tr.t_s[first_after - 1] == pytest.approx(0.021, abs=1e-6)
    assert tr.t_s[first_after] == pytest.approx(datetime(2024, 5, 2, tzinfo=UTC).timestamp() + 0.003, abs=1e-6)
    assert tr.duration_s == pytest.approx((ms_since[-1] - ms_since[0]) / 1000.0, abs=1e-6)
    assert np.array_equal(tr.accel_mps2, columns(CLOCK, ("gFx", "gFy", "gFz")) * G)
    assert tr.trip_id == "ptss-1714607995000"


def test_ios_date_times_dedup_and_core_motion_sign() -> None:
    tr = ingest.read(IOS)
    _, rows = table(IOS)
    g = columns(IOS, ("gFx", "gFy", "gFz"))
    new = np.r_[True, np.any(g[1:] != g[:-1], axis=1)]                    # a sample is new when its values change
    assert len(rows) == 300 and int(new.sum()) == 250 == tr.n_samples
    when_s = np.array([datetime.strptime(r[0], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
                       for r in rows])
    np.testing.assert_allclose(tr.t_s, when_s[new], rtol=0, atol=1e-6)
    assert np.array_equal(tr.accel_mps2, -g[new] * G)                     # Core Motion's sign -> Android's
    assert np.median(tr.accel_mps2, axis=0) == pytest.approx(np.array([0.0321, -0.1207, 0.9913]) * G, abs=0.05)
    assert tr.phone["os"] == "iOS"
    assert tr.trip_id == "ptss-1714555800101"
    assert "local time without a zone; taken as UTC" in problems(tr)
    assert "50 rows repeat the previous gFx, gFy, gFz" in problems(tr)


def test_ios_zone_from_a_start_line(tmp_path: Path) -> None:
    path = tmp_path / "ios_sensor.csv"
    path.write_text("# start: 2024-05-01T09:30:00.101+02:00\n" + IOS.read_text(), encoding="utf-8")   # local 09:30
    zoned, naive = ingest.read(path), ingest.read(IOS)
    assert np.array_equal(zoned.t_s, naive.t_s - 7200.0)
    assert "taken as UTC" not in problems(zoned)


@pytest.mark.parametrize("offset", ["+02:00", "+0200", " +0200"])
def test_ios_date_times_with_a_utc_offset(offset: str) -> None:
    lines = IOS.read_text(encoding="utf-8").splitlines()
    zoned_text = "\n".join([lines[0]] + [f"{r.split(',', 1)[0]}{offset},{r.split(',', 1)[1]}" for r in lines[1:]])
    zoned, naive = ingest.read(zoned_text.encode(), name=IOS.name), ingest.read(IOS)
    assert np.array_equal(zoned.t_s, naive.t_s - 7200.0)                  # local 09:30 at +02:00 is 07:30 UTC
    assert np.array_equal(zoned.accel_mps2, naive.accel_mps2)
    assert "taken as UTC" not in problems(zoned)


@pytest.mark.parametrize(("cell", "expect"), [
    ("-9999", "'-9999' on line 7, not a time like '2019-07-15 10:18:10.1010'"),
    ("2024-05-01 09:30:00.1050Z", "'2024-05-01 09:30:00.1050Z' on line 7, with a UTC offset, while line 2"),
    ("2024-13-01 09:30:00.1050", "'2024-13-01 09:30:00.1050' on line 7, not a time"),
])
def test_bad_date_time_cell_names_the_line(cell: str, expect: str) -> None:
    lines = IOS.read_text(encoding="utf-8").splitlines()
    lines[6] = cell + lines[6][lines[6].index(","):]
    with pytest.raises(SchemaError) as err:
        ingest.read("\n".join(lines).encode(), name=IOS.name)
    assert err.value.field == "time" and expect in str(err.value)


def test_multi_record_first_row_shorter_than_the_header() -> None:
    rows = [f"{k / 50:.6f},0.03,-0.12,{0.99 + 0.001 * (k % 5):.4f}" + ("" if k == 0 else f",0.01,{0.001 * k:.3f},0.03")
            for k in range(300)]                                          # row 1 carries the g-force only
    tr = ingest.read(("time,gFx,gFy,gFz,wx,wy,wz\n" + "\n".join(rows)).encode(), name=GFORCE.name)
    assert tr.n_samples == 300 and tr.gyro_t_s.size == 299
    np.testing.assert_allclose(tr.gyro_rad_s[:, 1], 0.001 * np.arange(1, 300), rtol=0, atol=1e-12)
    assert tr.gyro_t_s[0] == pytest.approx(GFORCE_START_S + 0.02, abs=1e-6)


def test_multi_record_semicolon_interleaved_gyro_and_gps() -> None:
    tr = ingest.read(MULTI)
    text = MULTI.read_text(encoding="utf-8")
    assert "0,9913" in text or ";0,9" in text
    assert "\u2212" in text and "-" not in text.split("\n", 6)[-1]            # negatives only as U+2212
    e_s = column(MULTI, "time", ";")
    g = columns(MULTI, ("gFx", "gFy", "gFz"), ";")
    w = columns(MULTI, ("wx (rad/s)", "wy (rad/s)", "wz (rad/s)"), ";")
    acc_rows, gyr_rows = np.isfinite(g[:, 0]), np.isfinite(w[:, 0])
    assert acc_rows.sum() == gyr_rows.sum() == 300 and not np.any(acc_rows & gyr_rows)
    assert np.array_equal(tr.t_s, MULTI_START_S + e_s[acc_rows])          # 09:20+02:00 = 07:20 UTC
    assert np.array_equal(tr.accel_mps2, g[acc_rows] * G)
    assert np.all(tr.accel_mps2[:, 1] < 0)                                 # U+2212 read as a minus
    assert np.array_equal(tr.gyro_t_s, MULTI_START_S + e_s[gyr_rows])
    assert np.array_equal(tr.gyro_rad_s, w[gyr_rows])
    assert np.median(tr.gyro_rad_s, axis=0) == pytest.approx([0.0121, -0.0338, 0.0507], abs=0.002)
    # GPS: a fix is a row whose Latitude/Longitude differ from the previous fix's (header cells ' Latitude')
    pos = columns(MULTI, ("Latitude", "Longitude"), ";")
    has = np.flatnonzero(np.isfinite(pos[:, 0]))
    fix_rows = has[np.r_[True, np.any(pos[has][1:] != pos[has][:-1], axis=1)]]
    assert fix_rows.size == 6 == tr.quality.gps_fixes
    assert np.array_equal(tr.gps_t_s, MULTI_START_S + e_s[fix_rows])
    assert tr.gps_t_s[0] - MULTI_START_S == pytest.approx(0.5, abs=0.03)  # shown by the first row after 0.5 s
    assert np.array_equal(tr.lat_deg, pos[fix_rows, 0]) and np.all(tr.lon_deg == 4.83)
    assert tr.lat_deg[0] == 45.7600539                                    # typed in from the file
    assert tr.speed_mps.tolist() == [12.0, 12.1, 12.2, 12.3, 12.4, 12.5]
    assert np.all(np.isnan(tr.heading_deg)) and np.all(np.isnan(tr.accuracy_m))
    assert (tr.trip_id, tr.device_id) == ("lyon-commute-1", "ptss-pixel-7")
    assert "device_id" not in problems(tr) and "taken as UTC" not in problems(tr)
    assert "550 rows with a position hold 6 distinct fixes" in problems(tr)


def test_multi_record_hold_blank_first_line_and_zero_rows() -> None:
    raw = HOLD.read_text(encoding="utf-8")
    assert raw.startswith("\ntime,gFx,gFy,gFz,ax,ay,az,wx,wy,wz,\n")
    tr = ingest.read(HOLD)
    e_s = column(HOLD, "time")
    g = columns(HOLD, ("gFx", "gFy", "gFz"))
    w = columns(HOLD, ("wx", "wy", "wz"))
    acc_rows, gyr_rows = np.arange(3, 360, 3), np.arange(4, 360, 3)      # where each sensor updates
    assert np.array_equal(tr.t_s, HOLD_START_S + e_s[acc_rows])
    assert np.array_equal(tr.accel_mps2, g[acc_rows] * G)
    assert np.array_equal(tr.gyro_t_s, HOLD_START_S + e_s[gyr_rows])
    assert np.array_equal(tr.gyro_rad_s, w[gyr_rows])
    assert np.all(g[:3] == 0)                                             # before any sensor delivered
    assert tr.quality.accel_rate_hz == pytest.approx(50.0, rel=0.05)      # the sensor's rate, not the rows' 150 Hz
    assert "accel: 3 rows with gFx, gFy, gFz all exactly 0" in problems(tr)
    assert "accel: 238 rows repeat the previous gFx, gFy, gFz" in problems(tr)


# --- metadata, file names, headers ------------------------------------------------------------------------------


def test_start_line_wins_over_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / GFORCE.name                                         # the name says 09:15 local
    path.write_text("# start: 2024-05-01T11:15:00+02:00\n# device_id: anna-pixel\n" + GFORCE.read_text())
    tr = ingest.read(path)
    assert np.array_equal(tr.t_s, ingest.read(GFORCE).t_s)                # 11:15+02:00 == 09:15 UTC
    assert tr.device_id == "anna-pixel"
    assert "taken as UTC" not in problems(tr) and "device_id" not in problems(tr)


def test_recording_started_at_line_without_zone() -> None:
    text = "# sensor:g_force\n# Recording started at: 2024-05-01 09:15:00.000\n" + GFORCE.read_text()
    tr = ingest.read(text.encode(), name="recording.csv")
    assert np.array_equal(tr.t_s, ingest.read(GFORCE).t_s)
    assert "Recording started at" in problems(tr) and "taken as UTC" in problems(tr)


@pytest.mark.parametrize("name", ["2024-05-01 09.15.00.csv", "2024-05-01_09-15-00.csv", "2024-05-0109.15.00.csv",
                                  "PTSS 2024-05-01T09:15:00.csv", "20240501_091500.csv",
                                  "uploads/2024-05-01-09-15-00.csv"])
def test_file_name_separators(name: str) -> None:
    tr = ingest.read(GFORCE.read_bytes(), name=name)
    assert tr.t_s[0] == GFORCE_START_S + 0.012345
    assert tr.trip_id == "ptss-1714554900000"


def test_header_units_spaces_and_quotes() -> None:
    lines = GFORCE.read_text().splitlines()
    header = '" time (s) ", gFx (g) ,gFy (g),gFz [g], TgF (g) '
    tr = ingest.read("\n".join([header, *lines[1:]]).encode(), name=GFORCE.name)
    assert_same(tr, ingest.read(GFORCE))


def test_gyro_in_degrees_per_second_is_converted() -> None:
    lines = HOLD.read_text().splitlines()
    lines[1] = "time,gFx,gFy,gFz,ax,ay,az,wx (deg/s),wy (deg/s),wz (deg/s),"
    tr = ingest.read("\n".join(lines).encode(), name=HOLD.name)
    np.testing.assert_allclose(tr.gyro_rad_s, ingest.read(HOLD).gyro_rad_s * np.pi / 180.0, rtol=1e-15)


# --- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "what"), [(GFORCE, "elapsed seconds"), (CLOCK, "clock times without a date")])
def test_no_start_is_refused_with_the_fix(path: Path, what: str) -> None:
    with pytest.raises(FormatError) as err:
        ingest.read(path.read_bytes(), name="recording.csv")
    assert err.value.field == "time" and err.value.source == "recording.csv"
    msg = str(err.value)
    assert what in msg and "no start date and time" in msg
    assert "rename the file to 'YYYY-MM-DD HH.MM.SS.csv'" in msg and "'# start: YYYY-MM-DDTHH:MM:SS+HH:MM'" in msg


def test_linear_acceleration_alone_is_refused() -> None:
    rows = ["time,ax,ay,az,aT"] + [f"{0.02 * k:.6f},0.0{k % 7},-0.0{k % 5},0.01,0.05" for k in range(200)]
    data = "\n".join(rows).encode()
    assert ingest.detect_format(ingest.open_source(data, name="2024-05-01 09.15.00.csv")) == "physics_toolbox"
    with pytest.raises(SchemaError) as err:
        ingest.read(data, name="2024-05-01 09.15.00.csv")
    assert err.value.field == "gFx"
    msg = str(err.value)
    assert "only linear acceleration (ax, ay, az: m/s^2 with gravity removed)" in msg
    assert "g-Force Meter" in msg and "Multi Record with g-Force" in msg


def test_non_numeric_value_names_column_and_line() -> None:
    lines = GFORCE.read_text().splitlines()
    cells = lines[10].split(",")
    cells[3] = "n/a?"
    lines[10] = ",".join(cells)
    with pytest.raises(SchemaError) as err:
        ingest.read("\n".join(lines).encode(), name=GFORCE.name)
    assert err.value.field == "gFz"
    assert "'n/a?' on line 11" in str(err.value) and "must be a number or empty" in str(err.value)


def test_non_numeric_value_in_a_unit_column_of_the_semicolon_file() -> None:
    lines = MULTI.read_text(encoding="utf-8").splitlines()
    cells = lines[7].split(";")                                           # a gyroscope row
    assert cells[10]
    cells[10] = "abc"
    lines[7] = ";".join(cells)
    with pytest.raises(SchemaError) as err:
        ingest.read("\n".join(lines).encode(), name=MULTI.name)
    assert err.value.field == "wy (rad/s)" and "'abc' on line 8" in str(err.value)


@pytest.mark.parametrize(("header", "missing"), [("time,gFx,gFy,TgF", "gFz"), ("time,wx,wy,wz", "gFx")])
def test_no_accelerometer_column_is_named(header: str, missing: str) -> None:
    rows = [header] + [f"{0.02 * k:.6f},0.03,-0.12,0.99" for k in range(100)]
    with pytest.raises(SchemaError) as err:
        ingest.read("\n".join(rows).encode(), name=GFORCE.name, format="physics_toolbox")
    assert err.value.field == missing
    assert f"has no {missing!r} column (header: {header})" in str(err.value)
    assert "g-Force Meter" in str(err.value)


def test_bad_clock_time_names_the_line() -> None:
    lines = CLOCK.read_text().splitlines()
    lines[4] = "23:59:5x:071" + lines[4][12:]
    with pytest.raises(SchemaError) as err:
        ingest.read("\n".join(lines).encode(), name=CLOCK.name)
    assert err.value.field == "time"
    assert "'23:59:5x:071' on line 5" in str(err.value) and "HH:MM:SS:mmm" in str(err.value)


def test_bad_start_line_and_half_gps_group() -> None:
    with pytest.raises(SchemaError) as err:
        ingest.read(b"# start: yesterday\n" + GFORCE.read_bytes(), name="x.csv")
    assert err.value.field == "start" and "'yesterday'" in str(err.value)
    lines = MULTI.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace(" Longitude", "Lng")
    with pytest.raises(SchemaError) as err:
        ingest.read("\n".join(lines).encode(), name=MULTI.name)
    assert err.value.field == "Longitude"


# --- sniffing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixtures_are_claimed_by_this_reader_only(path: Path) -> None:
    src = ingest.open_source(path)
    assert ingest.detect_format(src) == "physics_toolbox"
    assert [m.NAME for m in FORMATS if m.sniff(src)] == ["physics_toolbox"]


OTHER_FIXTURES = [*sorted((DATA / "plain_csv").glob("*.csv")), *sorted((DATA / "sensorlog").glob("*.csv")),
                  DATA / "phyphox" / "simple_comma", DATA / "phyphox" / "simple_comma" / "Accelerometer.csv",
                  DATA / "phyphox" / "simple_semicolon_decimal_comma", DATA / "sensor_logger" / "android"]


@pytest.mark.parametrize("path", OTHER_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_other_formats_are_not_claimed(path: Path) -> None:
    src = ingest.open_source(path)
    assert not physics_toolbox.sniff(src)
    assert ingest.detect_format(src) != "physics_toolbox"


@pytest.mark.parametrize("data", [b"time,ax,ay,az\n0.0,0.1,0.2,9.8\n",            # no aT: a generic CSV
                                  b"t,gFx,gFy,gFz\n0.0,0.0,0.0,1.0\n",              # time is not first
                                  b"time,seconds_elapsed,z,y,x\n1,0.0,9.8,0,0\n",   # Sensor Logger
                                  b"# just a note\n"])
def test_sniff_rejects_near_misses(data: bytes) -> None:
    assert not physics_toolbox.sniff(ingest.open_source(data, name="x.csv"))


def test_sniff_reads_the_head_only() -> None:
    data = GFORCE.read_bytes()[:2000].rsplit(b"\n", 1)[0] + b"\n" + b"\x00\xff garbage " * 100_000
    assert physics_toolbox.sniff(ingest.open_source(data, name="big.csv"))


# --- containers and round trip ----------------------------------------------------------------------------------


def test_zipped_export_reads_like_the_file() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"export/{GFORCE.name}", GFORCE.read_bytes())
    zipped = ingest.read(buf.getvalue(), name="upload.zip")
    assert zipped.source_format == "physics_toolbox"
    assert_same(zipped, ingest.read(GFORCE))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_round_trip_through_bump_json(path: Path) -> None:
    trace = ingest.read(path)
    assert_same(trace, ingest.read(ingest.dumps(trace)))
