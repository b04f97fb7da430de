"""All detector parameters in one frozen dataclass, in physical units, with a version string.

The version changes whenever the detector's behaviour changes; it is stored with every result together with
:meth:`DetectorParams.to_dict`, so any stored impact can be traced to the code and settings that produced it.

Every value is checked when a parameter set is built (constructor and ``from_dict`` alike): its type from the
field's default and its range from :attr:`DetectorParams.RANGES`; a bad one raises :class:`ParamsError` (a
ValueError and a BumpError) naming the field, the value and the accepted range. Ints become floats where the
default is a float, so ``3`` and ``3.0`` give one digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar, Self

from ingest.errors import BumpError

DETECTOR_VERSION = "bump-detect/0.24"     # 0.24: below 50 Hz the depth is the body's velocity swing above the
#                                           swing the road alone gives there (quiet windows), in quadrature: false
#                                           potholes on clean road per km, city seeds 1-4 decimated to 16.7 Hz,
#                                           0.070/0.071/0.113/0.359 -> 0.035/0.021/0.042/0.176; >= 50 Hz unchanged.
#                                           0.23: a second trigger, the axle-paired three-axis score: a hit
#                                           seen on all three car axes and again one wheelbase later (per-trip
#                                           recall city seeds 1-4 0.935/0.941/0.848/0.743 -> 0.968/0.950/0.922/
#                                           0.789, hard 0.787/0.586/0.753/0.635 -> 0.843/0.682/0.815/0.736).
#                                           0.22: a body lift (bump) needs both the displacement and the
#                                           velocity swing, not either: deep potholes and joints crossed at speed
#                                           were speed bumps by a displacement alone (detector 0.20, city and hard
#                                           seeds 1-4: of the hits labelled speed_bump at potholes, castings, joints
#                                           and rail crossings 113 of 134 had no 0.4 m/s swing, median displacement
#                                           3.3-3.8 cm; at speed bumps 13 of 1,015).
#                                           0.21: with a gyroscope, a clear roll (roll/pitch at least
#                                           one_wheel_roll_ratio) is one wheel even when the lateral acceleration
#                                           is not in step with the hit (it was a joint: of the gyro phones'
#                                           candidates at simulated potholes and covers, city seeds 1-4, 47 of 509
#                                           were called both wheels, 15 now).
#                                           0.20: a recording paused and resumed may restart the sample clock at
#                                           another phase: each run between gaps has its own, shifted onto the grid
#                                           (less than half a step), and the rate is fitted with one intercept per
#                                           run (a restart had tilted it: up to 0.4 of a step off after the pause).
#                                           0.19: the grid is locked to the phone's sample clock (rate and phase,
#                                           detect.clock.sample_clock), not drifting through the samples at the
#                                           median interval: linear interpolation half-way between samples had
#                                           low-passed the impact band (a 50 Hz phone read ~15 % shallower than a
#                                           100 Hz one); a 50 Hz phone whose clock runs a few ppm slow keeps the
#                                           ringing depth estimate.
#                                           0.18: every impact also carries its spot_kind (its kind without the
#                                           rough-stretch rule); kinds, severities, confidences and depth classes
#                                           are unchanged.
#                                           0.17: the equivalent depth (severity, and the cover/pothole depth rule)
#                                           is the sharp-edged step that rings the phone's impact band as much
#                                           (characteristic function above its background), not the body's
#                                           velocity swing, at rates that resolve the band (>= 50 Hz).
#                                           0.16: the characteristic function runs on the impact band whitened by
#                                           the trip's own prediction-error filter (per mount segment), and a car
#                                           of unknown speed is taken standing on the band's plain vibration level.
#                                           0.15: a body lift that rolls the car as one wheel is a deep hole
#                                           on the gyroscope's roll alone, or without a gyroscope on the lateral
#                                           coherence alone (0.14 needed both: a phone without a gyroscope called
#                                           every deep pothole a speed bump).
#                                           0.14: the phone's handling is located to a quarter second (blocks
#                                           in neither mount, detect.orientation.handling_spans): re-mounts and
#                                           excursions from a mount guard 1.5 s around that span (0.13: 3 s around
#                                           a re-mount's 1-s block boundary, often seconds from the hand); the
#                                           trigger floor is 0.3 m/s^2 RMS (0.4 missed soft-coupled phones' hits).
#                                           0.13: samples on the rate's grid within 5 % of a step are used as they
#                                           are whichever way the last one jitters (0.12 interpolated about half
#                                           of such traces, a slight low-pass); a re-mount must tilt the phone's
#                                           mean acceleration beyond what the car's GPS-measured acceleration
#                                           explains (braking after accelerating at highway speed split trips
#                                           into "re-mounts" whose hits were rejected as handling); a weak event's
#                                           one-wheel coherence must exceed what the trip's quiet driving reaches.
#                                           0.12: an event sharper than any ringing inside the impact band (a
#                                           one-sample sensor glitch; at >= ~90 Hz) is rejected as "glitch".
#                                           0.11: impacts and roughness windows are placed with the trip's own GPS
#                                           latency (forward acceleration against Doppler speed changes,
#                                           detect.latency) when the trip tells it; 0.10 used gps_latency_s alone.
#                                           0.10: an impact or window more than 1 s outside the GPS fixes has no
#                                           position (0.8 and 0.9 held the end fix's for a few seconds).
#                                           0.9: gravity and the forward axis from medians along the data's
#                                           principal axes, so the car frame turns exactly with the phone (a
#                                           component-wise median moved it with the phone's axes).
#                                           0.8: the rough test's typical level is the trip's while moving (not
#                                           its parked minutes); where the speed is unknown (no GPS, before the
#                                           first fix) a quiet background means standing (door slams), and impacts
#                                           before the first fix are kept unplaced instead of refused as no_fix.
#                                           0.7: below 24 Hz the impact band's lower edge follows the rate
#                                            0.6: a lift is a deep pothole only when its roll is clearly one wheel's
#                                           (one_wheel_roll_ratio); roughness and other impacts as 0.5.
#                                           0.5: roughness on ~25 box means a second from the design rate (IRI
#                                           moves a few % for phones at exactly 100 Hz or at 200 Hz); impacts as 0.4.
#                                           0.4: with a gyroscope, roughness ignores phone position and coherence,
#                                           and a lift that rolls the car is a deep pothole, not a bump


class ParamsError(BumpError, ValueError):
    """A parameter set has an unknown name or a value of the wrong type or outside its accepted range."""

    code = "invalid_params"


# Accepted range of a numeric parameter: (low, high, low_inclusive, high_inclusive); None = no bound. Every value
# must be finite besides.
Range = tuple[float | None, float | None, bool, bool]
POSITIVE: Range = (0.0, None, False, False)   # > 0
NON_NEGATIVE: Range = (0.0, None, True, False)   # >= 0
FINITE: Range = (None, None, True, True)      # any finite number
UNIT: Range = (0.0, 1.0, True, True)          # 0 <= x <= 1
BAND = "band"                                 # (low, high) [Hz] with 0 < low < high, finite


def _describe(rng: Range) -> str:
    """'a finite number > 0 and <= 1' for a range."""
    low, high, low_inclusive, high_inclusive = rng
    bounds = [] if low is None else [f"{'>=' if low_inclusive else '>'} {low:g}"]
    bounds += [] if high is None else [f"{'<=' if high_inclusive else '<'} {high:g}"]
    return " ".join(["a finite number", " and ".join(bounds)]).rstrip()


def _real(value: Any) -> bool:
    return type(value) is float or (isinstance(value, Real) and not isinstance(value, bool))


def _check_number(name: str, value: Any, rng: Range) -> float:
    """``value`` as a float, or :class:`ParamsError` naming the field, the value and the accepted range."""
    low, high, low_inclusive, high_inclusive = rng
    ok = _real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        raise ParamsError(f"must be {_describe(rng)}, got {value!r}", field=name)
    return float(value)


def _check_band(name: str, value: Any) -> tuple[float, float]:
    """A frequency band: two increasing positive finite numbers [Hz] (an upper edge above the Nyquist frequency
    is allowed: the filters clip it to the sample rate)."""
    if (isinstance(value, tuple | list) and len(value) == 2 and all(_real(v) and math.isfinite(v) for v in value)
            and 0.0 < value[0] < value[1]):
        return float(value[0]), float(value[1])
    raise ParamsError(f"must be a band [low, high] in Hz with 0 < low < high (finite numbers), got {value!r}",
                      field=name)


def _check_fields(params: Any, ranges: dict[str, Range | str]) -> None:
    """Check (and normalise to float / tuple of floats) every field of a frozen parameter dataclass.

    The expected type comes from the field's default: a bool must be a bool, an int an int (a float with an
    integral value is taken), a float any real number within ``ranges[name]`` (default: finite), a band as
    :func:`_check_band`. Raises :class:`ParamsError` on the first bad field."""
    for name, kind, rng in _field_specs(type(params), ranges):
        value = getattr(params, name)
        if kind is bool:
            if not isinstance(value, bool):
                raise ParamsError(f"must be true or false, got {value!r}", field=name)
            continue
        if kind == BAND:
            checked: Any = _check_band(name, value)
        elif kind is int:
            if not (_real(value) and math.isfinite(value) and float(value).is_integer()):
                raise ParamsError(f"must be a whole number ({_describe(rng)}), got {value!r}", field=name)
            checked = int(_check_number(name, value, rng))
        else:
            checked = _check_number(name, value, rng)
        if type(checked) is not type(value) or checked != value:
            object.__setattr__(params, name, checked)


def _field_specs(cls: type, ranges: dict[str, Range | str]) -> tuple[tuple[str, Any, Any], ...]:
    """(name, kind, range) of each checked field of a parameter dataclass, kind from the field's default;
    worked out once per class. Other types (tuples of pairs, strings) are left to the class's own checks."""
    specs = _SPECS.get(cls)
    if specs is None:
        found = []
        for f in dataclasses.fields(cls):
            rng = ranges.get(f.name, FINITE)
            if rng == BAND:
                found.append((f.name, BAND, rng))
            elif isinstance(f.default, bool):
                found.append((f.name, bool, rng))
            elif isinstance(f.default, int | float):
                found.append((f.name, type(f.default), rng))
        specs = _SPECS[cls] = tuple(found)
    return specs


_SPECS: dict[type, tuple[tuple[str, Any, Any], ...]] = {}


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples a frozen parameter set holds (nested too)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class VersionedParams:
    """Serialisation shared by the frozen parameter dataclasses: a version string, a dict and a short digest
    stored next to every result, and a strict ``from_dict`` (unknown names are an error, not ignored)."""

    VERSION: ClassVar[str] = ""
    WHAT: ClassVar[str] = "parameters"
    RANGES: ClassVar[dict[str, Range | str]] = {}   # accepted range per numeric field (default: finite)

    def check_values(self) -> None:
        """Check every field's type and range (:data:`RANGES`), normalising ints to floats and lists to tuples
        where the default is one; raises :class:`ParamsError` naming the field, the value and the range."""
        _check_fields(self, self.RANGES)

    @property
    def version(self) -> str:
        return self.VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.VERSION, **dataclasses.asdict(self)}   # type: ignore[call-overload]

    def digest(self) -> str:
        """Short stable hash of version and parameters (stored with results); computed once per instance."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            cached = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
            object.__setattr__(self, "_digest", cached)      # frozen: the fields, and so the digest, never change
        return cached

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parameters from a dict of fields to change (the rest default), as read from JSON; the values are
        checked as in the constructor. Raises :class:`ParamsError` (a ValueError)."""
        if not isinstance(data, dict):
            raise ParamsError(f"{cls.WHAT} must be an object of field names and values, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}   # type: ignore[arg-type]
        unknown = set(data) - known - {"version"}
        if unknown:
            raise ParamsError(f"unknown {cls.WHAT} {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: _tuples(v) for k, v in data.items() if k in known})


@dataclass(frozen=True)
class DetectorParams(VersionedParams):
    """Parameters of :func:`detect.detect`. Units are in the names."""

    VERSION: ClassVar[str] = DETECTOR_VERSION
    WHAT: ClassVar[str] = "detector parameters"
    RANGES: ClassVar[dict[str, Range | str]] = {
        "max_rate_hz": POSITIVE, "gap_s": POSITIVE, "steady_tolerance_mps2": POSITIVE,
        "remount_angle_deg": (0.0, 180.0, False, True), "remount_block_s": POSITIVE, "remount_context_s": POSITIVE,
        "impact_band_hz": BAND, "impact_low_per_rate": POSITIVE, "body_band_hz": BAND,
        "rough_band_hz": BAND, "energy_window_s": POSITIVE, "whiten_order": (0.0, 64.0, True, True),
        "background_window_s": POSITIVE,
        "threshold_ratio": POSITIVE, "threshold_floor_mps2": NON_NEGATIVE, "threshold_speed_ref_mps": POSITIVE,
        "confirm_snr": NON_NEGATIVE, "confirm_score": POSITIVE, "axle_spread_m": NON_NEGATIVE,
        "weak_coherence": UNIT, "release_ratio": (0.0, 1.0, False, True),
        "merge_gap_s": NON_NEGATIVE, "max_event_s": POSITIVE, "rough_background_ratio": POSITIVE,
        "wheelbase_default_m": POSITIVE, "motion_band_hz": BAND, "bump_lift_m": POSITIVE,
        "bump_velocity_mps": POSITIVE, "one_wheel_coherence": (0.0, 1.0, False, True),
        "both_wheels_roll_ratio": POSITIVE, "one_wheel_roll_ratio": POSITIVE, "damper_rate_per_s": POSITIVE,
        "step_gain_per_s2": POSITIVE,
        "cover_depth_m": POSITIVE, "proud_velocity_mps": NON_NEGATIVE, "min_speed_mps": NON_NEGATIVE,
        "still_background_ratio": (0.0, 1.0, True, False),
        "handling_gyro_rad_s": POSITIVE, "handling_horizontal_ratio": POSITIVE,
        "handling_tilt_deg": (0.0, 180.0, False, True), "remount_guard_s": NON_NEGATIVE,
        "min_mount_s": NON_NEGATIVE, "gps_latency_s": FINITE, "latency_min_s": FINITE, "latency_max_s": FINITE,
        "latency_min_corr": (-1.0, 1.0, True, True), "latency_refit_s": POSITIVE, "phone_to_front_axle_m": FINITE,
        "roughness_window_m": POSITIVE, "roughness_min_speed_mps": NON_NEGATIVE,
    }

    # --- resampling and gaps
    max_rate_hz: float = 200.0           # traces faster than this are decimated onto this grid
    gap_s: float = 0.25                  # sample intervals longer than this are gaps: no event inside
    # --- orientation
    steady_tolerance_mps2: float = 0.6   # |lowpassed a| within this of g counts as steady (no braking/turning)
    remount_angle_deg: float = 20.0      # a lasting change of the gravity direction larger than this is a re-mount
    remount_block_s: float = 1.0         # block length for re-mount search
    remount_context_s: float = 8.0       # blocks compared before/after a candidate re-mount
    # --- filtering
    impact_band_hz: tuple[float, float] = (3.0, 25.0)   # band of the impact characteristic function
    impact_low_per_rate: float = 0.125   # ... whose lower edge is at most this x the sample rate: below 24 Hz the
    #                                      impact aliases into [0, fs/2] (phones sample slow sensors without an
    #                                      anti-alias filter) and a 3 Hz edge would keep only a sliver of it
    body_band_hz: tuple[float, float] = (0.4, 3.0)      # body (sprung mass) band: bumps and humps
    rough_band_hz: tuple[float, float] = (0.5, 6.0)     # band for roughness (IRI) estimation: below phone-mount
    #                                                    resonances (8-22 Hz) that would inflate it
    energy_window_s: float = 0.12        # window of the short-term energy (characteristic function)
    whiten_order: int = 8                # the impact band is whitened first by the prediction-error filter of its
    #                                      order-8 autoregressive model (per mount segment, fitted while moving): the
    #                                      road's coloured vibration and the mount's ringing predict themselves, an
    #                                      impact's onset does not; 0: no whitening
    # --- candidate events
    background_window_s: float = 5.0     # local background of the characteristic function (a rough patch
    #                                      longer than half of it raises the background instead of firing)
    threshold_ratio: float = 2.5         # event when energy exceeds ratio x local background ...
    threshold_floor_mps2: float = 0.3    # ... and exceeds this RMS floor, grown with speed:
    threshold_speed_ref_mps: float = 15.0   # floor x (1 + speed / ref): Pothole Patrol's speed-vs-z filter
    confirm_snr: float = 4.0             # events weaker than this need a clear one-wheel (roll) or lift signature:
    confirm_score: float = 2.35          # ... and weaker than this axle-paired, three-axis score (features.Signals.
    #                                      score_at; a trigger level of its own). Set where clean road crosses it as
    #                                      rarely as it crosses confirm_snr: 0.05 per km, simulator seeds 1-3
    axle_spread_m: float = 0.5           # the rear axle is looked for at wheelbase +- this [m] behind the front
    weak_coherence: float = 0.6          # |corr(lateral, vertical)| at least this for a weak event to count
    release_ratio: float = 0.5           # hysteresis: an event ends below release_ratio x threshold
    merge_gap_s: float = 0.15            # events closer than this (plus the axle delay) are one event
    max_event_s: float = 2.5             # longer excitation is a rough stretch, not an impact
    rough_background_ratio: float = 2.5  # local background above this x the trip's median: a rough stretch
    wheelbase_default_m: float = 2.7
    # --- classification (detect/classify.py explains the physics)
    motion_band_hz: tuple[float, float] = (0.5, 20.0)   # band of the body velocity / displacement integrals
    bump_lift_m: float = 0.03            # body displaced more than this: the whole car went over a bump or hump
    bump_velocity_mps: float = 0.4       # ... with a vertical body velocity swing above this
    one_wheel_coherence: float = 0.45    # |corr(lateral, vertical)| above this: one wheel rolled the car
    both_wheels_roll_ratio: float = 0.9  # roll/pitch rate below this: both wheels of an axle (one wheel ~ 1.7)
    one_wheel_roll_ratio: float = 1.3    # roll/pitch rate at least this: clearly one wheel (nearer the one-wheel
    #                                      ~1.7 = wheelbase / track than the both-wheels bound): a lift that rolls
    #                                      this much is a wheel dropping into a deep hole, not a bump
    damper_rate_per_s: float = 2.7       # body velocity swing per metre of depth seen at the phone [1/s]
    step_gain_per_s2: float = 64.0       # impact-band RMS at the phone per metre of a sharp-edged step [m/s^2 / m]:
    #                                      the Golden Car's wheel-hop ringing (detect/classify.py, "Depth")
    cover_depth_m: float = 0.045         # one-wheel events shallower than this look like a utility cover: castings
    #                                      sink 1-4 cm (FIELD_NOTES), the estimate scatters ~x1.3 around the drop, and
    #                                      castings outnumber potholes ~8:1 (Street Bump), so an ambiguous one is one
    proud_velocity_mps: float = 0.25     # first motion up and a swing below this: a proud cover, not a hole
    # --- rejection of non-road events
    min_speed_mps: float = 2.5           # below this an event is not taken as a road impact (door slams)
    still_background_ratio: float = 0.1  # where the speed is unknown (no GPS, before the first fix): a local
    #                                      background below this x the trip's loud level (its 90th percentile) is
    #                                      a car standing (an idling engine shakes a phone ~10x less than tyres on
    #                                      a road)
    handling_gyro_rad_s: float = 1.5     # rotation faster than this around the event means phone handling
    handling_horizontal_ratio: float = 2.0   # horizontal / vertical energy above this means handling
    handling_tilt_deg: float = 20.0      # the phone tilted further than a bump tilts a car, beyond the tilt the
    #                                      car's GPS-measured acceleration explains (braking, turning)
    remount_guard_s: float = 1.5         # events this close to a span in which the phone sat in no mount (a
    #                                      re-mount's hand, or an excursion from its mount) are the phone
    min_mount_s: float = 15.0            # a "mount" held for less than this was the phone in a hand
    # --- GPS
    gps_latency_s: float = 0.0           # latency of the GPS fixes [s], subtracted from their times: for the speed on
    #                                      the grid always, for positions when the trip does not tell its own:
    latency_min_s: float = -1.0          # a trip's own latency is searched in [min, max] (detect.latency) and places
    latency_max_s: float = 3.0           # its impacts and roughness windows; max <= min: never (gps_latency_s)
    latency_min_corr: float = 0.5        # ... and used when its speed changes correlate at least this well;
    latency_refit_s: float = 1.0         # ... and when it differs from gps_latency_s by this much or more, the GPS
    #                                      speed on the grid (forward axis, car acceleration) is taken at it again
    phone_to_front_axle_m: float = 1.0   # the front wheel meets a defect this far ahead of the phone
    # --- roughness
    roughness_window_m: float = 20.0
    roughness_min_speed_mps: float = 4.0

    def __post_init__(self) -> None:
        self.check_values()

    def impact_band_at(self, fs_hz: float) -> tuple[float, float]:
        """The impact band [Hz] at a sample rate: :attr:`impact_band_hz` with its lower edge at most
        :attr:`impact_low_per_rate` x ``fs_hz`` (the filter clips the upper edge to the rate)."""
        low, high = self.impact_band_hz
        return min(low, self.impact_low_per_rate * fs_hz), high
