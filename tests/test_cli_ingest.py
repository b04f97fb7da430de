"""`bump info` and `bump convert` on every valid fixture of all five formats, and the canonical JSON they write
reads back to the same arrays; bad input exits 2 with a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ingest
from bump.cli.main import main

DATA = Path(__file__).parent / "data"
SAMPLE = Path(__file__).parent.parent / "sample_traces" / "trips"

# every fixture a user could hand us as a valid recording (the refused ones are tested by their readers)
VALID = [
    (DATA / "sensor_logger" / "android.zip", "sensor_logger"),
    (DATA / "sensor_logger" / "android", "sensor_logger"),
    (DATA / "sensor_logger" / "ios", "sensor_logger"),
    (DATA / "sensor_logger" / "ios_uncalibrated", "sensor_logger"),
    (DATA / "sensor_logger" / "legacy", "sensor_logger"),
    (DATA / "sensorlog" / "sensorlog_comma.csv", "sensorlog"),
    (DATA / "sensorlog" / "sensorlog_semicolon.csv", "sensorlog"),
    (DATA / "phyphox" / "simple_comma.zip", "phyphox"),
    (DATA / "phyphox" / "simple_comma", "phyphox"),
    (DATA / "phyphox" / "simple_tab", "phyphox"),
    (DATA / "phyphox" / "simple_tab_decimal_comma", "phyphox"),
    (DATA / "phyphox" / "simple_semicolon_decimal_comma", "phyphox"),
    (DATA / "phyphox" / "acceleration_with_g", "phyphox"),
    (DATA / "plain_csv" / "basic.csv", "csv"),
    (DATA / "plain_csv" / "semicolon_decimal_comma.csv", "csv"),
    (DATA / "plain_csv" / "tab_reordered.csv", "csv"),
    (DATA / "plain_csv" / "repeated_gps.csv", "csv"),
    (DATA / "plain_csv" / "unit_g.csv", "csv"),
    (sorted(SAMPLE.glob("*.json.gz"))[0], "bump"),
]
ARRAYS = ("t_s", "accel_mps2", "gyro_t_s", "gyro_rad_s", "gps_t_s", "lat_deg", "lon_deg", "speed_mps",
          "heading_deg", "accuracy_m")


@pytest.mark.parametrize(("path", "fmt"), VALID, ids=[f"{p.parent.name}/{p.name}" for p, _ in VALID])
def test_info_and_convert_read_every_fixture(path: Path, fmt: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["format"] == fmt
    for key in ("trip_id", "duration_s", "accel_rate_hz", "gps_fixes", "problems"):
        assert key in info
    assert info["duration_s"] >= 1.0 and info["accel_rate_hz"] >= 4.0

    for out in (tmp_path / "trip.json", tmp_path / "trip.json.gz"):
        assert main(["convert", str(path), "--out", str(out)]) == 0
        original, converted = ingest.read(path), ingest.read(out)
        assert converted.source_format == "bump"
        assert (out.read_bytes()[:2] == b"\x1f\x8b") == out.name.endswith(".gz")
        for name in ARRAYS:
            assert np.array_equal(getattr(original, name), getattr(converted, name), equal_nan=True), name
        assert (converted.trip_id, converted.device_id) == (original.trip_id, original.device_id)


def test_info_prints_a_readable_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(DATA / "plain_csv" / "basic.csv")]) == 0
    text = capsys.readouterr().out
    assert "format csv" in text and "Hz" in text and "GPS fixes" in text


@pytest.mark.parametrize("args", [
    ["info", "does/not/exist.json"],
    ["convert", str(DATA / "phyphox" / "linear_only"), "--out", "x.json"],
    ["info", str(DATA / "phyphox" / "no_time_meta")],
])
def test_bad_input_exits_2_with_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bump {args[0]}: error: ") and "\n" not in err
    assert "Traceback" not in err


def test_python_dash_m_bump_is_the_bump_command() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "bump", "--help"], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).parent.parent)
    assert r.returncode == 0 and r.stdout.startswith("usage: bump ") and "ingest" in r.stdout


def test_a_folder_of_traces_with_export_folders_beside_them_gives_every_recording(tmp_path: Path) -> None:
    """Once the export's files were found through the parent folder, which was then read as that one export: the
    trace files beside it were skipped, and two export folders aborted the whole ingest."""
    import shutil

    from ingest.inputs import expand

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for f in sorted(SAMPLE.glob("*.json.gz"))[:3]:
        shutil.copy(f, mixed / f.name)
    shutil.copytree(DATA / "sensor_logger" / "ios", mixed / "ios_export")
    shutil.copytree(DATA / "phyphox" / "simple_comma", mixed / "phyphox_export")
    got = [Path(p).name for p in expand([str(mixed)])]
    assert got == sorted([f.name for f in sorted(SAMPLE.glob("*.json.gz"))[:3]] + ["ios_export", "phyphox_export"])
    # an export folder on its own is one recording, its CSVs the parts of it (Annotation.csv is no trace)
    assert expand([str(DATA / "sensor_logger" / "ios")]) == [str(DATA / "sensor_logger" / "ios")]
    # Android's export holds its files in a dated subfolder
    assert [Path(p).name for p in expand([str(DATA / "sensor_logger" / "android")])] == ["2024-05-01_09-00-00"]


def test_a_database_error_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A database locked by a long writer, or a read-only file, once ended in a sqlite3 traceback."""
    import sqlite3

    from bump.cli import info

    def locked(_args: object) -> int:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(info, "run", locked)
    assert main(["info", str(DATA / "plain_csv" / "basic.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bump info: error: the database refused: database is locked") and "\n" not in err


def test_an_interrupted_ingest_says_what_was_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C once printed only 'interrupted'."""
    from bump import pipeline

    real = pipeline.ingest_trace
    calls = []

    def stop_at_the_third(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(pipeline, "ingest_trace", stop_at_the_third)
    assert main(["ingest", str(SAMPLE), "--db", str(tmp_path / "i.db")]) == 130
    err = capsys.readouterr().err
    assert "stopped at file 3 of 12: 2 trips stored" in err and "run the same command again" in err
