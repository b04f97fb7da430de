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
    """What a trace may be: the bounds validation (:func:`ingest.read`) enforces. Rates in Hz, durations in s.

    Every field is checked when a Limits is built: TypeError for a non-number, ValueError naming the field, the
    value and its accepted range otherwise (e.g. ``Limits(min_rate_hz=-1)``). Upper bounds may be ``math.inf``.
    """

    min_rate_hz: float = 4.0               # lowest median accelerometer rate accepted [Hz], > 0
    max_rate_hz: float = 1000.0            # highest [Hz], > min_rate_hz
    min_duration_s: float = 1.0            # shortest trace accepted [s], >= 0
    max_duration_s: float = 24 * 3600.0    # longest [s], > min_duration_s
    max_samples: int = 20_000_000          # most accelerometer samples in one trace, a whole number >= 1
    max_nonfinite_fraction: float = 0.05   # drop up to this share of NaN/inf samples, reject beyond; 0 <= x < 1
    max_backward_jump_s: float = 1.0       # a clock that goes back further than this is rejected [s], >= 0
    gap_factor: float = 5.0                # dt > gap_factor * median dt counts as a gap; > 1
    max_epoch_s: float = 4_102_444_800.0   # 2100-01-01: later times are ms, us or ns read as seconds [s], > 0
    max_accel_mps2: float = 1000.0         # |a| beyond ~100 g no phone measures: a corrupt sample, dropped; > 0
    max_gyro_rad_s: float = 100.0          # |omega| beyond this (phones saturate at ~35 rad/s): dropped; > 0

    def __post_init__(self) -> None:
        # field, lower bound (a number or another field), bound included, upper bound (excluded) or None, may be inf
        ranges = (("min_rate_hz", 0.0, False, None, False), ("max_rate_hz", "min_rate_hz", False, None, True),
                  ("min_duration_s", 0.0, True, None, False),
                  ("max_duration_s", "min_duration_s", False, None, True), ("max_samples", 1, True, None, False),
                  ("max_nonfinite_fraction", 0.0, True, 1.0, False), ("max_backward_jump_s", 0.0, True, None, True),
                  ("gap_factor", 1.0, False, None, False), ("max_epoch_s", 0.0, False, None, True),
                  ("max_accel_mps2", 0.0, False, None, True), ("max_gyro_rad_s", 0.0, False, None, True))
        for name, low, low_included, high, infinite_ok in ranges:    # loop over the 11 fields
            value, default = getattr(self, name), self.__dataclass_fields__[name].default
            whole = name == "max_samples"
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise TypeError(f"Limits.{name} must be {'a whole number' if whole else 'a number'}, not "
                                f"{type(value).__name__} ({value!r}); the default is {default!r}")
            low_value = getattr(self, low) if isinstance(low, str) else low
            ok = (value >= low_value if low_included else value > low_value) and (high is None or value < high)
            ok = ok and (infinite_ok or bool(np.isfinite(float(value)))) and (not whole or float(value).is_integer())
            if not ok:
                low_text = f"{low} ({low_value:g})" if isinstance(low, str) else f"{low:g}"
                bounds = f"{'>=' if low_included else '>'} {low_text}" + (f" and < {high:g}" if high else "")
                what = "a whole number" if whole else "a finite number" if not infinite_ok else "a number (or inf)"
                raise ValueError(f"Limits.{name} must be {what} {bounds}, got {value!r}; the default is {default!r}")


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
        """JSON-ready summary (rounded)."""
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
        """Number of accelerometer samples."""
        return int(self.t_s.size)

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last accelerometer sample [s]."""
        return float(self.t_s[-1] - self.t_s[0]) if self.t_s.size else 0.0

    @property
    def has_gps(self) -> bool:
        """Whether the trace has GPS fixes."""
        return self.gps_t_s.size > 0

    @property
    def has_gyro(self) -> bool:
        """Whether the trace has gyroscope samples."""
        return self.gyro_t_s.size > 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the trace's arrays."""
        return sum(
            a.nbytes
            for a in (self.t_s, self.accel_mps2, self.gyro_t_s, self.gyro_rad_s, self.gps_t_s,
                      self.lat_deg, self.lon_deg, self.speed_mps, self.heading_deg, self.accuracy_m)
        )

    def __repr__(self) -> str:
        """One line (no arrays): ids, accelerometer samples, duration [s], median rate [Hz], gyroscope or not,
        GPS fixes, source format."""
        t_s = np.asarray(self.t_s, dtype=float)
        rate_hz = float(getattr(self.quality, "accel_rate_hz", np.nan))
        return (f"Trace(trip_id={self.trip_id!r}, device_id={self.device_id!r}, n_samples={t_s.size}, "
                f"duration_s={float(t_s[-1] - t_s[0]) if t_s.size else 0.0:.1f}, accel_rate_hz={rate_hz:.1f}, "
                f"gyro={np.size(self.gyro_t_s) > 0}, gps_fixes={np.size(self.gps_t_s)}, "
                f"source_format={self.source_format!r})")
