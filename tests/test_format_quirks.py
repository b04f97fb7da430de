"""Quirks of real phone-app exports (review formats12, findings F1-F7): files cut short in transfer, impossible GPS
jumps, header-only files, device-motion-only SensorLog logs, unit advice per format, Sensor Logger exports without
Metadata.csv, and Physics Toolbox clock times with a date.

Inputs are the hand-made fixtures under tests/data, edited here the way a transfer or an app would damage them;
expected values come from the unedited fixtures read by the same reader, or from numbers written here by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import T0_S

import ingest
from ingest.errors import FormatError, GpsError, SchemaError, UnitError
from ingest.formats.csv_util import drop_cut_line
from ingest.validate import GPS_MAX_SPEED_MPS, build_trace

DATA = Path(__file__).parent / "data"
SL_ANDROID = DATA / "sensor_logger" / "android" / "2024-05-01_09-00-00"
SL_IOS = DATA / "sensor_logger" / "ios"
SL_UNCAL = DATA / "sensor_logger" / "ios_uncalibrated"
PHYPHOX = DATA / "phyphox" / "simple_comma"
SENSORLOG = DATA / "sensorlog" / "sensorlog_comma.csv"
PTSS_GFORCE = DATA / "physics_toolbox" / "2024-05-0109.15.00.csv"
ARRAYS = ("t_s", "accel_mps2", "gyro_t_s", "gyro_rad_s", "gps_t_s", "lat_deg", "lon_deg", "speed_mps",
          "heading_deg", "accuracy_m")


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def cut_end(path: Path, n_chars: int) -> str:
    """Drop the final line break and the last ``n_chars`` characters of ``path`` (a transfer cut short); returns
    the last line as it was."""
    text = path.read_text(encoding="utf-8")
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    path.write_text(text.rstrip("\n")[:-n_chars] if n_chars else text.rstrip("\n"), encoding="utf-8")
    return last


def assert_same_arrays(a: ingest.Trace, b: ingest.Trace) -> None:
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


def problems(trace: ingest.Trace) -> str:
    return "\n".join(trace.quality.problems)


# --- F1: a file cut inside its last line ---------------------------------------------------------------------


@pytest.mark.parametrize(("data", "kept"), [
    (b"h1,h2\n1.0,2.5\n1.5,2.6\n", True),                      # ends in a line break: untouched
    (b"h1,h2\n1.0,2.5\n1.5,2.6", True),                        # no line break, complete: kept (and noted)
    (b"h1,h2\n1.0,2.5\n1.5,2.", False),                        # ends inside a number
    (b"h1,h2\n1.0,2.5E0\n1.5,2.6E", False),                    # exponent lost
    (b"h1,h2\n1.0,2.500000\n1.5,2.6", False),                  # shorter than the column's width
    (b"h1,h2,h3\n1.0,2.5,3.5\n1.5,2.6", False),                # fewer fields than the line before
    (b"h1,h2,lat\n1.0,2.5,42.36012\n1.5,2.6,", True),          # last cell empty (no fix): every value whole
    (b"h1,h2,lat\n1.0,2.5,\n1.5,2.", False),                    # ... but a value cut before it still counts
    (b"h1,h2", True),                                           # a header alone is never dropped
])
def test_drop_cut_line_drops_only_a_last_line_that_looks_cut(data: bytes, kept: bool) -> None:
    notes: list[str] = []
    out = drop_cut_line(data, header_lines=1, where="f.csv", problems=notes)
    if kept:
        assert out == data
    else:
        assert out == data[:data.rfind(b"\n") + 1]
        assert len(notes) == 1 and notes[0].startswith("f.csv: its last line") and "dropped" in notes[0]
    assert bool(notes) == (not data.endswith(b"\n") and b"\n" in data)
    assert drop_cut_line(data, header_lines=1, where="f.csv", problems=None) == data   # nobody to tell: as is


def test_sensor_logger_value_cut_in_the_last_line_is_dropped_and_noted(tmp_path: Path) -> None:
    whole = ingest.read(SL_ANDROID)
    rec = copy_tree(SL_ANDROID, tmp_path / "rec")
    cut_end(rec / "TotalAcceleration.csv", 4)                   # '...,0.630161' -> '...,0.63'
    trace = ingest.read(rec)
    assert trace.n_samples == whole.n_samples - 1
    np.testing.assert_array_equal(trace.accel_mps2, whole.accel_mps2[:-1])
    assert "TotalAcceleration.csv: its last line" in problems(trace) and "cut short" in problems(trace)


def test_sensor_logger_latitude_cut_in_the_last_fix_is_dropped(tmp_path: Path) -> None:
    whole = ingest.read(SL_ANDROID)
    rec = copy_tree(SL_ANDROID, tmp_path / "rec")
    cut_end(rec / "Location.csv", 5)                            # latitude 42.3602054 -> 42.36
    trace = ingest.read(rec)
    np.testing.assert_array_equal(trace.lat_deg, whole.lat_deg[:-1])
    np.testing.assert_array_equal(trace.gps_t_s, whole.gps_t_s[:-1])
    assert "Location.csv: its last line" in problems(trace)


def test_phyphox_longitude_cut_before_its_exponent_is_dropped(tmp_path: Path) -> None:
    whole = ingest.read(PHYPHOX)
    rec = copy_tree(PHYPHOX, tmp_path / "rec")
    text = (rec / "Location.csv").read_text(encoding="utf-8").rstrip("\n")
    head, last = text.rsplit("\n", 1)
    (rec / "Location.csv").write_text(head + "\n" + ",".join(last.split(",")[:2]) + ",-7.10",  # lon -71.06 -> -7.10
                                      encoding="utf-8")
    trace = ingest.read(rec)
    np.testing.assert_array_equal(trace.lon_deg, whole.lon_deg[:-1])
    assert trace.gps_t_s.size == 2
    assert "Location.csv: its last line ('3.020000000E0,4.236010040E1,-7.10')" in problems(trace)


def test_phyphox_accelerometer_value_cut_is_dropped(tmp_path: Path) -> None:
    whole = ingest.read(PHYPHOX)
    rec = copy_tree(PHYPHOX, tmp_path / "rec")
    cut_end(rec / "Accelerometer.csv", 3)                       # '9.678185246E0' -> '9.678185246'
    trace = ingest.read(rec)
    np.testing.assert_array_equal(trace.accel_mps2, whole.accel_mps2[:-1])
    assert "Accelerometer.csv: its last line" in problems(trace)


def test_sensorlog_row_cut_is_dropped_and_noted(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    shutil.copy(SENSORLOG, path)
    cut_end(path, 12)
    trace = ingest.read(path)
    whole = ingest.read(SENSORLOG)
    assert trace.n_samples in (whole.n_samples, whole.n_samples - 1)
    assert "log.csv: its last line" in problems(trace) and "dropped" in problems(trace)


def test_physics_toolbox_cut_value_is_dropped_but_a_complete_line_is_kept(tmp_path: Path) -> None:
    whole = ingest.read(PTSS_GFORCE)
    cut = tmp_path / "cut" / PTSS_GFORCE.name
    cut.parent.mkdir()
    shutil.copy(PTSS_GFORCE, cut)
    cut_end(cut, 3)                                             # TgF '1.0036' -> '1.0': not used, but not data
    trace = ingest.read(cut)
    np.testing.assert_array_equal(trace.accel_mps2, whole.accel_mps2[:-1])
    assert "dropped" in problems(trace)
    complete = tmp_path / "complete" / PTSS_GFORCE.name
    complete.parent.mkdir()
    shutil.copy(PTSS_GFORCE, complete)
    cut_end(complete, 0)                                        # only the final line break lost
    trace = ingest.read(complete)
    assert_same_arrays(trace, whole)
    assert "looks complete and was kept" in problems(trace)


# --- F1: impossible GPS jumps ------------------------------------------------------------------------------------


def _trip(lat_deg: np.ndarray, lon_deg: np.ndarray, accuracy_m: float | np.ndarray = 5.0) -> ingest.Trace:
    """A 60 s trace at 50 Hz, gravity on z, with 1 Hz fixes at ``lat_deg``, ``lon_deg``."""
    t_s = T0_S + np.arange(3000) / 50.0
    xyz = np.column_stack([np.zeros(3000), np.zeros(3000), np.full(3000, 9.81)])
    k = lat_deg.size
    return build_trace(source="trip.json", source_format="test", trip_id="t", device_id="d", accel_t_s=t_s,
                       accel_xyz=xyz, gps_t_s=T0_S + np.arange(k, dtype=float), lat_deg=lat_deg, lon_deg=lon_deg,
                       accuracy_m=np.broadcast_to(accuracy_m, (k,)).astype(float))


def _east(k: int, speed_mps: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    lat = np.full(k, 48.137154)
    lon = 11.576770 + speed_mps * np.arange(k) / (111_320.0 * np.cos(np.radians(48.137154)))
    return lat, lon


@pytest.mark.parametrize("where", [30, 59, 0])
def test_a_fix_hundreds_of_km_from_its_neighbours_is_dropped_and_noted(where: int) -> None:
    lat, lon = _east(60)
    bad_lon = lon.copy()
    bad_lon[where] = 1.15                                     # 780 km west, one second later
    trace = _trip(lat, bad_lon)
    keep = np.arange(60) != where
    np.testing.assert_array_equal(trace.lon_deg, lon[keep])
    np.testing.assert_array_equal(trace.gps_t_s, T0_S + np.arange(60.0)[keep])
    assert trace.quality.dropped["gps_impossible_jump"] == 1
    assert f"t={T0_S + where:.3f} s (48.137154, 1.150000)" in problems(trace)


def test_fast_driving_and_noise_within_the_accuracy_are_kept() -> None:
    lat, lon = _east(60, speed_mps=0.9 * GPS_MAX_SPEED_MPS)
    lat = lat + np.where(np.arange(60) % 2, 1, -1) * 30 / 111_320.0     # +-30 m, within 2 x 40 m accuracy
    trace = _trip(lat, lon, accuracy_m=40.0)
    assert trace.gps_t_s.size == 60 and "gps_impossible_jump" not in trace.quality.dropped


def test_mostly_impossible_fixes_are_refused_naming_the_fix() -> None:
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-60, 60, 20), rng.uniform(-170, 170, 20)    # fixes of unrelated places, 1 s apart
    with pytest.raises(GpsError) as err:
        _trip(lat, lon)
    assert err.value.field == "gps.lat"
    assert f"from the fix at t={T0_S:.3f} s ({lat[0]:.6f}, {lon[0]:.6f})" in str(err.value)
    assert "seconds" in str(err.value)


def test_jump_rule_matches_a_slow_reference() -> None:
    """The vectorised rule against a loop over fixes: dropped iff every neighbour is an impossible step away (an
    end fix: its neighbour's other step possible)."""
    rng = np.random.default_rng(7)
    lat, lon = _east(80)
    far = rng.choice(80, 6, replace=False)
    lon = lon.copy()
    lon[far] += rng.choice([-1.0, 1.0], 6) * rng.uniform(0.01, 2.0, 6)    # 0.7-150 km off
    acc = rng.uniform(3, 30, 80)

    def impossible(i: int, j: int) -> bool:
        p1, p2 = np.radians(lat[i]), np.radians(lat[j])
        h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon[j] - lon[i]) / 2) ** 2
        return bool(2 * 6_371_008.8 * np.arcsin(np.sqrt(h)) - acc[i] - acc[j] > GPS_MAX_SPEED_MPS * abs(j - i))

    drop = []
    for i in range(80):
        if 0 < i < 79:
            drop.append(impossible(i - 1, i) and impossible(i, i + 1))
        else:
            n, nn = (1, 2) if i == 0 else (78, 77)
            drop.append(impossible(i, n) and not impossible(n, nn))
    trace = _trip(lat, lon, accuracy_m=acc)
    np.testing.assert_array_equal(trace.lon_deg, lon[~np.array(drop)])
    assert trace.quality.dropped.get("gps_impossible_jump", 0) == sum(drop) > 0


# --- F2: SensorLog with device motion only --------------------------------------------------------------------


def _sensorlog_motion_only(n: int = 150, accel_cells: str = "", motion: bool = True) -> str:
    """A SensorLog log at 50 Hz whose accelerometer* columns hold ``accel_cells`` and motion* columns the data:
    user acceleration 0.01 g on x, gravity -1 g on z (Core Motion's sign: phone flat, screen up); without
    ``motion``, the motion columns hold -9999 too."""
    header = ("loggingTime(txt),accelerometerTimestamp_sinceReboot(s),accelerometerAccelerationX(G),"
              "accelerometerAccelerationY(G),accelerometerAccelerationZ(G),motionTimestamp_sinceReboot(s),"
              "motionUserAccelerationX(G),motionUserAccelerationY(G),motionUserAccelerationZ(G),motionGravityX(G),"
              "motionGravityY(G),motionGravityZ(G),motionRotationRateX(rad/s),motionRotationRateY(rad/s),"
              "motionRotationRateZ(rad/s)")
    lines = [header]
    for k in range(n):
        ms = 20 * k + 5
        logged = f"2024-05-01 09:15:{ms // 1000:02d}.{ms % 1000:03d} +0000"
        motion_cells = f"{1000 + k / 50:.3f},0.01,0,0,0,0,-1,0.001,0,0" if motion else ",".join(["-9999"] * 10)
        lines.append(f"{logged},{accel_cells},{accel_cells},{accel_cells},{accel_cells},{motion_cells}")
    return "\n".join(lines) + "\n"


def test_sensorlog_empty_accelerometer_columns_use_device_motion() -> None:
    trace = ingest.read(_sensorlog_motion_only().encode(), name="motion.csv")
    assert trace.n_samples == 150
    np.testing.assert_allclose(trace.accel_mps2, np.tile([-0.01 * 9.80665, 0.0, 9.80665], (150, 1)), atol=1e-12)
    np.testing.assert_allclose(np.diff(trace.t_s), 0.02, atol=1e-6)
    assert trace.t_s[0] == pytest.approx(1714554900.005, abs=1e-3)
    assert trace.gyro_t_s.size == 150
    assert "accelerometerAcceleration columns are empty; used motionUserAcceleration" in problems(trace)


def test_sensorlog_without_any_accelerometer_data_says_so() -> None:
    data = _sensorlog_motion_only(accel_cells="-9999", motion=False).encode()
    with pytest.raises(SchemaError) as err:
        ingest.read(data, name="empty.csv")
    assert err.value.field == "accelerometerTimestamp_sinceReboot(s)"
    assert "has no accelerometer data" in str(err.value) and "loggingTime" not in str(err.value)


# --- F3: header-only files -------------------------------------------------------------------------------------


def _keep_header_only(path: Path) -> None:
    """Cut a CSV export down to its header line (an app that stopped before its first sample)."""
    path.write_text(path.read_text(encoding="utf-8").split("\n", 1)[0] + "\n", encoding="utf-8")


def test_phyphox_header_only_accelerometer_names_the_empty_recording(tmp_path: Path) -> None:
    rec = copy_tree(PHYPHOX, tmp_path / "rec")
    _keep_header_only(rec / "Accelerometer.csv")
    with pytest.raises(SchemaError) as err:
        ingest.read(rec)
    assert err.value.field == "Accelerometer.csv"
    assert "has a header but no data rows" in str(err.value) and "None" not in str(err.value)


def test_phyphox_header_only_location_means_no_fixes(tmp_path: Path) -> None:
    rec = copy_tree(PHYPHOX, tmp_path / "rec")
    _keep_header_only(rec / "Location.csv")
    trace = ingest.read(rec)
    assert not trace.has_gps and trace.n_samples == ingest.read(PHYPHOX).n_samples


def test_physics_toolbox_header_only_names_the_empty_recording(tmp_path: Path) -> None:
    path = tmp_path / PTSS_GFORCE.name
    path.write_text("time,gFx,gFy,gFz,TgF\n", encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        ingest.read(path)
    assert err.value.field == "time" and "has a header but no data rows" in str(err.value)


def test_sensorlog_header_only_names_the_empty_log() -> None:
    header = SENSORLOG.read_text(encoding="utf-8").split("\n", 1)[0]
    with pytest.raises(SchemaError) as err:
        ingest.read((header + "\n").encode(), name="log.csv")
    assert "has a header but no data rows" in str(err.value) and "neither" not in str(err.value)


def test_sensor_logger_header_only_total_falls_back_like_an_empty_one(tmp_path: Path) -> None:
    header_only, empty = copy_tree(SL_ANDROID, tmp_path / "h"), copy_tree(SL_ANDROID, tmp_path / "e")
    (header_only / "TotalAcceleration.csv").write_text("time,seconds_elapsed,z,y,x\n", encoding="utf-8")
    (empty / "TotalAcceleration.csv").write_bytes(b"")
    trace = ingest.read(header_only)
    assert_same_arrays(trace, ingest.read(empty))
    assert trace.n_samples > 100
    assert "TotalAcceleration.csv has a header but no data rows: read as if it were missing" in problems(trace)


def test_sensor_logger_all_accelerometer_files_header_only_is_refused_clearly(tmp_path: Path) -> None:
    rec = copy_tree(SL_ANDROID, tmp_path / "rec")
    for name in ("TotalAcceleration.csv", "Accelerometer.csv", "Gravity.csv"):
        (rec / name).write_text("time,seconds_elapsed,z,y,x\n", encoding="utf-8")
    with pytest.raises(FormatError) as err:
        ingest.read(rec)
    assert err.value.field == "TotalAcceleration.csv"
    assert "have a header but no data rows" in str(err.value) and "record again" in str(err.value)


# --- F4, F5: unit advice the user can follow ---------------------------------------------------------------------


def test_sensor_logger_total_in_g_names_the_apps_unit(tmp_path: Path) -> None:
    rec = copy_tree(SL_ANDROID, tmp_path / "rec")
    lines = (rec / "TotalAcceleration.csv").read_text(encoding="utf-8").splitlines()
    scaled = [",".join(c if i < 2 else f"{float(c) / 9.80665:.6f}" for i, c in enumerate(line.split(",")))
              for line in lines[1:]]
    (rec / "TotalAcceleration.csv").write_text("\n".join([lines[0], *scaled]) + "\n", encoding="utf-8")
    with pytest.raises(UnitError) as err:
        ingest.read(rec)
    msg = str(err.value)
    assert "looks like g" in msg and "Sensor Logger writes TotalAcceleration.csv in m/s2" in msg
    assert "set unit" not in msg and err.value.field == "TotalAcceleration.csv"


def test_physics_toolbox_values_in_mps2_name_the_apps_unit(tmp_path: Path) -> None:
    lines = PTSS_GFORCE.read_text(encoding="utf-8").splitlines()
    scaled = [",".join(c if i == 0 else f"{float(c) * 9.80665:.4f}" for i, c in enumerate(line.split(",")))
              for line in lines[1:]]
    path = tmp_path / PTSS_GFORCE.name
    path.write_text("\n".join([lines[0], *scaled]) + "\n", encoding="utf-8")
    with pytest.raises(UnitError) as err:
        ingest.read(path)
    assert "looks like m/s2" in str(err.value) and "Physics Toolbox writes gFx, gFy, gFz in g" in str(err.value)
    assert "set unit" not in str(err.value)


def test_sensorlog_values_in_mps2_name_the_apps_unit() -> None:
    text = _sensorlog_motion_only().replace(",0.01,0,0,0,0,-1,", ",0.098,0,0,0,0,-9.81,")
    with pytest.raises(UnitError) as err:
        ingest.read(text.encode(), name="log.csv")
    assert "looks like m/s2" in str(err.value) and "SensorLog writes its (G) columns" in str(err.value)
    assert "set unit" not in str(err.value)


def test_bump_json_keeps_its_set_unit_advice(doc: dict) -> None:
    doc["accel"]["z"] = [z / 9.80665 for z in doc["accel"]["z"]]
    with pytest.raises(UnitError, match='set unit to "g"') as err:
        ingest.read(orjson.dumps(doc), name="upload.json")
    assert err.value.field == "accel.unit"


def _phyphox_scaled(tmp_path: Path, factor: float, unit: str = "m/s^2") -> Path:
    rec = copy_tree(PHYPHOX, tmp_path / "rec")
    lines = (rec / "Accelerometer.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].replace("(m/s^2)", f"({unit})")
    scaled = [",".join(c if i == 0 else f"{float(c) * factor:.9E}" for i, c in enumerate(line.split(",")))
              for line in lines[1:]]
    (rec / "Accelerometer.csv").write_text("\n".join([header, *scaled]) + "\n", encoding="utf-8")
    return rec


def test_phyphox_values_in_g_are_called_g_not_linear_acceleration(tmp_path: Path) -> None:
    with pytest.raises(UnitError) as err:
        ingest.read(_phyphox_scaled(tmp_path, 1 / 9.80665))
    msg = str(err.value)
    assert "looks like g" in msg and "phyphox writes" in msg and "gravity-free" not in msg
    assert err.value.field == "Accelerometer.csv"


def test_phyphox_g_labelled_columns_name_the_unit(tmp_path: Path) -> None:
    with pytest.raises(UnitError) as err:
        ingest.read(_phyphox_scaled(tmp_path, 1 / 9.80665, unit="g"))
    assert '"Acceleration x (g)"' in str(err.value) and "m/s^2" in str(err.value)
    assert err.value.field == "Accelerometer.csv"


def test_phyphox_linear_acceleration_is_still_called_gravity_free(tmp_path: Path) -> None:
    rec = _phyphox_scaled(tmp_path, 1.0)
    lines = (rec / "Accelerometer.csv").read_text(encoding="utf-8").splitlines()
    rows = np.array([[float(c) for c in line.split(",")] for line in lines[1:]])
    rows[:, 1:] -= np.median(rows[:, 1:], axis=0)                # gravity removed: zero-mean motion and noise
    body = [",".join(f"{v:.9E}" for v in r) for r in rows]
    (rec / "Accelerometer.csv").write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="gravity-free"):
        ingest.read(rec)


# --- F6: Physics Toolbox clock times with a date ----------------------------------------------------------------


def test_physics_toolbox_clock_with_a_date_reads_like_the_clock(tmp_path: Path) -> None:
    body_clock, body_date = [], []
    for k in range(300):
        ms = 133 + 10 * k
        clock = f"09:40:{ms // 1000:02d}:{ms % 1000:03d}"
        cells = f"0.1551,0.5089,{0.8639 + 0.001 * (k % 7):.4f},1.0145"
        body_clock.append(f"{clock},{cells}")
        body_date.append(f"2024-05-01 {clock},{cells}")
    clock_path = tmp_path / "c" / "2024-05-01 09.40.00.csv"
    date_path = tmp_path / "d" / "2024-05-01 09.40.00.csv"
    for path, body in ((clock_path, body_clock), (date_path, body_date)):
        path.parent.mkdir()
        path.write_text("\n".join(["time,gFx,gFy,gFz,TgF", *body]) + "\n", encoding="utf-8")
    by_clock, by_date = ingest.read(clock_path), ingest.read(date_path)
    np.testing.assert_allclose(by_date.t_s, by_clock.t_s, rtol=0, atol=1e-6)
    assert by_date.t_s[0] == pytest.approx(1714556400.133, abs=1e-6)     # 2024-05-01 09:40:00.133, read as UTC
    np.testing.assert_array_equal(by_date.accel_mps2, by_clock.accel_mps2)    # Android sign: z = +g
    assert by_date.accel_mps2[0, 2] > 0 and by_date.phone.get("os") == "Android"


# --- F7: Sensor Logger without Metadata.csv -------------------------------------------------------------------------


def test_sensor_logger_ios_without_metadata_keeps_androids_sign(tmp_path: Path) -> None:
    rec = copy_tree(SL_IOS, tmp_path / "rec")
    (rec / "Metadata.csv").unlink()
    trace, with_meta = ingest.read(rec), ingest.read(SL_IOS)
    np.testing.assert_array_equal(trace.accel_mps2, with_meta.accel_mps2)
    assert np.median(trace.accel_mps2[:, 2]) > 9.0
    assert "platform taken as iOS" in problems(trace) and "axis signs taken as Android's" not in problems(trace)
    assert trace.phone["os"] == with_meta.phone["os"] == "ios"          # the inferred platform is kept too


def test_sensor_logger_ios_uncalibrated_in_g_without_metadata(tmp_path: Path) -> None:
    rec = copy_tree(SL_UNCAL, tmp_path / "rec")
    (rec / "Metadata.csv").unlink()
    trace = ingest.read(rec)
    np.testing.assert_array_equal(trace.accel_mps2, ingest.read(SL_UNCAL).accel_mps2)
    assert "AccelerometerUncalibrated.csv is in g" in problems(trace)


def test_sensor_logger_android_without_metadata_or_total_rows_is_not_negated(tmp_path: Path) -> None:
    rec, with_meta = copy_tree(SL_ANDROID, tmp_path / "rec"), copy_tree(SL_ANDROID, tmp_path / "meta")
    for path in (rec, with_meta):
        (path / "TotalAcceleration.csv").write_bytes(b"")     # Android wrote it: only Android does
    (rec / "Metadata.csv").unlink()
    np.testing.assert_array_equal(ingest.read(rec).accel_mps2, ingest.read(with_meta).accel_mps2)


def test_sensor_logger_platform_that_nothing_tells_is_noted(tmp_path: Path) -> None:
    rec = copy_tree(SL_UNCAL, tmp_path / "rec")
    (rec / "Metadata.csv").unlink()
    lines = (rec / "AccelerometerUncalibrated.csv").read_text(encoding="utf-8").splitlines()
    mps2 = [",".join(c if i < 2 else f"{-float(c) * 9.80665:.6f}" for i, c in enumerate(line.split(",")))
            for line in lines[1:]]                               # m/s2: Android, or iOS standardised
    (rec / "AccelerometerUncalibrated.csv").write_text("\n".join([lines[0], *mps2]) + "\n", encoding="utf-8")
    trace = ingest.read(rec)
    np.testing.assert_allclose(trace.accel_mps2, ingest.read(SL_UNCAL).accel_mps2, rtol=0, atol=1e-5)
    assert "platform unknown" in problems(trace) and "axis signs taken as Android's" in problems(trace)
    assert "os" not in trace.phone
