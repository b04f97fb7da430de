"""All detector parameters in one frozen dataclass, in physical units, with a version string.

The version changes whenever the detector's behaviour changes; it is stored with every result together with
:meth:`DetectorParams.to_dict`, so any stored impact can be traced to the code and settings that produced it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Self

DETECTOR_VERSION = "bump-detect/0.7"      # 0.7: below 24 Hz the impact band's lower edge follows the rate
#                                            0.6: a lift is a deep pothole only when its roll is clearly one wheel's
#                                           (one_wheel_roll_ratio); roughness and other impacts as 0.5.
#                                           0.5: roughness on ~25 box means a second from the design rate (IRI
#                                           moves a few % for phones at exactly 100 Hz or at 200 Hz); impacts as 0.4.
#                                           0.4: with a gyroscope, roughness ignores phone position and coherence,
#                                           and a lift that rolls the car is a deep pothole, not a bump


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples a frozen parameter set holds (nested too)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class VersionedParams:
    """Serialisation shared by the frozen parameter dataclasses: a version string, a dict and a short digest
    stored next to every result, and a strict ``from_dict`` (unknown names are an error, not ignored)."""

    VERSION: ClassVar[str] = ""
    WHAT: ClassVar[str] = "parameters"

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
        known = {f.name for f in dataclasses.fields(cls)}   # type: ignore[arg-type]
        unknown = set(data) - known - {"version"}
        if unknown:
            raise ValueError(f"unknown {cls.WHAT} {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: _tuples(v) for k, v in data.items() if k in known})


@dataclass(frozen=True)
class DetectorParams(VersionedParams):
    """Parameters of :func:`detect.detect`. Units are in the names."""

    VERSION: ClassVar[str] = DETECTOR_VERSION
    WHAT: ClassVar[str] = "detector parameters"

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
    # --- candidate events
    background_window_s: float = 5.0     # local background of the characteristic function (a rough patch
    #                                      longer than half of it raises the background instead of firing)
    threshold_ratio: float = 2.5         # event when energy exceeds ratio x local background ...
    threshold_floor_mps2: float = 0.4    # ... and exceeds this RMS floor, grown with speed:
    threshold_speed_ref_mps: float = 15.0   # floor x (1 + speed / ref): Pothole Patrol's speed-vs-z filter
    confirm_snr: float = 4.0             # events weaker than this need a clear one-wheel (roll) or lift signature:
    weak_coherence: float = 0.6          # |corr(lateral, vertical)| at least this for a weak event to count
    release_ratio: float = 0.5           # hysteresis: an event ends below release_ratio x threshold
    merge_gap_s: float = 0.15            # events closer than this (plus the axle delay) are one event
    max_event_s: float = 2.5             # longer excitation is a rough stretch, not an impact
    rough_background_ratio: float = 2.5  # local background above this x the trip's median: a rough stretch
    wheelbase_default_m: float = 2.7
    # --- classification (detect/classify.py explains the physics)
    motion_band_hz: tuple[float, float] = (0.5, 20.0)   # band of the body velocity / displacement integrals
    bump_lift_m: float = 0.03            # body displaced more than this: the whole car went over a bump or hump
    bump_velocity_mps: float = 0.4       # ... or a vertical body velocity swing above this
    one_wheel_coherence: float = 0.45    # |corr(lateral, vertical)| above this: one wheel rolled the car
    both_wheels_roll_ratio: float = 0.9  # roll/pitch rate below this: both wheels of an axle (one wheel ~ 1.7)
    one_wheel_roll_ratio: float = 1.3    # roll/pitch rate at least this: clearly one wheel (nearer the one-wheel
    #                                      ~1.7 = wheelbase / track than the both-wheels bound): a lift that rolls
    #                                      this much is a wheel dropping into a deep hole, not a bump
    damper_rate_per_s: float = 2.7       # body velocity swing per metre of depth seen at the phone [1/s]
    cover_depth_m: float = 0.045         # one-wheel events shallower than this look like a utility cover: castings
    #                                      sink 1-4 cm (FIELD_NOTES), the estimate scatters ~x1.3 around the drop, and
    #                                      castings outnumber potholes ~8:1 (Street Bump), so an ambiguous one is one
    proud_velocity_mps: float = 0.25     # first motion up and a swing below this: a proud cover, not a hole
    # --- rejection of non-road events
    min_speed_mps: float = 2.5           # below this an event is not taken as a road impact (door slams)
    handling_gyro_rad_s: float = 1.5     # rotation faster than this around the event means phone handling
    handling_horizontal_ratio: float = 2.0   # horizontal / vertical energy above this means handling
    handling_tilt_deg: float = 20.0      # the phone tilted further than braking or a bump tilts a car
    remount_guard_s: float = 3.0         # events this close to a detected re-mount are the phone, not the road
    min_mount_s: float = 15.0            # a "mount" held for less than this was the phone in a hand
    # --- GPS
    gps_latency_s: float = 0.0           # known latency of the GPS fixes, subtracted from their times
    phone_to_front_axle_m: float = 1.0   # the front wheel meets a defect this far ahead of the phone
    # --- roughness
    roughness_window_m: float = 20.0
    roughness_min_speed_mps: float = 4.0

    def impact_band_at(self, fs_hz: float) -> tuple[float, float]:
        """The impact band [Hz] at a sample rate: :attr:`impact_band_hz` with its lower edge at most
        :attr:`impact_low_per_rate` x ``fs_hz`` (the filter clips the upper edge to the rate)."""
        low, high = self.impact_band_hz
        return min(low, self.impact_low_per_rate * fs_hz), high
