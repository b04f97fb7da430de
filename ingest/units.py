"""Unit constants: the one place that knows how vendor units relate to SI."""

from __future__ import annotations

import math

G_MPS2 = 9.80665            # standard gravity [m/s^2]
NS_PER_S = 1_000_000_000
KMH_PER_MPS = 3.6

ACCEL_UNITS: dict[str, float] = {"m/s2": 1.0, "g": G_MPS2}   # factor to m/s^2
GYRO_UNITS: dict[str, float] = {"rad/s": 1.0, "deg/s": math.pi / 180.0}   # factor to rad/s
SPEED_UNITS: dict[str, float] = {"m/s": 1.0, "km/h": 1.0 / KMH_PER_MPS, "mph": 0.44704,   # factor to m/s (exact
                                 "kn": 1852.0 / 3600.0}                                   # definitions)
