"""Road roughness: IRI [m/km] per window of travel from a phone's vertical acceleration and GPS speed.

Method (physical; nothing is fitted to a simulator)
--------------------------------------------------
1. Road (ISO 8608, waviness 2). Each wheel track has the one-sided displacement PSD ``G_d(n) = G0 (n / n0)^-2``,
   ``n0 = 0.1`` cycle/m, ``G0 = G_d(n0)`` [m^3]. At speed ``v`` the temporal PSD of the road input is
   ``G(f) = G_d(f / v) / v = G0 n0^2 v / f^2`` [m^2/Hz] (white road *velocity*). Left and right tracks, a track
   ``B`` apart, have the coherence of a homogeneous isotropic surface, ``gamma(n) = x K1(x)``, ``x = 2 pi n B``
   (Dodds & Robson 1973): they share the long waves, not the short ones.

2. Reference IRI. The Golden Car (per unit sprung mass k_t = 653, k_s = 63.3 s^-2, c_s = 6.0 s^-1,
   m_u/m_s = 0.15) at ``V = 80 km/h`` over the 250 mm moving-averaged track has a Gaussian relative velocity of
   variance ``s_rv^2 = int |2 pi f (H_s - H_u)|^2 sinc^2(0.25 f / V) G0 n0^2 V / f^2 df``, and for a Gaussian
   process ``E|dz_s - dz_u| = sqrt(2 / pi) s_rv``. So ``IRI = 1000 sqrt(2 / pi) s_rv / V = K_iri sqrt(G0)`` with
   ``K_iri = 543 m/km per sqrt(m^3)`` (class A 2.2, B 4.3, C 8.7 m/km; checked against ``detect.iri``).

3. What the phone feels. The body of a :class:`ReferenceCar` (FIELD_NOTES "typical car": per corner m_s 350 kg,
   m_u 40 kg, k_s 25 kN/m, c_s 2 kN s/m, k_t 200 kN/m; wheelbase 2.7 m, track 1.55 m) rides on four quarter
   cars. Assumption: pitch and roll inertia of a "four sprung masses" body (dynamic index 1), so the corners
   move independently and the phone, ``phone_behind_front_axle_m`` behind the front axle (dashboard, cradle,
   console), sees the rigid-body mixture of the four body corners. The rear wheels meet the front wheels' road
   ``tau = L / v`` later; the mixture's power gain is::

       W(f, v) = [w_f^2 + w_r^2 + 2 w_f w_r cos(2 pi f L / v)] [w_l^2 + w_r'^2 + 2 w_l w_r' gamma(f / v)]

   (axle weights ``1/2 +- x / L``, side weights ``1/2 +- y / B``; the cosine is the wheelbase filter). The body
   acceleration PSD at the phone is ``S_a(f) = (2 pi f)^4 |H_body(f)|^2 W(f, v) G0 n0^2 v / f^2``.

4. What is measured. ``a_up`` sampled at ``fs`` (phones sample without an anti-alias filter: with ``aliased``
   the PSD above ``fs / 2`` folds back) and band-passed by ``detect.filters.bandpass``; its power response
   ``|B|^4`` (zero phase) is taken from that very filter's impulse response, so the calibration follows the
   filter used, including its edge clipped to 0.9 x Nyquist. Then ``rms^2 = G0 v K_a(v)^2`` and eliminating
   ``G0``::

       IRI = C(v) rms / sqrt(v),   C(v) = K_iri / K_a(v),
       K_a(v)^2 = int_0^{fs/2} |B(f)|^4 sum_k S_a(|f + k fs|) df / (G0 v)

   ``C`` depends on speed only through the wheelbase filter and the coherence; it is tabulated once per (band,
   rate, car) on a speed grid (dense frequency grid) and interpolated.

5. A Gaussian estimate of the RMS. Steps 1-4 hold for a Gaussian random road. Discrete features (speed bumps,
   humps, potholes, covers, joints) are transients whose energy does not scale as ``G0 v``: they are the impact
   detector's business, and counting their energy as roughness overstates the IRI several times (a hump at
   20 km/h shakes the body far more than the Golden Car's stroke over it). So each sample's energy ``x^2`` is
   winsorised at ``(2 sigma)^2`` of the local Gaussian level (``sigma^2``: running median of 0.5-s block medians
   of ``x^2`` over 10 s, divided by the chi-square(1) median 0.455) and divided by the Gaussian consistency
   factor ``E[min(z^2, 4)] = 0.9205``: unbiased on a Gaussian road, a few percent per transient. Energies stay
   additive, so windows aggregate exactly.

6. With a gyroscope: no track coherence, no phone position. The rigid body's vertical acceleration at a point
   ``x`` ahead of mid-wheelbase and ``y`` left of the centre line is ``a = heave + y roll_acc - x pitch_acc``
   (roll: left side up, pitch: nose down). The phone's lever arm ``(x, y)`` is the least-squares fit of its
   band-passed ``a_up`` on the band-passed roll and pitch accelerations (differentiated gyroscope rates) per mount
   segment (:func:`lever_arm_fit`); that gives the heave at mid-wheelbase. The heave mixes both tracks
   (``(1 + gamma) / 2``) and the roll their difference (``(1 - gamma) / 2``); their sum
   ``E[heave^2] + (B / 2)^2 E[roll_acc^2]`` is the mean energy of the two points ``(0, +-B / 2)``, i.e. of one
   wheel track's front and rear corners mixed at mid-wheelbase, whatever the coherence: calibrated as a phone at
   ``(0, B / 2)`` (side gain 1, only the known wheelbase filter left). Without a gyroscope (or too little data in a
   segment) the default position is assumed and the coherence model is used.

Band. Keep the band below the phone mount's resonance: cradle arms and cup holders ring at ~8-25 Hz and
multiply the 5-15 Hz energy several times (up to x2 in IRI). A 0.5-6 Hz band (body modes and the lower
wheelbase lobes) measures the body, not the mount, and avoids engine vibration (20-45 Hz; at 50 Hz sampling
it aliases to >= 5 Hz except for near-coincident harmonics). The phone's noise floor (60-200 ug/sqrt(Hz),
< 0.005 m/s^2 in such a band) is negligible against road vibration (~0.1-1 m/s^2) and is not subtracted.

Known biases (documented, not fitted): real cars have unequal front/rear ride frequencies, which fill the
wheelbase notches (a few %); mount resonances (8-22 Hz) raise the 0.5-6 Hz RMS by ~2-6 %. Without a gyroscope:
roads more coherent than isotropic add heave (on the simulator's roads +10-15 %), and a phone away from the
assumed position changes the estimate by about -15 % (mid-wheelbase) to +30 % (on the front axle).

References: ISO 8608:2016; Sayers (1995) TRR 1501 / ASTM E1926 (IRI); Sayers & Karamihas (1998) "The little book
of profiling"; Dodds & Robson (1973) J. Sound Vib. 31(2):175-183 (isotropic road coherence); Mitschke &
Wallentowitz "Dynamik der Kraftfahrzeuge" (quarter car, wheelbase filter); Huber (1981) "Robust statistics".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import sparse, special
from scipy.signal import remez

from detect.arrays import CHUNK_SAMPLES
from detect.clock import design_rate_hz
from detect.columns import Columns
from detect.filters import bandpass
from detect.running import block_means, running_background, running_max_every

N0_CYC_M = 0.1                      # ISO 8608 reference spatial frequency [cycle/m]
IRI_SPEED_MPS = 80.0 / 3.6          # Golden Car speed [m/s]
IRI_BASE_M = 0.25                   # moving-average base of the IRI profile [m]
GOLDEN_CAR = {"k_t": 653.0, "k_s": 63.3, "c_s": 6.0, "mu": 0.15}   # per unit sprung mass [s^-2, s^-2, s^-1, -]
MIN_SPEED_COVERAGE = 0.9            # fraction of a window's samples that must be at >= min_speed_mps
RMS_FLOOR_MPS2 = 5e-4    # a third of the quietest phone accelerometer's own noise in the band (60 ug/sqrt(Hz) over
#                          0.5-6 Hz: 1.4e-3 m/s^2, FIELD_NOTES): below it the sensor was stuck, not the road smooth
ALIAS_LIMIT_HZ = 100.0              # images above this add < 1e-4 to the band's power (body acceleration PSD ~ f^-4)
CAL_SPEEDS_MPS = np.geomspace(0.5, 80.0, 96)     # speed grid of the calibration
CAL_GEOMETRY_STEP_M = 0.05          # car lengths are rounded to this for the calibration (one table per rounded car)
CLIP_SIGMA = 2.0                    # sample energies are winsorised at (CLIP_SIGMA x local Gaussian sigma)^2
BACKGROUND_S = 10.0                 # span of the running Gaussian level [s]
BACKGROUND_BLOCK_S = 0.5            # block of the block medians under it [s]
CHI2_1_MEDIAN = 0.4549364231195724  # median of z^2, z ~ N(0, 1)
ROUGHNESS_RATE_HZ = 25.0            # roughness runs on box means of the samples at about this rate (>= 2.5 x the
#                                     band's upper edge): a 0.5-6 Hz measurement needs no 100-200 samples a second,
#                                     and at 25/s the images of mount resonances (8-25 Hz) mostly fold out of the band
MIN_LEVER_FIT_S = 30.0              # a mount segment's lever arm is fitted from at least this much moving data [s]

WINDOW_DTYPES: dict[str, str] = {
    "t_start_s": "f8", "t_end_s": "f8", "distance_start_m": "f8", "length_m": "f8", "speed_mps": "f8",
    "rms_mps2": "f8", "iri_m_per_km": "f8", "valid": "?",
}


@dataclass(frozen=True)
class ReferenceCar:
    """The car the phone rides in: one quarter car per corner, the body geometry and where the phone sits [SI]."""

    sprung_kg: float = 350.0          # per corner
    unsprung_kg: float = 40.0
    spring_n_m: float = 25_000.0
    damper_n_s_m: float = 2_000.0
    tyre_n_m: float = 200_000.0
    wheelbase_m: float = 2.7          # 0 -> a single quarter car (no wheelbase filter)
    track_m: float = 1.55             # distance between the left and right wheel tracks
    phone_behind_front_axle_m: float = 0.75   # dashboard, windscreen cradle or console
    phone_left_m: float = 0.0         # lateral position of the phone, left of the car's centre line
    coherence: str = "isotropic"      # left/right track coherence: "isotropic", "independent" or "identical"

    @property
    def phone_ahead_m(self) -> float:
        """Phone position ahead of the wheelbase midpoint [m] (clipped to the axles)."""
        return float(np.clip(self.wheelbase_m / 2 - self.phone_behind_front_axle_m, -self.wheelbase_m / 2,
                             self.wheelbase_m / 2))


REFERENCE_CAR = ReferenceCar()


# --------------------------------------------------------------------------------------------- transfer functions
def quarter_car_body(f_hz: np.ndarray, car: ReferenceCar = REFERENCE_CAR) -> np.ndarray:
    """Complex body-displacement transfer ``Z_s / Z_road`` of one corner of ``car`` at ``f_hz``."""
    s = 2j * np.pi * np.asarray(f_hz, dtype=float)
    ms, mu, ks, cs, kt = car.sprung_kg, car.unsprung_kg, car.spring_n_m, car.damper_n_s_m, car.tyre_n_m
    link = cs * s + ks
    den = (mu * s**2 + link + kt) * (ms * s**2 + link) - link**2
    return kt * link / den


def golden_car_relative_velocity(f_hz: np.ndarray) -> np.ndarray:
    """Complex transfer ``(dz_s - dz_u) / Z_road`` of the Golden Car [1/s]."""
    s = 2j * np.pi * np.asarray(f_hz, dtype=float)
    kt, ks, cs, mu = (GOLDEN_CAR[k] for k in ("k_t", "k_s", "c_s", "mu"))
    link = cs * s + ks
    den = (mu * s**2 + link + kt) * (s**2 + link) - link**2
    h_s = kt * link / den
    h_u = (s**2 + link) / link * h_s
    return s * (h_s - h_u)


def track_coherence(n_cpm: np.ndarray, track_m: float, model: str = "isotropic") -> np.ndarray:
    """Coherence of two parallel wheel tracks ``track_m`` apart at spatial frequencies ``n_cpm`` [cycle/m].

    "isotropic": a homogeneous isotropic surface whose tracks have the ISO 8608 PSD ~ n^-2 has the cross
    spectrum ``G(n) x K1(x)``, ``x = 2 pi n track`` (Dodds & Robson 1973, J. Sound Vib. 31(2)): the tracks share
    the long waves and not the short ones. "independent": 0; "identical": 1.
    """
    n = np.asarray(n_cpm, dtype=float)
    if model == "independent":
        return np.zeros(n.shape)
    if model == "identical":
        return np.ones(n.shape)
    if model != "isotropic":
        raise ValueError(f"unknown coherence model {model!r}; use 'isotropic', 'independent' or 'identical'")
    return _x_k1(2.0 * np.pi * np.abs(n) * track_m)


@lru_cache(maxsize=1)
def _x_k1_table() -> tuple[np.ndarray, np.ndarray]:
    log_x = np.linspace(np.log(1e-5), np.log(60.0), 6000)
    x = np.exp(log_x)
    return log_x, x * special.k1(x)


def _x_k1(x: np.ndarray) -> np.ndarray:
    """``x K1(x)`` for x >= 0 (1 at 0, ~ sqrt(pi x / 2) e^-x for large x) from a table in log x: within 1e-6 of
    ``scipy.special.k1``, many times faster (the calibration evaluates it millions of times)."""
    log_x, values = _x_k1_table()
    x = np.asarray(x, dtype=float)
    return np.interp(np.log(np.maximum(x, 1e-300)), log_x, values, left=1.0, right=0.0)


def wheel_mixture_gain(f_hz: np.ndarray, speed_mps: np.ndarray, car: ReferenceCar = REFERENCE_CAR) -> np.ndarray:
    """Power gain ``W(f, v)`` of the four-corner mixture seen by the phone (broadcast over f and v).

    ``W = [w_f^2 + w_r^2 + 2 w_f w_r cos(2 pi f L / v)] [w_l^2 + w_r'^2 + 2 w_l w_r' gamma(f / v)]`` with the
    rigid-body weights of the phone position (axles: 1/2 +- x / L, sides: 1/2 +- y / track).
    """
    f = np.asarray(f_hz, dtype=float)
    v = np.asarray(speed_mps, dtype=float)
    if car.wheelbase_m <= 0.0:
        return np.ones(np.broadcast_shapes(f.shape, v.shape))
    w_f = 0.5 + car.phone_ahead_m / car.wheelbase_m
    w_r = 1.0 - w_f
    axle = w_f**2 + w_r**2 + 2.0 * w_f * w_r * np.cos(2.0 * np.pi * f * car.wheelbase_m / v)
    w_l = float(np.clip(0.5 + car.phone_left_m / car.track_m, 0.0, 1.0))
    w_rt = 1.0 - w_l
    side = w_l**2 + w_rt**2 + 2.0 * w_l * w_rt * track_coherence(f / v, car.track_m, car.coherence)
    return axle * side


@lru_cache(maxsize=1)
def k_iri() -> float:
    """``K_iri``: Golden Car IRI [m/km] of an ISO 8608 road per sqrt(G_d(n0) [m^3])."""
    f = np.linspace(0.0, 2000.0, 400_001)[1:]
    n = f / IRI_SPEED_MPS
    g = np.abs(golden_car_relative_velocity(f)) ** 2 * np.sinc(n * IRI_BASE_M) ** 2 * N0_CYC_M**2 * IRI_SPEED_MPS
    var = np.trapezoid(g / f**2, f)
    return float(1000.0 * np.sqrt(2.0 / np.pi) * np.sqrt(var) / IRI_SPEED_MPS)


@lru_cache(maxsize=64)
def _band_power(band_hz: tuple[float, float], fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(f_hz, |B|^4): power response of :func:`detect.filters.bandpass` from its impulse response."""
    n = int(2 ** np.ceil(np.log2(max(64.0, 120.0 * fs_hz))))
    impulse = np.zeros(n)
    impulse[n // 2] = 1.0
    h = bandpass(impulse, band_hz, fs_hz)
    return np.fft.rfftfreq(n, 1.0 / fs_hz), np.abs(np.fft.rfft(h)) ** 2


def decimation(fs_hz: float, band_hz: tuple[float, float]) -> int:
    """Samples per box mean before roughness is measured: the rate falls to about :data:`ROUGHNESS_RATE_HZ`, and at
    least 2.5 x the band's upper edge (1 at low rates). Taken from the design rate (:func:`design_rate_hz`), so that
    a "100 Hz" clock running a hair slow or fast gets the same boxes."""
    return max(1, int(design_rate_hz(fs_hz) // max(ROUGHNESS_RATE_HZ, 2.5 * float(band_hz[1]))))


def _box_power(f_hz: np.ndarray, m: int, fs_hz: float) -> np.ndarray:
    """Power response of the mean of ``m`` consecutive samples at ``fs_hz`` (periodic in ``fs_hz``)."""
    if m == 1:
        return np.ones(np.shape(f_hz))
    x = np.pi * np.asarray(f_hz, dtype=float) / fs_hz
    den = m * np.sin(x)
    small = np.abs(den) < 1e-12
    return np.where(small, 1.0, np.sin(m * x) / np.where(small, 1.0, den)) ** 2


@lru_cache(maxsize=256)
def _calibration(band_hz: tuple[float, float], fs_hz: float, car: ReferenceCar, aliased: bool,
                 m: int = 1) -> np.ndarray:
    """``C(v)`` on :data:`CAL_SPEEDS_MPS` [m/km per (m/s^2 / sqrt(m/s))] for the band-pass at ``fs_hz`` of box means
    of ``m`` samples taken at ``m fs_hz``. The road's acceleration PSD reaches the output from every image
    ``k fs_hz +- f`` weighted by the box's response there; without ``aliased`` (a phone with an anti-alias filter)
    only images below the phone's Nyquist frequency ``m fs_hz / 2`` do."""
    nyq = 0.5 * fs_hz
    fs_in = m * fs_hz
    df = min(0.01, nyq / 400.0)
    f = np.arange(0.5 * df, nyq, df)                                   # base band (midpoints)
    fb, pb = _band_power(band_hz, fs_hz)
    band_power = np.interp(f, fb, pb)
    n_fold = int(np.ceil(ALIAS_LIMIT_HZ / fs_hz))
    images = [f] + [k * fs_hz + sgn * f for k in range(1, n_fold + 1) for sgn in (-1.0, 1.0)]
    k_a2 = np.zeros(CAL_SPEEDS_MPS.size)
    for fi in images:                                                  # a handful of spectral images
        weight = _box_power(fi, m, fs_in) * (1.0 if aliased else (fi < 0.5 * fs_in))
        base = (2.0 * np.pi * fi) ** 4 * np.abs(quarter_car_body(fi, car)) ** 2 * N0_CYC_M**2 / fi**2 * weight
        mix = wheel_mixture_gain(fi[None, :], CAL_SPEEDS_MPS[:, None], car)
        k_a2 += (mix * (base * band_power)[None, :]).sum(axis=1) * df
    return k_iri() / np.sqrt(k_a2)


def _rounded(car: ReferenceCar) -> ReferenceCar:
    """``car`` with its lengths on a :data:`CAL_GEOMETRY_STEP_M` grid: a calibration takes ~25 ms, and every car
    with its own wheelbase would need one; 5 cm moves the wheelbase filter's notches by ~2 %."""
    def q(x: float) -> float:
        return round(x / CAL_GEOMETRY_STEP_M) * CAL_GEOMETRY_STEP_M

    return replace(car, wheelbase_m=q(car.wheelbase_m), track_m=q(car.track_m),
                   phone_behind_front_axle_m=q(car.phone_behind_front_axle_m), phone_left_m=q(car.phone_left_m))


def calibration_constant(speed_mps: np.ndarray | float, *, band_hz: tuple[float, float], fs_hz: float,
                         car: ReferenceCar = REFERENCE_CAR, aliased: bool = True, decimation: int = 1
                         ) -> np.ndarray:
    """``C(v)`` of ``IRI = C rms / sqrt(v)`` [m/km / (m/s^2 / sqrt(m/s))], interpolated in log speed; ``fs_hz`` is
    the rate of the band-passed signal, box means of ``decimation`` phone samples."""
    table = _calibration((float(band_hz[0]), float(band_hz[1])), design_rate_hz(fs_hz), _rounded(car), bool(aliased),
                         int(decimation))
    v = np.clip(np.asarray(speed_mps, dtype=float), CAL_SPEEDS_MPS[0], CAL_SPEEDS_MPS[-1])
    return np.interp(np.log(v), np.log(CAL_SPEEDS_MPS), table)


def iri_from_rms(rms_mps2: np.ndarray | float, speed_mps: np.ndarray | float, *, band_hz: tuple[float, float],
                 fs_hz: float, car: ReferenceCar = REFERENCE_CAR, aliased: bool = True, decimation: int = 1
                 ) -> np.ndarray:
    """IRI [m/km] from the band-limited vertical RMS [m/s^2] at speed [m/s]: ``C(v) rms / sqrt(v)``.

    ``fs_hz``: rate of the band-passed signal, box means of ``decimation`` phone samples. NaN where the speed is not
    positive and finite.
    """
    rms = np.asarray(rms_mps2, dtype=float)
    v = np.asarray(speed_mps, dtype=float)
    ok = np.isfinite(v) & (v > 0.0)
    vs = np.where(ok, v, 1.0)
    c = calibration_constant(vs, band_hz=band_hz, fs_hz=fs_hz, car=car, aliased=aliased, decimation=decimation)
    return np.where(ok, c * rms / np.sqrt(vs), np.nan)


def _clip_consistency(c: float) -> float:
    """``E[min(z^2, c^2)]`` for z ~ N(0, 1)."""
    tail = special.erfc(c / np.sqrt(2.0))                       # P(|z| > c)
    pdf = np.exp(-0.5 * c * c) / np.sqrt(2.0 * np.pi)
    return float((1.0 - tail) - 2.0 * c * pdf + c * c * tail)


def gaussian_energy(x: np.ndarray, fs_hz: float, *, clip_sigma: float = CLIP_SIGMA,
                    background_s: float = BACKGROUND_S) -> np.ndarray:
    """Per-sample energy [units of x^2] whose mean estimates the variance of the Gaussian part of ``x``.

    ``x^2`` winsorised at ``(clip_sigma sigma)^2``, ``sigma^2`` the local level (running median of block medians
    of ``x^2`` over ``background_s``, divided by the chi-square(1) median), divided by ``E[min(z^2, clip^2)]``.
    Transients (bumps, potholes, a door slam) add little; a stationary Gaussian signal is unbiased. Rows (r, n) of
    samples give the sum of their rows' energies (n,).
    """
    rows = np.asarray(x, dtype=float)
    rows = rows.reshape(-1, rows.shape[-1])
    if rows.size == 0:
        return np.zeros(rows.shape[1])
    total = None
    for row in rows:                                           # loop over series
        e = row * row
        clipped = running_background(e, fs_hz, background_s, block_s=BACKGROUND_BLOCK_S)
        clipped *= clip_sigma**2 / CHI2_1_MEDIAN               # the clip (sigma^2 x clip^2), then in place
        np.minimum(e, clipped, out=clipped)                    # the winsorised energy
        if total is None:
            total = clipped
        else:
            total += clipped
    total /= _clip_consistency(clip_sigma)
    return total


# -------------------------------------------------------------------------------------------- gyroscope, lever arm
MAX_RATELESS_SHARE = 0.05           # gyroscope missing in more blocks than this (slow, or partial): accelerometer only
DIFF_TAPS = 11                      # FIR differentiator length: gain within 1.5 % of 2 pi f up to 0.35 x its rate
DIFF_PASS = 0.36                    # ... the band it is designed for [x the sample rate]


def body_rates(gyro_t_s: np.ndarray, gyro_rad_s: np.ndarray, segment_t_s: np.ndarray, forward_axes: np.ndarray,
               left_axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(roll rate, pitch rate) [rad/s] of phone-frame gyroscope rows (n, 3) at ``gyro_t_s`` [s] about the car's
    forward and left axes (unit, phone frame) of the mount segment each sample falls in (segment ``k`` starts at
    ``segment_t_s[k]``; rows of ``forward_axes``/``left_axes``): roll positive with the left side going up, pitch
    with the nose going down. One matrix product per segment."""
    g = np.asarray(gyro_rad_s, dtype=float)
    bounds = np.append(np.searchsorted(gyro_t_s, np.asarray(segment_t_s, dtype=float)[1:]), g.shape[0])
    rates = np.empty((2, g.shape[0]))
    lo = 0
    for k, hi in enumerate(bounds.tolist()):                          # loop over mount segments
        rates[:, lo:hi] = np.stack((forward_axes[k], left_axes[k])) @ g[lo:hi].T
        lo = hi
    return rates[0], rates[1]


@dataclass(frozen=True)
class PhoneGyro:
    """A phone's raw gyroscope and the car's axes in each of its mount segments: sorted times ``t_s`` [s],
    phone-frame rates ``rad_s`` (n, 3) [rad/s], and per segment the unit forward and left axes (s, 3) in the
    phone frame (:func:`body_rates`)."""

    t_s: np.ndarray
    rad_s: np.ndarray
    forward_axes: np.ndarray
    left_axes: np.ndarray


BLOCK_SHIFT = 1 << 20                # blocks are floored by truncation of a positive number (t0 - 2^20 steps)


def _block_position(t_s: np.ndarray, t0_s: float, step_s: float) -> np.ndarray:
    """``(t - t0) / step + BLOCK_SHIFT`` [blocks] of times [s]: its integer part less the shift is the block."""
    x = np.subtract(t_s, t0_s)
    x *= 1.0 / step_s
    x += BLOCK_SHIFT
    return x


def _block_index(t_s: np.ndarray, t0_s: float, step_s: float) -> np.ndarray:
    """Index ``floor((t - t0) / step)`` of the block of each time [s] (blocks ``[t0 + i step, t0 + (i + 1) step)``)."""
    k = _block_position(t_s, t0_s, step_s).astype(np.int64)
    k -= BLOCK_SHIFT
    return k


def _regular_blocks(t_s: np.ndarray, t0_s: float, step_s: float, n_blocks: int) -> tuple[int, int] | None:
    """``(lo, c)`` when block ``i`` holds exactly the samples ``lo + i c ... lo + i c + c - 1`` (by
    :func:`_block_index`) and no other sample falls in a block, else None. Checks only each block's first and last
    sample and the two neighbours of the run (the position is monotone in time): block ``i`` is the integer part
    of the position less the shift, so its first sample's position must be >= ``i + shift``, its last's below
    ``i + 1 + shift``; both are read a chunk of blocks at a time (one pass over the times, the second read in
    cache)."""
    n = t_s.size
    if n == 0 or n_blocks < 1:
        return None
    lo = int(np.searchsorted(t_s, t0_s))
    c = round((int(np.searchsorted(t_s, t0_s + n_blocks * step_s)) - lo) / n_blocks)
    hi = lo + c * n_blocks
    if c < 1 or hi > n:
        return None
    per = max(1, CHUNK_SAMPLES // c)                                  # blocks per chunk
    floor = np.arange(BLOCK_SHIFT, BLOCK_SHIFT + min(per, n_blocks), dtype=float)   # integers: exact
    for b0 in range(0, n_blocks, per):          # loop over chunks of blocks: the last samples read while in cache
        b1 = min(b0 + per, n_blocks)
        first = floor[:b1 - b0] + b0
        if not (np.all(_block_position(t_s[lo + b0 * c:lo + b1 * c:c], t0_s, step_s) >= first)
                and np.all(_block_position(t_s[lo + b0 * c + c - 1:lo + b1 * c:c], t0_s, step_s) < first + 1.0)):
            return None
    outside = _block_index(t_s[[i for i in (lo - 1, hi) if 0 <= i < n]], t0_s, step_s)
    return (lo, c) if np.all((outside < 0) | (outside >= n_blocks)) else None


def block_sums_at(t_s: np.ndarray, x: np.ndarray, t0_s: float, step_s: float, n_blocks: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sums (n_blocks, k), counts, starts)`` of the rows of ``x`` (n, k) at the sorted times ``t_s`` [s] over
    the blocks ``[t0 + i step, t0 + (i + 1) step)``, i < ``n_blocks``: sums in the units of ``x``, the number of
    samples in each block and the index of its first sample (of the next sample for an empty block). All columns in
    one pass: a matrix product with a stack of identities when every block holds the same run of samples (a sensor
    on the blocks' clock, :func:`_regular_blocks`), else with the sparse block-membership matrix. A non-finite value
    stays in its block."""
    t = np.asarray(t_s, dtype=float)
    x = np.asarray(x, dtype=float)
    regular = _regular_blocks(t, t0_s, step_s, n_blocks)
    if regular is None:
        return _block_sums_sparse(t, x, t0_s, step_s, n_blocks)
    lo, c = regular
    k = x.shape[1]
    sums = x[lo:lo + c * n_blocks].reshape(n_blocks, c * k) @ np.tile(np.eye(k), (c, 1))
    return sums, np.full(n_blocks, c, dtype=np.int64), lo + c * np.arange(n_blocks)


def _block_sums_sparse(t_s: np.ndarray, x: np.ndarray, t0_s: float, step_s: float, n_blocks: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`block_sums_at` of any sorted times, as the product of the sparse block-membership matrix with ``x``."""
    idx = _block_index(t_s, t0_s, step_s)
    lo, hi = (int(i) for i in np.searchsorted(idx, (0, n_blocks)))   # idx is sorted: the samples inside
    counts = np.bincount(idx[lo:hi], minlength=n_blocks)
    indptr = np.concatenate(([0], np.cumsum(counts)))
    small = np.int32 if hi - lo < 2**31 else np.int64               # scipy's index type: no conversion of ours
    member = sparse.csr_matrix((np.ones(hi - lo), np.arange(hi - lo, dtype=small), indptr.astype(small)),
                               shape=(n_blocks, hi - lo))
    return member @ x[lo:hi], counts, lo + indptr[:-1]


def block_body_rates(gyro: PhoneGyro, segment_t_s: np.ndarray, t0_s: float, step_s: float, n_blocks: int
                     ) -> np.ndarray:
    """Block means (2, n_blocks) of the roll and pitch rates [rad/s] of :func:`body_rates` over the blocks
    ``[t0 + i step, t0 + (i + 1) step)`` [s] (mount segment ``k`` from ``segment_t_s[k]``); NaN for a block without
    a sample or with a non-finite one. ``block_means_at(gyro.t_s, body_rates(...), ...)`` to rounding, at a
    fraction of the cost: the projection is linear, so it applies to the blocks' sums of the three raw axes
    (:func:`block_sums_at`), one matrix product per segment. A block straddling a segment start gets the change of
    projection times the sum of its samples from that start on."""
    t = np.asarray(gyro.t_s, dtype=float)
    g = np.asarray(gyro.rad_s, dtype=float)
    axes = np.stack((np.asarray(gyro.forward_axes, dtype=float), np.asarray(gyro.left_axes, dtype=float)), axis=1)
    sums, counts, starts = block_sums_at(t, g, t0_s, step_s, n_blocks)
    bounds = np.searchsorted(t, np.asarray(segment_t_s, dtype=float)[1:])            # first sample of segments 1...
    first_block = np.searchsorted(starts, bounds)                                    # first block from there on
    edges = np.concatenate(([0], first_block, [n_blocks])).tolist()
    out = np.empty((2, n_blocks))
    for j in range(axes.shape[0]):                                    # loop over mount segments
        span = slice(edges[j], edges[j + 1])
        np.matmul(axes[j], sums[span].T, out=out[:, span])
    with np.errstate(invalid="ignore"):
        out /= counts                                                 # 0 / 0: NaN for an empty block
    for j, (b, i) in enumerate(zip(bounds.tolist(), first_block.tolist(), strict=True), start=1):
        stop = int(starts[i - 1] + counts[i - 1]) if i > 0 else 0     # end of the block before the segment's first
        if stop > b:                                                  # it straddles the start: its later samples
            out[:, i - 1] += (axes[j] - axes[j - 1]) @ g[b:stop].sum(axis=0) / counts[i - 1]
    return out


def block_means_at(t_s: np.ndarray, series: Sequence[np.ndarray], t0_s: float, step_s: float, n_blocks: int
                   ) -> np.ndarray:
    """Means of each sample series at the sorted times ``t_s`` [s] over the blocks ``[t0 + i step, t0 + (i + 1)
    step)``, i < ``n_blocks`` -> (len(series), n_blocks); NaN for a block without a sample or with a non-finite
    one (a NaN stays in its own block's sum)."""
    k = _block_index(np.asarray(t_s, dtype=float), t0_s, step_s)
    lo, hi = np.searchsorted(k, (0, n_blocks))                        # k is sorted: the samples inside
    counts = np.bincount(k[lo:hi], minlength=n_blocks)
    starts = lo + np.concatenate(([0], np.cumsum(counts[:-1])))
    out = np.full((len(series), n_blocks), np.nan)
    some = counts > 0
    if some.any():
        first = starts[some]                          # the blocks with samples: each sums up to the next one's first
        for j, x in enumerate(series):                                # loop over series (two rates)
            out[j, some] = np.add.reduceat(np.asarray(x, dtype=float)[:hi], first) / counts[some]
    return out


@lru_cache(maxsize=1)
def differentiator_taps() -> np.ndarray:
    """Taps of the zero-phase FIR differentiator at a unit sample rate (Parks-McClellan, ``DIFF_TAPS`` taps,
    designed up to ``DIFF_PASS``, scaled to be exact on a straight line): a 20 Hz signal's derivative within 1.5 %
    up to 7 Hz, where a central difference is 10-30 % low."""
    h = remez(DIFF_TAPS, [0.0, DIFF_PASS], [1.0], type="differentiator", fs=1.0)
    lag = np.arange(h.size) - h.size // 2
    return h / -np.sum(h * lag)                   # exact on a straight line (slope 1 per sample)


def derivative(x: np.ndarray, fs_hz: float, *, out: np.ndarray | None = None) -> np.ndarray:
    """Time derivative [x/s] of samples at ``fs_hz`` along the last axis (one series or rows of them) by
    :func:`differentiator_taps` (zero phase; the ends, where the filter runs off the signal, by the second-order
    difference), into ``out`` when given. Accurate up to ``DIFF_PASS x fs_hz``."""
    x = np.asarray(x, dtype=float)
    if out is None:
        out = np.empty(x.shape)
    h = differentiator_taps()
    half = h.size // 2
    n = x.shape[-1]
    if n <= h.size:
        out[...] = np.gradient(x, axis=-1) * fs_hz if n > 1 else 0.0
        return out
    rows, dst = x.reshape(-1, n), out.view()
    dst.shape = (-1, n)                               # a view of ``out`` (raises if it cannot be one)
    for r, d in zip(rows, dst, strict=True):                          # loop over series
        d[half:-half] = np.convolve(r, h, mode="valid")
    dst[:, half:-half] *= fs_hz
    dst[:, :half] = np.gradient(rows[:, :half + 1], axis=-1)[:, :half] * fs_hz      # the ends: as np.gradient
    dst[:, -half:] = np.gradient(rows[:, -half - 1:], axis=-1)[:, 1:] * fs_hz
    return out


def lever_arm_fit(a_band: np.ndarray, roll_acc_band: np.ndarray, pitch_acc_band: np.ndarray, use: np.ndarray,
                  fs_hz: float, *, min_fit_s: float = MIN_LEVER_FIT_S) -> tuple[float, float] | None:
    """Phone position (ahead of mid-wheelbase, left of the centre line) [m] from the rigid-body relation
    ``a_up = heave + left roll_acc - ahead pitch_acc``: least squares of band-passed ``a_up`` on band-passed
    roll and pitch accelerations over the samples ``use`` (heave is uncorrelated with both in the mean). None
    with fewer than ``min_fit_s`` seconds of samples or a degenerate fit."""
    return _lever_arm_fit_rows(np.stack((a_band, roll_acc_band, pitch_acc_band)), use, fs_hz, min_fit_s)


def _lever_arm_fit_rows(band: np.ndarray, use: np.ndarray, fs_hz: float, min_fit_s: float = MIN_LEVER_FIT_S
                        ) -> tuple[float, float] | None:
    """:func:`lever_arm_fit` of the rows (a_up, roll acc., pitch acc.) [m/s^2] of ``band`` (3, n)."""
    n_use = int(np.count_nonzero(use))
    if n_use < min_fit_s * fs_hz:
        return None
    # (3, n_use): one pass over the rows; no copy when every sample is used (the same rows, the same products)
    gram = _row_products(band if n_use == use.size else np.compress(use, band, axis=1))
    beta, _, rank, _ = np.linalg.lstsq(gram[1:, 1:], gram[1:, 0], rcond=None)     # normal equations
    if rank < 1 or not np.isfinite(beta).all():          # a zero regressor (no roll) gets a zero weight
        return None
    return float(-beta[1]), float(beta[0])


def _row_products(rows: np.ndarray) -> np.ndarray:
    """Products (3, 3) of the rows (a_up, roll, pitch) of ``rows`` (3, n) that the lever arm needs: all but
    a_up x a_up (left 0), by dot products (a matrix product with the transpose costs several times more)."""
    out = np.zeros((3, 3))
    for i, j in ((0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):            # loop over pairs of rows
        out[i, j] = out[j, i] = np.dot(rows[i], rows[j])
    return out


def _heave_and_roll(band: np.ndarray, use: np.ndarray, seg_starts: np.ndarray, fs_hz: float, car: ReferenceCar
                    ) -> np.ndarray:
    """Rows (2, n): band-passed heave at mid-wheelbase and roll acceleration times half the track [m/s^2] from the
    band-passed rows (a_up, roll acc., pitch acc.) of ``band`` (3, n): the phone's lever arm fitted per mount
    segment (blocks from ``seg_starts``), the ``car``'s phone position where it cannot be."""
    n = band.shape[1]
    out = np.empty((2, n))
    stops = np.append(seg_starts[1:], n)
    for s, e in zip(seg_starts.tolist(), stops.tolist(), strict=True):   # loop over mount segments
        fit = _lever_arm_fit_rows(band[:, s:e], use[s:e], fs_hz)
        ahead, left = fit if fit is not None else (car.phone_ahead_m, car.phone_left_m)
        ahead = float(np.clip(ahead, -car.wheelbase_m / 2, car.wheelbase_m / 2))
        left = float(np.clip(left, -car.track_m / 2, car.track_m / 2))
        np.matmul(np.array([1.0, -left, ahead]), band[:, s:e], out=out[0, s:e])    # a - left roll + ahead pitch
    np.multiply(band[1], car.track_m / 2, out=out[1])
    return out


# ------------------------------------------------------------------------------------------------------ windows
def _empty() -> Columns:
    return Columns.empty(WINDOW_DTYPES)


def roughness_windows(t_s: np.ndarray, a_up_mps2: np.ndarray, speed_mps: np.ndarray, distance_m: np.ndarray,
                      valid: np.ndarray, fs_hz: float, *, window_m: float = 20.0,
                      band_hz: tuple[float, float] = (0.5, 15.0), min_speed_mps: float = 4.0,
                      car: ReferenceCar = REFERENCE_CAR, aliased: bool = True,
                      roll_rate_rad_s: np.ndarray | None = None, pitch_rate_rad_s: np.ndarray | None = None,
                      rates_t_s: np.ndarray | None = None, segment_starts: np.ndarray | None = None,
                      gyro: PhoneGyro | None = None) -> Columns:
    """Roughness per ``window_m`` metres of travel (windows start every ``window_m`` of ``distance_m``).

    Inputs on one uniform grid at ``fs_hz``: epoch times [s], vertical body acceleration without gravity [m/s^2],
    GPS speed [m/s] (NaN unknown), cumulative distance [m], and the gap mask. Columns: ``t_start_s``,
    ``t_end_s``, ``distance_start_m``, ``length_m``, ``speed_mps`` (mean of known speeds), ``rms_mps2``
    (band-limited RMS of the Gaussian part, see :func:`gaussian_energy`), ``iri_m_per_km`` (NaN when invalid)
    and ``valid`` (no gap, full length, at least 90 % of the samples at >= ``min_speed_mps``, and an RMS above
    :data:`RMS_FLOOR_MPS2`, which no working accelerometer reads). ``car`` sets the
    calibration (pass the trace's wheelbase when known); ``band_hz`` should stay below mount resonances
    (0.5-6 Hz, see the module docstring). The measurement runs on box means of :func:`decimation` samples
    (windows start and end on their boundaries); the calibration includes the box's response and aliasing.

    With the gyroscope's ``roll_rate_rad_s`` and ``pitch_rate_rad_s`` [rad/s] (:func:`body_rates`) at the times
    ``rates_t_s`` (default: the grid's) and the first grid index of each mount segment (``segment_starts``, default
    one segment), the energy is that of the heave at mid-wheelbase plus the roll at half the track, calibrated
    without track coherence or phone position (module docstring, step 6). The rates are averaged over the same
    blocks and differentiated there (:func:`derivative`); a block without a finite rate counts as a gap, and when
    more than ``MAX_RATELESS_SHARE`` of the good blocks have none (a slow or partial gyroscope) the accelerometer
    path is used alone. ``gyro`` (the raw gyroscope and each segment's car axes) instead of the two rates gives the
    same result to rounding, cheaper: the three raw axes are averaged over the blocks and projected there
    (:func:`block_body_rates`).
    """
    t_in = np.asarray(t_s, dtype=float)
    if t_in.size < 2 or window_m <= 0.0:
        return _empty()
    m = decimation(fs_hz, band_hz)
    fs = fs_hz / m
    # the distance, made monotone (NaN carried over; before the first number, that number), at every m-th sample
    d = _monotone_distance_every(np.asarray(distance_m, dtype=float), m)
    if d is None:
        return _empty()
    d, d_last = d
    a = np.asarray(a_up_mps2, dtype=float)
    # box means of m samples (the calibration knows their response); a block is bad if any of its samples is
    t = t_in[::m]
    n = t.size
    ok = np.asarray(valid, dtype=bool)
    a_d = block_means(a[:, None], m)[:, 0]
    if not np.isfinite(a_d).all():                    # a block mean is finite only if all its samples are
        finite = np.isfinite(a)
        ok = ok & finite
        a_d = block_means(np.where(finite, a, 0.0)[:, None], m)[:, 0]
    bad_d = np.zeros(n, dtype=bool)
    bad_d[np.flatnonzero(~ok) // m] = True
    v = block_means(np.asarray(speed_mps, dtype=float)[:, None], m)[:, 0]
    rates = None
    seg = np.zeros(1, dtype=np.int64) if segment_starts is None else np.asarray(segment_starts, dtype=np.int64)
    t0_block, step_block = t_in[0] - 0.5 / fs_hz, m / fs_hz
    if gyro is not None and np.asarray(gyro.t_s).size:
        # block means of the rates over the same spans (differentiated at the block rate below); a gyroscope too
        # slow for the blocks or missing for part of the trip leaves the estimate to the accelerometer alone
        rates = block_body_rates(gyro, t_in[seg], t0_block, step_block, n)
    elif roll_rate_rad_s is not None and pitch_rate_rad_s is not None:
        rates = block_means_at(t_in if rates_t_s is None else rates_t_s, (roll_rate_rad_s, pitch_rate_rad_s),
                               t0_block, step_block, n)
    if rates is not None:
        no_rate = ~np.isfinite(rates).all(axis=0)
        if np.count_nonzero(no_rate & ~bad_d) > MAX_RATELESS_SHARE * n:
            rates = None
    if rates is not None:
        bad_d |= no_rate
        if no_rate.any():
            np.copyto(rates, 0.0, where=no_rate)
        rows = np.empty((3, n))
        rows[0] = a_d
        derivative(rates, fs, out=rows[1:])
        band = bandpass(rows, band_hz, fs, axis=-1)                    # (3, blocks): a_up, roll and pitch acc.
        seg_d = np.unique(np.concatenate(([0], seg // m)))
        use = ~bad_d & np.isfinite(v) & (v >= min_speed_mps)
        heave_roll = _heave_and_roll(band, use, seg_d, fs, car)
        energy = gaussian_energy(heave_roll, fs)                       # the two rows' energies, summed
        car = replace(car, phone_behind_front_axle_m=car.wheelbase_m / 2, phone_left_m=car.track_m / 2)
    else:
        energy = gaussian_energy(bandpass(a_d, band_hz, fs), fs)
    d0 = d[0]
    win = np.floor((d - d0) / window_m).astype(np.int64)
    starts = np.flatnonzero(win[1:] != win[:-1])                      # first block of each window
    starts = np.concatenate(([0], starts + 1))
    counts = np.diff(np.append(starts, n))
    k = win[starts]
    v_ok = np.isfinite(v)
    v0 = np.where(v_ok, v, 0.0)
    sum_v = np.add.reduceat(v0, starts)
    n_v = np.add.reduceat(v_ok.astype(np.int64), starts)
    n_fast = np.add.reduceat((v_ok & (v0 >= min_speed_mps)).astype(np.int64), starts)
    n_bad = np.add.reduceat(bad_d.astype(np.int64), starts)
    dist_start = d0 + k * window_m
    length = np.append(np.minimum(np.diff(dist_start), window_m), d_last - dist_start[-1])
    full = np.append(np.ones(k.size - 1, dtype=bool), length[-1] >= window_m * (1.0 - 1e-9))
    speed = np.where(n_v > 0, sum_v / np.maximum(n_v, 1), np.nan)
    rms = np.sqrt(np.add.reduceat(energy, starts) / counts)
    good = full & (n_bad == 0) & (n_fast >= MIN_SPEED_COVERAGE * counts) & (counts >= 2) & (rms >= RMS_FLOOR_MPS2)
    iri = np.full(k.size, np.nan)
    if np.any(good):
        iri[good] = iri_from_rms(rms[good], speed[good], band_hz=band_hz, fs_hz=fs, car=car, aliased=aliased,
                                 decimation=m)
    t_end = np.append(t[starts[1:]], t_in[-1] + 1.0 / fs_hz)
    return Columns({"t_start_s": t[starts], "t_end_s": t_end, "distance_start_m": dist_start, "length_m": length,
                    "speed_mps": speed, "rms_mps2": rms, "iri_m_per_km": iri, "valid": good})


def _monotone_distance_every(distance_m: np.ndarray, m: int) -> tuple[np.ndarray, float] | None:
    """``(d[::m], d[-1])`` of ``d = np.fmax.accumulate(distance_m)`` with its leading non-finite values set to its
    first finite one [m]; None when there is none. The running maximum runs over the maxima of the ``m`` samples
    before each kept one (:func:`detect.running.running_max_every`), so only the leading stretch is read again."""
    d, last = running_max_every(distance_m, m)
    known = np.isfinite(d)
    if known.all() and np.isfinite(last):
        return d, last
    if known[0]:
        first_value = float(d[0])
    else:
        j = int(np.argmax(known)) if known.any() else d.size      # first kept sample with a number behind it
        head = np.fmax.accumulate(distance_m[(j - 1) * m + 1:j * m + 1])   # the samples since the kept one before
        first = np.flatnonzero(np.isfinite(head))
        if first.size == 0:
            return None
        first_value = float(head[first[0]])
    return np.where(known, d, first_value), last if np.isfinite(last) else first_value


def aggregate_windows(windows: Columns, length_m: float = 100.0) -> Columns:
    """Combine runs of consecutive valid windows into windows of at least ``length_m`` metres.

    Each run of back-to-back valid windows is cut into groups of ``ceil(length_m / window length)`` windows;
    a trailing incomplete group is dropped. The IRI of a group is the length-weighted quadratic mean of its
    windows' IRIs (IRI^2 is proportional to the road's G_d(n0), which averages over length), its RMS the
    time-weighted quadratic mean, its speed the distance over the duration. Every output row is valid.
    """
    if len(windows) == 0:
        return _empty()
    good = np.asarray(windows["valid"], dtype=bool) & np.isfinite(windows["iri_m_per_km"])
    start = windows["distance_start_m"]
    length = windows["length_m"]
    t0, t1 = windows["t_start_s"], windows["t_end_s"]
    contiguous = np.concatenate(([False], np.isclose(start[1:], start[:-1] + length[:-1]) & good[:-1]))
    run = np.cumsum(~contiguous | ~good)                               # a new run at every break
    idx = np.flatnonzero(good)
    if idx.size == 0:
        return _empty()
    per_group = max(1, int(np.ceil(length_m / float(np.median(length[idx])) - 1e-9)))
    run_g = run[idx]
    run_first = np.flatnonzero(np.diff(run_g, prepend=-1))
    pos = np.arange(idx.size) - np.repeat(run_first, np.diff(np.append(run_first, idx.size)))
    group_key = run_g * (idx.size + 1) + pos // per_group
    keys, group = np.unique(group_key, return_inverse=True)
    n_in = np.bincount(group)
    w_len = length[idx]
    dur = t1[idx] - t0[idx]
    g_len = np.bincount(group, w_len)
    g_dur = np.bincount(group, dur)
    iri2 = np.bincount(group, w_len * windows["iri_m_per_km"][idx] ** 2) / g_len
    rms2 = np.bincount(group, dur * windows["rms_mps2"][idx] ** 2) / g_dur
    first_i = np.full(keys.size, idx.size)
    np.minimum.at(first_i, group, np.arange(idx.size))
    last_i = np.zeros(keys.size, dtype=np.int64)
    np.maximum.at(last_i, group, np.arange(idx.size))
    keep = (n_in == per_group) & (g_len >= length_m * (1.0 - 1e-9))
    return Columns({"t_start_s": t0[idx][first_i][keep], "t_end_s": t1[idx][last_i][keep],
                    "distance_start_m": start[idx][first_i][keep], "length_m": g_len[keep],
                    "speed_mps": (g_len / g_dur)[keep], "rms_mps2": np.sqrt(rms2)[keep],
                    "iri_m_per_km": np.sqrt(iri2)[keep], "valid": np.ones(int(keep.sum()), dtype=bool)})
