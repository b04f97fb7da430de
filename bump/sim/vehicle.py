"""Vehicles: four quarter-cars (one per corner) with tyre lift-off, and the rigid body they carry.

Quarter-car (per corner), deviations from static equilibrium, states x = (z_s, v_s, z_u, v_u):

    m_s a_s = -k_s (z_s - z_u) - c_s (v_s - v_u) + f
    m_u a_u =  k_s (z_s - z_u) + c_s (v_s - v_u) + k_t (r - z_u)      while the tyre touches the road
    m_u a_u =  k_s (z_s - z_u) + c_s (v_s - v_u) - (m_s + m_u) g      while it is in the air

r is the tyre-envelope road input [m], f an external vertical force on the body corner [N] (load transfer
when braking and cornering, door slams). The tyre cannot pull: contact ends when the tyre force
(m_s + m_u) g + k_t (r - z_u) would be negative and resumes when the wheel is back on the road.

Both regimes are linear, so each is solved exactly: the contact system in its modal basis with
``scipy.signal.lfilter`` over the whole trip, each flight in closed form (powers of the exact one-step
transition matrix), and after a landing the difference of states decays as a free response of the contact
system. Loops run over flights, never over samples.

Rigid body (the "four sprung masses" approximation): heave = mean of the corners, pitch (nose down
positive, about +y) = (rear - front) / wheelbase, roll (left side up positive, about +x) =
(left - right) / track. A point at (x forward of mid-wheelbase, y left of the centreline) moves by
heave - pitch x + roll y.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.linalg import expm
from scipy.signal import lfilter

G_MPS2 = 9.80665
CORNERS = ("FL", "FR", "RL", "RR")


@dataclass(frozen=True)
class QuarterCar:
    """One corner: masses [kg], suspension stiffness [N/m] and damping [N s/m], tyre stiffness [N/m]."""

    sprung_kg: float
    unsprung_kg: float
    spring_npm: float
    damper_nspm: float
    tyre_npm: float

    @property
    def static_tyre_force_n(self) -> float:
        return (self.sprung_kg + self.unsprung_kg) * G_MPS2

    @property
    def body_hz(self) -> float:
        """Undamped body (sprung) natural frequency [Hz], springs in series: k_s k_t / (k_s + k_t) / m_s."""
        k_eff = self.spring_npm * self.tyre_npm / (self.spring_npm + self.tyre_npm)
        return float(np.sqrt(k_eff / self.sprung_kg) / (2 * np.pi))

    @property
    def wheel_hop_hz(self) -> float:
        """Undamped wheel-hop natural frequency [Hz]: (k_s + k_t) / m_u with the body held still."""
        return float(np.sqrt((self.spring_npm + self.tyre_npm) / self.unsprung_kg) / (2 * np.pi))

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """Continuous (A (4, 4), B (4, 2)) of the contact system; inputs (road r [m], body force f [N])."""
        ms, mu, ks, cs, kt = self.sprung_kg, self.unsprung_kg, self.spring_npm, self.damper_nspm, self.tyre_npm
        a = np.array([
            [0.0, 1.0, 0.0, 0.0],
            [-ks / ms, -cs / ms, ks / ms, cs / ms],
            [0.0, 0.0, 0.0, 1.0],
            [ks / mu, cs / mu, -(ks + kt) / mu, -cs / mu],
        ])
        b = np.array([[0.0, 0.0], [0.0, 1.0 / ms], [0.0, 0.0], [kt / mu, 0.0]])
        return a, b

    def frequency_response(self, f_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Complex transfer (z_s / r, z_u / r) of the continuous contact system at ``f_hz``."""
        a, b = self.matrices()
        s = 2j * np.pi * np.asarray(f_hz, dtype=np.float64)
        h = np.linalg.solve(s[:, None, None] * np.eye(4) - a, np.broadcast_to(b[:, 0], (s.size, 4))[..., None])
        return h[:, 0, 0], h[:, 2, 0]


@dataclass(frozen=True)
class Car:
    """A vehicle: its four corners, geometry [m] and what loads them when it brakes and turns."""

    kind: str
    wheelbase_m: float
    track_m: float
    cg_height_m: float
    tyre_radius_m: float
    tyre_width_m: float
    roll_transfer: float               # share of the lateral load transfer the springs carry (anti-roll bars)
    corners: dict[str, QuarterCar]

    @property
    def mass_kg(self) -> float:
        return float(sum(c.sprung_kg + c.unsprung_kg for c in self.corners.values()))

    def load_transfer_n(self, a_long_mps2: np.ndarray, a_lat_mps2: np.ndarray) -> dict[str, np.ndarray]:
        """Vertical force on each body corner [N] from longitudinal and lateral acceleration.

        Braking (a_long < 0) pushes the front down; a left turn (a_lat > 0, centripetal to the left) pushes
        the right side down.
        """
        sprung = sum(c.sprung_kg for c in self.corners.values())
        pitch = sprung * a_long_mps2 * self.cg_height_m / (2 * self.wheelbase_m)
        roll = self.roll_transfer * sprung * a_lat_mps2 * self.cg_height_m / (2 * self.track_m)
        return {"FL": pitch + roll, "FR": pitch - roll, "RL": -pitch + roll, "RR": -pitch - roll}


CAR_KINDS = {
    # kind: (wheelbase range [m], sprung kg per corner, unsprung kg, spring N/m, damper N s/m, tyre N/m, cg h)
    "car": ((2.5, 2.8), (250, 380), (30, 45), (15e3, 28e3), (1.0e3, 3.0e3), (150e3, 220e3), (0.50, 0.58)),
    "suv": ((2.7, 3.0), (350, 450), (40, 55), (22e3, 35e3), (1.0e3, 3.0e3), (180e3, 250e3), (0.60, 0.72)),
    "pickup": ((3.2, 3.7), (350, 450), (45, 55), (25e3, 35e3), (1.0e3, 3.0e3), (200e3, 250e3), (0.65, 0.78)),
}


def draw_car(rng: np.random.Generator, kind: str) -> Car:
    """A random vehicle of ``kind`` with per-corner parameters in the typical ranges (FIELD_NOTES)."""
    wb, ms, mu, ks, cs, kt, h = CAR_KINDS[kind]
    base = {"ms": rng.uniform(*ms), "mu": rng.uniform(*mu), "ks": rng.uniform(*ks), "kt": rng.uniform(*kt)}
    k_eff = base["ks"] * base["kt"] / (base["ks"] + base["kt"])
    # dampers are tuned for a body damping ratio of 0.2-0.4; the result stays within the typical c_s range
    base["cs"] = float(np.clip(2 * rng.uniform(0.2, 0.4) * np.sqrt(k_eff * base["ms"]), *cs))
    front_share = rng.uniform(0.52, 0.60)           # engines sit in front: more sprung mass there
    corners = {}
    for name in CORNERS:
        share = front_share if name[0] == "F" else 1.0 - front_share
        corners[name] = QuarterCar(
            sprung_kg=float(np.clip(2 * share * base["ms"], *ms)),
            unsprung_kg=float(base["mu"] * rng.uniform(0.97, 1.03)),
            spring_npm=float(base["ks"] * (1.1 if name[0] == "F" else 0.95) * rng.uniform(0.98, 1.02)),
            damper_nspm=float(base["cs"] * rng.uniform(0.95, 1.05)),
            tyre_npm=float(base["kt"] * rng.uniform(0.97, 1.03)),
        )
    return Car(kind=kind, wheelbase_m=float(rng.uniform(*wb)), track_m=float(rng.uniform(1.50, 1.60)),
               cg_height_m=float(rng.uniform(*h)), tyre_radius_m=float(rng.uniform(0.29, 0.36)),
               tyre_width_m=float(rng.uniform(0.19, 0.26)), roll_transfer=float(rng.uniform(0.4, 0.7)),
               corners=corners)


# --------------------------------------------------------------------------------------------------------------
# Simulation of one corner
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CornerResponse:
    """Time series of one corner at the simulation rate. Positions [m], velocities [m/s], forces [N]."""

    z_s: np.ndarray
    v_s: np.ndarray
    a_s: np.ndarray          # body-corner acceleration [m/s^2] (gravity excluded)
    z_u: np.ndarray
    v_u: np.ndarray
    tyre_force_n: np.ndarray  # total tyre load, >= 0
    airborne: np.ndarray      # bool


class _Discrete:
    """Exact discretisation of a quarter-car's two regimes at ``fs_hz``."""

    def __init__(self, qc: QuarterCar, fs_hz: float) -> None:
        self.qc = qc
        dt = 1.0 / fs_hz
        a, b = qc.matrices()
        m = np.zeros((6, 6))
        m[:4, :4], m[:4, 4:] = a, b
        e = expm(m * dt)                              # zero-order hold of (r, f)
        self.ad, self.bd = e[:4, :4], e[:4, 4:]
        self.lam, self.vec = np.linalg.eig(self.ad)
        self.vec_inv = np.linalg.inv(self.vec)
        # flight: augmented state (z_s, v_s, z_u, v_u, 1, f) with the tyre removed and -(m_s+m_u) g on m_u
        af = np.zeros((6, 6))
        af[:4, :4] = a
        af[3, 2] += qc.tyre_npm / qc.unsprung_kg      # undo the tyre spring on the wheel
        af[3, 4] = -qc.static_tyre_force_n / qc.unsprung_kg
        af[1, 5] = 1.0 / qc.sprung_kg
        self.flight_step = expm(af * dt)

    @cached_property
    def flight_powers(self) -> np.ndarray:
        """E^k for k = 0 .. 511 (0.5 s at 1 kHz), by repeated doubling (no loop over samples)."""
        k_max = 512
        p = np.empty((k_max, 6, 6))
        p[0] = np.eye(6)
        n, e_n = 1, self.flight_step
        while n < k_max:
            m = min(n, k_max - n)
            p[n:n + m] = p[:m] @ e_n
            e_n = e_n @ e_n
            n *= 2
        return p

    def forced(self, u: np.ndarray) -> np.ndarray:
        """States (4, N) of the contact system from rest, inputs u (N, 2)."""
        g = self.vec_inv @ (self.bd @ u.T)            # (4, N) modal inputs
        q = np.empty_like(g)
        for j in range(4):                            # modes, not samples
            q[j] = lfilter([0.0, 1.0], [1.0, -self.lam[j]], g[j])
        return (self.vec @ q).real

    def free(self, x0: np.ndarray, n: int) -> np.ndarray:
        """States (4, n) of the unforced contact system from x0."""
        k = np.arange(n)
        q0 = self.vec_inv @ x0
        return (self.vec @ (self.lam[:, None] ** k[None, :] * q0[:, None])).real


_CACHE: dict[tuple[QuarterCar, float], _Discrete] = {}


def _discrete(qc: QuarterCar, fs_hz: float) -> _Discrete:
    key = (qc, float(fs_hz))
    if key not in _CACHE:
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = _Discrete(qc, fs_hz)
    return _CACHE[key]


def simulate_corner(qc: QuarterCar, road_m: np.ndarray, fs_hz: float, force_n: np.ndarray | None = None, *,
                    liftoff: bool = True, settle_s: float = 5.0) -> CornerResponse:
    """Response of one corner to the tyre-envelope road input ``road_m`` (N,) sampled at ``fs_hz``.

    Starts at rest on the road at its first height. ``force_n`` (N,) is an external vertical force on the
    body corner. With ``liftoff`` the tyre cannot pull (see the module docstring).
    """
    r = np.asarray(road_m, dtype=np.float64)
    n = r.size
    f = np.zeros(n) if force_n is None else np.asarray(force_n, dtype=np.float64)
    r0 = r[0]
    rel = r - r0
    dsc = _discrete(qc, fs_hz)
    x = dsc.forced(np.column_stack((rel, f)))
    delta0 = qc.static_tyre_force_n / qc.tyre_npm           # static tyre deflection [m]
    airborne = np.zeros(n, dtype=bool)
    if liftoff:
        window = max(1, int(settle_s * fs_hz))
        powers = dsc.flight_powers
        viol = x[2] - rel > delta0
        pos = 0
        while True:
            hits = np.flatnonzero(viol[pos:])
            if hits.size == 0:
                break
            i0 = pos + int(hits[0])
            y = np.concatenate((x[:, i0], [1.0, f[i0]]))
            i = i0
            landed = None
            while landed is None and i < n - 1:                     # one pass per 0.5 s of flight
                traj = np.einsum("kij,j->ki", powers, y)            # states at i, i+1, ...
                m = min(traj.shape[0], n - i)
                on_road = traj[1:m, 2] - rel[i + 1:i + m] <= delta0
                if on_road.any():
                    k = int(np.argmax(on_road)) + 1
                    x[:, i:i + k] = traj[:k, :4].T
                    airborne[i:i + k] = True
                    landed = (i + k, traj[k, :4])
                else:
                    x[:, i:i + m] = traj[:m, :4].T
                    airborne[i:i + m] = True
                    y = traj[m - 1].copy()
                    i += m - 1
            if landed is None:
                break
            i1, state = landed
            w = min(window, n - i1)
            x[:, i1:i1 + w] += dsc.free(state - x[:, i1], w)
            viol[i1:i1 + w] = x[2, i1:i1 + w] - rel[i1:i1 + w] > delta0
            pos = i1
    z_s, v_s, z_u, v_u = x
    a_s = (-qc.spring_npm * (z_s - z_u) - qc.damper_nspm * (v_s - v_u) + f) / qc.sprung_kg
    tyre = np.where(airborne, 0.0, np.maximum(qc.static_tyre_force_n + qc.tyre_npm * (rel - z_u), 0.0))
    return CornerResponse(z_s=z_s + r0, v_s=v_s, a_s=a_s, z_u=z_u + r0, v_u=v_u, tyre_force_n=tyre,
                          airborne=airborne)


# --------------------------------------------------------------------------------------------------------------
# The rigid body
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BodyMotion:
    """Rigid-body motion at the simulation rate: heave [m, m/s, m/s^2] at mid-wheelbase, pitch (nose down
    positive) and roll (left up positive) [rad, rad/s, rad/s^2]."""

    heave: np.ndarray
    heave_acc: np.ndarray
    pitch: np.ndarray
    pitch_rate: np.ndarray
    pitch_acc: np.ndarray
    roll: np.ndarray
    roll_rate: np.ndarray
    roll_acc: np.ndarray


def body_motion(corners: dict[str, CornerResponse], car: Car) -> BodyMotion:
    """Heave, pitch and roll of the body from its four corners' sprung-mass motion."""
    def combine(attr: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fl, fr, rl, rr = (getattr(corners[c], attr) for c in CORNERS)
        heave = (fl + fr + rl + rr) / 4
        pitch = ((rl + rr) - (fl + fr)) / (2 * car.wheelbase_m)
        roll = ((fl + rl) - (fr + rr)) / (2 * car.track_m)
        return heave, pitch, roll
    h, p, r = combine("z_s")
    _, pv, rv = combine("v_s")
    ha, pa, ra = combine("a_s")
    return BodyMotion(heave=h, heave_acc=ha, pitch=p, pitch_rate=pv, pitch_acc=pa, roll=r, roll_rate=rv,
                      roll_acc=ra)
