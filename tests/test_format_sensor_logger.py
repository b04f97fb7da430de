"""Sensor Logger reader against hand-made exports (tests/data/sensor_logger/README.md).

Expected values come from the fixture files parsed independently with the stdlib ``csv`` module (by column
name) and from numbers written into the fixtures by hand.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ingest
from ingest import source
from ingest.errors import FormatError, SchemaError, TimestampError
from ingest.formats import sensor_logger, sensorlog
from ingest.source import open_source
from ingest.units import G_MPS2

DATA = Path(__file__).parent / "data" / "sensor_logger"
ANDROID_DIR = DATA / "android"
ANDROID_FILES = ANDROID_DIR / "2024-05-01_09-00-00"
ANDROID_ZIP = DATA / "android.zip"
IOS_DIR = DATA / "ios"
UNCAL_DIR = DATA / "ios_uncalibrated"
LEGACY_DIR = DATA / "legacy"
ALL = [ANDROID_DIR, ANDROID_ZIP, IOS_DIR, UNCAL_DIR, LEGACY_DIR]
ARRAYS = ("t_s", "accel_mps2", "gyro_t_s", "gyro_rad_s", "gps_t_s", "lat_deg", "lon_deg", "speed_mps",
          "heading_deg", "accuracy_m")


def oracle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(t_s, xyz) of an axis file, parsed by column name; ns -> s by correctly rounded integer division."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    t_s = np.array([int(r["time"]) / 10**9 for r in rows])
    xyz = np.array([[float(r["x"]), float(r["y"]), float(r["z"])] for r in rows])
    return t_s, xyz


def assert_same_arrays(a: ingest.Trace, b: ingest.Trace) -> None:
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=True), name


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- values recovered ---------------------------------------------------------------------------------------


def test_android_total_acceleration_read_by_name_with_ns_times() -> None:
    trace = ingest.read(ANDROID_DIR)
    assert trace.source_format == "sensor_logger"
    # first row of TotalAcceleration.csv: time 1714568400012345678, z 9.647041, y 1.890190, x 0.571035
    assert trace.t_s[0] == pytest.approx(1714568400.012345678, abs=1e-6)
    assert trace.accel_mps2[0] == pytest.approx([0.571035, 1.890190, 9.647041], rel=1e-12)
    t_s, xyz = oracle(ANDROID_FILES / "TotalAcceleration.csv")
    assert trace.n_samples == 130                       # TotalAcceleration preferred over Accelerometer+Gravity
    np.testing.assert_allclose(trace.t_s, t_s, rtol=0, atol=1e-6)
    np.testing.assert_allclose(trace.accel_mps2, xyz, rtol=1e-12)
    assert np.median(trace.accel_mps2, axis=0) == pytest.approx([0.6, 1.9, 9.60], abs=0.03)
    assert np.median(np.diff(trace.t_s)) == pytest.approx(0.020, abs=5e-4)


def test_android_gyroscope_location_and_metadata() -> None:
    trace = ingest.read(ANDROID_DIR)
    g_t, g_xyz = oracle(ANDROID_FILES / "Gyroscope.csv")
    np.testing.assert_allclose(trace.gyro_t_s, g_t, rtol=0, atol=1e-6)
    assert trace.gyro_rad_s[0] == pytest.approx([0.010796, -0.021896, 0.034917], rel=1e-12)
    np.testing.assert_allclose(trace.gyro_rad_s, g_xyz, rtol=1e-12)
    np.testing.assert_allclose(trace.gps_t_s, [1714568400.4, 1714568401.4, 1714568402.4], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(trace.lat_deg, [42.3601, 42.3601527, 42.3602054])
    np.testing.assert_array_equal(trace.lon_deg, [-71.0589, -71.0588287, -71.0587574])
    np.testing.assert_array_equal(trace.speed_mps, [8.3, 8.4, np.nan])       # -1 = invalid
    np.testing.assert_array_equal(trace.heading_deg, [45.0, 45.5, np.nan])
    np.testing.assert_array_equal(trace.accuracy_m, [4.9, 5.1, 4.7])
    assert trace.trip_id == "sensorlogger-1714568400000-b1946ac92492d234"
    assert trace.device_id == "b1946ac92492d234"
    assert trace.phone["os"] == "android" and trace.phone["model"] == "Pixel 7"


def test_zip_and_folder_give_identical_traces() -> None:
    folder, archive = ingest.read(ANDROID_DIR), ingest.read(ANDROID_ZIP)
    assert_same_arrays(folder, archive)
    assert (folder.trip_id, folder.device_id, folder.phone) == (archive.trip_id, archive.device_id, archive.phone)
    assert_same_arrays(folder, ingest.read(ANDROID_ZIP.read_bytes()))       # bytes of an upload


def test_ios_accelerometer_plus_interpolated_gravity_in_android_sign() -> None:
    trace = ingest.read(IOS_DIR)
    a_t, user = oracle(IOS_DIR / "Accelerometer.csv")
    g_t, grav = oracle(IOS_DIR / "Gravity.csv")
    # Gravity starts 5 ms after the first accelerometer sample: that sample has no gravity and is dropped
    assert trace.quality.dropped == {"accel_nonfinite": 1}
    assert trace.n_samples == a_t.size - 1
    np.testing.assert_allclose(trace.t_s, a_t[1:], rtol=0, atol=1e-6)
    grav_at_a = np.column_stack([np.interp(a_t[1:], g_t, grav[:, i]) for i in range(3)])
    np.testing.assert_allclose(trace.accel_mps2, -(user[1:] + grav_at_a), rtol=0, atol=1e-9)
    # iOS files hold -gravity; bump's frame (Android's) has +z up when the phone lies screen up
    assert np.median(trace.accel_mps2, axis=0) == pytest.approx([1.30, -2.53, 9.43], abs=0.05)
    assert trace.gyro_rad_s[0] == pytest.approx([-0.050720, 0.119713, 0.004572], rel=1e-12)   # not negated
    np.testing.assert_array_equal(trace.speed_mps, [np.nan, 5.2, 5.4])
    np.testing.assert_array_equal(trace.heading_deg, [np.nan, 90.5, 91.0])
    np.testing.assert_array_equal(trace.accuracy_m, [6.0, 5.5, np.nan])
    assert trace.phone["os"] == "ios"
    assert trace.device_id == "6F1C2A80-3D6B-4E5F-9A1B-2C3D4E5F6A7B"


def test_ios_uncalibrated_is_g_with_ios_sign() -> None:
    trace = ingest.read(UNCAL_DIR)
    t_s, raw_g = oracle(UNCAL_DIR / "AccelerometerUncalibrated.csv")
    np.testing.assert_allclose(trace.t_s, t_s, rtol=0, atol=1e-6)
    np.testing.assert_allclose(trace.accel_mps2, -raw_g * 9.80665, rtol=1e-12)
    assert np.median(trace.accel_mps2[:, 2]) == pytest.approx(0.9487 * G_MPS2, abs=0.05)


def test_legacy_export_older_location_columns_and_no_metadata() -> None:
    trace = ingest.read(LEGACY_DIR)
    t_s, xyz = oracle(LEGACY_DIR / "TotalAcceleration.csv")
    np.testing.assert_allclose(trace.t_s, t_s, rtol=0, atol=1e-6)
    np.testing.assert_allclose(trace.accel_mps2, xyz, rtol=1e-12)
    assert np.median(trace.accel_mps2, axis=0) == pytest.approx([-0.4, 9.7, 1.3], abs=0.03)
    np.testing.assert_allclose(trace.gps_t_s, [1646934312.5, 1646934313.5], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(trace.speed_mps, [11.2, np.nan])
    np.testing.assert_array_equal(trace.heading_deg, [180.0, np.nan])
    np.testing.assert_array_equal(trace.accuracy_m, [7.5, 8.0])
    # no device id: every such export is one "unknown" device, so one phone's exports never confirm a defect as
    # several phones (nor make a spot near its home public as "seen by 3 devices")
    assert trace.trip_id.startswith("sensorlogger-") and trace.device_id == "sensorlogger-unknown"
    assert any("cannot count as a separate device" in p for p in trace.quality.problems)
    assert trace.trip_id == ingest.read(LEGACY_DIR).trip_id                 # stable
    assert trace.trip_id != ingest.read(ANDROID_DIR).trip_id
    assert any("Metadata.csv" in p for p in trace.quality.problems)


def test_single_total_acceleration_file() -> None:
    trace = ingest.read(ANDROID_FILES / "TotalAcceleration.csv")
    assert trace.source_format == "sensor_logger"
    assert np.array_equal(trace.accel_mps2, ingest.read(ANDROID_DIR).accel_mps2)
    assert not trace.has_gps and not trace.has_gyro


# --- sniffing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_sniffing_picks_sensor_logger(path: Path) -> None:
    src = open_source(path)
    assert ingest.detect_format(src) == "sensor_logger"
    assert not sensorlog.sniff(src)


def test_sniff_rejects_other_csv() -> None:
    other = open_source(b"t,ax,ay,az\n0,0,0,9.8\n", name="Accelerometer.csv")
    assert not sensor_logger.sniff(other)
    phyphox_like = open_source(b'"Time (s)","Acceleration x (m/s^2)"\n0,1\n', name="Accelerometer.csv")
    assert not sensor_logger.sniff(phyphox_like)


# --- errors -------------------------------------------------------------------------------------------------


def test_missing_accelerometer_names_what_to_enable(tmp_path: Path) -> None:
    rec = copy_tree(ANDROID_FILES, tmp_path / "rec")
    for name in ("TotalAcceleration.csv", "Accelerometer.csv", "Gravity.csv"):
        (rec / name).unlink()
    with pytest.raises(FormatError) as err:
        ingest.read(rec)
    assert "TotalAcceleration.csv" in str(err.value) and "enable" in str(err.value)


def test_accelerometer_without_gravity_names_gravity(tmp_path: Path) -> None:
    rec = copy_tree(IOS_DIR, tmp_path / "rec")
    (rec / "Gravity.csv").unlink()
    with pytest.raises(FormatError, match=r"Gravity\.csv"):
        ingest.read(rec)


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    rec = copy_tree(ANDROID_FILES, tmp_path / "rec")
    lines = (rec / "TotalAcceleration.csv").read_text().splitlines()
    (rec / "TotalAcceleration.csv").write_text("\n".join(",".join(ln.split(",")[:4]) for ln in lines) + "\n")
    with pytest.raises(SchemaError) as err:
        ingest.read(rec)
    assert err.value.field == "TotalAcceleration.csv.x"
    assert "TotalAcceleration.csv" in str(err.value) and "'x'" in str(err.value)


def test_missing_latitude_names_location_file(tmp_path: Path) -> None:
    rec = copy_tree(LEGACY_DIR, tmp_path / "rec")
    lines = (rec / "Location.csv").read_text().splitlines()
    (rec / "Location.csv").write_text("\n".join(ln.rsplit(",", 1)[0] for ln in lines) + "\n")
    with pytest.raises(SchemaError) as err:
        ingest.read(rec)
    assert err.value.field == "Location.csv.latitude"
    assert "'Location' enabled" in str(err.value) and "z, y, x" not in str(err.value)   # no axis-file hint


# --- empty files, time units, gravity span ------------------------------------------------------------------


@pytest.mark.parametrize(("base", "name"), [(ANDROID_FILES, "Location.csv"), (ANDROID_FILES, "Gyroscope.csv"),
                                            (ANDROID_FILES, "Gravity.csv"), (IOS_DIR, "Location.csv")])
def test_empty_optional_file_reads_as_if_missing(tmp_path: Path, base: Path, name: str) -> None:
    emptied, removed = copy_tree(base, tmp_path / "emptied"), copy_tree(base, tmp_path / "removed")
    (emptied / name).write_bytes(b"")
    (removed / name).unlink()
    trace = ingest.read(emptied)
    assert_same_arrays(trace, ingest.read(removed))
    assert f"{name} is empty: read as if it were missing" in trace.quality.problems


def test_empty_total_acceleration_falls_back_to_accelerometer_plus_gravity(tmp_path: Path) -> None:
    rec = copy_tree(ANDROID_FILES, tmp_path / "rec")
    (rec / "TotalAcceleration.csv").write_bytes(b"")
    trace = ingest.read(rec)
    lin_t, lin = oracle(rec / "Accelerometer.csv")
    grav_t, grav = oracle(rec / "Gravity.csv")
    inside = (lin_t >= grav_t[0]) & (lin_t <= grav_t[-1])
    expected = lin[inside] + np.column_stack([np.interp(lin_t[inside], grav_t, grav[:, i]) for i in range(3)])
    assert trace.n_samples == np.count_nonzero(inside) > 100
    np.testing.assert_allclose(trace.t_s, lin_t[inside], rtol=0, atol=1e-6)
    np.testing.assert_allclose(trace.accel_mps2, expected, rtol=0, atol=1e-9)
    assert "TotalAcceleration.csv is empty: read as if it were missing" in trace.quality.problems


@pytest.mark.parametrize(("divisor", "unit"), [(10**6, "ms"), (10**3, "us"), (10**9, "s")])
def test_time_not_in_ns_names_the_unit(tmp_path: Path, divisor: int, unit: str) -> None:
    rec = copy_tree(ANDROID_FILES, tmp_path / "rec")
    lines = (rec / "TotalAcceleration.csv").read_text().splitlines()
    rows = [ln.split(",", 1) for ln in lines[1:]]
    (rec / "TotalAcceleration.csv").write_text("\n".join([lines[0]] + [f"{int(t) // divisor},{rest}"
                                                                       for t, rest in rows]) + "\n")
    with pytest.raises(TimestampError) as err:
        ingest.read(rec)
    assert err.value.field == "TotalAcceleration.csv.time"
    assert f"look like {unit} since the epoch" in str(err.value) and "ns since the UNIX epoch" in str(err.value)


def test_gravity_covering_half_the_recording_names_its_span(tmp_path: Path) -> None:
    rec = copy_tree(IOS_DIR, tmp_path / "rec")
    lines = (rec / "Gravity.csv").read_text().splitlines()
    (rec / "Gravity.csv").write_text("\n".join(lines[:len(lines) // 2]) + "\n")
    g_last_s = int(lines[len(lines) // 2 - 1].split(",")[0]) / 10**9
    with pytest.raises(TimestampError) as err:
        ingest.read(rec)
    assert err.value.field == "Gravity.csv.time"
    msg = str(err.value)
    assert "samples lie outside Gravity.csv's time span" in msg and f"..{g_last_s:.3f} s" in msg


def test_few_samples_outside_the_gravity_span_are_noted() -> None:
    trace = ingest.read(IOS_DIR)                                           # gravity starts 5 ms after the first sample
    assert any(p.startswith("1 of ") and "outside Gravity.csv's time span" in p for p in trace.quality.problems)


# --- the folder or zip around an export -----------------------------------------------------------------------


def _record_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    read: list[str] = []
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        read.append(self.name)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return read


def test_folder_files_no_reader_asks_for_are_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = copy_tree(ANDROID_FILES, tmp_path / "rec")
    (rec / "videos").mkdir()
    (rec / "videos" / "dashcam.mp4").write_bytes(b"\x00" * 4096)
    read = _record_reads(monkeypatch)
    trace = ingest.read(rec)
    assert trace.source_format == "sensor_logger" and trace.n_samples > 100
    assert "dashcam.mp4" not in read and "TotalAcceleration.csv" in read


def test_folder_larger_than_the_cap_is_refused_before_reading(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rec = copy_tree(ANDROID_FILES, tmp_path / "rec")
    total = sum(p.stat().st_size for p in rec.iterdir())
    monkeypatch.setattr(source, "MAX_DECOMPRESSED_BYTES", total - 1)
    read = _record_reads(monkeypatch)
    with pytest.raises(FormatError) as err:
        ingest.read(rec)
    assert f"holds {total} bytes of files, more than {total - 1}" in str(err.value)
    assert read == []


def test_password_protected_zip_names_the_member() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("rec/TotalAcceleration.csv", (ANDROID_FILES / "TotalAcceleration.csv").read_bytes())
    data = bytearray(buf.getvalue())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):   # set the "encrypted" flag bit
        data[data.find(signature) + flag_at] |= 1
    with pytest.raises(FormatError) as err:
        ingest.read(bytes(data), name="rec.zip")
    assert err.value.field == "rec/TotalAcceleration.csv"
    assert "(rec/TotalAcceleration.csv is encrypted)" in str(err.value) and "ZipInfo" not in str(err.value)


@pytest.mark.parametrize(("column", "index"), [("y", 3), ("time", 0)])
def test_non_numeric_value_names_column_and_line(tmp_path: Path, column: str, index: int) -> None:
    rec = copy_tree(ANDROID_FILES, tmp_path / "rec")
    lines = (rec / "TotalAcceleration.csv").read_text().splitlines()
    cells = lines[4].split(",")
    cells[index] = "abc"
    lines[4] = ",".join(cells)
    (rec / "TotalAcceleration.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as err:
        ingest.read(rec)
    assert err.value.field == f"TotalAcceleration.csv.{column}"
    assert "'abc'" in str(err.value) and "line 5" in str(err.value)


def test_two_recordings_in_one_zip_are_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for folder in ("a", "b"):
            zf.writestr(f"{folder}/TotalAcceleration.csv", (ANDROID_FILES / "TotalAcceleration.csv").read_text())
    with pytest.raises(FormatError, match="several recordings"):
        ingest.read(buf.getvalue())


# --- round trip ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_round_trip_through_bump_json(path: Path) -> None:
    trace = ingest.read(path)
    again = ingest.read(ingest.dumps(trace))
    assert_same_arrays(trace, again)
    assert (again.trip_id, again.device_id, again.phone) == (trace.trip_id, trace.device_id, trace.phone)
