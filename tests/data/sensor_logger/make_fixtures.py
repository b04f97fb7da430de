"""Regenerate the Sensor Logger fixtures in this folder (deterministic; see README.md for the layouts).

Run from the repository root: ``.venv/bin/python tests/data/sensor_logger/make_fixtures.py``.
The committed CSV/zip files are the fixtures; this script only documents how they were made.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
G = 9.80665
AXIS_HEADER = "time,seconds_elapsed,z,y,x"          # Sensor Logger's column order: z before y before x
LOCATION_NEW = ("time,seconds_elapsed,bearingAccuracy,speedAccuracy,verticalAccuracy,horizontalAccuracy,speed,"
                "bearing,altitude,longitude,latitude")
LOCATION_OLD = "time,seconds_elapsed,horizontalAccuracy,speed,bearing,altitude,longitude,latitude"
METADATA = ("version,device name,recording epoch time,recording time,recording timezone,platform,appVersion,"
            "device id,sensors,sampleRateMs,standardisation,platform version")
ANNOTATION = "time,seconds_elapsed,text,millisecond_press_duration"


def times_ns(start_ns: int, first_ns: int, n: int, period_ns: int, rng: np.random.Generator) -> np.ndarray:
    """Sample times [int ns]: nominal period plus +-0.3 ms jitter."""
    return first_ns + np.arange(n, dtype=np.int64) * period_ns + rng.integers(-300_000, 300_000, n)


def axis_csv(start_ns: int, t_ns: np.ndarray, xyz: np.ndarray) -> str:
    rows = [AXIS_HEADER]
    for t, (x, y, z) in zip(t_ns, xyz, strict=True):
        rows.append(f"{t},{(t - start_ns) / 1e9:.9f},{z:.6f},{y:.6f},{x:.6f}")
    return "\n".join(rows) + "\n"


def write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def android() -> dict[str, str]:
    """Pixel 7, Android: TotalAcceleration (with g), Accelerometer + Gravity starting 0.2 s later."""
    rng = np.random.default_rng(7)
    start_ns = 1_714_568_400_000_000_000                 # 2024-05-01 13:00:00 UTC (09:00 EDT)
    n, period = 130, 20_000_000                          # 50 Hz, 2.6 s
    t = times_ns(start_ns, start_ns + 12_345_678, n, period, rng)
    t[0] = start_ns + 12_345_678
    gravity = np.array([0.6, 1.9, np.sqrt(G**2 - 0.6**2 - 1.9**2)])
    linear = rng.normal(0.0, 0.05, (n, 3))
    linear[70:73, 2] += [3.0, -2.4, 0.9]                 # a small impact
    total = gravity + linear
    gyro = np.array([0.011, -0.022, 0.033]) + rng.normal(0.0, 0.002, (n, 3))
    fix_ns = start_ns + np.array([400_000_000, 1_400_000_000, 2_400_000_000])
    loc = [LOCATION_NEW]
    lat = 42.360100 + np.arange(3) * 5.27e-5
    lon = -71.058900 + np.arange(3) * 7.13e-5
    for i, (tf, speed, bearing, acc, bacc, sacc) in enumerate(zip(
            fix_ns, (8.3, 8.4, -1.0), (45.0, 45.5, -1.0), (4.9, 5.1, 4.7), (10.0, 9.5, -1.0), (0.5, 0.5, -1.0),
            strict=True)):
        loc.append(f"{tf},{(tf - start_ns) / 1e9:.9f},{bacc},{sacc},3.0,{acc},{speed},{bearing},12.3,"
                   f"{lon[i]:.7f},{lat[i]:.7f}")
    return {
        "TotalAcceleration.csv": axis_csv(start_ns, t, total),
        "Accelerometer.csv": axis_csv(start_ns, t[10:], linear[10:]),
        "Gravity.csv": axis_csv(start_ns, t[10:], np.tile(gravity, (n - 10, 1))),
        "Gyroscope.csv": axis_csv(start_ns, t + 2_000_000, gyro),
        "Location.csv": "\n".join(loc) + "\n",
        "Metadata.csv": METADATA + "\n3,Pixel 7,1714568400000,2024-05-01_09-00-00,America/New_York,android,1.32.2,"
        "b1946ac92492d234,Accelerometer|Gravity|Gyroscope|Location|TotalAcceleration|Annotation,"
        "20|20|20|1000|20|,false,14\n",
        "Annotation.csv": ANNOTATION + "\n",
    }


def ios() -> dict[str, str]:
    """iPhone 13, iOS: Accelerometer (gravity removed) + Gravity, iOS sign convention, no TotalAcceleration."""
    rng = np.random.default_rng(13)
    start_ns = 1_714_572_000_000_000_000                 # 2024-05-01 14:00:00 UTC
    n, period = 120, 20_000_000
    t = times_ns(start_ns, start_ns + 7_654_321, n, period, rng)
    t[0] = start_ns + 7_654_321
    tau = np.arange(n) / (n - 1)
    g_x = 1.2 + 0.1 * tau                                # phone rolls slowly in its cradle
    g_y = np.full(n, -2.5)
    g_android = np.column_stack([g_x, g_y, np.sqrt(G**2 - g_x**2 - g_y**2)])
    user = np.array([0.05, -0.03, 0.02]) + rng.normal(0.0, 0.04, (n, 3))
    gyro = np.array([-0.05, 0.12, 0.007]) + rng.normal(0.0, 0.002, (n, 3))
    fix_ns = start_ns + np.array([300_000_000, 1_300_000_000, 2_300_000_000])
    lon = -71.070300 + np.arange(3) * 6.44e-5
    loc = [LOCATION_NEW + ",altitudeAboveMeanSeaLevel"]
    for i, (tf, speed, bearing, acc, bacc, sacc) in enumerate(zip(
            fix_ns, (-1.0, 5.2, 5.4), (-1.0, 90.5, 91.0), (6.0, 5.5, -1.0), (-1.0, 12.0, 11.0), (-1.0, 0.8, 0.7),
            strict=True)):
        loc.append(f"{tf},{(tf - start_ns) / 1e9:.9f},{bacc},{sacc},4.0,{acc},{speed},{bearing},-18.2,"
                   f"{lon[i]:.7f},42.3505000,10.9")
    return {
        # iOS reports acceleration and gravity with the opposite sign of Android
        "Accelerometer.csv": axis_csv(start_ns, t, -user),
        "Gravity.csv": axis_csv(start_ns, t + 5_000_000, -g_android),   # 5 ms later: exercises interpolation
        "Gyroscope.csv": axis_csv(start_ns, t, gyro),
        "Location.csv": "\n".join(loc) + "\n",
        "Metadata.csv": METADATA + "\n3,iPhone 13,1714572000000,2024-05-01_10-00-00,America/New_York,ios,1.36.1,"
        "6F1C2A80-3D6B-4E5F-9A1B-2C3D4E5F6A7B,Accelerometer|Gravity|Gyroscope|Location|Annotation,"
        "20|20|20|1000|,false,17.4.1\n",
        "Annotation.csv": "",                            # an empty file: no marks
    }


def ios_uncalibrated() -> dict[str, str]:
    """iOS with only AccelerometerUncalibrated: gravity included, unit g, iOS sign."""
    rng = np.random.default_rng(21)
    start_ns = 1_714_575_600_000_000_000
    n = 110
    t = times_ns(start_ns, start_ns + 1_000_000, n, 20_000_000, rng)
    g_android = np.array([0.1, 0.3, np.sqrt(1.0 - 0.1**2 - 0.3**2)])          # [g]
    raw = -(g_android + rng.normal(0.0, 0.004, (n, 3)))
    return {
        "AccelerometerUncalibrated.csv": axis_csv(start_ns, t, raw),
        "Metadata.csv": METADATA + "\n3,iPhone SE,1714575600000,2024-05-01_11-00-00,America/New_York,ios,1.36.1,"
        "0D2E4C6A-1111-4222-8333-944455556666,AccelerometerUncalibrated,20,false,17.4.1\n",
    }


def legacy() -> dict[str, str]:
    """An older Android export: no Metadata.csv, the older Location.csv column set."""
    rng = np.random.default_rng(3)
    start_ns = 1_646_934_312_000_000_000                 # 2022-03-10 17:45:12 UTC
    n = 120
    t = times_ns(start_ns, start_ns + 5_000_000, n, 20_000_000, rng)
    total = np.array([-0.4, 9.7, 1.3]) + rng.normal(0.0, 0.05, (n, 3))       # phone upright in a cradle
    loc = [LOCATION_OLD,
           f"{start_ns + 500_000_000},0.5,7.5,11.2,180.0,20.1,-71.0801000,42.3401000",
           f"{start_ns + 1_500_000_000},1.5,8.0,-1.0,-1.0,20.3,-71.0801000,42.3400000"]
    return {"TotalAcceleration.csv": axis_csv(start_ns, t, total), "Location.csv": "\n".join(loc) + "\n"}


def main() -> None:
    files = android()
    write(HERE / "android" / "2024-05-01_09-00-00", files)
    with zipfile.ZipFile(HERE / "android.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 1, 9, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
    write(HERE / "ios", ios())
    write(HERE / "ios_uncalibrated", ios_uncalibrated())
    write(HERE / "legacy", legacy())


if __name__ == "__main__":
    main()
