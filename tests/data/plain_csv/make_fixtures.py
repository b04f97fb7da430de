"""Write the plain-CSV fixtures of this folder (run once; the files are committed, tests never run this).

    .venv/bin/python tests/data/plain_csv/make_fixtures.py

One 3 s recording at 50 Hz (t from 1710000000.000 s, 2024-03-09 16:00 UTC) of a phone in a car driving east
through Boston at ~10 m/s, written in the layouts of ``ingest/formats/plain_csv.py``'s docstring. Distinct
offsets per axis (ax ~ +0.31, ay ~ -1.18, az ~ +9.72 m/s^2; gx ~ +0.012, gy ~ -0.034, gz ~ +0.051 rad/s) so a
swapped axis shows. GPS fixes at rows 10, 60 and 110. Seeded, so re-running gives the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
T0_S = 1710000000.0
N = 150
FIX_ROWS = (10, 60, 110)
G_MPS2 = 9.80665
IDS = ["# trip_id: boston-demo-1", "# device_id: pixel7-demo"]


def columns() -> dict[str, list[str]]:
    """Column name -> cell texts (empty where no value)."""
    rng = np.random.default_rng(31)
    t = T0_S + 0.02 * np.arange(N)
    acc = [0.31 + rng.normal(0, 0.05, N), -1.18 + rng.normal(0, 0.05, N), 9.72 + rng.normal(0, 0.08, N)]
    gyr = [0.012 + rng.normal(0, 0.002, N), -0.034 + rng.normal(0, 0.002, N), 0.051 + rng.normal(0, 0.002, N)]
    cols = {"t": [f"{v:.3f}" for v in t]}
    cols |= {k: [f"{v:.4f}" for v in a] for k, a in zip(("ax", "ay", "az"), acc, strict=True)}
    cols |= {k: [f"{v:.5f}" for v in a] for k, a in zip(("gx", "gy", "gz"), gyr, strict=True)}
    deg_per_m_lon = 1.0 / (111_320.0 * math.cos(math.radians(42.3601)))
    gps = {k: [""] * N for k in ("lat", "lon", "speed", "heading", "accuracy")}
    for k, row in enumerate(FIX_ROWS):
        gps["lat"][row] = f"{42.3601 + 2e-7 * k:.7f}"
        gps["lon"][row] = f"{-71.0589 + 10.0 * k * deg_per_m_lon:.7f}"
        gps["speed"][row] = f"{10.0 + 0.1 * k:.1f}"
        gps["heading"][row] = f"{89.5 + 0.3 * k:.1f}"
        gps["accuracy"][row] = f"{4.5 - 0.5 * k:.1f}"
    return cols | gps


def write(name: str, order: list[str], cols: dict[str, list[str]], *, sep: str = ",", decimal: str = ".",
          comments: list[str] = IDS) -> None:
    lines = [*comments, sep.join(order)]
    lines += [sep.join(cols[c][i].replace(".", decimal) for c in order) for i in range(N)]
    (HERE / name).write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def main() -> None:
    cols = columns()
    full = ["t", "ax", "ay", "az", "gx", "gy", "gz", "lat", "lon", "speed", "heading", "accuracy"]
    write("basic.csv", full, cols)
    write("semicolon_decimal_comma.csv", full, cols, sep=";", decimal=",")
    write("tab_reordered.csv", ["lat", "lon", "t", "az", "ay", "ax", "gz", "gy", "gx", "accuracy", "heading",
                                "speed"], cols, sep="\t")
    repeated = dict(cols)
    for k in ("lat", "lon", "speed", "heading", "accuracy"):   # SensorLog style: the last fix on every row
        last = ""
        filled = []
        for v in cols[k]:
            last = v or last
            filled.append(last)
        repeated[k] = filled
    write("repeated_gps.csv", ["t", "ax", "ay", "az", "lat", "lon", "speed", "heading", "accuracy"], repeated,
          comments=[])
    in_g = {k: [f"{float(v) / G_MPS2:.6f}" for v in cols[k]] for k in ("ax", "ay", "az")}
    write("unit_g.csv", ["t", "ax", "ay", "az"], cols | in_g, comments=["# unit: g", *IDS])


if __name__ == "__main__":
    main()
