"""GPS fixes as a phone reports them: 1 Hz, correlated position error, latency, outages, Doppler speed, heading.

* Position error: a first-order Gauss-Markov process per axis (east, north), sigma 2-8 m, correlation time
  10-60 s (multipath and atmosphere change slowly), so consecutive fixes are wrong in the same direction.
* Latency: a fix reported at time t describes where the phone was at t - latency (0-1 s).
* Reported accuracy: the 68 % radius of a 2-D Gaussian (1.5 sigma) with its own slow fluctuation.
* Outages of several seconds (bridges, tall buildings); the first fix comes a few seconds after the start.
* Speed from Doppler: the true speed plus 0.1-0.3 m/s noise. Heading: the course over ground with noise
  growing as the speed drops, absent below 0.5 m/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter


@dataclass(frozen=True)
class GpsModel:
    sigma_m: float            # per-axis position error sigma
    tau_s: float              # correlation time of the error
    latency_s: float
    speed_noise_mps: float
    first_fix_s: float
    outages_per_hour: float


def draw_gps(rng: np.random.Generator, sigma_range_m: tuple[float, float]) -> GpsModel:
    return GpsModel(sigma_m=float(rng.uniform(*sigma_range_m)), tau_s=float(rng.uniform(10.0, 60.0)),
                    latency_s=float(rng.uniform(0.0, 1.0)), speed_noise_mps=float(rng.uniform(0.1, 0.3)),
                    first_fix_s=float(rng.uniform(0.5, 5.0)), outages_per_hour=float(rng.uniform(2.0, 12.0)))


def gauss_markov(n: int, dt_s: float, sigma: float, tau_s: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary first-order Gauss-Markov sequence: n values dt_s apart, std ``sigma``, correlation ``tau_s``."""
    phi = np.exp(-dt_s / tau_s)
    w = rng.standard_normal(n) * sigma * np.sqrt(1.0 - phi * phi)
    x0 = rng.standard_normal() * sigma
    return lfilter([1.0], [1.0, -phi], w, zi=np.array([phi * x0]))[0]


@dataclass(frozen=True)
class GpsFixes:
    """Fixes in local metres; t [s from the trip start]."""

    t_s: np.ndarray
    east_m: np.ndarray
    north_m: np.ndarray
    speed_mps: np.ndarray
    heading_deg: np.ndarray   # NaN where the phone reports no bearing
    accuracy_m: np.ndarray


def simulate_gps(t_sim_s: np.ndarray, east_m: np.ndarray, north_m: np.ndarray, v_mps: np.ndarray,
                 course_deg: np.ndarray, model: GpsModel, rng: np.random.Generator) -> GpsFixes:
    """Fixes over a trip from the true track (arrays at the simulation times ``t_sim_s``)."""
    duration = float(t_sim_s[-1])
    t = np.arange(model.first_fix_s, duration, 1.0)
    t = t + rng.normal(0.0, 0.01, t.size)
    keep = (t > 0) & (t < duration)
    for start in rng.uniform(0.0, duration, rng.poisson(model.outages_per_hour * duration / 3600.0)):
        keep &= ~((t >= start) & (t < start + rng.uniform(4.0, 20.0)))
    n = t.size
    err_e = gauss_markov(n, 1.0, model.sigma_m, model.tau_s, rng)
    err_n = gauss_markov(n, 1.0, model.sigma_m, model.tau_s, rng)
    acc = 1.5 * model.sigma_m * np.exp(gauss_markov(n, 1.0, 0.25, 20.0, rng))
    t_true = np.clip(t - model.latency_s, 0.0, duration)
    v = np.interp(t_true, t_sim_s, v_mps)
    course = np.interp(t_true, t_sim_s, np.unwrap(np.radians(course_deg)))
    heading_noise = rng.normal(0.0, 1.0, n) * (1.5 + 15.0 / np.maximum(v, 0.5))
    heading = np.where(v >= 0.5, np.mod(np.degrees(course) + heading_noise, 360.0), np.nan)
    speed = np.maximum(v + rng.normal(0.0, model.speed_noise_mps, n), 0.0)
    return GpsFixes(
        t_s=t[keep],
        east_m=(np.interp(t_true, t_sim_s, east_m) + err_e)[keep],
        north_m=(np.interp(t_true, t_sim_s, north_m) + err_n)[keep],
        speed_mps=speed[keep],
        heading_deg=heading[keep],
        accuracy_m=acc[keep],
    )
