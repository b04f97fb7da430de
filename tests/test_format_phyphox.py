"""phyphox reader: exact values from hand-made exports (tests/data/phyphox/README.md), dialects, zip vs folder,
absolute time through meta/time.csv (with a pause), and errors that name the file and the column."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

import ingest
from ingest.errors import FormatError, SchemaError
from ingest.formats import phyphox

DATA = Path(__file__).parent / "data" / "phyphox"
START_S = 1710000000.123   # meta/time.csv START row of the simple_* fixtures
ARRAYS = ("t_s", "accel_mps2", "gyro_t_s", "gyro_rad_s", "gps_t_s", "lat_deg", "lon_deg", "speed_mps",
          "heading_deg", "accuracy_m")


def ref_table(path: Path, sep: str = ",") -> np.ndarray:
    """A slow, obvious parse of a phyphox table: csv module + float(), decimal comma swapped for a point."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=sep))[1:]
    return np.array([[float(c.replace(",", ".")) for c in r] for r in rows])


def assert_same(a: ingest.Trace, b: ingest.Trace) -> None:
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert (a.trip_id, a.device_id, a.phone) == (b.trip_id, b.device_id, b.phone)


def copy_fixture(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(DATA / name, dst)
    return dst


def test_comma_folder_recovers_exact_values() -> None:
    tr = ingest.read(DATA / "simple_comma")
    assert tr.source_format == "phyphox"
    acc = ref_table(DATA / "simple_comma" / "Accelerometer.csv")
    assert np.array_equal(tr.t_s, START_S + acc[:, 0])
    assert np.array_equal(tr.accel_mps2, acc[:, 1:4])
    # first row, typed in from the file: 1.016354852E-2,3.138821848E-1,-1.217748170E0,9.687278106E0
    assert tr.t_s[0] == START_S + 0.01016354852
    assert tr.accel_mps2[0].tolist() == [0.3138821848, -1.217748170, 9.687278106]
    # axes not swapped: x ~ +0.31, y ~ -1.18, z ~ +9.72 (gravity)
    assert np.allclose(tr.accel_mps2.mean(axis=0), [0.31, -1.18, 9.72], atol=0.03)
    gyr = ref_table(DATA / "simple_comma" / "Gyroscope.csv")
    assert np.array_equal(tr.gyro_t_s, START_S + gyr[:, 0])
    assert np.array_equal(tr.gyro_rad_s, gyr[:, 1:4])
    assert np.allclose(tr.gyro_rad_s.mean(axis=0), [0.012, -0.034, 0.051], atol=0.002)


def test_location_drops_rows_before_the_first_fix() -> None:
    tr = ingest.read(DATA / "simple_comma")
    assert tr.quality.gps_fixes == 3
    assert tr.quality.dropped["gps_no_fix"] == 2
    assert np.array_equal(tr.gps_t_s, START_S + np.array([1.02, 2.02, 3.02]))
    assert tr.lat_deg.tolist() == [42.3601, 42.3601002, 42.3601004]
    assert tr.lon_deg.tolist() == [-71.0589, -71.05877843, -71.05865686]
    assert tr.speed_mps.tolist() == [10.0, 10.05, 10.1]
    assert tr.heading_deg.tolist() == [89.5, 89.8, 90.1]
    assert tr.accuracy_m.tolist() == [4.5, 4.0, 3.5]   # horizontal, not the vertical 3.0


def test_ids_and_phone_from_meta() -> None:
    tr = ingest.read(DATA / "simple_comma")
    assert tr.trip_id == "phyphox-1710000000123"
    assert tr.device_id == "phyphox-google-pixel-7"
    assert tr.phone == {"app": "phyphox", "app_version": "1.2.0", "brand": "google", "manufacturer": "Google",
                        "model": "Pixel 7", "os_version": "14"}


def test_zip_and_folder_give_identical_traces() -> None:
    assert_same(ingest.read(DATA / "simple_comma"), ingest.read(DATA / "simple_comma.zip"))
    assert ingest.read(DATA / "simple_comma.zip").source_format == "phyphox"


@pytest.mark.parametrize("variant", ["simple_tab", "simple_tab_decimal_comma", "simple_semicolon_decimal_comma"])
def test_dialects_give_identical_arrays(variant: str) -> None:
    assert_same(ingest.read(DATA / variant), ingest.read(DATA / "simple_comma"))


def test_decimal_comma_and_start_time_parsed() -> None:
    folder = DATA / "simple_semicolon_decimal_comma"
    assert b"1,016354852E-2;3,138821848E-1" in (folder / "Accelerometer.csv").read_bytes()
    assert b"1710000000,123" in (folder / "meta" / "time.csv").read_bytes()
    tr = ingest.read(folder)
    assert tr.t_s[0] == START_S + 0.01016354852
    assert tr.accel_mps2[0, 0] == 0.3138821848


def test_pause_and_resume_map_to_absolute_time() -> None:
    folder = DATA / "acceleration_with_g"
    tr = ingest.read(folder)
    raw = ref_table(folder / "Raw Data.csv", sep="\t")
    e = raw[:, 0]
    # START 0 -> 1710003600.5; PAUSE at 1.2; START again at experiment 1.2 -> 1710003610.0 (8.3 s later)
    expected = np.where(e < 1.2, 1710003600.5 + e, 1710003610.0 + (e - 1.2))
    np.testing.assert_allclose(tr.t_s, expected, rtol=0, atol=1e-6)
    assert tr.quality.n_gaps == 1
    assert tr.quality.longest_gap_s == pytest.approx(8.3 + 0.02, abs=1e-6)
    assert np.array_equal(tr.accel_mps2, raw[:, 1:4])   # the 5th "Absolute acceleration" column is not an axis
    assert tr.trip_id == "phyphox-1710003600500"
    assert tr.device_id == "phyphox-unknown"
    assert not tr.has_gps and not tr.has_gyro


def test_tables_are_found_by_header_not_file_name(tmp_path: Path) -> None:
    """German labels and file names: units and phyphox's column layout still identify every table."""
    folder = copy_fixture("simple_comma", tmp_path)
    german = {"Accelerometer.csv": ("Rohdaten.csv", ("Zeit", "Beschleunigung x", "Beschleunigung y",
                                                     "Beschleunigung z")),
              "Gyroscope.csv": ("Gyroskop.csv", ("Zeit", "Drehrate x", "Drehrate y", "Drehrate z")),
              "Location.csv": ("Standort.csv", ("Zeit", "Breitengrad", "Längengrad", "Höhe", "Geschwindigkeit",
                                                "Richtung", "Horizontale Genauigkeit", "Vertikale Genauigkeit"))}
    for old, (new, labels) in german.items():
        lines = (folder / old).read_text(encoding="utf-8").splitlines()
        units = [cell.split("(")[1] for cell in lines[0].split(",")]
        lines[0] = ",".join(f'"{lab} ({unit}' for lab, unit in zip(labels, units, strict=True))
        (folder / new).write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / old).unlink()
    assert_same(ingest.read(folder), ingest.read(DATA / "simple_comma"))


def test_to_epoch_s_by_hand() -> None:
    ref = (np.array([0.0, 5.0]), np.array([1000.0, 2000.0]))
    got = phyphox.to_epoch_s(np.array([-0.5, 0.0, 4.0, 5.0, 7.5, np.nan]), ref)
    assert got[:5].tolist() == [999.5, 1000.0, 1004.0, 2000.0, 2002.5]
    assert np.isnan(got[5])


@pytest.mark.parametrize("name", ["simple_comma", "simple_comma.zip", "simple_tab_decimal_comma",
                                  "simple_semicolon_decimal_comma", "acceleration_with_g", "no_time_meta",
                                  "linear_only"])
def test_sniffing_picks_phyphox(name: str) -> None:
    assert ingest.detect_format(ingest.open_source(DATA / name)) == "phyphox"


def test_plain_and_other_csv_are_not_phyphox() -> None:
    assert not phyphox.sniff(ingest.open_source(b"t,ax,ay,az\n1710000000.0,0.1,0.2,9.8\n", name="x.csv"))
    assert not phyphox.sniff(ingest.open_source(b"time,seconds_elapsed,z,y,x\n1,0.0,9.8,0,0\n", name="a.csv"))


def test_single_table_without_meta_is_refused_with_advice(tmp_path: Path) -> None:
    single = tmp_path / "Accelerometer.csv"
    shutil.copy(DATA / "simple_comma" / "Accelerometer.csv", single)
    assert ingest.detect_format(ingest.open_source(single)) == "phyphox"
    with pytest.raises(FormatError, match=r"meta/time\.csv.*absolute start time"):
        ingest.read(single)


def test_missing_time_meta_is_refused() -> None:
    with pytest.raises(FormatError) as err:
        ingest.read(DATA / "no_time_meta")
    assert err.value.field == "meta/time.csv"
    assert 'export the whole experiment from phyphox as "CSV"' in str(err.value)


def test_time_meta_without_start_is_refused(tmp_path: Path) -> None:
    folder = copy_fixture("simple_comma", tmp_path)
    time_csv = folder / "meta" / "time.csv"
    time_csv.write_text(time_csv.read_text().replace('"START"', '"PAUSE"'))
    with pytest.raises(FormatError, match="no START event"):
        ingest.read(folder)


def test_linear_acceleration_alone_is_refused() -> None:
    with pytest.raises(SchemaError) as err:
        ingest.read(DATA / "linear_only")
    assert err.value.field == "Linear Acceleration.csv"
    msg = str(err.value)
    assert '"Linear Acceleration x (m/s^2)"' in msg and "gravity-free" in msg and '"Acceleration with g"' in msg


def test_linear_acceleration_plus_gravity_table_is_accepted(tmp_path: Path) -> None:
    folder = copy_fixture("linear_only", tmp_path)
    lines = ['"Time (s)","Gravity x (m/s^2)","Gravity y (m/s^2)","Gravity z (m/s^2)"']
    lines += [f"{0.1 * k:.9E},2.000000000E-1,5.000000000E-1,9.790000000E0" for k in range(26)]
    (folder / "Gravity.csv").write_text("\n".join(lines) + "\n")
    tr = ingest.read(folder)
    lin = ref_table(folder / "Linear Acceleration.csv")
    assert np.array_equal(tr.t_s, START_S + lin[:, 0])
    assert np.array_equal(tr.accel_mps2, lin[:, 1:4] + np.array([0.2, 0.5, 9.79]))
    assert any("Gravity.csv (gravity) added" in p for p in tr.quality.problems)


def test_missing_accelerometer_file_names_files_and_columns(tmp_path: Path) -> None:
    folder = copy_fixture("simple_comma", tmp_path)
    (folder / "Accelerometer.csv").unlink()
    with pytest.raises(FormatError) as err:
        ingest.read(folder)
    msg = str(err.value)
    assert "no accelerometer table" in msg
    assert '"Acceleration x (m/s^2)"' in msg and "Accelerometer.csv" in msg
    assert "Location.csv: Time (s), Latitude (°)" in msg      # what the user did send
    assert '"Acceleration with g"' in msg                     # what to record instead


def test_missing_axis_column_is_named(tmp_path: Path) -> None:
    folder = copy_fixture("simple_comma", tmp_path)
    path = folder / "Accelerometer.csv"
    rows = [line.split(",") for line in path.read_text().splitlines()]
    path.write_text("\n".join(",".join(r[:2] + r[3:]) for r in rows) + "\n")   # drop the y column
    with pytest.raises(SchemaError) as err:
        ingest.read(folder)
    assert err.value.field == "Accelerometer.csv"
    assert '"Acceleration y (m/s^2)"' in str(err.value)


def test_non_numeric_value_names_file_column_line(tmp_path: Path) -> None:
    folder = copy_fixture("simple_comma", tmp_path)
    path = folder / "Accelerometer.csv"
    lines = path.read_text().splitlines()
    cells = lines[4].split(",")
    cells[2] = "abc"
    lines[4] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as err:
        ingest.read(folder)
    assert err.value.field == "Accelerometer.csv[Acceleration y (m/s^2)]"
    assert "'abc' on line 5" in str(err.value)


@pytest.mark.parametrize("name", ["simple_comma", "simple_comma.zip", "simple_semicolon_decimal_comma",
                                  "acceleration_with_g"])
def test_round_trip_through_bump_json(name: str) -> None:
    first = ingest.read(DATA / name)
    again = ingest.read(ingest.dumps(first))
    assert_same(first, again)
    assert again.source_format == "bump"
