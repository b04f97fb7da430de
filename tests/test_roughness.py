"""Roughness windows and the physical IRI calibration (detect.roughness).

The synthetic road is generated here independently of the module's frequency-domain model: white slope noise
(an ISO 8608 road of waviness 2), four corners driven in the time domain through a quarter car discretised with
``scipy.signal.cont2discrete`` + ``lfilter``, and the reference IRI from the Golden Car simulation
``detect.iri.golden_car_iri`` of the generated wheel-track profiles.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import signal

from detect.filters import bandpass
from detect.iri import golden_car_iri
from detect.roughness import (
    CAL_SPEEDS_MPS,
    RMS_FLOOR_MPS2,
    ROUGHNESS_RATE_HZ,
    WINDOW_DTYPES,
    PhoneGyro,
    ReferenceCar,
    _heave_and_roll,
    _lever_arm_fit_rows,
    _regular_blocks,
    aggregate_windows,
    block_body_rates,
    block_means_at,
    block_sums_at,
    body_rates,
    calibration_constant,
    decimation,
    derivative,
    differentiator_taps,
    gaussian_energy,
    iri_from_rms,
    k_iri,
    lever_arm_fit,
    roughness_windows,
    track_coherence,
)

T0_S = 1_780_000_000.0
BAND_HZ = (0.5, 15.0)          # the interface default
LOW_BAND_HZ = (0.5, 6.0)       # below phone-mount resonances (the recommended band)


# ------------------------------------------------------------------------------------------- slow reference twin
def windows_reference(t, a, speed, dist, valid, fs, window_m, band_hz, min_speed):
    """Plain loops over blocks and windows: the obviously-correct twin of roughness_windows."""
    m = decimation(fs, band_hz)
    blocks = [list(range(i, min(i + m, t.size))) for i in range(0, t.size, m)]
    t_in, d_last = t, dist[-1]
    t = np.array([t_in[b[0]] for b in blocks])
    dist = np.array([dist[b[0]] for b in blocks])
    a = np.array([np.mean([a[i] for i in b]) for b in blocks])
    speed = np.array([np.mean([speed[i] for i in b]) for b in blocks])
    valid = np.array([all(valid[i] for i in b) for b in blocks])
    fs_d = fs / m
    energy = gaussian_energy(bandpass(a, band_hz, fs_d), fs_d)
    k_of = np.floor((dist - dist[0]) / window_m).astype(int)
    rows = []
    for k in np.unique(k_of):
        sel = np.flatnonzero(k_of == k)
        start = dist[0] + k * window_m
        nxt = sel[-1] + 1
        full = nxt < t.size
        length = window_m if full else d_last - start
        v = speed[sel]
        vk = v[np.isfinite(v)]
        mean_v = vk.mean() if vk.size else np.nan
        fast = np.count_nonzero(np.isfinite(v) & (np.nan_to_num(v) >= min_speed))
        ok = full and valid[sel].all() and fast >= 0.9 * sel.size and sel.size >= 2
        rms = np.sqrt(np.mean(energy[sel]))
        iri = float(iri_from_rms(rms, mean_v, band_hz=band_hz, fs_hz=fs_d, decimation=m)) if ok else np.nan
        rows.append((t[sel[0]], t[nxt] if full else t_in[-1] + 1 / fs, start, length, mean_v, rms, iri, ok))
    return {name: np.array([r[i] for r in rows]) for i, name in enumerate(WINDOW_DTYPES)}


def _trace(fs_hz, duration_s=60.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs_hz)
    t = T0_S + np.arange(n) / fs_hz
    speed = 12.0 + 4.0 * np.sin(np.arange(n) / fs_hz / 9.0)
    speed[: int(5 * fs_hz)] = np.linspace(0.0, speed[int(5 * fs_hz)], int(5 * fs_hz))   # starts from rest
    speed[int(20 * fs_hz): int(22 * fs_hz)] = np.nan                                    # GPS outage
    dist = np.cumsum(np.nan_to_num(speed) / fs_hz)
    a = rng.normal(0.0, 0.8, n)
    valid = np.ones(n, dtype=bool)
    valid[int(40 * fs_hz): int(41 * fs_hz)] = False                                     # data gap
    return t, a, speed, dist, valid


def _assert_same_windows(got, ref) -> None:
    for name in WINDOW_DTYPES:
        if name == "valid":
            np.testing.assert_array_equal(got[name], ref[name])
        else:
            assert_allclose(got[name], ref[name], rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("fs_hz", [10.0, 100.0])
def test_vectorised_matches_reference_twin(fs_hz):
    t, a, speed, dist, valid = _trace(fs_hz)
    got = roughness_windows(t, a, speed, dist, valid, fs_hz, window_m=20.0, band_hz=BAND_HZ, min_speed_mps=4.0)
    ref = windows_reference(t, a, speed, dist, valid, fs_hz, 20.0, BAND_HZ, 4.0)
    assert got.names == list(WINDOW_DTYPES)
    assert len(got) == ref["t_start_s"].size > 20
    _assert_same_windows(got, ref)


def test_distance_unknown_at_first_and_dipping_matches_the_twin_on_its_running_maximum():
    fs = 100.0
    t, a, speed, dist, valid = _trace(fs)
    raw = dist.copy()
    raw[:333] = np.nan                             # no distance before the first fix (an odd number of samples)
    raw[2000:2050] -= 3.0                          # a dip: the running maximum holds
    raw[4000:4003] = np.nan
    clean = np.fmax.accumulate(raw)
    clean[np.isnan(clean)] = clean[np.isfinite(clean)][0]
    got = roughness_windows(t, a, speed, raw, valid, fs, window_m=20.0, band_hz=BAND_HZ, min_speed_mps=4.0)
    ref = windows_reference(t, a, speed, clean, valid, fs, 20.0, BAND_HZ, 4.0)
    assert len(got) == ref["t_start_s"].size > 20
    _assert_same_windows(got, ref)
    assert len(roughness_windows(t, a, speed, np.full(t.size, np.nan), valid, fs)) == 0


def test_non_finite_acceleration_is_a_gap_of_zeros():
    fs = 100.0
    t, a, speed, dist, valid = _trace(fs)
    bad = a.copy()
    bad[[1234, 3001]] = [np.nan, np.inf]
    zeroed, gap = a.copy(), valid.copy()
    zeroed[[1234, 3001]] = 0.0
    gap[[1234, 3001]] = False
    got = roughness_windows(t, bad, speed, dist, valid, fs)
    want = roughness_windows(t, zeroed, speed, dist, gap, fs)
    for name in WINDOW_DTYPES:
        assert_allclose(got[name], want[name], rtol=0, atol=0, equal_nan=True, err_msg=name)
    assert np.count_nonzero(want["valid"]) < np.count_nonzero(roughness_windows(t, a, speed, dist, valid, fs)["valid"])


def test_invalid_windows_gap_low_speed_and_partial():
    fs = 50.0
    t, a, speed, dist, valid = _trace(fs)
    w = roughness_windows(t, a, speed, dist, valid, fs)
    mid_t = 0.5 * (w["t_start_s"] + w["t_end_s"]) - T0_S
    touches_gap = (w["t_start_s"] - T0_S < 41.0) & (w["t_end_s"] - T0_S > 40.0)
    assert touches_gap.any() and not w["valid"][touches_gap].any()
    slow = mid_t < 2.0                                          # accelerating from rest
    assert slow.any() and not w["valid"][slow].any()
    outage = (w["t_start_s"] - T0_S < 22.0) & (w["t_end_s"] - T0_S > 20.0)
    assert outage.any() and not w["valid"][outage].any()
    assert not w["valid"][-1]                                   # the trace ends inside the last window
    assert w["length_m"][-1] < 20.0
    assert np.all(np.isnan(w["iri_m_per_km"][~w["valid"]]))
    assert np.all(np.isfinite(w["iri_m_per_km"][w["valid"]])) and w["valid"].sum() > 10
    assert_allclose(np.diff(w["distance_start_m"]), 20.0)
    assert_allclose(w["t_start_s"][1:], w["t_end_s"][:-1])


def test_a_stuck_accelerometer_is_no_smooth_road():
    """A sensor repeating one value (RMS 0) reads below any accelerometer's own noise: its windows are invalid,
    not a road of IRI 0 on the map; a faint but real vibration, at the noise of a quiet phone, still counts."""
    fs = 100.0
    n = 6000
    t = T0_S + np.arange(n) / fs
    w = roughness_windows(t, np.zeros(n), np.full(n, 15.0), 15.0 * np.arange(n) / fs, np.ones(n, bool), fs)
    assert len(w) == 45
    assert np.all(w["rms_mps2"] == 0.0)
    assert not w["valid"].any() and np.isnan(w["iri_m_per_km"]).all()
    noise = np.random.default_rng(0).normal(0.0, 0.004, n)        # ~60 ug/sqrt(Hz) over 50 Hz
    w = roughness_windows(t, noise, np.full(n, 15.0), 15.0 * np.arange(n) / fs, np.ones(n, bool), fs)
    assert w["valid"].sum() == 44 and (w["rms_mps2"][w["valid"]] > RMS_FLOOR_MPS2).all()


@pytest.mark.parametrize("fs_hz", [5.0, 10.0, 50.0, 100.0, 200.0])
def test_all_rates_run(fs_hz):
    t, a, speed, dist, valid = _trace(fs_hz, duration_s=40.0)
    w = roughness_windows(t, a, speed, dist, valid, fs_hz)
    assert w.names == list(WINDOW_DTYPES) and len(w) > 10
    good = w["valid"]
    assert good.any()
    assert np.all((w["iri_m_per_km"][good] > 0) & np.isfinite(w["iri_m_per_km"][good]))
    agg = aggregate_windows(w, 100.0)
    assert agg.names == list(WINDOW_DTYPES)
    assert np.all(agg["length_m"] >= 100.0 - 1e-9)


@pytest.mark.parametrize("n", [0, 1, 3])
def test_empty_and_short_input(n):
    fs = 50.0
    t = T0_S + np.arange(n) / fs
    w = roughness_windows(t, np.zeros(n), np.full(n, 10.0), 10.0 * np.arange(n) / fs, np.ones(n, bool), fs)
    assert w.names == list(WINDOW_DTYPES)
    assert len(w) <= 1 and not np.any(w["valid"])
    agg = aggregate_windows(w)
    assert agg.names == list(WINDOW_DTYPES) and len(agg) == 0


def test_aggregate_groups_consecutive_valid_windows():
    n_win = 13
    valid = np.ones(n_win, dtype=bool)
    valid[6] = False                                            # breaks the run: 0-5 and 7-12
    iri = np.linspace(1.0, 4.0, n_win)
    start = 20.0 * np.arange(n_win)
    from detect.columns import Columns
    w = Columns({"t_start_s": start / 10.0, "t_end_s": (start + 20.0) / 10.0, "distance_start_m": start,
                 "length_m": np.full(n_win, 20.0), "speed_mps": np.full(n_win, 10.0),
                 "rms_mps2": iri / 10.0, "iri_m_per_km": np.where(valid, iri, np.nan), "valid": valid})
    agg = aggregate_windows(w, 100.0)
    assert len(agg) == 2                                        # windows 0-4 and 7-11; 5 and 12 are leftovers
    assert_allclose(agg["distance_start_m"], [0.0, 140.0])
    assert_allclose(agg["iri_m_per_km"], [np.sqrt(np.mean(iri[0:5] ** 2)), np.sqrt(np.mean(iri[7:12] ** 2))])
    assert_allclose(agg["length_m"], 100.0)
    assert_allclose(agg["speed_mps"], 10.0)
    assert_allclose(agg["t_end_s"], [10.0, 24.0])


# --------------------------------------------------------------------------------- physics of the calibration
def test_k_iri_matches_golden_car_on_white_slope_road():
    rng = np.random.default_rng(3)
    dx, g0 = 0.05, 64e-6                                        # ISO 8608 class B
    slope = rng.normal(0.0, np.sqrt(g0 * (2 * np.pi * 0.1) ** 2 / (2 * dx)), 200_000)
    iri = golden_car_iri(np.cumsum(slope) * dx, dx)
    assert iri == pytest.approx(k_iri() * np.sqrt(g0), rel=0.04)
    assert k_iri() * np.sqrt(16e-6) == pytest.approx(2.17, abs=0.02)


def test_calibration_without_wheelbase_is_speed_independent():
    quarter = ReferenceCar(wheelbase_m=0.0)
    c = calibration_constant(CAL_SPEEDS_MPS, band_hz=BAND_HZ, fs_hz=100.0, car=quarter)
    assert_allclose(c, c[0], rtol=1e-9)
    c_car = calibration_constant(CAL_SPEEDS_MPS, band_hz=BAND_HZ, fs_hz=100.0)
    assert np.ptp(c_car) > 0.05 * c_car.mean()                  # the wheelbase filter makes it speed dependent


def _body_accel_discrete(car: ReferenceCar, fs_hz: float):
    """Quarter-car body acceleration per road elevation, discretised (bilinear) for lfilter."""
    ms, mu, ks, cs, kt = car.sprung_kg, car.unsprung_kg, car.spring_n_m, car.damper_n_s_m, car.tyre_n_m
    num = np.polymul([1.0, 0.0, 0.0], np.array([kt * cs, kt * ks]))                      # s^2 * kt (cs s + ks)
    den = np.polysub(np.polymul([mu, cs, ks + kt], [ms, cs, ks]), np.polymul([cs, ks], [cs, ks]))
    b, a, _ = signal.cont2discrete((num, den), 1.0 / fs_hz, method="bilinear")
    return np.ravel(b), a


def _drive(speed_mps, tracks, dx, car, fs_phone, fs_sim=1000.0):
    """Phone vertical acceleration over two wheel-track profiles, in the time domain: four corners, the rear
    axle a wheelbase behind, the phone ``car.phone_behind_front_axle_m`` behind the front axle, centred."""
    b, a = _body_accel_discrete(car, fs_sim)
    x_end = (tracks.shape[1] - 1) * dx
    t = np.arange(0.0, (x_end - car.wheelbase_m) / speed_mps, 1.0 / fs_sim)
    x_front = car.wheelbase_m + speed_mps * t
    xp = np.arange(tracks.shape[1]) * dx
    w_front = 1.0 - car.phone_behind_front_axle_m / car.wheelbase_m           # lever rule between the axles
    heave_input = sum(0.5 * (w_front * np.interp(x_front, xp, tr)
                             + (1.0 - w_front) * np.interp(x_front - car.wheelbase_m, xp, tr)) for tr in tracks)
    acc = signal.lfilter(b, a, heave_input - heave_input[0])
    step = round(fs_sim / fs_phone)                             # sampled without anti-alias filter
    acc, t = acc[::step], t[::step]
    return T0_S + t, acc, np.full(t.size, speed_mps), speed_mps * t, np.ones(t.size, dtype=bool)


def _white_slope_tracks(rng, g0_m3, dx, n, identical):
    """Wheel tracks with the ISO 8608 PSD G0 (n / 0.1)^-2: integrated white slope noise."""
    slope = rng.normal(0.0, np.sqrt(g0_m3 * (2 * np.pi * 0.1) ** 2 / (2 * dx)), (1 if identical else 2, n))
    tracks = np.cumsum(slope, axis=1) * dx
    return np.vstack([tracks, tracks]) if identical else tracks


@pytest.fixture(scope="module", params=["independent", "identical"])
def class_c_road(request):
    rng = np.random.default_rng(11)
    dx, g0 = 0.05, 256e-6                                       # ISO 8608 class C
    tracks = _white_slope_tracks(rng, g0, dx, round(2600.0 / dx), request.param == "identical")
    skip = round(200.0 / dx)                                    # the car starts on the road 200 m in
    ref = np.mean([golden_car_iri(tr[skip:], dx) for tr in tracks])
    return tracks, dx, ref, skip * dx, request.param


@pytest.mark.parametrize(("fs_hz", "band_hz"), [(50.0, LOW_BAND_HZ), (100.0, LOW_BAND_HZ), (100.0, BAND_HZ),
                                                (200.0, LOW_BAND_HZ)])
def test_recovers_golden_car_iri_at_two_speeds(class_c_road, fs_hz, band_hz):
    tracks, dx, ref_iri, skip_m, coherence = class_c_road
    car = ReferenceCar(coherence=coherence)                     # phone 0.75 m behind the front axle
    estimates = []
    for speed in (9.0, 25.0):
        t, acc, v, dist, valid = _drive(speed, tracks, dx, car, fs_hz)
        w = roughness_windows(t, acc, v, dist, valid, fs_hz, band_hz=band_hz, car=car)
        use = w["valid"] & (w["distance_start_m"] >= skip_m - car.wheelbase_m)
        assert use.sum() > 80
        estimates.append(np.sqrt(np.mean(w["iri_m_per_km"][use] ** 2)))
    assert 6.0 < ref_iri < 12.0                                 # class C is ~8.7 m/km
    for est in estimates:
        assert est == pytest.approx(ref_iri, rel=0.15)
    assert estimates[0] == pytest.approx(estimates[1], rel=0.15)


def test_box_means_change_the_estimate_by_little(class_c_road, monkeypatch):
    """Measuring on box means (here 8 samples at 200 Hz) gives the IRI of the full-rate measurement: the
    calibration carries the box's response and aliasing."""
    tracks, dx, _, skip_m, coherence = class_c_road
    car = ReferenceCar(coherence=coherence)
    t, acc, v, dist, valid = _drive(12.0, tracks, dx, car, 200.0)
    assert decimation(200.0, LOW_BAND_HZ) == 8
    est = {}
    for rate in (25.0, 1e9):                                   # the default, and no box means at all
        monkeypatch.setattr("detect.roughness.ROUGHNESS_RATE_HZ", rate)
        w = roughness_windows(t, acc, v, dist, valid, 200.0, band_hz=LOW_BAND_HZ, car=car)
        use = w["valid"] & (w["distance_start_m"] >= skip_m)
        est[rate] = np.sqrt(np.mean(w["iri_m_per_km"][use] ** 2))
    assert decimation(200.0, LOW_BAND_HZ) == 1                 # (the patch is in force)
    assert est[25.0] == pytest.approx(est[1e9], rel=0.05)


def test_a_clock_a_hair_off_its_nominal_rate_gets_the_nominal_boxes():
    for nominal in (50.0, 100.0, 200.0):
        got = {decimation(nominal * (1.0 + e), LOW_BAND_HZ) for e in (-1e-9, -2e-5, 0.0, 2e-5, 1e-9)}
        assert got == {round(nominal / ROUGHNESS_RATE_HZ)}, nominal


def test_wrong_coherence_is_detectably_wrong(class_c_road):
    """The recovery above depends on the track model: swapping it moves the estimate by > 15 %."""
    tracks, dx, ref_iri, _, coherence = class_c_road
    wrong = ReferenceCar(coherence="identical" if coherence == "independent" else "independent")
    t, acc, v, dist, valid = _drive(12.0, tracks, dx, ReferenceCar(coherence=coherence), 100.0)
    w = roughness_windows(t, acc, v, dist, valid, 100.0, band_hz=LOW_BAND_HZ, car=wrong)
    est = np.sqrt(np.nanmean(w["iri_m_per_km"][w["valid"]] ** 2))
    assert abs(est / ref_iri - 1.0) > 0.15


def test_iri_scales_with_rms_and_inverse_sqrt_speed():
    quarter = ReferenceCar(wheelbase_m=0.0)
    i1 = iri_from_rms(0.5, 10.0, band_hz=BAND_HZ, fs_hz=100.0, car=quarter)
    assert iri_from_rms(1.0, 10.0, band_hz=BAND_HZ, fs_hz=100.0, car=quarter) == pytest.approx(2 * i1)
    assert iri_from_rms(1.0, 40.0, band_hz=BAND_HZ, fs_hz=100.0, car=quarter) == pytest.approx(i1)
    assert np.isnan(iri_from_rms(1.0, np.nan, band_hz=BAND_HZ, fs_hz=100.0))
    assert np.isnan(iri_from_rms(1.0, 0.0, band_hz=BAND_HZ, fs_hz=100.0))


def test_tabulated_x_k1_matches_scipy():
    from scipy import special

    from detect.roughness import _x_k1
    x = np.concatenate([[0.0], np.geomspace(1e-8, 100.0, 50_001)])
    ref = np.where(x > 0, x * special.k1(np.maximum(x, 1e-300)), 1.0)
    assert_allclose(_x_k1(x), ref, rtol=0, atol=1e-6)


def test_isotropic_coherence_limits():
    n = np.array([1e-4, 0.1, 1.0, 10.0])
    g = track_coherence(n, 1.55)
    assert g[0] == pytest.approx(1.0, abs=1e-3) and g[-1] < 1e-20
    assert np.all(np.diff(g) < 0)
    x1 = track_coherence(np.array([0.1]), 1.0 / (2 * np.pi * 0.1))[0]
    assert x1 == pytest.approx(0.60191, rel=1e-4)               # x K1(x) at x = 1 (Abramowitz & Stegun 9.8)


# ------------------------------------------------------------------------------- Gaussian energy (robust RMS)
def test_gaussian_energy_is_unbiased_on_gaussian_noise():
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 0.7, 200_000)
    assert np.mean(gaussian_energy(x, 100.0)) == pytest.approx(0.49, rel=0.02)


def test_gaussian_energy_shrugs_off_a_transient():
    rng = np.random.default_rng(6)
    fs = 100.0
    x = bandpass(rng.normal(0.0, 1.0, 6000), LOW_BAND_HZ, fs)
    hit = x.copy()
    tt = np.arange(200) / fs
    hit[3000:3200] += 6.0 * np.exp(-tt / 0.4) * np.sin(2 * np.pi * 1.5 * tt)   # a hump shakes the body
    plain = np.mean(hit[2800:3400] ** 2) / np.mean(x[2800:3400] ** 2)
    robust = np.mean(gaussian_energy(hit, fs)[2800:3400]) / np.mean(gaussian_energy(x, fs)[2800:3400])
    assert plain > 5.0
    assert robust < 1.6


def test_gaussian_energy_follows_a_rough_patch():
    """A 6-s patch four times rougher (amplitude) is not clipped down to the smooth level around it."""
    rng = np.random.default_rng(7)
    fs = 100.0
    x = rng.normal(0.0, 1.0, 6000)
    x[2700:3300] *= 4.0
    e = gaussian_energy(x, fs)
    assert np.mean(e[2800:3200]) == pytest.approx(16.0, rel=0.2)
    assert np.mean(e[:2000]) == pytest.approx(1.0, rel=0.1)


# ----------------------------------------------------------------------------------- gyroscope: lever arm, no coherence
def derivative_reference(x, fs_hz):
    """Slow twin of ``derivative``: the FIR taps one sample at a time, the second-order difference at the ends."""
    h = differentiator_taps()
    half = h.size // 2
    n = len(x)
    out = np.empty(n)
    for i in range(n):
        if half <= i < n - half:
            out[i] = sum(h[k] * x[i + half - k] for k in range(h.size)) * fs_hz
        elif i == 0:
            out[i] = (x[1] - x[0]) * fs_hz
        elif i == n - 1:
            out[i] = (x[n - 1] - x[n - 2]) * fs_hz
        else:
            out[i] = (x[i + 1] - x[i - 1]) * fs_hz / 2.0
    return out


@pytest.mark.parametrize("n", [12, 13, 40])
def test_derivative_matches_reference_twin(n):
    x = np.random.default_rng(n).normal(size=n)
    assert_allclose(derivative(x, 20.0), derivative_reference(x, 20.0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("f_hz", [0.5, 2.0, 6.0, 7.0])
def test_derivative_of_a_sine_within_1_5_percent_up_to_0_35_of_the_rate(f_hz):
    fs = 20.0
    t = np.arange(0.0, 20.0, 1.0 / fs)
    d = derivative(np.sin(2 * np.pi * f_hz * t), fs)[10:-10]
    assert_allclose(d, 2 * np.pi * f_hz * np.cos(2 * np.pi * f_hz * t[10:-10]), atol=0.015 * 2 * np.pi * f_hz)
    assert derivative(3.0 * t, fs) == pytest.approx(np.full(t.size, 3.0))          # exact on a straight line
    if f_hz >= 6.0:                                   # the central difference is far off there
        central = np.gradient(np.sin(2 * np.pi * f_hz * t)) * fs
        assert np.abs(central - 2 * np.pi * f_hz * np.cos(2 * np.pi * f_hz * t))[10:-10].max() > 0.2 * 2 * np.pi * f_hz


def test_body_rates_project_on_each_segments_car_axes():
    rng = np.random.default_rng(3)
    t = np.arange(9.0)
    gyro = rng.normal(size=(9, 3))
    fwd, left = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    roll, pitch = body_rates(t, gyro, np.array([0.0, 4.5]), fwd, left)
    for i in range(9):
        k = 0 if t[i] < 4.5 else 1
        assert roll[i] == pytest.approx(float(gyro[i] @ fwd[k]))
        assert pitch[i] == pytest.approx(float(gyro[i] @ left[k]))


def test_block_means_at_match_a_loop_and_mark_empty_or_non_finite_blocks():
    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0.0, 10.0, 60))
    x = rng.normal(size=(2, 60))
    x[1, 17] = np.nan
    t0, step, n = -1.25, 0.75, 13                     # blocks before the first sample, and samples after the last
    got = block_means_at(t, (x[0], x[1]), t0, step, n)
    assert got.shape == (2, n)
    for j in range(2):
        for i in range(n):
            inside = (t >= t0 + i * step) & (t < t0 + (i + 1) * step)
            if not inside.any() or not np.isfinite(x[j, inside]).all():
                assert np.isnan(got[j, i])
            else:
                assert got[j, i] == pytest.approx(x[j, inside].mean(), rel=1e-12)
    assert np.isnan(got[:, 0]).all() and np.isfinite(got[0, 3:]).all()
    assert np.isnan(got[1]).sum() == np.isnan(got[0]).sum() + 1          # the NaN sample: its block alone


def test_block_means_at_count_every_sample_of_the_last_block_before_empty_ones():
    t = np.arange(10) / 20.0                                           # blocks of 4 samples, then 2, then empty
    x = np.arange(10.0) ** 2
    got = block_means_at(t, (x,), -0.025, 0.2, 5)
    assert_allclose(got[0, :3], [x[:4].mean(), x[4:8].mean(), x[8:].mean()], rtol=1e-12)
    assert np.isnan(got[0, 3:]).all()


def block_sums_reference(t, x, t0, step, n):
    """Slow twin of ``block_sums_at``: a loop over blocks and their samples."""
    sums, counts, starts = np.zeros((n, x.shape[1])), np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    for i in range(n):
        inside = [j for j in range(t.size) if t0 + i * step <= t[j] < t0 + (i + 1) * step]
        counts[i] = len(inside)
        starts[i] = inside[0] if inside else np.searchsorted(t, t0 + i * step)
        for j in inside:
            sums[i] += x[j]
    return sums, counts, starts


def _gyro_times(kind, rng, n=203, fs=20.0):
    """Sample times [s] of a gyroscope: on the blocks' clock (4 samples per 0.2-s block) or jittered with drops."""
    t = np.arange(n) / fs
    if kind == "jittered":
        t = np.sort(t + rng.uniform(-0.4, 0.4, n) / fs)[rng.random(n) > 0.1]
    return t


@pytest.mark.parametrize("kind", ["regular", "jittered"])
def test_block_sums_at_match_a_loop(kind):
    rng = np.random.default_rng(11)
    t = _gyro_times(kind, rng)
    x = rng.normal(size=(t.size, 3))
    t0, step = -0.5 / 20.0, 0.2
    for first, n in ((-1, 54), (0, 50)):              # empty blocks at both ends; 50 full blocks (3 samples after)
        got = block_sums_at(t, x, t0 + first * step, step, n)
        ref = block_sums_reference(t, x, t0 + first * step, step, n)
        assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got[1], ref[1])
        np.testing.assert_array_equal(got[2][got[1] > 0], ref[2][ref[1] > 0])
    assert (_regular_blocks(t, t0, step, 50) == (0, 4)) == (kind == "regular")    # the last: the regular path


def test_regular_blocks_need_every_block_to_hold_the_same_run():
    t = np.arange(40) / 20.0
    assert _regular_blocks(t, -0.025, 0.2, 10) == (0, 4)
    assert _regular_blocks(t, -0.025 + 0.05, 0.2, 9) == (1, 4)        # the first sample falls before block 0
    assert _regular_blocks(np.delete(t, 17), -0.025, 0.2, 9) is None   # a dropped sample
    moved = t.copy()
    moved[7] = 0.38                                                   # block 1's last sample, moved into block 2
    assert _regular_blocks(moved, -0.025, 0.2, 10) is None


@pytest.mark.parametrize("kind", ["regular", "jittered"])
def test_block_body_rates_match_the_means_of_the_projected_samples(kind):
    """Segment starts inside blocks (a block straddling one), two starts in one block, NaN: as projecting every
    sample on its own segment's axes and averaging (block_means_at of body_rates), and as a loop."""
    rng = np.random.default_rng(12)
    t = _gyro_times(kind, rng)
    g = rng.normal(size=(t.size, 3))
    g[57, 1] = np.nan
    fwd, left = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    seg_t = np.array([-1.0, 2.26, 2.31, 6.0])                         # 2.26 and 2.31: within one block
    t0, step = -0.025, 0.2
    n = 50 if kind == "regular" else 52                               # jittered: an empty block at the end
    assert (_regular_blocks(t, t0, step, n) is not None) == (kind == "regular")
    got = block_body_rates(PhoneGyro(t, g, fwd, left), seg_t, t0, step, n)
    roll, pitch = body_rates(t, g, seg_t, fwd, left)
    assert_allclose(got, block_means_at(t, (roll, pitch), t0, step, n), rtol=1e-12, atol=1e-12, equal_nan=True)
    for i in range(n):                                                # loop twin
        inside = np.flatnonzero((t >= t0 + i * step) & (t < t0 + (i + 1) * step))
        seg = np.searchsorted(seg_t, t[inside], side="right") - 1
        rows = [[g[j] @ axes[k] for j, k in zip(inside, seg, strict=True)] for axes in (fwd, left)]
        want = [np.mean(r) if len(r) and np.isfinite(r).all() else np.nan for r in rows]
        assert_allclose(got[:, i], want, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(got[:, int((t[57] - t0) // step)]).all() and np.isfinite(got[:, 10:13]).all()


def test_derivative_of_rows_into_out_matches_the_twin_row_by_row():
    x = np.random.default_rng(13).normal(size=(2, 40))
    out = np.zeros((3, 40))
    derivative(x, 20.0, out=out[1:])
    for j in range(2):
        assert_allclose(out[1 + j], derivative_reference(x[j], 20.0), rtol=1e-12, atol=1e-12)
    assert not out[0].any()
    strided = np.zeros((40, 2))
    derivative(x, 20.0, out=strided.T)                                # written through a strided view
    assert_allclose(strided.T, out[1:], rtol=1e-15)
    assert_allclose(derivative(x[:, :5], 20.0), np.gradient(x[:, :5], axis=-1) * 20.0)      # shorter than the taps


def test_gaussian_energy_of_rows_is_the_sum_of_the_rows_energies():
    fs = 20.0
    x = np.random.default_rng(14).normal(0.0, [[0.3], [1.0]], (2, 4000))
    x[0, 1500:1510] += 6.0                                            # a transient in one row
    sigma2 = [np.median(r[:2000] ** 2) / 0.4549364231195724 for r in x]
    e = gaussian_energy(x, fs)
    assert e.shape == (4000,)
    assert_allclose(e, gaussian_energy(x[0], fs) + gaussian_energy(x[1], fs), rtol=1e-12)
    ref = sum(np.minimum(r**2, 4.0 * s2) for r, s2 in zip(x, sigma2, strict=True)) / 0.920452   # loose twin
    assert np.mean(e[:1400]) == pytest.approx(np.mean(ref[:1400]), rel=0.05)


@pytest.mark.parametrize("n_out", [30, 1500])
def test_lever_arm_fit_on_rows_matches_least_squares_on_the_used_samples(n_out):
    """The products of the used samples give the least squares of a_up on the used roll and pitch samples."""
    rng = np.random.default_rng(15)
    band = rng.normal(size=(3, 2000))
    band[0] += 0.4 * band[1] - 1.1 * band[2]
    use = np.ones(2000, dtype=bool)
    use[rng.choice(2000, n_out, replace=False)] = False
    band[:, ~use] *= 50.0                                             # what is left out is loud (handling)
    beta, *_ = np.linalg.lstsq(band[1:, use].T, band[0, use], rcond=None)
    ahead, left = _lever_arm_fit_rows(band, use, 1.0, min_fit_s=10.0)
    assert (left, -ahead) == pytest.approx(tuple(beta), rel=1e-9)
    assert _lever_arm_fit_rows(band, use, 1.0, min_fit_s=2000.0) is None


def test_heave_and_roll_rows():
    rng = np.random.default_rng(16)
    band = rng.normal(size=(3, 3000))
    car = ReferenceCar()
    out = _heave_and_roll(band, np.ones(3000, dtype=bool), np.array([0, 2990]), 1.0, car)   # 10: too few to fit
    fit = lever_arm_fit(band[0, :2990], band[1, :2990], band[2, :2990], np.ones(2990, dtype=bool), 1.0)
    ahead = float(np.clip(fit[0], -car.wheelbase_m / 2, car.wheelbase_m / 2))
    left = float(np.clip(fit[1], -car.track_m / 2, car.track_m / 2))
    assert_allclose(out[0, :2990], band[0, :2990] - left * band[1, :2990] + ahead * band[2, :2990], rtol=1e-12)
    assert_allclose(out[0, 2990:], band[0, 2990:] - car.phone_left_m * band[1, 2990:]
                    + car.phone_ahead_m * band[2, 2990:], rtol=1e-12)
    assert_allclose(out[1], band[1] * car.track_m / 2, rtol=1e-15)


@pytest.mark.parametrize("kind", ["regular", "jittered"])
def test_raw_gyro_gives_the_windows_of_the_projected_rates(kind):
    """roughness_windows with the raw gyroscope and each segment's axes equals the path with the projected rates,
    with a re-mount whose start falls inside a block."""
    fs = 100.0
    t, a, v, dist, valid = _trace(fs, duration_s=120.0)
    rng = np.random.default_rng(17)
    gt = t.copy() if kind == "regular" else np.sort(t + rng.uniform(-4e-3, 4e-3, t.size))[rng.random(t.size) > 0.05]
    g = rng.normal(0.0, 0.05, (gt.size, 3))
    fwd, left = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 0.0], [0.6, 0.0, 0.8]])
    seg = np.array([0, 6002])                                         # not on a 5-sample block boundary
    roll, pitch = body_rates(gt, g, t[seg], fwd, left)
    kw = {"band_hz": LOW_BAND_HZ, "segment_starts": seg}
    got = roughness_windows(t, a, v, dist, valid, fs, gyro=PhoneGyro(gt, g, fwd, left), **kw)
    ref = roughness_windows(t, a, v, dist, valid, fs, roll_rate_rad_s=roll, pitch_rate_rad_s=pitch, rates_t_s=gt, **kw)
    acc = roughness_windows(t, a, v, dist, valid, fs, **kw)
    assert got["valid"].sum() > 50
    assert not np.allclose(got["iri_m_per_km"][got["valid"]], acc["iri_m_per_km"][got["valid"]])   # gyro was used
    _assert_same_windows(got, ref)


def _corner_filters(car: ReferenceCar, fs_hz: float):
    """(b, a) of the quarter-car body acceleration and velocity per road elevation, bilinear."""
    ms, mu, ks, cs, kt = car.sprung_kg, car.unsprung_kg, car.spring_n_m, car.damper_n_s_m, car.tyre_n_m
    den = np.polysub(np.polymul([mu, cs, ks + kt], [ms, cs, ks]), np.polymul([cs, ks], [cs, ks]))
    out = []
    for lead in ([1.0, 0.0, 0.0], [1.0, 0.0]):
        b, a, _ = signal.cont2discrete((np.polymul(lead, [kt * cs, kt * ks]), den), 1.0 / fs_hz, method="bilinear")
        out.append((np.ravel(b), a))
    return out


def _drive_rigid(speed_mps, tracks, dx, car, phones, fs_phone, fs_sim=1000.0):
    """A "four sprung masses" rigid body over two tracks: each corner its own quarter car (rear a wheelbase behind),
    heave the mean, pitch (nose down) and roll (left up) from the corner differences. For each phone position
    (ahead of mid-wheelbase, left) [m]: (t, a_up, roll rate, pitch rate, speed, distance, valid)."""
    (ba, aa), (bv, av) = _corner_filters(car, fs_sim)
    t = np.arange(0.0, ((tracks.shape[1] - 1) * dx - car.wheelbase_m) / speed_mps, 1.0 / fs_sim)
    xp = np.arange(tracks.shape[1]) * dx
    acc, vel = {}, {}
    for axle, back in (("F", 0.0), ("R", car.wheelbase_m)):
        for side, tr in zip("LR", tracks, strict=True):
            road = np.interp(car.wheelbase_m + speed_mps * t - back, xp, tr)
            acc[axle + side] = signal.lfilter(ba, aa, road - road[0])
            vel[axle + side] = signal.lfilter(bv, av, road - road[0])
    heave = sum(acc.values()) / 4
    pitch = [((d["RL"] + d["RR"]) - (d["FL"] + d["FR"])) / (2 * car.wheelbase_m) for d in (acc, vel)]
    roll = [((d["FL"] + d["RL"]) - (d["FR"] + d["RR"])) / (2 * car.track_m) for d in (acc, vel)]
    step = round(fs_sim / fs_phone)
    out = []
    for ahead, left in phones:
        a_up = heave - ahead * pitch[0] + left * roll[0]
        out.append((T0_S + t[::step], a_up[::step], roll[1][::step], pitch[1][::step], np.full(t[::step].size,
                    speed_mps), speed_mps * t[::step], np.ones(t[::step].size, dtype=bool)))
    return out


PHONES = [(0.95, 0.35), (0.1, -0.05)]          # a windscreen cradle, a cup holder [m ahead of mid-wheelbase, left]


@pytest.mark.parametrize("fs_hz", [50.0, 200.0])
def test_lever_arm_fit_recovers_the_phone_position(fs_hz):
    rng = np.random.default_rng(5)
    tracks = _white_slope_tracks(rng, 256e-6, 0.05, round(1500.0 / 0.05), identical=False)
    car = ReferenceCar()
    for (ahead, left), (_, a, roll, pitch, *_) in zip(PHONES, _drive_rigid(12.0, tracks, 0.05, car, PHONES, fs_hz),
                                                    strict=True):
        band = [bandpass(x, LOW_BAND_HZ, fs_hz) for x in (a, derivative(roll, fs_hz), derivative(pitch, fs_hz))]
        fit = lever_arm_fit(*band, np.ones(a.size, dtype=bool), fs_hz)
        # 1.5 km of road: the two tracks' energies differ by several %, which correlates heave with roll a little
        assert fit == pytest.approx((ahead, left), abs=0.1)
    assert lever_arm_fit(*band, np.arange(a.size) < 10 * fs_hz, fs_hz) is None       # 10 s: too little to fit


def test_gyro_estimate_needs_neither_the_coherence_nor_the_phone_position(class_c_road):
    """Over independent or identical tracks and with the phone on the front of the dashboard or in a cup holder,
    the gyroscope path with the default (isotropic, phone 0.75 m behind the front axle) car recovers the Golden
    Car IRI, and both phones agree; the accelerometer alone, calibrated the same way, is off by > 15 % in one of
    the cases (the coherence or the position is wrong)."""
    tracks, dx, ref_iri, skip_m, _ = class_c_road
    car = ReferenceCar()
    with_gyro, without = [], []
    for t, a, roll, pitch, v, dist, valid in _drive_rigid(12.0, tracks, dx, car, PHONES, 100.0):
        for out, kw in ((with_gyro, {"roll_rate_rad_s": roll, "pitch_rate_rad_s": pitch}), (without, {})):
            w = roughness_windows(t, a, v, dist, valid, 100.0, band_hz=LOW_BAND_HZ, car=car, **kw)
            use = w["valid"] & (w["distance_start_m"] >= skip_m)
            assert use.sum() > 80
            out.append(np.sqrt(np.mean(w["iri_m_per_km"][use] ** 2)))
    for est in with_gyro:
        assert est == pytest.approx(ref_iri, rel=0.12)
    assert with_gyro[0] == pytest.approx(with_gyro[1], rel=0.05)
    assert max(abs(e / ref_iri - 1.0) for e in without) > 0.15


def test_gyro_lever_arm_is_fitted_per_mount_segment():
    """A phone moved at a re-mount: with the segment start passed, each part gets its own lever arm and the
    estimate matches the one of a phone that stayed put; without it, one compromise fit is worse."""
    rng = np.random.default_rng(8)
    tracks = _white_slope_tracks(rng, 256e-6, 0.05, round(2600.0 / 0.05), identical=False)
    car = ReferenceCar()
    fs = 100.0
    first, second = _drive_rigid(12.0, tracks, 0.05, car, [(1.2, 0.6), (-1.0, -0.6)], fs)
    half = first[0].size // 2
    a = np.concatenate((first[1][:half], second[1][half:]))
    t, _, roll, pitch, v, dist, valid = first
    est = {}
    for name, acc, seg in (("stayed", first[1], None), ("moved", a, np.array([0, half])), ("unsplit", a, None)):
        w = roughness_windows(t, acc, v, dist, valid, fs, band_hz=LOW_BAND_HZ, car=car, roll_rate_rad_s=roll,
                              pitch_rate_rad_s=pitch, segment_starts=seg)
        use = w["valid"] & (w["distance_start_m"] >= 200.0)
        est[name] = np.sqrt(np.mean(w["iri_m_per_km"][use] ** 2))
    assert est["moved"] == pytest.approx(est["stayed"], rel=0.03)
    assert abs(est["unsplit"] / est["stayed"] - 1.0) > 0.05


def test_non_finite_gyro_rate_is_a_gap():
    fs = 50.0
    t, a, v, dist, valid = _trace(fs)
    roll = np.zeros(t.size)
    pitch = np.zeros(t.size)
    roll[400] = np.nan
    w = roughness_windows(t, a, v, dist, valid, fs, band_hz=LOW_BAND_HZ, roll_rate_rad_s=roll, pitch_rate_rad_s=pitch)
    w0 = roughness_windows(t, a, v, dist, valid, fs, band_hz=LOW_BAND_HZ)
    hit = (w["t_start_s"] <= t[400]) & (w["t_end_s"] > t[400])
    assert hit.sum() == 1 and not w["valid"][hit][0] and w0["valid"][hit][0]


def test_a_gyroscope_too_slow_for_the_blocks_leaves_roughness_to_the_accelerometer():
    fs = 100.0
    t, a, v, dist, valid = _trace(fs)
    rng = np.random.default_rng(9)
    slow_t = t[::20]                                  # a 5 Hz gyroscope: most 20 Hz blocks get no sample
    w = roughness_windows(t, a, v, dist, valid, fs, band_hz=LOW_BAND_HZ,
                          roll_rate_rad_s=rng.normal(0, 0.05, slow_t.size),
                          pitch_rate_rad_s=rng.normal(0, 0.05, slow_t.size), rates_t_s=slow_t)
    w0 = roughness_windows(t, a, v, dist, valid, fs, band_hz=LOW_BAND_HZ)
    assert w["valid"].sum() == w0["valid"].sum() > 0
    assert_allclose(w["iri_m_per_km"], w0["iri_m_per_km"], equal_nan=True)
    fast = roughness_windows(t, a, v, dist, valid, fs, band_hz=LOW_BAND_HZ, roll_rate_rad_s=rng.normal(0, 0.05, t.size),
                             pitch_rate_rad_s=rng.normal(0, 0.05, t.size))
    assert not np.allclose(fast["iri_m_per_km"][fast["valid"]], w0["iri_m_per_km"][fast["valid"]])


def test_cars_a_few_centimetres_apart_share_one_calibration_table():
    from detect.roughness import _calibration
    _calibration.cache_clear()
    kw = {"band_hz": LOW_BAND_HZ, "fs_hz": 20.0, "decimation": 5}
    c1 = calibration_constant(12.0, car=ReferenceCar(wheelbase_m=2.71), **kw)
    c2 = calibration_constant(12.0, car=ReferenceCar(wheelbase_m=2.72), **kw)
    assert _calibration.cache_info().misses == 1 and c1 == c2
    c3 = calibration_constant(12.0, car=ReferenceCar(wheelbase_m=3.2), **kw)
    assert _calibration.cache_info().misses == 2 and c3 != pytest.approx(c1, rel=1e-3)
