"""The in-memory canonical trace: float64 arrays in SI units with the unit in every name.

A :class:`Trace` is only ever built by :func:`ingest.validate.build_trace`, so every instance has
passed validation: timestamps strictly increasing, no NaN in accelerometer or position, rates and
durations within :class:`Limits`. Absent sensors are zero-length arrays, never ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT_ID = "bump.trace/1"


@dataclass(frozen=True)
class Limits:
    """What a trace may be. Rates in Hz, durations in s."""

    min_rate_hz: float = 4.0
    max_rate_hz: float = 1000.0
    min_duration_s: float = 1.0
    max_duration_s: float = 24 * 3600.0
    max_samples: int = 20_000_000
    max_nonfinite_fraction: float = 0.05   # drop up to this share of NaN/inf samples, reject beyond
    max_backward_jump_s: float = 1.0       # a clock that goes back further than this is rejected
    gap_factor: float = 5.0                # dt > gap_factor * median dt counts as a gap
    max_epoch_s: float = 4_102_444_800.0   # 2100-01-01: later times are ms, us or ns read as seconds
    max_accel_mps2: float = 1000.0         # |a| beyond ~100 g no phone measures: a corrupt sample, dropped
    max_gyro_rad_s: float = 100.0          # |omega| beyond this (phones saturate at ~35 rad/s): dropped


@dataclass(frozen=True)
class Quality:
    """Quality summary of a trace: what it holds and what validation changed."""

    n_samples: int
    duration_s: float
    accel_rate_hz: float          # median sample rate of the accelerometer
    jitter_s: float               # robust spread of the sample interval (1.4826 * MAD)
    n_gaps: int                   # intervals longer than Limits.gap_factor * median interval
    gap_total_s: float
    longest_gap_s: float
    gyro_rate_hz: float           # 0.0 without gyroscope
    gps_fixes: int
    dropped: dict[str, int] = field(default_factory=dict)   # reason -> samples dropped
    problems: tuple[str, ...] = ()                           # human-readable warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "duration_s": round(self.duration_s, 3),
            "accel_rate_hz": round(self.accel_rate_hz, 3),
            "jitter_s": round(self.jitter_s, 6),
            "n_gaps": self.n_gaps,
            "gap_total_s": round(self.gap_total_s, 3),
            "longest_gap_s": round(self.longest_gap_s, 3),
            "gyro_rate_hz": round(self.gyro_rate_hz, 3),
            "gps_fixes": self.gps_fixes,
            "dropped": dict(self.dropped),
            "problems": list(self.problems),
        }


@dataclass(frozen=True, eq=False)
class Trace:
    """One trip from one phone, validated, in canonical units.

    Arrays (read-only float64):
      t_s (n,)            accelerometer sample times, s since the UNIX epoch, strictly increasing
      accel_mps2 (n, 3)   raw accelerometer in the phone frame including gravity [m/s^2], Android sign
                          convention (flat, screen up: z = +9.81); readers flip iOS data into it
      gyro_t_s (m,)       gyroscope sample times [s]; m = 0 without gyroscope
      gyro_rad_s (m, 3)   angular rate in the phone frame [rad/s]
      gps_t_s (k,)        GPS fix times [s]; k = 0 without GPS
      lat_deg, lon_deg    WGS84 position [deg]
      speed_mps           ground speed [m/s], NaN where unknown
      heading_deg         course over ground, clockwise from north [deg], NaN where unknown
      accuracy_m          reported horizontal accuracy [m], NaN where unknown
    """

    trip_id: str
    device_id: str
    t_s: np.ndarray
    accel_mps2: np.ndarray
    gyro_t_s: np.ndarray
    gyro_rad_s: np.ndarray
    gps_t_s: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    speed_mps: np.ndarray
    heading_deg: np.ndarray
    accuracy_m: np.ndarray
    quality: Quality
    source_format: str = FORMAT_ID
    vehicle: dict[str, Any] = field(default_factory=dict)
    phone: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.t_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1] - self.t_s[0]) if self.t_s.size else 0.0

    @property
    def has_gps(self) -> bool:
        return self.gps_t_s.size > 0

    @property
    def has_gyro(self) -> bool:
        return self.gyro_t_s.size > 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the trace's arrays."""
        return sum(
            a.nbytes
            for a in (self.t_s, self.accel_mps2, self.gyro_t_s, self.gyro_rad_s, self.gps_t_s,
                      self.lat_deg, self.lon_deg, self.speed_mps, self.heading_deg, self.accuracy_m)
        )
