"""Road geometry, ISO 8608 wheel-path profiles and defect shapes, in local metres.

Conventions:
  * a road is a centreline polyline digitised from its first to its last node; ``sigma_m`` is the distance
    along it (the road's *forward* direction), ``lat_m`` a signed offset to the LEFT of the forward direction;
  * two-way roads with 3.5 m lanes and right-hand traffic: the forward lane spans lat in [-3.5, 0], the
    reverse lane [0, 3.5]; in each lane a car's left wheel runs on the *inner* wheel path (near the
    centreline) and its right wheel on the *outer* one;
  * heights are metres above the undisturbed surface (holes negative).

ISO 8608:2016 displacement PSD: G_d(n) = G_d(n0) (n / n0)^-w, n0 = 0.1 cycles/m, w = 2; class A..E geometric
mean G_d(n0) = 16, 64, 256, 1024, 4096 x 1e-6 m^3 (class boundaries at half and double these).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LANE_WIDTH_M = 3.5
ROAD_WIDTH_M = 2 * LANE_WIDTH_M
PROFILE_DX_M = 0.02          # spatial step of every profile [m]
N0_CPM = 0.1                 # ISO 8608 reference spatial frequency [cycles/m]
ISO8608_GD_N0_M3 = {"A": 16e-6, "B": 64e-6, "C": 256e-6, "D": 1024e-6, "E": 4096e-6, "F": 16384e-6}
RAIL_GAUGE_M = 1.435
DEFECT_TYPES = ("pothole", "cover", "speed_bump", "hump", "joint", "rail")
FULL_WIDTH_TYPES = frozenset({"speed_bump", "hump", "joint", "rail"})


# --------------------------------------------------------------------------------------------------------------
# ISO 8608 profiles
# --------------------------------------------------------------------------------------------------------------

def iso8608_psd_m3(n_cpm: np.ndarray, gd_n0_m3: float, *, waviness: float = 2.0) -> np.ndarray:
    """One-sided displacement PSD G_d(n) [m^3] at spatial frequencies ``n_cpm`` [cycles/m]."""
    return gd_n0_m3 * (np.asarray(n_cpm, dtype=np.float64) / N0_CPM) ** (-waviness)


def _spectral_amplitudes(n_points: int, dx_m: float, gd_n0_m3: float, n_min_cpm: float,
                         waviness: float) -> tuple[np.ndarray, np.ndarray]:
    n_cpm = np.fft.rfftfreq(n_points, dx_m)
    dn = 1.0 / (n_points * dx_m)
    amp = np.zeros(n_cpm.size)
    band = n_cpm >= n_min_cpm
    band[-1] = band[-1] and (n_points % 2 == 1)        # no energy in the Nyquist bin of an even length
    amp[band] = np.sqrt(2.0 * iso8608_psd_m3(n_cpm[band], gd_n0_m3, waviness=waviness) * dn)
    return n_cpm, amp


def iso8608_profile(n_points: int, dx_m: float, gd_n0_m3: float, rng: np.random.Generator, *,
                    n_min_cpm: float = 0.01, waviness: float = 2.0) -> np.ndarray:
    """A random road profile [m] of ``n_points`` heights every ``dx_m`` m with the ISO 8608 PSD.

    Spectral synthesis (sum of cosines with the PSD's amplitude sqrt(2 G_d(n) dn) and uniform random
    phases, evaluated by an inverse real FFT) over n_min_cpm .. 1 / (2 dx) cycles/m.
    """
    _, amp = _spectral_amplitudes(n_points, dx_m, gd_n0_m3, n_min_cpm, waviness)
    phase = rng.uniform(0.0, 2.0 * np.pi, amp.size)
    return np.fft.irfft(amp * np.exp(1j * phase) * (n_points / 2.0), n=n_points)


def wheel_path_profiles(n_points: int, dx_m: float, gd_n0_m3: float, rng: np.random.Generator, *,
                        separation_m: float = 1.55, n_min_cpm: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Two wheel-path profiles ``separation_m`` apart: the same PSD, coherent at long wavelengths.

    Coherence model gamma(n) = 1 / (1 + (n * separation / 0.5)^2): left and right paths share the long
    waves (grade, swells) and differ in the short ones, which is what excites roll.
    """
    n_cpm, amp = _spectral_amplitudes(n_points, dx_m, gd_n0_m3, n_min_cpm, 2.0)
    p1 = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, amp.size))
    p2 = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, amp.size))
    gamma = 1.0 / (1.0 + (n_cpm * separation_m / 0.5) ** 2)
    scale = n_points / 2.0
    inner = np.fft.irfft(amp * p1 * scale, n=n_points)
    outer = np.fft.irfft(amp * (gamma * p1 + np.sqrt(1.0 - gamma**2) * p2) * scale, n=n_points)
    return inner, outer


def pin_ends(profile_m: np.ndarray) -> np.ndarray:
    """Remove the straight line through the first and last height, so consecutive roads join at 0."""
    x = np.linspace(0.0, 1.0, profile_m.size)
    return profile_m - (profile_m[0] + (profile_m[-1] - profile_m[0]) * x)


# --------------------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------------------

def polyline_between(a_xy: tuple[float, float], b_xy: tuple[float, float], *, bulge_m: float = 0.0,
                     spacing_m: float = 1.0) -> np.ndarray:
    """Points (k, 2) from a to b: a straight line, or a circular arc whose middle lies ``bulge_m`` to the left."""
    a, b = np.asarray(a_xy, float), np.asarray(b_xy, float)
    chord = b - a
    c = float(np.hypot(*chord))
    if abs(bulge_m) < 1e-6:
        n = max(2, int(np.ceil(c / spacing_m)) + 1)
        return a + np.linspace(0.0, 1.0, n)[:, None] * chord
    h = bulge_m
    radius = (c * c / 4 + h * h) / (2 * abs(h))
    left = np.array([-chord[1], chord[0]]) / c
    mid = (a + b) / 2
    centre = mid + left * np.sign(h) * (abs(h) - radius)
    th_a = np.arctan2(*(a - centre)[::-1])
    th_b = np.arctan2(*(b - centre)[::-1])
    apex = mid + left * h
    th_m = np.arctan2(*(apex - centre)[::-1])
    sweep = np.mod(th_b - th_a, 2 * np.pi)                       # counter-clockwise sweep a -> b
    if not np.mod(th_m - th_a, 2 * np.pi) <= sweep:
        sweep -= 2 * np.pi                                      # the apex lies on the clockwise way
    n = max(3, int(np.ceil(abs(sweep) * radius / spacing_m)) + 1)
    th = th_a + np.linspace(0.0, sweep, n)
    pts = centre + radius * np.column_stack((np.cos(th), np.sin(th)))
    pts[0], pts[-1] = a, b
    return pts


def cumulative_length_m(xy_m: np.ndarray) -> np.ndarray:
    return np.concatenate(([0.0], np.cumsum(np.hypot(*np.diff(xy_m, axis=0).T))))


def vertex_normals(xy_m: np.ndarray) -> np.ndarray:
    """Unit left normals at the vertices of a polyline (mean of the adjacent segments' normals)."""
    d = np.diff(xy_m, axis=0)
    d /= np.hypot(d[:, 0], d[:, 1])[:, None]
    t = np.vstack((d[:1], (d[:-1] + d[1:]) / 2, d[-1:]))
    t /= np.hypot(t[:, 0], t[:, 1])[:, None]
    return np.column_stack((-t[:, 1], t[:, 0]))


@dataclass(frozen=True, eq=False)
class Road:
    """A two-way road: centreline polyline (k, 2) in local east/north metres, from ``node_a`` to ``node_b``."""

    road_id: str
    node_a: str
    node_b: str
    xy_m: np.ndarray
    iso_class: str = "B"

    @property
    def cum_m(self) -> np.ndarray:
        return cumulative_length_m(self.xy_m)

    @property
    def length_m(self) -> float:
        return float(self.cum_m[-1])

    def point(self, sigma_m: float | np.ndarray, lat_m: float | np.ndarray = 0.0) -> np.ndarray:
        """East/north [m] of the point ``sigma_m`` along and ``lat_m`` left of the centreline."""
        cum = self.cum_m
        normals = vertex_normals(self.xy_m)
        s = np.asarray(sigma_m, dtype=np.float64)
        x = np.interp(s, cum, self.xy_m[:, 0]) + np.interp(s, cum, normals[:, 0]) * lat_m
        y = np.interp(s, cum, self.xy_m[:, 1]) + np.interp(s, cum, normals[:, 1]) * lat_m
        return np.stack((x, y), axis=-1)

    def bearing_deg(self, sigma_m: float) -> float:
        """Compass bearing [deg] of the forward direction at ``sigma_m``."""
        p0, p1 = self.point(max(0.0, sigma_m - 1.0)), self.point(min(self.length_m, sigma_m + 1.0))
        d = p1 - p0
        return float(np.mod(np.degrees(np.arctan2(d[0], d[1])), 360.0))

    def lane_polyline(self, direction: str) -> tuple[np.ndarray, np.ndarray]:
        """(xy (k, 2), sigma (k,)) of a lane's centre line in its travel order."""
        lat = -LANE_WIDTH_M / 2 if direction == "forward" else LANE_WIDTH_M / 2
        xy = self.xy_m + vertex_normals(self.xy_m) * lat
        sigma = self.cum_m
        if direction == "reverse":
            return xy[::-1].copy(), sigma[::-1].copy()
        return xy, sigma


# --------------------------------------------------------------------------------------------------------------
# Defects
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Defect:
    """A road feature at ``sigma_m`` along ``road_id``, centred ``lat_m`` left of the centreline.

    ``depth_m`` (>= 0) is how far a hole goes down (potholes, sunken covers, joint gaps, rail flangeways);
    ``height_m`` how far a feature stands up (bumps, humps, proud covers, rail panels) or, for joints, the
    signed step met when travelling forward. ``length_m`` is along the road, ``width_m`` across.
    ``lane`` is "forward", "reverse" or "both" (full width). ``repaired_after_s`` (epoch) ends a pothole.
    """

    defect_id: str
    kind: str
    road_id: str
    sigma_m: float
    lat_m: float
    length_m: float
    width_m: float
    depth_m: float = 0.0
    height_m: float = 0.0
    lane: str = "both"
    wall_exponent: float = 6.0        # pothole bowl: depth * (1 - r^p); large p = steep walls, flat bottom
    ramp_m: float = 0.0               # joint step: the far side returns to level over this distance
    repaired_after_s: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def full_width(self) -> bool:
        return self.kind in FULL_WIDTH_TYPES

    def along_extent_m(self) -> tuple[float, float]:
        """(lo, hi) of ``sigma - sigma_m`` outside which the height is 0."""
        if self.kind == "joint":
            return -self.length_m / 2 - 0.01, self.length_m / 2 + self.ramp_m + 0.01
        return -self.length_m / 2 - 0.01, self.length_m / 2 + 0.01

    def lateral_half_width_m(self) -> float:
        if self.full_width:
            return np.inf
        return self.width_m / 2 if self.kind == "pothole" else self.length_m / 2

    def exists_at(self, t_s: float) -> bool:
        return self.repaired_after_s is None or t_s < self.repaired_after_s

    @property
    def reportable(self) -> bool:
        """Worth a crew visit: potholes >= 3 cm deep, covers sunk more than 2.5 cm. Designed features are not."""
        if self.kind == "pothole":
            return self.depth_m >= 0.03
        if self.kind == "cover":
            return self.depth_m > 0.025
        return False


def defect_height_m(d: Defect, ds_m: np.ndarray, dlat_m: np.ndarray) -> np.ndarray:
    """Surface height [m] of defect ``d`` at offsets ``ds_m`` along (forward) and ``dlat_m`` left of its centre."""
    ds = np.asarray(ds_m, dtype=np.float64)
    dl = np.asarray(dlat_m, dtype=np.float64)
    ds, dl = np.broadcast_arrays(ds, dl)
    if d.kind == "pothole":
        r2 = (ds / (d.length_m / 2)) ** 2 + (dl / (d.width_m / 2)) ** 2
        return np.where(r2 < 1.0, -d.depth_m * (1.0 - r2 ** (d.wall_exponent / 2)), 0.0)
    if d.kind == "cover":
        radius = d.length_m / 2
        edge = np.clip((radius - np.hypot(ds, dl)) / 0.015, 0.0, 1.0)      # 15 mm frame bevel
        return (d.height_m - d.depth_m) * edge
    if d.kind == "speed_bump":
        u = 2.0 * ds / d.length_m
        return np.where(np.abs(u) < 1.0, d.height_m * (1.0 - u * u), 0.0)
    if d.kind == "hump":
        u = ds / d.length_m
        return np.where(np.abs(u) < 0.5, d.height_m * 0.5 * (1.0 + np.cos(2 * np.pi * u)), 0.0)
    if d.kind == "joint":
        half = d.length_m / 2
        gap = np.where(np.abs(ds) < half, -d.depth_m, 0.0)
        far = ds - half
        step = np.where(far >= 0.0, d.height_m * np.clip(1.0 - far / max(d.ramp_m, 1e-6), 0.0, 1.0), 0.0)
        return gap + step
    if d.kind == "rail":
        half = d.length_m / 2
        panel = d.height_m * np.clip((half - np.abs(ds)) / d.extra.get("edge_m", 0.1), 0.0, 1.0)
        head_w, flange_w = 0.07, 0.065
        out = panel.copy()
        for rail_at in (-RAIL_GAUGE_M / 2, RAIL_GAUGE_M / 2):
            inward = -np.sign(rail_at)
            head = np.abs(ds - rail_at) < head_w / 2
            flange_c = rail_at + inward * (head_w / 2 + flange_w / 2)
            flange = np.abs(ds - flange_c) < flange_w / 2
            out = np.where(head, d.height_m + d.extra.get("head_offset_m", 0.0), out)
            out = np.where(flange, d.height_m - d.depth_m, out)
        return out
    raise ValueError(f"unknown defect kind {d.kind!r}; expected one of {DEFECT_TYPES}")


# --------------------------------------------------------------------------------------------------------------
# The surface of a road: background profiles per lane and wheel path
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class RoadSurface:
    """Background heights [m] of a road's four wheel paths on a ``PROFILE_DX_M`` grid of sigma.

    ``profiles[(lane, path)]`` with lane in {"forward", "reverse"} and path in {"inner", "outer"}.
    """

    road_id: str
    sigma_m: np.ndarray
    profiles: dict[tuple[str, str], np.ndarray]

    def height(self, lane: str, path: str, sigma_m: np.ndarray) -> np.ndarray:
        return np.interp(sigma_m, self.sigma_m, self.profiles[(lane, path)])


def build_surface(road: Road, rng: np.random.Generator, *, rough_patches: list[tuple[str, float, float, str]]
                  = (), dx_m: float = PROFILE_DX_M) -> RoadSurface:
    """Background profiles of ``road``: its ISO class everywhere plus rougher patches.

    ``rough_patches``: (lane, sigma_from, sigma_to, class) stretches with an extra ISO profile of that class,
    faded in and out over 5 m.
    """
    n = int(np.ceil(road.length_m / dx_m)) + 1
    sigma = np.arange(n) * dx_m
    gd = ISO8608_GD_N0_M3[road.iso_class]
    profiles: dict[tuple[str, str], np.ndarray] = {}
    for lane in ("forward", "reverse"):
        inner, outer = wheel_path_profiles(n, dx_m, gd, rng)
        for a, b, cls in [(a, b, c) for (ln, a, b, c) in rough_patches if ln == lane]:
            extra_in, extra_out = wheel_path_profiles(n, dx_m, ISO8608_GD_N0_M3[cls] - gd, rng,
                                                      n_min_cpm=0.05)
            fade = np.clip(np.minimum(sigma - a, b - sigma) / 5.0, 0.0, 1.0)
            inner = inner + extra_in * fade
            outer = outer + extra_out * fade
        profiles[(lane, "inner")] = pin_ends(inner)
        profiles[(lane, "outer")] = pin_ends(outer)
    return RoadSurface(road.road_id, sigma, profiles)


@dataclass(frozen=True, eq=False)
class Network:
    """Nodes (id -> east/north [m]) joined by two-way roads."""

    nodes: dict[str, tuple[float, float]]
    roads: dict[str, Road]

    def exits(self, node: str) -> list[tuple[str, str, str]]:
        """(road_id, direction, next node) of every way out of ``node``."""
        out = []
        for rid, road in self.roads.items():
            if road.node_a == node:
                out.append((rid, "forward", road.node_b))
            if road.node_b == node:
                out.append((rid, "reverse", road.node_a))
        return out

    @property
    def length_m(self) -> float:
        return float(sum(r.length_m for r in self.roads.values()))


def defect_footprint(d: Defect, ds_m: np.ndarray, dlat_m: np.ndarray, *, dx_m: float = PROFILE_DX_M) -> np.ndarray:
    """True where (ds, dlat) lies on the defect proper: a pothole's or cover's outline, the strip of a
    full-width feature (a joint's seam is at least one profile step wide)."""
    ds, dl = np.broadcast_arrays(np.asarray(ds_m, dtype=np.float64), np.asarray(dlat_m, dtype=np.float64))
    if d.kind == "pothole":
        return (ds / (d.length_m / 2)) ** 2 + (dl / (d.width_m / 2)) ** 2 < 1.0
    if d.kind == "cover":
        return np.hypot(ds, dl) < d.length_m / 2
    return np.abs(ds) <= max(d.length_m / 2, dx_m)
