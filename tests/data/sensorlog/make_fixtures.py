"""Regenerate the SensorLog fixtures in this folder (deterministic; see README.md for the layouts and the truth).

Run from the repository root: ``.venv/bin/python tests/data/sensorlog/make_fixtures.py``.
The committed CSV files are the fixtures; this script only documents how they were made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EDT = timedelta(hours=-4)

# Truth built into the files: epoch time = time since reboot + REBOOT_EPOCH_S.
COMMA_REBOOT_EPOCH_S = 1_714_482_867.876544
SEMICOLON_REBOOT_EPOCH_S = 1_714_486_467.5
COMMA_FIX_TIMES_S = (1_714_569_300.05, 1_714_569_301.05, 1_714_569_302.05)
G_ANDROID = np.array([0.05, -0.35, 0.935])          # gravity in bump's (Android) frame [g]

COMMA_HEADER = [
    "loggingTime(txt)", "loggingSample(N)", "identifierForVendor(txt)", "deviceID(txt)",
    "locationTimestamp_since1970(s)", "locationLatitude(WGS84)", "locationLongitude(WGS84)", "locationAltitude(m)",
    "locationSpeed(m/s)", "locationSpeedAccuracy(m/s)", "locationCourse(°)", "locationCourseAccuracy(°)",
    "locationVerticalAccuracy(m)", "locationHorizontalAccuracy(m)", "locationFloor(Z)",
    "accelerometerTimestamp_sinceReboot(s)", "accelerometerAccelerationX(G)", "accelerometerAccelerationY(G)",
    "accelerometerAccelerationZ(G)", "gyroTimestamp_sinceReboot(s)", "gyroRotationX(rad/s)",
    "gyroRotationY(rad/s)", "gyroRotationZ(rad/s)",
]
SEMICOLON_HEADER = [
    "loggingTime(txt)", "loggingSample(N)", "deviceID(txt)", "motionTimestamp_sinceReboot(s)",
    "motionUserAccelerationX(G)", "motionUserAccelerationY(G)", "motionUserAccelerationZ(G)",
    "motionRotationRateX(rad/s)", "motionRotationRateY(rad/s)", "motionRotationRateZ(rad/s)",
    "motionGravityX(G)", "motionGravityY(G)", "motionGravityZ(G)",
]


def local_text(epoch_s: float, *, zone: bool) -> str:
    """SensorLog's loggingTime: local wall clock to the millisecond, optionally with the UTC offset."""
    ms = round(epoch_s * 1000)
    t = datetime.fromtimestamp(ms // 1000, UTC) + timedelta(milliseconds=ms % 1000) + EDT
    text = t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"
    return text + " -0400" if zone else text


def comma() -> str:
    """50 Hz rows, accelerometer + gyro + GPS (1 Hz, values repeated between fixes)."""
    rng = np.random.default_rng(11)
    n = 115
    row_s = 1_714_569_300.0 + 0.02 * np.arange(n) + rng.uniform(0.0, 0.001, n)     # when each row is written
    accel_t = row_s - COMMA_REBOOT_EPOCH_S - rng.uniform(0.001, 0.004, n)        # sample taken 1-4 ms earlier
    gyro_t = row_s - COMMA_REBOOT_EPOCH_S - rng.uniform(0.0005, 0.003, n)
    accel = -G_ANDROID + rng.normal(0.0, 0.004, (n, 3))                        # Core Motion sign: -gravity
    accel[60:63, 2] += [-0.3, 0.25, -0.1]                                          # a small impact
    accel_t[40], accel[40] = accel_t[39], accel[39]      # accelerometer late: row 40 repeats row 39's sample
    gyro = np.array([0.021, -0.012, 0.004]) + rng.normal(0.0, 0.002, (n, 3))
    lines = [",".join(COMMA_HEADER)]
    fix = -1
    for k in range(n):
        while fix + 1 < len(COMMA_FIX_TIMES_S) and row_s[k] >= COMMA_FIX_TIMES_S[fix + 1] + 0.15:
            fix += 1                                      # a fix shows up in the rows 150 ms after it was taken
        if fix < 0:
            loc = [""] * 10 + ["-9999"]
        else:
            speed, course = ("-1.00", "-1.0") if fix == 1 else (f"{10.0 + 0.2 * fix:.2f}", f"{2.0 + fix:.1f}")
            loc = [f"{COMMA_FIX_TIMES_S[fix]:.3f}", f"{42.3601 + 8.98e-5 * fix:.7f}", "-71.0589000", "12.4",
                   speed, "0.5", course, "8.0", "3.0", f"{5.0 - 0.2 * fix:.1f}", "-9999"]
        gyro_x = "-9999" if k == 77 else f"{gyro[k, 0]:.6f}"                        # SensorLog's n/a
        lines.append(",".join([
            local_text(row_s[k], zone=False), str(k), "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9", "bump-test-phone",
            *loc, f"{accel_t[k]:.6f}", *(f"{v:.6f}" for v in accel[k]), f"{gyro_t[k]:.6f}", gyro_x,
            *(f"{v:.6f}" for v in gyro[k, 1:]),
        ]))
    return "\n".join(lines) + "\n"


def semicolon() -> str:
    """60 Hz rows, device motion only at 30 Hz (each sample on two rows), loggingTime with its UTC offset."""
    rng = np.random.default_rng(12)
    n = 126
    sample_epoch = 1_714_572_900.0 + np.arange(n // 2) / 30.0 + rng.uniform(0.0, 0.001, n // 2)
    motion_t = np.repeat(sample_epoch - SEMICOLON_REBOOT_EPOCH_S, 2)
    row_s = np.repeat(sample_epoch, 2) + np.tile([0.002, 0.002 + 1 / 60], n // 2) + rng.uniform(0, 0.001, n)
    user = np.repeat(rng.normal(0.0, 0.01, (n // 2, 3)), 2, axis=0)
    rot = np.repeat(np.array([0.002, 0.031, -0.017]) + rng.normal(0.0, 0.002, (n // 2, 3)), 2, axis=0)
    lines = [";".join(SEMICOLON_HEADER)]
    for k in range(n):
        lines.append(";".join([
            local_text(row_s[k], zone=True), str(k), "bump-test-phone",
            f"{motion_t[k]:.6f}", *(f"{v:.6f}" for v in -user[k]), *(f"{v:.6f}" for v in rot[k]),
            *(f"{v:.6f}" for v in -G_ANDROID),
        ]))
    return "\n".join(lines) + "\n"


def main() -> None:
    (HERE / "sensorlog_comma.csv").write_text(comma(), encoding="utf-8")
    (HERE / "sensorlog_semicolon.csv").write_text(semicolon(), encoding="utf-8")


if __name__ == "__main__":
    main()
