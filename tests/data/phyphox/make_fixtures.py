"""Write the phyphox fixtures of this folder (run once; the files are committed, tests never run this).

    .venv/bin/python tests/data/phyphox/make_fixtures.py

The layout copies what phyphox-android writes (``DataExport.CsvFormat``, ``SimpleExperimentCreator``): see
README.md. Values: a phone lying flat-ish in a car driving east through Boston at ~10 m/s; gravity mostly on z,
distinct offsets per axis (x ~ +0.31, y ~ -1.18, z ~ +9.72 m/s^2) so a swapped axis shows. Seeded, so re-running
gives the same bytes.
"""

from __future__ import annotations

import math
import shutil
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
START_SYSTEM_S = 1710000000.123          # 2024-03-09 16:00:00.123 UTC = 11:00:00.123 in Boston (UTC-05:00)
LAT0_DEG, LON0_DEG = 42.3601, -71.0589   # Boston City Hall
SPEED_MPS = 10.0


def num(v: float, decimal: str = ".") -> str:
    """Java DecimalFormat("0.000000000E0") as phyphox uses it: 9.806650000E0, -1.200000000E-2, NaN."""
    if math.isnan(v):
        return "NaN"
    mantissa, exponent = f"{v:.9E}".split("E")
    return f"{mantissa}E{int(exponent)}".replace(".", decimal)


def table(header: list[str], rows: list[list[float]], sep: str, decimal: str) -> str:
    lines = [sep.join(f'"{h}"' for h in header)]
    lines += [sep.join(num(v, decimal) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def time_csv(events: list[tuple[str, float, float, str]], sep: str, decimal: str) -> str:
    """meta/time.csv: experiment time as 0.000000000E0, system time as ############0.000."""
    out = [sep.join(f'"{h}"' for h in ("event", "experiment time", "system time", "system time text"))]
    for event, exp_s, sys_s, text in events:
        out.append(sep.join((f'"{event}"', num(exp_s, decimal), f"{sys_s:.3f}".replace(".", decimal), f'"{text}"')))
    return "\n".join(out) + "\n"


def device_csv(sep: str) -> str:
    props = [("version", "1.2.0"), ("build", "1020003"), ("fileFormat", "1.19"), ("deviceModel", "Pixel 7"),
             ("deviceBrand", "google"), ("deviceBoard", "panther"), ("deviceManufacturer", "Google"),
             ("deviceBaseOS", ""), ("deviceCodename", "REL"), ("deviceRelease", "14"),
             ("depthFrontSensor", "0"), ("depthBackSensor", "0"),
             ("accelerometer Name", "LSM6DSV Accelerometer"), ("accelerometer Vendor", "STMicro"),
             ("accelerometer Range", "156.9064"), ("accelerometer Resolution", "0.0047856453"),
             ("gyroscope Name", "LSM6DSV Gyroscope"), ("gyroscope Vendor", "STMicro")]
    return "".join(sep.join(f'"{c}"' for c in row) + "\n" for row in [("property", "value"), *props])


def simple_experiment() -> dict[str, tuple[list[str], list[list[float]]]]:
    """Accelerometer 50 Hz and gyroscope 25 Hz for 3.1 s; Location at 1 Hz with two no-fix rows first."""
    rng = np.random.default_rng(20240309)
    n = 155
    t = 0.0104 + 0.02 * np.arange(n) + rng.uniform(-3e-4, 3e-4, n)
    acc = np.column_stack([0.31 + rng.normal(0, 0.05, n), -1.18 + rng.normal(0, 0.05, n),
                           9.72 + rng.normal(0, 0.08, n)])
    m = 78
    gt = 0.0151 + 0.04 * np.arange(m)
    gyr = np.column_stack([0.012 + rng.normal(0, 0.002, m), -0.034 + rng.normal(0, 0.002, m),
                           0.051 + rng.normal(0, 0.002, m)])
    nan = float("nan")
    loc = [[0.05, nan, nan, nan, nan, nan, nan, nan], [0.55, nan, nan, nan, nan, nan, nan, nan]]
    deg_per_m_lon = 1.0 / (111_320.0 * math.cos(math.radians(LAT0_DEG)))
    for k, t_fix in enumerate((1.02, 2.02, 3.02)):
        loc.append([t_fix, LAT0_DEG + 2e-7 * k, LON0_DEG + SPEED_MPS * k * deg_per_m_lon, 12.3 + 0.1 * k,
                    SPEED_MPS + 0.05 * k, 89.5 + 0.3 * k, 4.5 - 0.5 * k, 3.0])
    return {
        "Accelerometer.csv": (["Time (s)", "Acceleration x (m/s^2)", "Acceleration y (m/s^2)",
                               "Acceleration z (m/s^2)"], np.column_stack([t, acc]).tolist()),
        "Gyroscope.csv": (["Time (s)", "Gyroscope x (rad/s)", "Gyroscope y (rad/s)", "Gyroscope z (rad/s)"],
                          np.column_stack([gt, gyr]).tolist()),
        "Location.csv": (["Time (s)", "Latitude (°)", "Longitude (°)", "Height (m)", "Velocity (m/s)",
                          "Direction (°)", "Horizontal Accuracy (m)", "Vertical Accuracy (m)"], loc),
    }


def write_simple(folder: Path, sep: str, decimal: str, *, with_time: bool = True) -> dict[str, str]:
    files = {name: table(h, rows, sep, decimal) for name, (h, rows) in simple_experiment().items()}
    files["meta/device.csv"] = device_csv(sep)
    if with_time:
        files["meta/time.csv"] = time_csv([
            ("START", 0.0, START_SYSTEM_S, "2024-03-09 11:00:00.123 UTC-05:00"),
            ("PAUSE", 3.112345678, START_SYSTEM_S + 3.112, "2024-03-09 11:00:03.235 UTC-05:00"),
        ], sep, decimal)
    write_folder(folder, files)
    return files


def write_folder(folder: Path, files: dict[str, str]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def write_zip(path: Path, files: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 3, 9, 11, 0, 4))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))


def acceleration_with_g(folder: Path) -> None:
    """"Acceleration with g": Raw Data.csv (tab, 5 columns), paused once for 8.3 s, no device.csv."""
    rng = np.random.default_rng(7)
    n = 130
    t = 0.01 + 0.02 * np.arange(n)
    acc = np.column_stack([0.42 + rng.normal(0, 0.04, n), 9.61 + rng.normal(0, 0.06, n),
                           -1.37 + rng.normal(0, 0.04, n)])
    absolute = np.sqrt((acc ** 2).sum(axis=1))
    header = ["Time (s)", "Acceleration x (m/s^2)", "Acceleration y (m/s^2)", "Acceleration z (m/s^2)",
              "Absolute acceleration (m/s^2)"]
    s0 = 1710003600.5
    events = [("START", 0.0, s0, "2024-03-09 12:00:00.500 UTC-05:00"),
              ("PAUSE", 1.2, s0 + 1.2, "2024-03-09 12:00:01.700 UTC-05:00"),
              ("START", 1.2, s0 + 9.5, "2024-03-09 12:00:10.000 UTC-05:00"),
              ("PAUSE", 2.61, s0 + 10.91, "2024-03-09 12:00:11.410 UTC-05:00")]
    write_folder(folder, {"Raw Data.csv": table(header, np.column_stack([t, acc, absolute]).tolist(), "\t", "."),
                          "meta/time.csv": time_csv(events, "\t", ".")})


def linear_only(folder: Path) -> None:
    """A simple experiment with only the "Linear Acceleration" sensor: gravity-free, must be refused."""
    rng = np.random.default_rng(11)
    n = 120
    t = 0.012 + 0.02 * np.arange(n)
    lin = np.column_stack([0.05 + rng.normal(0, 0.03, n), -0.08 + rng.normal(0, 0.03, n),
                           0.02 + rng.normal(0, 0.05, n)])
    header = ["Time (s)", "Linear Acceleration x (m/s^2)", "Linear Acceleration y (m/s^2)",
              "Linear Acceleration z (m/s^2)"]
    write_folder(folder, {
        "Linear Acceleration.csv": table(header, np.column_stack([t, lin]).tolist(), ",", "."),
        "meta/device.csv": device_csv(","),
        "meta/time.csv": time_csv([("START", 0.0, START_SYSTEM_S, "2024-03-09 11:00:00.123 UTC-05:00")], ",", "."),
    })


def main() -> None:
    comma = write_simple(HERE / "simple_comma", ",", ".")
    write_zip(HERE / "simple_comma.zip", comma)
    write_simple(HERE / "simple_tab", "\t", ".")
    write_simple(HERE / "simple_tab_decimal_comma", "\t", ",")
    write_simple(HERE / "simple_semicolon_decimal_comma", ";", ",")
    write_simple(HERE / "no_time_meta", ",", ".", with_time=False)
    acceleration_with_g(HERE / "acceleration_with_g")
    linear_only(HERE / "linear_only")


if __name__ == "__main__":
    main()
