"""Write the Physics Toolbox Sensor Suite fixtures of this folder (deterministic; see README.md for the truth).

    .venv/bin/python tests/data/physics_toolbox/make_fixtures.py

The committed CSV files are the fixtures; tests never run this. Every recording is a phone in a car, in bump's
(Android) frame with gravity on distinct per-axis offsets (gFx ~ +0.032, gFy ~ -0.121, gFz ~ +0.991 g) so a swapped
or negated axis shows. Consecutive samples are never identical (a repeat would read as the app's hold).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
G_ANDROID = np.array([0.0321, -0.1207, 0.9913])       # gravity in bump's frame [g]
GYRO_RAD_S = np.array([0.0121, -0.0338, 0.0507])
MINUS = "\u2212"                                       # what some app builds write for "-"

# Truth: starts [s since the epoch] (local times of the file names / date-times read as UTC).
GFORCE_START_S = datetime(2024, 5, 1, 9, 15, 0, tzinfo=UTC).timestamp()          # 1714554900
CLOCK_START_S = datetime(2024, 5, 1, 23, 59, 55, tzinfo=UTC).timestamp()         # 1714607995
IOS_T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)                              # first row 09:30:00.101
MULTI_START_S = datetime(2024, 5, 1, 7, 20, 0, tzinfo=UTC).timestamp()           # "# start: ...09:20+02:00"
HOLD_START_S = datetime(2024, 5, 2, 10, 0, 0, tzinfo=UTC).timestamp()            # 1714644000


def distinct(values: np.ndarray, step: float) -> np.ndarray:
    """Rows of ``values`` (rounded to ``step``) with no row equal to the one before (x nudged by one step)."""
    out = np.round(values / step) * step
    for i in range(1, len(out)):                       # fixture generation, not product code
        if np.all(np.abs(out[i] - out[i - 1]) < step / 2):
            out[i, 0] += step
    return out


def g_force(rng: np.random.Generator, n: int, step: float = 1e-4) -> np.ndarray:
    """n g-force samples [g] of a phone in a car, a small impact on z at samples n//2 .. n//2 + 3."""
    g = G_ANDROID + rng.normal(0.0, 0.004, (n, 3))
    g[n // 2:n // 2 + 4, 2] += [0.6, -0.5, 0.3, -0.1]
    return distinct(g, step)


def fmt(x: float, digits: int, *, comma: bool = False, minus: str = "-") -> str:
    text = f"{x:.{digits}f}".replace("-", minus)
    return text.replace(".", ",") if comma else text


def gforce_elapsed() -> str:
    """g-Force Meter (Android): elapsed seconds, comma, ``time,gFx,gFy,gFz,TgF``, 50 Hz with jitter."""
    rng = np.random.default_rng(41)
    n = 300
    t = 0.012345 + np.cumsum(np.r_[0.0, 0.02 + rng.uniform(-0.002, 0.002, n - 1)])
    g = g_force(rng, n)
    lines = ["time,gFx,gFy,gFz,TgF"]
    for k in range(n):
        lines.append(",".join([f"{t[k]:.6f}", *(fmt(v, 4) for v in g[k]), fmt(float(np.linalg.norm(g[k])), 4)]))
    return "\n".join(lines) + "\n"


def clock_midnight() -> str:
    """g-Force Meter (Android) with wall-clock ``HH:MM:SS:mmm`` times from 23:59:55.012 across midnight."""
    rng = np.random.default_rng(42)
    n = 400
    ms = 86_395_012 + np.cumsum(np.r_[0, rng.integers(18, 23, n - 1)])         # ms since 2024-05-01 00:00
    g = g_force(rng, n)
    lines = ["time,gFx,gFy,gFz,TgF"]
    for k in range(n):
        day_ms = int(ms[k]) % 86_400_000
        clock = f"{day_ms // 3_600_000:02d}:{day_ms // 60_000 % 60:02d}:{day_ms // 1000 % 60:02d}:{day_ms % 1000:03d}"
        lines.append(",".join([clock, *(fmt(v, 4) for v in g[k]), fmt(float(np.linalg.norm(g[k])), 4)]))
    return "\n".join(lines) + "\n"


def ios_datetime() -> str:
    """iOS g-force: ``time,gFx,gFy,gFz,gFTotal``, local date-times with 4 fraction digits, Core Motion's sign,
    every 10th sample written three times (at t, t + 1 ms, t + 1 ms) as real iOS exports do."""
    rng = np.random.default_rng(43)
    n = 250
    ms = 101 + np.cumsum(np.r_[0, rng.integers(9, 12, n - 1)])                 # ms after 09:30:00
    g = -g_force(rng, n, step=1e-3)                                            # Core Motion: flat, up -> z = -1
    lines = ["time,gFx,gFy,gFz,gFTotal"]
    for k in range(n):
        cells = [*(fmt(v, 3) for v in g[k]), fmt(float(np.linalg.norm(g[k])), 3)]
        for extra_ms in ((0, 1, 1) if k % 10 == 0 else (0,)):
            when = IOS_T0 + timedelta(milliseconds=int(ms[k]) + extra_ms)
            lines.append(",".join([f"{when:%Y-%m-%d %H:%M:%S}.{when.microsecond // 1000:03d}0", *cells]))
    return "\n".join(lines) + "\n"


def multi_record_semicolon() -> str:
    """Multi Record: ``#`` lines, ``;`` + decimal comma, Unicode minus, units and stray spaces in the header;
    g-force + linear rows and gyroscope rows interleaved with the other sensors' cells empty; GPS 1 Hz, each fix
    repeated on every row until the next (empty before the first)."""
    rng = np.random.default_rng(44)
    n = 300
    e_acc = 0.010 + 0.02 * np.arange(n) + rng.uniform(-0.001, 0.001, n)
    g = g_force(rng, n)
    lin = distinct(rng.normal(0.0, 0.05, (n, 3)), 1e-4)
    w = distinct(GYRO_RAD_S + rng.normal(0.0, 0.002, (n, 3)), 1e-4)
    fix_e = 0.5 + np.arange(6)                                                  # fixes at 0.5 s, 1.5 s, ...
    lat = 45.76 + 12.0 / 111_320.0 * fix_e                                     # north at 12 m/s, Lyon
    header = ("time;gFx;gFy;gFz;TgF;ax (m/s^2);ay (m/s^2);az (m/s^2);aT (m/s^2);wx (rad/s);wy (rad/s);wz (rad/s);"
              " Latitude; Longitude;Speed (m/s);Altitude (m)")
    lines = ["# Physics Toolbox Sensor Suite - Multi Record", "# start: 2024-05-01T09:20:00+02:00",
             "# trip_id: lyon-commute-1", "# device: Pixel 7", "# Requested Sample Rate: 50 Hz", header]

    def num(x: float, digits: int = 4) -> str:
        return fmt(x, digits, comma=True, minus=MINUS)

    def gps_cells(e: float) -> list[str]:
        j = int(np.searchsorted(fix_e, e, side="right")) - 1
        if j < 0:
            return ["", "", "", ""]
        return [num(lat[j], 7), num(4.83, 7), num(12.0 + 0.1 * j, 2), num(170.0, 1)]

    for k in range(n):
        e_gyr = e_acc[k] + 0.007
        lines.append(";".join([num(e_acc[k], 6), *(num(v) for v in g[k]), num(float(np.linalg.norm(g[k]))),
                               *(num(v) for v in lin[k]), num(float(np.linalg.norm(lin[k]))), "", "", "",
                               *gps_cells(e_acc[k])]))
        lines.append(";".join([num(e_gyr, 6), "", "", "", "", "", "", "", "", *(num(v) for v in w[k]),
                               *gps_cells(e_gyr)]))
    return "\n".join(lines) + "\n"


def multi_record_hold() -> str:
    """Android Multi Record as older builds write it: a blank first line, a trailing comma on every line, every
    row repeating each sensor's last value (zero-order hold). Rows 0-2 are all zeros (no sensor has delivered);
    from row 3, row r updates g-force (r % 3 == 0), gyroscope (r % 3 == 1) or linear acceleration (r % 3 == 2,
    all zeros until row 12)."""
    rng = np.random.default_rng(45)
    n = 360
    e = 0.076920 + np.cumsum(np.r_[0.0, 0.00667 + rng.uniform(-0.0005, 0.0005, n - 1)])
    g = g_force(rng, n // 3)
    w = distinct(GYRO_RAD_S + rng.normal(0.0, 0.002, (n // 3, 3)), 1e-4)
    lin = distinct(rng.normal(0.0, 0.05, (n // 3, 3)), 1e-4)
    cur = {"g": np.zeros(3), "w": np.zeros(3), "a": np.zeros(3)}
    lines = ["", "time,gFx,gFy,gFz,ax,ay,az,wx,wy,wz,"]
    for r in range(n):
        if r >= 3:
            key = ("g", "w", "a")[r % 3]
            if key != "a" or r >= 12:
                cur[key] = {"g": g, "w": w, "a": lin}[key][r // 3]
        lines.append(",".join([f"{e[r]:.6f}", *(fmt(v, 4) for k in ("g", "a", "w") for v in cur[k])]) + ",")
    return "\n".join(lines) + "\n"


FIXTURES = {
    "2024-05-0109.15.00.csv": gforce_elapsed,
    "2024-05-01_23-59-55.csv": clock_midnight,
    "ios_sensor.csv": ios_datetime,
    "multi_record_semicolon.csv": multi_record_semicolon,
    "2024-05-02 10.00.00.csv": multi_record_hold,
}


def main() -> None:
    for name, make in FIXTURES.items():
        (HERE / name).write_text(make(), encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
