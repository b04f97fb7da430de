"""SensorLog reader against hand-made exports (tests/data/sensorlog/README.md).

The truth (reboot-to-epoch offsets, GPS fix times) is the one ``make_fixtures.py`` built into the files;
sample values are parsed independently with the stdlib ``csv`` module.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ingest
from ingest.errors import FormatError, GpsError, SchemaError
from ingest.formats import sensor_logger, sensorlog
from ingest.source import open_source

DATA = Path(__file__).parent / "data" / "sensorlog"
COMMA = DATA / "sensorlog_comma.csv"
SEMICOLON = DATA / "sensorlog_semicolon.csv"
COMMA_REBOOT_EPOCH_S = 1_714_482_867.876544          # truth of sensorlog_comma.csv
SEMICOLON_REBOOT_EPOCH_S = 1_714_486_467.5           # truth of sensorlog_semicolon.csv
COMMA_FIX_TIMES_S = [1_714_569_300.05, 1_714_569_301.05, 1_714_569_302.05]
ALIGN_TOL_S = 0.010
ARRAYS = ("t_s", "accel_mps2", "gyro_t_s", "gyro_rad_s", "gps_t_s", "lat_deg", "lon_deg", "speed_mps",
          "heading_deg", "accuracy_m")
ACC = [f"accelerometerAcceleration{a}(G)" for a in "XYZ"]


def rows(path: Path, sep: str = ",") -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter=sep))


def first_of_each(values: list[str]) -> list[int]:
    """Indices of rows whose value differs from the previous row's (a new sample)."""
    return [i for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def write_rows(path: Path, table: list[dict[str, str]], drop: tuple[str, ...] = (), sep: str = ",") -> Path:
    fields = [f for f in table[0] if f not in drop]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, delimiter=sep, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


# --- values recovered ---------------------------------------------------------------------------------------


def test_comma_accelerometer_aligned_to_epoch_within_10_ms() -> None:
    trace = ingest.read(COMMA)
    assert trace.source_format == "sensorlog"
    table = rows(COMMA)
    keep = first_of_each([r["accelerometerTimestamp_sinceReboot(s)"] for r in table])
    assert len(keep) == len(table) - 1 == trace.n_samples                 # row 40 repeats row 39's sample
    truth_s = np.array([float(table[i]["accelerometerTimestamp_sinceReboot(s)"]) for i in keep])
    truth_s += COMMA_REBOOT_EPOCH_S
    assert np.max(np.abs(trace.t_s - truth_s)) < ALIGN_TOL_S
    g = np.array([[float(table[i][c]) for c in ACC] for i in keep])
    np.testing.assert_allclose(trace.accel_mps2, -g * 9.80665, rtol=1e-12)  # g -> m/s^2, Core Motion sign
    assert np.median(trace.accel_mps2, axis=0) == pytest.approx(np.array([0.05, -0.35, 0.935]) * 9.80665,
                                                               abs=0.05)


def test_comma_gps_rows_collapsed_to_fixes_with_invalid_values() -> None:
    trace = ingest.read(COMMA)
    assert trace.quality.gps_fixes == 3
    np.testing.assert_allclose(trace.gps_t_s, COMMA_FIX_TIMES_S, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(trace.lat_deg, [42.3601, 42.3601898, 42.3602796])
    np.testing.assert_array_equal(trace.lon_deg, [-71.0589] * 3)
    np.testing.assert_array_equal(trace.speed_mps, [10.0, np.nan, 10.4])    # -1 = n/a
    np.testing.assert_array_equal(trace.heading_deg, [2.0, np.nan, 4.0])
    np.testing.assert_array_equal(trace.accuracy_m, [5.0, 4.8, 4.6])


def test_comma_gyro_sentinel_dropped_and_ids() -> None:
    trace = ingest.read(COMMA)
    table = rows(COMMA)
    assert trace.gyro_t_s.size == len(table) - 1                           # row 77 holds -9999 (n/a)
    assert trace.quality.dropped == {"gyro_nonfinite": 1}
    assert np.all(np.abs(trace.gyro_rad_s) < 1.0)
    assert np.median(trace.gyro_rad_s, axis=0) == pytest.approx([0.021, -0.012, 0.004], abs=0.003)
    truth_s = np.array([float(r["gyroTimestamp_sinceReboot(s)"]) for r in table]) + COMMA_REBOOT_EPOCH_S
    assert np.max(np.abs(trace.gyro_t_s - np.delete(truth_s, 77))) < ALIGN_TOL_S
    assert trace.device_id == "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"
    assert trace.trip_id.startswith("sensorlog-") and trace.trip_id == ingest.read(COMMA).trip_id
    assert trace.phone["os"] == "iOS"


def test_semicolon_device_motion_sum_with_utc_offset() -> None:
    trace = ingest.read(SEMICOLON)
    table = rows(SEMICOLON, ";")
    keep = first_of_each([r["motionTimestamp_sinceReboot(s)"] for r in table])
    assert trace.n_samples == len(keep) == len(table) // 2                # each 30 Hz sample on two rows
    truth_s = np.array([float(table[i]["motionTimestamp_sinceReboot(s)"]) for i in keep])
    assert np.max(np.abs(trace.t_s - (truth_s + SEMICOLON_REBOOT_EPOCH_S))) < ALIGN_TOL_S
    user = np.array([[float(table[i][f"motionUserAcceleration{a}(G)"]) for a in "XYZ"] for i in keep])
    grav = np.array([[float(table[i][f"motionGravity{a}(G)"]) for a in "XYZ"] for i in keep])
    np.testing.assert_allclose(trace.accel_mps2, -(user + grav) * 9.80665, rtol=1e-12)
    rot = np.array([[float(table[i][f"motionRotationRate{a}(rad/s)"]) for a in "XYZ"] for i in keep])
    np.testing.assert_allclose(trace.gyro_rad_s, rot, rtol=1e-12)
    assert not trace.has_gps
    assert trace.device_id == "bump-test-phone"                            # deviceID(txt) fallback
    assert any("motionUserAcceleration" in p for p in trace.quality.problems)


def test_without_logging_time_gps_fixes_align_within_their_latency(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "no_logging_time.csv", rows(COMMA), drop=("loggingTime(txt)",))
    trace = ingest.read(path)
    truth_first_s = float(rows(COMMA)[0]["accelerometerTimestamp_sinceReboot(s)"]) + COMMA_REBOOT_EPOCH_S
    assert abs(trace.t_s[0] - truth_first_s) < 0.3                          # fixes show up 150 ms late
    assert any("GPS fix times" in p for p in trace.quality.problems)


def test_local_logging_time_without_gps_is_taken_as_utc(tmp_path: Path) -> None:
    location = tuple(c for c in rows(COMMA)[0] if c.startswith("location"))
    path = write_rows(tmp_path / "no_gps.csv", rows(COMMA), drop=location)
    trace = ingest.read(path)
    truth_first_s = float(rows(COMMA)[0]["accelerometerTimestamp_sinceReboot(s)"]) + COMMA_REBOOT_EPOCH_S
    assert trace.t_s[0] - truth_first_s == pytest.approx(-4 * 3600, abs=ALIGN_TOL_S)   # EDT read as UTC
    assert any("UTC" in p for p in trace.quality.problems)


def test_zipped_csv_reads_like_the_file() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("export/sensorlog_comma.csv", COMMA.read_bytes())
    a, b = ingest.read(COMMA), ingest.read(buf.getvalue())
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


def test_semicolon_with_decimal_comma(tmp_path: Path) -> None:
    table = rows(SEMICOLON, ";")
    text = ("loggingTime(txt)", "deviceID(txt)")
    comma_table = [{k: v if k in text else v.replace(".", ",") for k, v in r.items()} for r in table]
    path = write_rows(tmp_path / "decimal_comma.csv", comma_table, sep=";")
    assert "0,0" in path.read_text()
    a, b = ingest.read(SEMICOLON), ingest.read(path)
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


# --- sniffing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMMA, SEMICOLON], ids=lambda p: p.name)
def test_sniffing_picks_sensorlog(path: Path) -> None:
    src = open_source(path)
    assert ingest.detect_format(src) == "sensorlog"
    assert not sensor_logger.sniff(src)


def test_sniff_rejects_other_csv() -> None:
    assert not sensorlog.sniff(open_source(b"time,seconds_elapsed,z,y,x\n1,0,9.8,0,0\n", name="x.csv"))


# --- errors -------------------------------------------------------------------------------------------------


def test_missing_accel_column_names_file_and_column(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "no_y.csv", rows(COMMA), drop=("accelerometerAccelerationY(G)",))
    with pytest.raises(SchemaError) as err:
        ingest.read(path)
    assert err.value.field == "accelerometerAccelerationY(G)"              # the source names the file, once
    assert err.value.source == str(path) and str(err.value).count("no_y.csv") == 1
    assert "'accelerometerAccelerationY(G)'" in str(err.value)


def test_non_numeric_value_names_column_and_line(tmp_path: Path) -> None:
    table = rows(SEMICOLON, ";")
    table[6]["motionGravityZ(G)"] = "n.a."
    path = write_rows(tmp_path / "bad.csv", table, sep=";")
    with pytest.raises(SchemaError) as err:
        ingest.read(path)
    assert err.value.field == "motionGravityZ(G)"
    assert "'n.a.'" in str(err.value) and "line 8" in str(err.value) and str(err.value).count("bad.csv") == 1


def test_unparseable_logging_time(tmp_path: Path) -> None:
    table = rows(COMMA)
    table[3]["loggingTime(txt)"] = "yesterday"
    with pytest.raises(SchemaError, match=r"'yesterday' on line 5"):
        ingest.read(write_rows(tmp_path / "bad_time.csv", table))


def test_logging_time_na_markers_are_missing_values(tmp_path: Path) -> None:
    table = rows(COMMA)
    table[5]["loggingTime(txt)"] = "-9999"                                 # SensorLog's n/a: -9999 or -1
    table[6]["loggingTime(txt)"] = "-1"
    trace, truth = ingest.read(write_rows(tmp_path / "na_time.csv", table)), ingest.read(COMMA)
    assert trace.n_samples == truth.n_samples
    assert np.max(np.abs(trace.t_s - truth.t_s)) < ALIGN_TOL_S             # the other rows still align the clock


@pytest.mark.parametrize(("path", "sep", "row", "cell", "has"), [
    (COMMA, ",", 5, "2024-05-01 09:15:00.100 -0400", "with"),             # one zoned row among local ones
    (SEMICOLON, ";", 7, "2024-05-01 10:15:00.140", "without"),            # one local row among zoned ones
])
def test_logging_time_with_and_without_utc_offset_is_refused(tmp_path: Path, path: Path, sep: str, row: int,
                                                              cell: str, has: str) -> None:
    table = rows(path, sep)
    table[row]["loggingTime(txt)"] = cell
    with pytest.raises(SchemaError) as err:
        ingest.read(write_rows(tmp_path / "mixed.csv", table, sep=sep))
    assert err.value.field == "loggingTime(txt)"
    assert f"{cell!r} on line {row + 2}, {has} a UTC offset, while line 2" in str(err.value)


def test_local_row_as_wide_as_the_zoned_ones_is_refused(tmp_path: Path) -> None:
    # nine decimals without an offset are exactly as wide as "... .140 -0400": a lenient parser would read it as UTC
    table = rows(SEMICOLON, ";")
    table[7]["loggingTime(txt)"] = "2024-05-01 10:15:00.140000000"
    assert len(table[7]["loggingTime(txt)"]) == len(table[6]["loggingTime(txt)"])
    with pytest.raises(SchemaError) as err:
        ingest.read(write_rows(tmp_path / "mixed.csv", table, sep=";"))
    assert "without a UTC offset, while line 2" in str(err.value)


@pytest.mark.parametrize("cells", [
    ["2024-05-01 01:59:59.990 -0400", "2024-05-01 01:00:00.000 -0500"],      # a daylight-saving change: one layout
    ["2024-05-01 01:59:59.990 -0400", "2024-05-01 06:00:00.5+00:00"],         # two layouts
    ["2024-05-01 01:59:59,990 -0400", "2024-05-01 02:00:00,000 -0400"],       # decimal comma
    ["2024-05-01 01:59:59.990Z", "2024-05-01 02:00:00.000Z"],
])
def test_utc_offsets_read_as_python_reads_them(cells: list[str]) -> None:
    import datetime as dt

    import pandas as pd

    from ingest.formats.csv_util import parse_datetimes

    text = pd.Series(cells * 3 + [""])
    got = parse_datetimes(text, (text == "").to_numpy())
    want = [dt.datetime.fromisoformat(c.replace(",", ".").replace(" -", "-")).timestamp() for c in cells * 3]
    assert got.zoned and got.bad is None and got.mixed is None
    assert np.allclose(got.seconds[:-1], want, rtol=0, atol=1e-6) and np.isnan(got.seconds[-1])


def test_last_line_cut_inside_the_utc_offset_names_the_line(tmp_path: Path) -> None:
    text = SEMICOLON.read_text(encoding="utf-8")
    cut = text[:text.rindex(" -0400") + 4]                                 # '... -04': an upload cut short
    n_lines = cut.count("\n") + 1
    path = tmp_path / "cut.csv"
    path.write_text(cut, encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        ingest.read(path)
    assert err.value.field == "loggingTime(txt)"
    assert f"-04' on line {n_lines}, not a time" in str(err.value) and "cut short" in str(err.value)


def test_single_file_errors_name_the_file_once(tmp_path: Path) -> None:
    table = rows(COMMA)
    for r in table:
        if r["locationLatitude(WGS84)"]:
            r["locationLatitude(WGS84)"] = r["locationLongitude(WGS84)"] = "0"     # (0, 0): "no fix"
    path = write_rows(tmp_path / "drive.csv", table)
    with pytest.raises(GpsError) as err:
        ingest.read(path)
    assert err.value.field == "location.lat" and str(err.value).count("drive.csv") == 1


def test_no_clock_reference_is_refused(tmp_path: Path) -> None:
    location = tuple(c for c in rows(COMMA)[0] if c.startswith("location"))
    path = write_rows(tmp_path / "no_clock.csv", rows(COMMA), drop=("loggingTime(txt)", *location))
    with pytest.raises(FormatError, match=r"loggingTime\(txt\)"):
        ingest.read(path)


# --- round trip ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMMA, SEMICOLON], ids=lambda p: p.name)
def test_round_trip_through_bump_json(path: Path) -> None:
    trace = ingest.read(path)
    again = ingest.read(ingest.dumps(trace))
    for name in ARRAYS:
        assert np.array_equal(getattr(trace, name), getattr(again, name), equal_nan=True), name
    assert (again.trip_id, again.device_id, again.phone) == (trace.trip_id, trace.device_id, trace.phone)


def test_files_without_a_device_id_all_count_as_one_unknown_device(tmp_path: Path) -> None:
    ids = ("identifierForVendor(txt)", "deviceID(txt)")
    table = rows(COMMA)
    a = ingest.read(write_rows(tmp_path / "a.csv", table, drop=ids))
    b = ingest.read(write_rows(tmp_path / "b.csv", table[: len(table) // 2], drop=ids))
    assert a.device_id == b.device_id == "sensorlog-unknown" and a.trip_id != b.trip_id
    assert any("cannot count as a separate device" in p for p in a.quality.problems)
