"""Parse throughput of every reader on a 1-hour, 100 Hz trip, in samples per second.

Writes the same synthetic trip (accelerometer + gyroscope at 100 Hz, 1 Hz GPS) in each supported format to a
temporary folder, then times `ingest.read` on it (best of 3). Target: the canonical JSON reader >= 5 million
samples/s. A "sample" is one accelerometer reading (t, x, y, z).

    .venv/bin/python bench/ingest_bench.py [--minutes 60] [--rate 100]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

import ingest
from bump.runtime import set_up_process
from ingest.formats.bump_json import dumps_document

T0_S = 1_780_000_000.0


def synth(minutes: float, rate_hz: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * rate_hz)
    t = T0_S + np.arange(n) / rate_hz + rng.uniform(0, 0.1 / rate_hz, n)
    acc = np.round(np.column_stack([rng.normal(0, 0.5, n), rng.normal(0, 0.5, n), 9.81 + rng.normal(0, 0.8, n)]), 4)
    gyro = np.round(rng.normal(0, 0.05, (n, 3)), 5)
    k = int(minutes * 60)
    gt = T0_S + np.arange(k) + 0.5
    lat = np.round(42.36 + np.cumsum(rng.normal(0, 1e-5, k)), 7)
    lon = np.round(-71.06 + np.cumsum(rng.normal(0, 1e-5, k)), 7)
    speed = np.round(np.abs(rng.normal(11, 2, k)), 2)
    return {"t": t, "acc": acc, "gyro": gyro, "gt": gt, "lat": lat, "lon": lon, "speed": speed,
            "heading": np.round(rng.uniform(0, 360, k), 1), "accuracy": np.round(rng.uniform(3, 8, k), 1)}


def write_bump(d: dict, folder: Path) -> Path:
    doc = {"format": "bump.trace/1", "trip_id": "bench", "device_id": "bench",
           "accel": {"t": d["t"], "x": d["acc"][:, 0].copy(), "y": d["acc"][:, 1].copy(), "z": d["acc"][:, 2].copy()},
           "gps": {"t": d["gt"], "lat": d["lat"], "lon": d["lon"], "speed": d["speed"], "heading": d["heading"],
                   "accuracy": d["accuracy"]}}
    if d.get("gyro") is not None:
        doc["gyro"] = {"t": d["t"], "x": d["gyro"][:, 0].copy(), "y": d["gyro"][:, 1].copy(),
                       "z": d["gyro"][:, 2].copy()}
    path = folder / "trip.json"
    path.write_bytes(dumps_document(doc))
    return path


def _csv(df: pd.DataFrame, **kw) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, **kw)
    return buf.getvalue().encode()


def write_sensor_logger(d: dict, folder: Path) -> Path:
    ns = (d["t"] * 1e9).astype(np.int64)
    rel = d["t"] - d["t"][0]
    files = {
        "TotalAcceleration.csv": pd.DataFrame({"time": ns, "seconds_elapsed": rel, "z": d["acc"][:, 2],
                                               "y": d["acc"][:, 1], "x": d["acc"][:, 0]}),
        "Gyroscope.csv": pd.DataFrame({"time": ns, "seconds_elapsed": rel, "z": d["gyro"][:, 2],
                                       "y": d["gyro"][:, 1], "x": d["gyro"][:, 0]}),
        "Location.csv": pd.DataFrame({"time": (d["gt"] * 1e9).astype(np.int64), "seconds_elapsed": d["gt"] - d["t"][0],
                                      "bearingAccuracy": 5.0, "speedAccuracy": 0.3, "verticalAccuracy": 3.0,
                                      "horizontalAccuracy": d["accuracy"], "speed": d["speed"],
                                      "bearing": d["heading"], "altitude": 20.0, "longitude": d["lon"],
                                      "latitude": d["lat"]}),
    }
    path = folder / "sensor_logger.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, df in files.items():
            zf.writestr(name, _csv(df))
    return path


def write_phyphox(d: dict, folder: Path) -> Path:
    rel = d["t"] - d["t"][0]
    acc = pd.DataFrame({"Time (s)": rel, "Acceleration x (m/s^2)": d["acc"][:, 0],
                        "Acceleration y (m/s^2)": d["acc"][:, 1], "Acceleration z (m/s^2)": d["acc"][:, 2]})
    gyr = pd.DataFrame({"Time (s)": rel, "Gyroscope x (rad/s)": d["gyro"][:, 0], "Gyroscope y (rad/s)": d["gyro"][:, 1],
                        "Gyroscope z (rad/s)": d["gyro"][:, 2]})
    loc = pd.DataFrame({"Time (s)": d["gt"] - d["t"][0], "Latitude (°)": d["lat"], "Longitude (°)": d["lon"],
                        "Height (m)": 20.0, "Velocity (m/s)": d["speed"], "Direction (°)": d["heading"],
                        "Horizontal Accuracy (m)": d["accuracy"], "Vertical Accuracy (m)": 3.0})
    meta = pd.DataFrame({"event": ["START"], "experiment time": [0.0], "system time": [d["t"][0]],
                         "system time text": ["2026-05-28 20:26:40.000 UTC+00:00"]})
    path = folder / "phyphox.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Accelerometer.csv", _csv(acc, float_format="%.9E"))
        zf.writestr("Gyroscope.csv", _csv(gyr, float_format="%.9E"))
        zf.writestr("Location.csv", _csv(loc, float_format="%.9E"))
        zf.writestr("meta/time.csv", _csv(meta))
    return path


def write_sensorlog(d: dict, folder: Path) -> Path:
    boot = d["t"][0] - 5000.0
    fix = np.clip(np.searchsorted(d["gt"], d["t"], side="right") - 1, 0, d["gt"].size - 1)
    df = pd.DataFrame({
        "loggingTime(txt)": pd.to_datetime(d["t"], unit="s").strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3] + " +0000",
        "locationTimestamp_since1970(s)": d["gt"][fix], "locationLatitude(WGS84)": d["lat"][fix],
        "locationLongitude(WGS84)": d["lon"][fix], "locationSpeed(m/s)": d["speed"][fix],
        "locationCourse(°)": d["heading"][fix], "locationHorizontalAccuracy(m)": d["accuracy"][fix],
        "accelerometerTimestamp_sinceReboot(s)": d["t"] - boot,
        "accelerometerAccelerationX(G)": d["acc"][:, 0] / 9.80665,
        "accelerometerAccelerationY(G)": d["acc"][:, 1] / 9.80665,
        "accelerometerAccelerationZ(G)": d["acc"][:, 2] / 9.80665,
        "gyroTimestamp_sinceReboot(s)": d["t"] - boot,
        "gyroRotationX(rad/s)": d["gyro"][:, 0], "gyroRotationY(rad/s)": d["gyro"][:, 1],
        "gyroRotationZ(rad/s)": d["gyro"][:, 2],
    })
    path = folder / "sensorlog.csv"
    path.write_bytes(_csv(df, float_format="%.6f"))
    return path


def write_plain(d: dict, folder: Path) -> Path:
    fix_row = np.searchsorted(d["t"], d["gt"])
    n = d["t"].size
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    speed = np.full(n, np.nan)
    ok = fix_row < n
    lat[fix_row[ok]], lon[fix_row[ok]], speed[fix_row[ok]] = d["lat"][ok], d["lon"][ok], d["speed"][ok]
    df = pd.DataFrame({"t": d["t"], "ax": d["acc"][:, 0], "ay": d["acc"][:, 1], "az": d["acc"][:, 2],
                       "gx": d["gyro"][:, 0], "gy": d["gyro"][:, 1], "gz": d["gyro"][:, 2],
                       "lat": lat, "lon": lon, "speed": speed})
    path = folder / "plain.csv"
    path.write_bytes(_csv(df, na_rep=""))
    return path


WRITERS = {"bump": write_bump, "sensor_logger": write_sensor_logger, "phyphox": write_phyphox,
           "sensorlog": write_sensorlog, "csv": write_plain}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    set_up_process()            # one core, as the targets say; freed memory kept (bump.runtime)
    d = synth(args.minutes, args.rate)
    n = d["t"].size
    print(f"trip: {args.minutes:g} min at {args.rate:g} Hz = {n} accelerometer samples (+ gyro, 1 Hz GPS)")
    print(f"{'format':<14} {'file MB':>8} {'best s':>8} {'samples/s':>12}  detected as")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for fmt, writer in WRITERS.items():
            path = writer(d, folder)
            best = np.inf
            trace = None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                trace = ingest.read(path)
                best = min(best, time.perf_counter() - t0)
            assert trace is not None and trace.n_samples == n, (fmt, trace.n_samples if trace else None)
            print(f"{fmt:<14} {path.stat().st_size / 1e6:8.1f} {best:8.3f} {n / best:12,.0f}  {trace.source_format}")
        # the canonical reader once more on a trip without gyroscope (accelerometer + GPS only)
        path = write_bump({**d, "gyro": None}, folder)
        best = min(_timed(path) for _ in range(args.repeat))
        print(f"{'bump, no gyro':<14} {path.stat().st_size / 1e6:8.1f} {best:8.3f} {n / best:12,.0f}  bump")


def _timed(path: Path) -> float:
    t0 = time.perf_counter()
    ingest.read(path)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
