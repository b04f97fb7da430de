"""Plain CSV reader: exact values from hand-made files (tests/data/plain_csv/README.md), dialects and column order,
GPS rows empty or repeated between fixes, units, ids, and errors that name the column."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ingest
from ingest.errors import FormatError, SchemaError
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
