"""Physics checks of the simulator: each compares a simulated quantity with what theory puts there."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import coherence, csd, welch

from bump.sim.driving import limit_profile, motion_from_knots, time_knots
from bump.sim.phone import (
    MOUNT_KINDS,
    CarKinematics,
    body_angular_rate,
    body_specific_force,
    draw_mount,
    draw_phone,
    mount_filter,
    orientation_track,
    read_accelerometer,
    to_phone_frame,
)
from bump.sim.road import (
    ISO8608_GD_N0_M3,
    N0_CPM,
    Defect,
    defect_height_m,
    iso8608_profile,
    polyline_between,
    wheel_path_profiles,
)
from bump.sim.tyre import tyre_envelope_m
from bump.sim.vehicle import CORNERS, BodyMotion, QuarterCar, body_motion, draw_car, simulate_corner
from detect.iri import golden_car_iri, golden_car_matrices

FS = 1000.0
G = 9.80665


def typical_cars() -> list[QuarterCar]:
    return [draw_car(np.random.default_rng(seed), kind).corners["FL"]
            for seed, kind in ((1, "car"), (2, "suv"), (3, "pickup"))]


# ---------------------------------------------------------------------------------------------------------------
# Quarter-car
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("qc", typical_cars(), ids=["car", "suv", "pickup"])
def test_quarter_car_resonances_where_theory_puts_them(qc: QuarterCar) -> None:
    """Drive the simulated corner with a small random road and measure its transfer functions.

    Theory: body mode f_b = sqrt(k_s k_t / (k_s + k_t) / m_s) / 2 pi, wheel hop f_w = sqrt((k_s + k_t) / m_u) / 2 pi
    (1-1.5 Hz and 10-12 Hz for typical cars). With damping ratio zeta the response peaks lower: body
    transmissibility at f_b sqrt(sqrt(1 + 8 zeta^2) - 1) / (2 zeta), wheel at f_w sqrt(1 - 2 zeta^2)."""
    assert 0.9 < qc.body_hz < 1.8 and 9.0 < qc.wheel_hop_hz < 14.0
    k_eff = qc.spring_npm * qc.tyre_npm / (qc.spring_npm + qc.tyre_npm)
    zeta_b = qc.damper_nspm / (2 * np.sqrt(k_eff * qc.sprung_kg))
    zeta_w = qc.damper_nspm / (2 * np.sqrt((qc.spring_npm + qc.tyre_npm) * qc.unsprung_kg))
    peak_b = qc.body_hz * np.sqrt(np.sqrt(1 + 8 * zeta_b**2) - 1) / (2 * zeta_b)
    peak_w = qc.wheel_hop_hz * np.sqrt(1 - 2 * zeta_w**2)
    rng = np.random.default_rng(0)
    road = 1e-3 * rng.standard_normal(int(240 * FS))
    res = simulate_corner(qc, road, FS, liftoff=False)
    f, p_rr = welch(road, FS, nperseg=2**15)                       # 0.03 Hz resolution: sharp peaks survive
    _, p_rs = csd(road, res.z_s, FS, nperseg=2**15)
    _, p_ru = csd(road, res.z_u, FS, nperseg=2**15)
    h_s, h_u = np.abs(p_rs / p_rr), np.abs(p_ru / p_rr)
    body = (f > 0.4) & (f < 4.0)
    hop = (f > 5.0) & (f < 25.0)
    assert f[body][np.argmax(h_s[body])] == pytest.approx(peak_b, rel=0.1)
    assert f[hop][np.argmax(h_u[hop])] == pytest.approx(peak_w, rel=0.1)
    cont_s, cont_u = qc.frequency_response(f)
    check = (f > 0.3) & (f < 30.0)
    np.testing.assert_allclose(h_s[check], np.abs(cont_s[check]), rtol=0.08, atol=2e-3)
    np.testing.assert_allclose(h_u[check], np.abs(cont_u[check]), rtol=0.08, atol=2e-3)
    assert h_s[(f > 0.05) & (f < 0.2)].mean() == pytest.approx(1.0, abs=0.05)   # the body follows long waves


def test_tyre_cannot_pull_a_wheel_into_a_hole() -> None:
    """Over a 10 cm, 1 m pothole at 14 m/s the wheel leaves the road (zero tyre force) and drops more slowly than
    a tyre that could pull; in the air it obeys m_u a_u = suspension force - (m_s + m_u) g."""
    qc = QuarterCar(350.0, 40.0, 25e3, 1800.0, 200e3)
    dx, v = 0.02, 14.0
    x = np.arange(0.0, 60.0, dx)
    hole = Defect("p", "pothole", "r", 30.0, 0.0, 1.0, 0.8, depth_m=0.10, wall_exponent=8.0)
    env = tyre_envelope_m(defect_height_m(hole, x - 30.0, 0.0 * x), dx, radius_m=0.32, patch_m=0.12)
    t = np.arange(0.0, 60.0 / v, 1 / FS)
    road = np.interp(v * t, x, env)
    free = simulate_corner(qc, road, FS, liftoff=True)
    glued = simulate_corner(qc, road, FS, liftoff=False)
    assert free.airborne.sum() > 20                                   # tens of ms in the air
    assert free.z_u.min() > glued.z_u.min() + 0.02                    # the glued wheel is yanked down
    assert free.a_s.min() > glued.a_s.min()
    air = np.flatnonzero(free.airborne)[2:-2]
    a_u = np.gradient(free.v_u, 1 / FS)[air]
    expected = (qc.spring_npm * (free.z_s - free.z_u) + qc.damper_nspm * (free.v_s - free.v_u))[air] \
        / qc.unsprung_kg - (qc.sprung_kg + qc.unsprung_kg) * G / qc.unsprung_kg
    np.testing.assert_allclose(a_u, expected, atol=2.0)
    ground = ~free.airborne
    delta0 = qc.static_tyre_force_n / qc.tyre_npm
    assert np.all(free.z_u[ground] - road[ground] <= delta0 + 1e-6)  # on the ground = tyre compressed


def test_no_liftoff_on_an_ordinary_road() -> None:
    qc = typical_cars()[0]
    dx, v = 0.02, 14.0
    prof = iso8608_profile(int(1000 / dx), dx, ISO8608_GD_N0_M3["B"], np.random.default_rng(1))
    env = tyre_envelope_m(prof, dx)
    t = np.arange(0.0, 900.0 / v, 1 / FS)
    res = simulate_corner(qc, np.interp(v * t, np.arange(prof.size) * dx, env), FS)
    assert not res.airborne.any()
    rms = res.a_s.std()
    assert 0.1 < rms < 1.5          # ride on a class-B road at 50 km/h: tenths of m/s^2


@pytest.mark.parametrize("length_m", [0.2, 0.4, 0.6, 1.0])
def test_tyre_envelope_bridges_short_holes(length_m: float) -> None:
    """A wheel of radius R reaches only R - sqrt(R^2 - L^2/4) into a hole of length L (rigid-wheel geometry)."""
    dx, radius, depth = 0.005, 0.3, 0.12
    x = np.arange(-2.0, 2.0, dx)
    profile = np.where(np.abs(x) < length_m / 2, -depth, 0.0)
    env = tyre_envelope_m(profile, dx, radius_m=radius, patch_m=0.0)
    expected = min(depth, radius - np.sqrt(max(radius**2 - (length_m / 2) ** 2, 0.0)))
    assert -env.min() == pytest.approx(expected, abs=dx)
    assert env.max() == pytest.approx(0.0, abs=1e-12)
    bump = tyre_envelope_m(-profile, dx, radius_m=radius, patch_m=0.0)
    assert bump.max() == pytest.approx(depth, abs=1e-9)                     # a bump is felt in full
    assert (bump > 1e-3).sum() * dx > length_m + 0.2                        # and met early by the tyre's arc


# ---------------------------------------------------------------------------------------------------------------
# ISO 8608 and IRI
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ["A", "B", "C", "D", "E"])
def test_iso8608_profile_has_the_class_psd(cls: str) -> None:
    gd = ISO8608_GD_N0_M3[cls]
    dx = 0.05
    z = iso8608_profile(int(5000 / dx), dx, gd, np.random.default_rng(7))
    n, p = welch(z, fs=1 / dx, nperseg=8192)
    band = (n > 0.05) & (n < 3.0)
    slope, icpt = np.polyfit(np.log10(n[band]), np.log10(p[band]), 1)
    assert slope == pytest.approx(-2.0, abs=0.1)
    assert 10 ** (icpt + slope * np.log10(N0_CPM)) == pytest.approx(gd, rel=0.2)


def test_wheel_paths_share_long_waves_not_short_ones() -> None:
    dx = 0.05
    inner, outer = wheel_path_profiles(int(4000 / dx), dx, ISO8608_GD_N0_M3["B"], np.random.default_rng(2))
    n, coh = coherence(inner, outer, fs=1 / dx, nperseg=4096)
    assert coh[(n > 0.02) & (n < 0.06)].mean() > 0.8
    assert coh[(n > 1.5) & (n < 3.0)].mean() < 0.2
    _, p_in = welch(inner, fs=1 / dx, nperseg=4096)
    _, p_out = welch(outer, fs=1 / dx, nperseg=4096)
    band = (n > 0.1) & (n < 3)
    assert np.median(p_out[band] / p_in[band]) == pytest.approx(1.0, rel=0.25)


def expected_iri(gd_n0_m3: float) -> float:
    """Random-vibration expectation of the IRI of an ISO 8608 (w = 2) profile: the suspension velocity is
    Gaussian, so E|z'_u - z'_s| = sqrt(2/pi) sigma with sigma^2 = int |H(2 pi i V n)|^2 G_slope(n) sinc^2(0.25 n) dn,
    G_slope = (2 pi n)^2 G_d(n), constant for w = 2."""
    a, b = golden_car_matrices()
    v = 80 / 3.6
    n = np.logspace(-3, 1.5, 20000)
    h = np.array([-1, 0, 1, 0]) @ np.linalg.solve(2j * np.pi * v * n[:, None, None] * np.eye(4) - a,
                                                  np.broadcast_to(b, (n.size, 4))[..., None])
    g_slope = (2 * np.pi * N0_CPM) ** 2 * gd_n0_m3 * np.sinc(0.25 * n) ** 2
    sigma = np.sqrt(np.trapezoid(np.abs(h[:, 0]) ** 2 * g_slope, n))
    return 1000 * np.sqrt(2 / np.pi) * sigma


@pytest.mark.parametrize("cls", ["A", "B", "C"])
def test_iri_of_generated_profiles_falls_in_the_class_band(cls: str) -> None:
    """The class band is [IRI(G/2), IRI(2 G)] (ISO 8608 class limits are half and double the class mean).
    Theory gives A ~1.5-3.1, B ~3.1-6.1, C ~6.1-12.3 m/km, consistent with IRI ~ 0.54 sqrt(G_d(n0) 1e6)."""
    gd = ISO8608_GD_N0_M3[cls]
    dx = 0.05
    iri = np.mean([golden_car_iri(iso8608_profile(int(2000 / dx), dx, gd, np.random.default_rng(s)), dx)
                   for s in range(3)])
    assert iri == pytest.approx(expected_iri(gd), rel=0.05)
    assert expected_iri(gd / 2) < iri < expected_iri(gd * 2)
    assert iri == pytest.approx(0.54 * np.sqrt(gd * 1e6), rel=0.05)


# ---------------------------------------------------------------------------------------------------------------
# The phone
# ---------------------------------------------------------------------------------------------------------------

def still_body(n: int) -> tuple[CarKinematics, BodyMotion]:
    z = np.zeros(n)
    return (CarKinematics(z, z, z, z),
            BodyMotion(heave=z, heave_acc=z, pitch=z, pitch_rate=z, pitch_acc=z, roll=z, roll_rate=z, roll_acc=z))


@pytest.mark.parametrize("kind", MOUNT_KINDS)
def test_phone_at_rest_reads_one_g_in_every_mount(kind: str) -> None:
    n = int(3 * FS)
    t = np.arange(n) / FS
    kin, body = still_body(n)
    for seed in range(15):
        rng = np.random.default_rng(seed)
        mount = draw_mount(rng, kind, 2.7)
        phone = draw_phone(rng, 100.0, True)
        f_body = mount_filter(body_specific_force(kin, body, mount.position_m), mount.resonance_hz, mount.damping,
                              FS)
        f_phone = to_phone_frame(orientation_track(t, mount, []), f_body)
        ts = np.arange(0.0, 3.0, 0.01)
        a = read_accelerometer(t, f_phone, ts, phone, rng)
        assert np.linalg.norm(a, axis=1).mean() == pytest.approx(G, abs=0.15)
        up = a.mean(axis=0) / np.linalg.norm(a.mean(axis=0))          # the phone's view of "up"
        tilt_deg = np.degrees(np.arccos(up[2]))                        # screen normal from vertical
        if kind == "flat":
            assert tilt_deg < 8
        elif kind == "cup_holder":
            assert 28 < tilt_deg < 72                                  # leaning 20-60 deg from vertical
        else:
            assert tilt_deg > 55 and max(abs(up[0]), abs(up[1])) > 0.8  # upright, portrait or landscape


@pytest.mark.parametrize("kind", MOUNT_KINDS)
def test_gyro_and_accelerometer_share_the_phone_frame(kind: str) -> None:
    """In a level turn at yaw rate r, the gyro's component along the accelerometer's gravity equals r, and
    the accelerometer's horizontal part is the centripetal acceleration v r."""
    n = 2000
    kin, body = still_body(n)
    v, r = 10.0, 0.2
    kin = CarKinematics(np.zeros(n), np.full(n, v * r), np.full(n, r), np.zeros(n))
    mount = draw_mount(np.random.default_rng(4), kind, 2.7)
    orient = orientation_track(np.arange(n) / FS, mount, [])
    f = to_phone_frame(orient, body_specific_force(kin, body, (0.0, 0.0, 0.0)))
    w = to_phone_frame(orient, body_angular_rate(kin, body))
    up = f / np.linalg.norm(f, axis=1)[:, None]                         # (0, v r, g) in the body frame
    assert np.linalg.norm(f, axis=1) == pytest.approx(np.hypot(G, v * r))
    assert np.einsum("ij,ij->i", w, up) == pytest.approx(r * G / np.hypot(G, v * r))
    assert np.linalg.norm(w, axis=1) == pytest.approx(r)


def test_braking_pitches_the_nose_down_and_turning_rolls_outwards() -> None:
    car = draw_car(np.random.default_rng(9), "car")
    n = int(6 * FS)
    a_long = np.where(np.arange(n) > FS, -3.0, 0.0)
    a_lat = np.where(np.arange(n) > FS, 3.0, 0.0)                        # left turn
    forces = car.load_transfer_n(a_long, a_lat)
    corners = {c: simulate_corner(car.corners[c], np.zeros(n), FS, forces[c]) for c in CORNERS}
    body = body_motion(corners, car)
    pitch_deg_per_g = np.degrees(body.pitch[-1]) / (3.0 / G)
    roll_deg_per_g = np.degrees(body.roll[-1]) / (3.0 / G)
    assert 0.5 < pitch_deg_per_g < 5.0                                  # nose down (positive), 1-3 deg/g typical
    assert 1.0 < roll_deg_per_g < 10.0                                  # leans out: left up in a left turn


def test_speed_profile_respects_limits_and_stops() -> None:
    s = np.arange(0.0, 1000.0, 0.5)
    v_max = np.full(s.size, 14.0)
    v_max[(s > 400) & (s < 406)] = 3.0                                  # a speed bump
    v_max[-1] = v_max[0] = 0.0
    v = limit_profile(s, v_max, 1.5, 2.5)
    assert np.all(v <= v_max + 1e-9)
    dv2 = np.diff(v**2) / np.diff(s)
    assert dv2.max() <= 2 * 1.5 + 1e-6 and dv2.min() >= -2 * 2.5 - 1e-6
    tk, sk = time_knots(s, v, [(0.0, 5.0), (1000.0 - 0.5, 3.0)])
    motion = motion_from_knots(tk, sk, 100.0)
    assert np.all(np.diff(motion.s_m) >= -1e-9)                         # never rolls back
    assert motion.t_s[-1] > 5.0 + 1000.0 / 14.0
    assert motion.v_mps[motion.t_s < 4.0].max() < 0.05                  # parked at the start


def test_arc_geometry() -> None:
    pts = polyline_between((0.0, 0.0), (100.0, 0.0), bulge_m=10.0)
    assert pts[len(pts) // 2, 1] == pytest.approx(10.0, abs=0.1)       # the middle bulges to the left
    r = (50**2 + 10**2) / 20
    centre = np.array([50.0, 10.0 - r])
    assert np.hypot(*(pts - centre).T) == pytest.approx(r)
