"""The phone: where and how it sits in the car, what its accelerometer and gyroscope read, and how it samples.

Frames (right-handed): the body frame has x forward, y left, z up; the phone frame is Android's (x right
along the screen, y up along the screen, z out of the screen). A mount is a rotation ``R`` whose columns
are the phone axes in body coordinates: a body vector v reads ``R.T @ v`` on the phone. At rest flat on a
level dashboard the accelerometer reads (0, 0, +9.81): it measures specific force, a - g.

Chain: body-frame specific force at the mount point (gravity tilted by pitch and roll, heave, pitch and roll
accelerations at the lever arm, longitudinal and centripetal acceleration) + engine vibration -> mount
resonance (a cradle arm rings) -> rotation into the phone frame (time-varying while a hand moves the
phone) -> sampled at jittered instants from the fine simulation signal WITHOUT an anti-alias filter (phones
alias) -> noise, bias, scale error, clipping at the range, 16-bit quantisation; samples drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import bilinear, lfilter, lfilter_zi
from scipy.spatial.transform import Rotation

from bump.sim.vehicle import G_MPS2, BodyMotion
from ingest import Trace, read, to_document
from ingest.formats.bump_json import dumps_document

MOUNT_KINDS = ("cradle", "flat", "cup_holder")


# --------------------------------------------------------------------------------------------------------------
# Mounts
# --------------------------------------------------------------------------------------------------------------

def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclass(frozen=True)
class Mount:
    """A phone pose in the car: rotation (phone -> body), position [m] and the mount's resonance."""

    kind: str
    rotation: np.ndarray          # (3, 3), columns = phone axes in body coordinates
    position_m: tuple[float, float, float]   # forward of mid-wheelbase, left of centre, above the roll axis
    resonance_hz: float
    damping: float


def draw_mount(rng: np.random.Generator, kind: str, wheelbase_m: float) -> Mount:
    """A random pose of ``kind``: "cradle" (windscreen or vent, screen to the driver, portrait or landscape),
    "flat" (on the dashboard or console, any yaw) or "cup_holder" (standing, leaning 20-60 deg, any yaw).

    The pose is R = Rz(azimuth) Rx(tilt) Rz(spin): spin turns the phone in its screen plane, tilt raises the
    screen from horizontal, azimuth turns the whole about the vertical.
    """
    if kind == "cradle":
        tilt = np.radians(rng.uniform(60, 88))
        spin = rng.choice([0.0, np.pi / 2, -np.pi / 2], p=[0.6, 0.2, 0.2]) + np.radians(rng.normal(0, 4))
        azimuth = np.radians(-90 + rng.uniform(-20, 20))           # screen faces the driver (rearwards)
        pos = (wheelbase_m / 2 - rng.uniform(0.3, 0.7), rng.uniform(-0.1, 0.45), rng.uniform(0.35, 0.6))
        res_hz, zeta = rng.uniform(10.0, 22.0), rng.uniform(0.10, 0.25)
    elif kind == "flat":
        tilt = np.radians(rng.uniform(0, 6))
        spin = rng.uniform(-np.pi, np.pi)
        azimuth = rng.uniform(-np.pi, np.pi)
        pos = (wheelbase_m / 2 - rng.uniform(0.4, 1.2), rng.uniform(-0.2, 0.3), rng.uniform(0.25, 0.5))
        res_hz, zeta = rng.uniform(35.0, 70.0), rng.uniform(0.15, 0.3)
    elif kind == "cup_holder":
        tilt = np.radians(90 - rng.uniform(20, 60))
        spin = rng.choice([0.0, np.pi]) + np.radians(rng.normal(0, 5))
        azimuth = rng.uniform(-np.pi, np.pi)
        pos = (wheelbase_m / 2 - rng.uniform(0.8, 1.3), rng.uniform(-0.1, 0.1), rng.uniform(0.1, 0.3))
        res_hz, zeta = rng.uniform(8.0, 20.0), rng.uniform(0.15, 0.35)
    else:
        raise ValueError(f"unknown mount kind {kind!r}; expected one of {MOUNT_KINDS}")
    rot = _rz(azimuth) @ _rx(tilt) @ _rz(spin)
    return Mount(kind=kind, rotation=rot, position_m=tuple(float(p) for p in pos), resonance_hz=float(res_hz),
                 damping=float(zeta))


# --------------------------------------------------------------------------------------------------------------
# Phone hardware
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PhoneModel:
    """Sensor characteristics of one phone."""

    name: str
    os: str
    fs_hz: float
    has_gyro: bool
    range_g: float                    # accelerometer full scale (+-)
    noise_ug_rthz: float              # accelerometer noise density [micro-g / sqrt(Hz)]
    gyro_noise_dps_rthz: float        # gyroscope noise density [deg/s / sqrt(Hz)]
    jitter_s: float                   # timestamp jitter (sigma)
    drop_fraction: float              # share of samples lost at random
    gaps_per_hour: float              # longer losses of a few tenths of a second
    clock_ppm: float                  # sample clock error
    bias_mps2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gyro_bias_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    extra: dict[str, float] = field(default_factory=dict)


PHONE_NAMES = {50.0: ("Budget A10", "android"), 100.0: ("iPhone-like 100", "ios"), 200.0: ("Pixel-like 200",
                                                                                         "android")}


def draw_phone(rng: np.random.Generator, fs_hz: float, has_gyro: bool) -> PhoneModel:
    name, os_name = PHONE_NAMES.get(float(fs_hz), ("Generic", "android"))
    return PhoneModel(
        name=name, os=os_name, fs_hz=float(fs_hz), has_gyro=has_gyro,
        range_g=float(rng.choice([2.0, 4.0, 8.0, 16.0], p=[0.1, 0.3, 0.4, 0.2])),
        noise_ug_rthz=float(rng.uniform(80.0, 200.0)),
        gyro_noise_dps_rthz=float(rng.uniform(0.004, 0.015)),
        jitter_s=float(rng.uniform(0.1e-3, 1.0e-3) if fs_hz <= 100 else rng.uniform(0.05e-3, 0.4e-3)),
        drop_fraction=float(rng.uniform(0.001, 0.01)),
        gaps_per_hour=float(rng.uniform(5.0, 40.0)),
        clock_ppm=float(rng.uniform(-60.0, 60.0)),
        bias_mps2=tuple(float(b) for b in rng.uniform(-0.06, 0.06, 3)),
        scale=tuple(float(s) for s in rng.uniform(0.995, 1.005, 3)),
        gyro_bias_rad_s=tuple(float(b) for b in np.radians(rng.uniform(-0.3, 0.3, 3))),
    )


# --------------------------------------------------------------------------------------------------------------
# Physics at the mount
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CarKinematics:
    """Horizontal-plane motion of the car at the simulation rate."""

    a_long_mps2: np.ndarray       # along the heading
    a_lat_mps2: np.ndarray        # centripetal, left positive
    yaw_rate_rad_s: np.ndarray    # counter-clockwise seen from above (left turns) positive
    yaw_acc_rad_s2: np.ndarray


def body_specific_force(kin: CarKinematics, body: BodyMotion, position_m: tuple[float, float, float]
                        ) -> np.ndarray:
    """Specific force a - g [m/s^2] (N, 3) in the body frame at a point of the body.

    ``position_m`` = (x forward of mid-wheelbase, y left of centre, h above the pitch/roll axis).
    """
    x, y, h = position_m
    fx = kin.a_long_mps2 + h * body.pitch_acc - x * kin.yaw_rate_rad_s**2
    fy = kin.a_lat_mps2 - h * body.roll_acc + x * kin.yaw_acc_rad_s2
    fz = body.heave_acc - x * body.pitch_acc + y * body.roll_acc + G_MPS2
    ct, st = np.cos(body.pitch), np.sin(body.pitch)
    cp, sp = np.cos(body.roll), np.sin(body.roll)
    # f_body = (Ry(pitch) Rx(roll))^T f_level
    bx = ct * fx - st * fz
    by = st * sp * fx + cp * fy + ct * sp * fz
    bz = st * cp * fx - sp * fy + ct * cp * fz
    return np.column_stack((bx, by, bz))


def body_angular_rate(kin: CarKinematics, body: BodyMotion) -> np.ndarray:
    """Angular rate [rad/s] (N, 3) of the body in the body frame: (roll rate, pitch rate, yaw rate)."""
    return np.column_stack((body.roll_rate, body.pitch_rate, kin.yaw_rate_rad_s))


def engine_frequency_hz(v_mps: np.ndarray, rng: np.random.Generator, fs_hz: float) -> np.ndarray:
    """Engine vibration frequency [Hz] (20-45 Hz): idle when stopped, rising with speed in each gear."""
    f_idle = rng.uniform(20.0, 27.0)
    f_top = rng.uniform(38.0, 45.0)
    edges = np.array([0.0, 3.5, 7.0, 11.0, 15.5, 1e9]) * rng.uniform(0.9, 1.1)
    gear = np.clip(np.searchsorted(edges, v_mps, side="right") - 1, 0, edges.size - 2)
    lo, hi = edges[gear], np.minimum(edges[gear + 1], 22.0)
    frac = np.clip((v_mps - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)
    f = np.where(v_mps < 0.5, f_idle, f_idle * 1.1 + frac * (f_top - f_idle * 1.1))
    n = max(1, int(0.4 * fs_hz))                        # a gear change takes a moment
    return np.convolve(np.pad(f, (n // 2, n - 1 - n // 2), mode="edge"), np.ones(n) / n, mode="valid")


def engine_vibration(t_s: np.ndarray, v_mps: np.ndarray, a_long_mps2: np.ndarray, rng: np.random.Generator,
                     fs_hz: float) -> np.ndarray:
    """Body-frame engine vibration [m/s^2] (N, 3): the firing frequency and its second harmonic, stronger
    under throttle, along a fixed direction of the engine mounts."""
    f = engine_frequency_hz(v_mps, rng, fs_hz)
    phase = 2 * np.pi * np.cumsum(f) / fs_hz
    amp = rng.uniform(0.02, 0.12) * (1.0 + 1.5 * np.clip(a_long_mps2, 0.0, 2.0) / 2.0)
    wave = np.sin(phase) + rng.uniform(0.2, 0.5) * np.sin(2 * phase + rng.uniform(0, 2 * np.pi))
    direction = rng.normal(size=3) * np.array([0.6, 0.4, 1.0])
    direction /= np.linalg.norm(direction)
    return (amp * wave)[:, None] * direction[None, :]


def mount_filter(signal: np.ndarray, resonance_hz: float, damping: float, fs_hz: float) -> np.ndarray:
    """Base-excitation transmissibility of the mount, (2 zeta w s + w^2) / (s^2 + 2 zeta w s + w^2), per axis.

    Unity at DC (gravity passes unchanged), a peak near the mount's resonance, roll-off above.
    """
    w = 2 * np.pi * resonance_hz
    b, a = bilinear([2 * damping * w, w * w], [1.0, 2 * damping * w, w * w], fs=fs_hz)
    zi = lfilter_zi(b, a)
    out = np.empty_like(signal)
    for k in range(signal.shape[1]):                     # three axes
        out[:, k] = lfilter(b, a, signal[:, k], zi=zi * signal[0, k])[0]
    return out


# --------------------------------------------------------------------------------------------------------------
# Orientation over a trip: mounts, handling, re-mounting
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Handling:
    """A hand picks the phone up, turns and moves it, and puts it back (or in a new mount)."""

    t0_s: float
    t1_s: float
    before: Mount
    after: Mount
    turns: tuple[np.ndarray, np.ndarray]        # two intermediate rotations (phone -> body)
    offsets_m: tuple[np.ndarray, np.ndarray]    # two intermediate displacements of the phone (body frame)


def draw_handling(rng: np.random.Generator, t0_s: float, duration_s: float, before: Mount, after: Mount
                  ) -> Handling:
    axis1, axis2 = rng.normal(size=3), rng.normal(size=3)
    r1 = before.rotation @ Rotation.from_rotvec(axis1 / np.linalg.norm(axis1)
                                                * np.radians(rng.uniform(40, 120))).as_matrix()
    r2 = r1 @ Rotation.from_rotvec(axis2 / np.linalg.norm(axis2) * np.radians(rng.uniform(10, 50))).as_matrix()
    p1 = rng.normal(0.0, 0.12, 3) + np.array([-0.1, 0.0, 0.15])
    p2 = p1 + rng.normal(0.0, 0.08, 3)
    return Handling(t0_s=t0_s, t1_s=t0_s + duration_s, before=before, after=after, turns=(r1, r2),
                    offsets_m=(p1, p2))


def _smootherstep(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """s, ds/dtau, d2s/dtau2 of 6 tau^5 - 15 tau^4 + 10 tau^3 (zero rate and acceleration at both ends)."""
    s = tau**3 * (tau * (6 * tau - 15) + 10)
    ds = 30 * tau**2 * (tau - 1) ** 2
    d2s = 60 * tau * (2 * tau - 1) * (tau - 1)
    return s, ds, d2s


@dataclass(frozen=True)
class Orientation:
    """Phone pose over a trip at the simulation rate."""

    rotation: np.ndarray        # (N, 3, 3) phone -> body
    omega_phone: np.ndarray     # (N, 3) angular rate of the phone relative to the body, phone frame [rad/s]
    hand_acc: np.ndarray        # (N, 3) acceleration of the phone relative to the body, body frame [m/s^2]


def orientation_track(t_s: np.ndarray, first: Mount, handlings: list[Handling]) -> Orientation:
    """The phone's pose: ``first`` mount, changed only during the (non-overlapping) ``handlings``."""
    n = t_s.size
    rot = np.broadcast_to(first.rotation, (n, 3, 3)).copy()
    omega = np.zeros((n, 3))
    acc = np.zeros((n, 3))
    for h in sorted(handlings, key=lambda e: e.t0_s):
        rot[int(np.searchsorted(t_s, h.t1_s)):] = h.after.rotation
        keys = [h.before.rotation, h.turns[0], h.turns[1], h.after.rotation]
        pos = [np.zeros(3), h.offsets_m[0], h.offsets_m[1], np.zeros(3)]
        knots = h.t0_s + (h.t1_s - h.t0_s) * np.array([0.0, 0.3, 0.7, 1.0])
        for k in range(3):                                      # three pieces of the gesture
            j0, j1 = np.searchsorted(t_s, [knots[k], knots[k + 1]])
            if j1 <= j0:
                continue
            span = knots[k + 1] - knots[k]
            tau = (t_s[j0:j1] - knots[k]) / span
            s, ds, d2s = _smootherstep(tau)
            delta = Rotation.from_matrix(keys[k].T @ keys[k + 1]).as_rotvec()
            rot[j0:j1] = keys[k] @ Rotation.from_rotvec(s[:, None] * delta[None, :]).as_matrix()
            omega[j0:j1] = (ds / span)[:, None] * delta[None, :]
            acc[j0:j1] = (d2s / span**2)[:, None] * (pos[k + 1] - pos[k])[None, :]
    return Orientation(rotation=rot, omega_phone=omega, hand_acc=acc)


def to_phone_frame(orientation: Orientation, body_vec: np.ndarray) -> np.ndarray:
    """Body-frame vectors (N, 3) as the phone reads them: R(t)^T v(t)."""
    return np.einsum("nji,nj->ni", orientation.rotation, body_vec)


def door_slam_ring(t_s: np.ndarray, t0_s: float, rng: np.random.Generator) -> np.ndarray:
    """Body-frame structural ringing [m/s^2] (N, 3) after a door slams at ``t0_s``: a damped 15-40 Hz
    vibration of the body shell, mostly sideways, plus a short sway."""
    dt = t_s - t0_s
    on = dt >= 0
    f_ring = rng.uniform(15.0, 40.0)
    ring = rng.uniform(3.0, 8.0) * np.exp(-np.clip(dt, 0, None) / rng.uniform(0.03, 0.08)) \
        * np.sin(2 * np.pi * f_ring * np.clip(dt, 0, None))
    sway = rng.uniform(0.2, 0.6) * np.exp(-np.clip(dt, 0, None) / 0.4) * np.sin(2 * np.pi * 1.8 * np.clip(dt, 0, None))
    direction = np.array([rng.normal(0, 0.3), rng.choice([-1.0, 1.0]), rng.normal(0, 0.4)])
    direction /= np.linalg.norm(direction)
    out = (ring + sway)[:, None] * direction[None, :]
    return np.where(on[:, None], out, 0.0)


# --------------------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------------------

def sample_times(duration_s: float, phone: PhoneModel, rng: np.random.Generator
                 ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Sample instants [s from the trip start] of one sensor (the phone's clock, jitter, drops and gaps), and the
    gaps in the recording as (start [s], duration [s])."""
    period = 1.0 / phone.fs_hz * (1.0 + phone.clock_ppm * 1e-6)
    t = np.arange(0.0, duration_s, period)
    t = t + np.clip(rng.normal(0.0, phone.jitter_s, t.size), -0.4 * period, 0.4 * period)
    keep = rng.random(t.size) >= phone.drop_fraction
    n_gaps = rng.poisson(phone.gaps_per_hour * duration_s / 3600.0)
    gaps = []
    for start in rng.uniform(0.0, duration_s, n_gaps):
        length = float(rng.uniform(0.15, 0.6))
        keep &= ~((t >= start) & (t < start + length))
        gaps.append((float(start), length))
    t = t[keep]
    return t[(t >= 0.0) & (t <= duration_s)], gaps


def read_accelerometer(t_sim_s: np.ndarray, phone_force: np.ndarray, t_sample_s: np.ndarray, phone: PhoneModel,
                       rng: np.random.Generator) -> np.ndarray:
    """What the accelerometer reports [m/s^2] (n, 3) at ``t_sample_s``: the true specific force picked at
    those instants (no anti-alias filter), plus noise, bias and scale error, clipped and quantised."""
    x = np.column_stack([np.interp(t_sample_s, t_sim_s, phone_force[:, k]) for k in range(3)])
    sigma = phone.noise_ug_rthz * 1e-6 * G_MPS2 * np.sqrt(phone.fs_hz / 2.0)
    x = x * np.asarray(phone.scale) + np.asarray(phone.bias_mps2) + rng.normal(0.0, sigma, x.shape)
    full = phone.range_g * G_MPS2
    step = 2 * full / 65536
    return np.round(np.clip(x, -full, full - step) / step) * step


def read_gyroscope(t_sim_s: np.ndarray, phone_rate: np.ndarray, t_sample_s: np.ndarray, phone: PhoneModel,
                   rng: np.random.Generator) -> np.ndarray:
    """What the gyroscope reports [rad/s] (n, 3): rate, noise, bias, +-2000 deg/s 16-bit quantisation."""
    x = np.column_stack([np.interp(t_sample_s, t_sim_s, phone_rate[:, k]) for k in range(3)])
    sigma = np.radians(phone.gyro_noise_dps_rthz) * np.sqrt(phone.fs_hz / 2.0)
    x = x + np.asarray(phone.gyro_bias_rad_s) + rng.normal(0.0, sigma, x.shape)
    full = np.radians(2000.0)
    step = 2 * full / 65536
    return np.round(np.clip(x, -full, full - step) / step) * step


def slow_phone(trace: Trace, rate_hz: float) -> Trace:
    """``trace`` as a phone sampling at ``rate_hz`` [Hz] would deliver it: the samples at every n-th tick of the
    sensor's clock (n = the trace's rate / ``rate_hz``, rounded), no anti-alias filter (Android's slow sensor
    delays). A tick whose sample the fast phone dropped is dropped here too; the slow clock keeps its phase."""
    step = max(1, round(trace.quality.accel_rate_hz / rate_hz))
    doc = to_document(trace)
    for block in ("accel", "gyro"):
        if block in doc:
            keep = _clock_ticks(np.asarray(doc[block]["t"], dtype=np.float64)) % step == 0
            for k in ("t", "x", "y", "z"):
                doc[block][k] = np.ascontiguousarray(np.asarray(doc[block][k])[keep])
    return read(dumps_document(doc))


def _clock_ticks(t_s: np.ndarray) -> np.ndarray:
    """Tick number of each sample on its sensor's clock: the periods (median interval) counted interval by
    interval, so a dropped sample or a gap skips its ticks."""
    if t_s.size < 2:
        return np.zeros(t_s.size, dtype=np.int64)
    dt = np.diff(t_s)
    return np.concatenate(([0], np.cumsum(np.rint(dt / np.median(dt))).astype(np.int64)))
