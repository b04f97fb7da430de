"""Virtual reorientation of a phone at any angle (after Nericell, Mohan et al., SenSys 2008).

1. Gravity: the direction of the accelerometer's mean over *steady* 1-s blocks (|mean| within a tolerance of
   g, so braking, turning and bumps do not tilt it), per mount segment.
2. Re-mounts: a lasting change of the block-mean gravity direction (mean direction over ``remount_context_s``
   before vs after a block boundary differs by more than ``remount_angle_deg``) starts a new segment. With GPS,
   the tilt the car's own horizontal acceleration explains is not counted: braking hard from 25 m/s after
   accelerating tilts the mean direction by atan(|change of the mean horizontal acceleration| / g), 25-30 degrees,
   and is no re-mount.
3. Forward: least squares of the horizontal acceleration on GPS dv/dt (braking and accelerating) and on the
   centripetal term v*dpsi/dt (turns); without GPS speed, the principal horizontal axis (sign unknown).

Frame of the output: ``up`` (against gravity), ``forward`` (direction of travel) and ``left = up x forward``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from detect.arrays import true_runs
from detect.running import block_means, median
from ingest.units import G_MPS2


@dataclass(frozen=True)
class Orientation:
    """Per mount segment: start index on the grid, unit axes in the phone frame, gravity magnitude."""

    seg_start: np.ndarray      # (s,) int, first grid index of each segment; seg_start[0] == 0
    up: np.ndarray             # (s, 3)
    forward: np.ndarray        # (s, 3)
    left: np.ndarray           # (s, 3)
    g_mps2: np.ndarray         # (s,)
    forward_method: tuple[str, ...]   # "gps" | "pca" per segment

    def segment_of(self, n: int) -> np.ndarray:
        """Segment index of every one of ``n`` grid samples."""
        seg = np.zeros(n, dtype=np.int64)
        for s in self.seg_start[1:]:          # loop over re-mounts
            seg[s:] += 1
        return seg

    def to_car_frame(self, vec: np.ndarray) -> np.ndarray:
        """(3, n) components of (n, 3) phone-frame vectors along (up, forward, left) of each mount segment."""
        out = np.empty((3, vec.shape[0]))
        stops = np.append(self.seg_start[1:], vec.shape[0])
        for k, (s, e) in enumerate(zip(self.seg_start, stops, strict=True)):     # loop over mount segments
            rot = np.stack([self.up[k], self.forward[k], self.left[k]])
            np.matmul(rot, vec[s:e].T, out=out[:, s:e])
        return out

    def project(self, vec: np.ndarray, axis: str) -> np.ndarray:
        """Component of (n, 3) phone-frame vectors along ``axis`` ("up", "forward", "left") per segment."""
        return self.to_car_frame(vec)[("up", "forward", "left").index(axis)]


def _norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norm along the last axis (``np.linalg.norm(v, axis=-1)``, a third of its cost on (n, 3) rows)."""
    return np.sqrt(np.einsum("...i,...i->...", v, v))


def _column_medians(x: np.ndarray) -> np.ndarray:
    """``np.median(x, axis=0)`` of an (m, k) array, m >= 1, by one partition of its contiguous transpose (numpy's
    median partitions strided columns at two places, five times slower on (3600, 3) block means); the lower middle
    of an even count is the largest value below the partition point."""
    xt = np.ascontiguousarray(x.T)
    if np.isnan(xt).any():
        return np.median(x, axis=0)
    m = xt.shape[1]
    part = np.partition(xt, m // 2, axis=1)
    if m % 2:
        return part[:, m // 2]
    return (part[:, :m // 2].max(axis=1) + part[:, m // 2]) / 2


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of two 3-vectors, the same products and differences without its broadcasting set-up."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _turning_medians(x: np.ndarray) -> np.ndarray:
    """Robust centre of the rows of ``x`` (m, k) that turns with them: the component-wise medians taken along the
    rows' principal axes, turned back. A plain component-wise median depends on the axes it is taken in, so the
    phone's orientation (or the arbitrary horizontal basis) would move the estimate; along the principal axes
    (eigenvectors turn with the data; a flipped sign flips the median with it) it does not."""
    if x.shape[0] < 3 or not np.isfinite(x).all():
        return _column_medians(x)
    _, axes = np.linalg.eigh(_cov_columns(x))
    return axes @ _column_medians(x @ axes)


def _cov_columns(x: np.ndarray) -> np.ndarray:
    """``np.cov(x.T)`` of an (m, k) array, m >= 2: the same steps (centre the rows of the transpose on their means,
    one product, divide by m - 1) without its argument handling."""
    xt = np.array(x.T, dtype=np.float64)
    xt -= xt.mean(axis=1)[:, None]
    cov = np.dot(xt, xt.T)
    cov *= np.true_divide(1, xt.shape[1] - 1)
    return cov


def _median(x: np.ndarray) -> float:
    """``np.median`` of a 1-D array (NaN if any NaN): :func:`detect.running.median` where it has none."""
    if x.size == 0 or np.isnan(x).any():
        return float(np.median(x))
    return median(x)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(_norm(v), 1e-12)[..., None]


def angle_from_cos_deg(cos: np.ndarray) -> np.ndarray:
    """Angle [deg] from its cosine, clipped to [-1, 1] (dot products of unit vectors stray past it by rounding)."""
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def accel_tilt_deg(accel_mps2: np.ndarray) -> np.ndarray:
    """The tilt [deg] a horizontal acceleration [m/s^2] gives the mean acceleration a phone feels: atan(a / g)
    (braking at 3.5 m/s^2 reads ~20 degrees)."""
    return np.degrees(np.arctan(accel_mps2 / G_MPS2))


def find_remounts(acc: np.ndarray, fs_hz: float, *, block_s: float, context_s: float,
                  angle_deg: float, horizontal_mps2: np.ndarray | None = None) -> np.ndarray:
    """Grid indices where the gravity direction changes for good by more than ``angle_deg`` beyond what the car's
    own horizontal acceleration explains. ``horizontal_mps2``: (n_blocks, 2) block means of the car's longitudinal
    and centripetal acceleration [m/s^2] (0 where unknown), on the blocks of ``block_s``."""
    n_block = max(1, round(block_s * fs_hz))
    return _remounts_from_means(block_means(acc, n_block), n_block, k_blocks=max(2, round(context_s / block_s)),
                                angle_deg=angle_deg, horizontal_mps2=horizontal_mps2)


def _window_sums(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of the ``k`` rows before and the ``k`` rows after each boundary b in [k, n - k] of (n, c) rows."""
    n = x.shape[0]
    csum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    return csum[k:n - k + 1] - csum[:n - 2 * k + 1], csum[2 * k:] - csum[k:n - k + 1]   # csum[b] - csum[b - k], ...


def _remounts_from_means(means: np.ndarray, n_block: int, *, k_blocks: int, angle_deg: float,
                         horizontal_mps2: np.ndarray | None = None) -> np.ndarray:
    """:func:`find_remounts` from the block means (n_blocks, 3) of ``n_block`` samples each, ``k_blocks`` of
    context."""
    k = k_blocks
    nb = means.shape[0]
    if nb < 2 * k:
        return np.empty(0, dtype=np.int64)
    b = np.arange(k, nb - k + 1)                  # boundary before block b
    before, after = (_unit(w) for w in _window_sums(_unit(means), k))
    angle = angle_from_cos_deg(np.einsum("ij,ij->i", before, after))
    if horizontal_mps2 is not None:               # the tilt the car's own acceleration gives is no re-mount
        h_before, h_after = _window_sums(horizontal_mps2[:nb], k)
        change_mps2 = np.hypot(*((h_after - h_before) / k).T)
        angle -= accel_tilt_deg(change_mps2)
    peaks, _ = sps.find_peaks(np.concatenate(([0.0], angle, [0.0])), height=angle_deg, distance=k)
    return (b[peaks - 1] * n_block).astype(np.int64)


HANDLING_BLOCK_S = 0.25     # blocks in which :func:`handling_spans` tells mounted from handled
STEADY_COST = 0.5           # what a steady block inside a handling span costs, against 1 for an unsteady one outside
UNKNOWN_CAR_TILT_DEG = 16.7  # where the car's acceleration is unknown, an excursion may be cornering at 0.3 g


def _car_tilt_deg(n_blocks: int, nb: int, car_accel_mps2: np.ndarray | None, car_accel_step: int) -> np.ndarray:
    """The tilt [deg] the car's own horizontal acceleration gives the phone's mean acceleration in each block of
    ``nb`` grid samples (from the first); NaN where unknown."""
    if car_accel_mps2 is None or car_accel_mps2.size == 0:
        return np.full(n_blocks, np.nan)
    mid = (nb // 2 + nb * np.arange(n_blocks)) // max(1, car_accel_step)
    return accel_tilt_deg(car_accel_mps2[np.minimum(mid, car_accel_mps2.size - 1)])


def handling_spans(acc: np.ndarray, fs_hz: float, seg_start: np.ndarray, up: np.ndarray, *, min_mount_s: float,
                   search_s: float, steady_deg: float, excursion_deg: float,
                   car_accel_mps2: np.ndarray | None = None, car_accel_step: int = 1) -> np.ndarray:
    """(k, 2) grid index ranges [start, stop) in which the phone sat in no mount, in blocks of
    :data:`HANDLING_BLOCK_S` from the first sample: one per re-mount episode (re-mounts less than ``min_mount_s``
    apart are one: a phone held in between), and one per excursion from a mount it came back to.

    A block's mean acceleration is *steady* in a mount when its direction lies within ``steady_deg`` of that mount's
    gravity direction (``up`` of its segment) beyond the tilt the car's own acceleration gives (``car_accel_mps2``,
    value j standing for the grid samples [j * car_accel_step, (j + 1) * car_accel_step)).

    * Re-mounts: :func:`orient` places them on its blocks wherever the before/after contrast peaks, seconds from the
      hand. Within ``search_s`` of an episode, the span is the split before | span | after that costs least: 1 per
      block not steady in its mount outside the span, :data:`STEADY_COST` per steady block inside it (the widest
      on ties).
    * Excursions: two or more blocks in a row further than ``excursion_deg`` from their own mount (where the car's
      acceleration is unknown, beyond :data:`UNKNOWN_CAR_TILT_DEG` of cornering): a phone picked up and put back.
    """
    n = acc.shape[0]
    nb = max(1, round(HANDLING_BLOCK_S * fs_hz))
    n_blocks = n // nb
    if n_blocks < 2:
        return np.empty((0, 2), dtype=np.int64)
    starts = np.asarray(seg_start, dtype=np.int64)
    dirs = _unit(block_means(acc[:n_blocks * nb], nb))
    tilt = _car_tilt_deg(n_blocks, nb, car_accel_mps2, car_accel_step)
    seg = np.searchsorted(starts, nb * np.arange(n_blocks) + nb // 2, side="right") - 1
    off_own = angle_from_cos_deg(np.einsum("ij,ij->i", dirs, up[seg]))
    run0, run1 = true_runs(off_own - np.where(np.isnan(tilt), UNKNOWN_CAR_TILT_DEG, tilt) > excursion_deg)
    long = run1 - run0 >= 2
    spans = [np.column_stack([run0[long], run1[long]]) * nb]
    bounds = starts[1:]
    if bounds.size:
        tilt = np.nan_to_num(tilt)
        search = round(search_s * fs_hz)
        episode = np.concatenate(([0], np.cumsum(np.diff(bounds) >= min_mount_s * fs_hz)))
        firsts = np.flatnonzero(np.diff(np.concatenate(([-1], episode))))
        lasts = np.append(firsts[1:] - 1, bounds.size - 1)
        seg_ends = np.append(bounds, n)
        for k0, k1 in zip(firsts, lasts, strict=True):                  # loop over re-mount episodes
            b0 = max(int(starts[k0]), int(bounds[k0]) - search) // nb
            b1 = min(int(seg_ends[k1 + 1]), int(bounds[k1]) + search, n_blocks * nb) // nb
            if b1 - b0 < 2:
                spans.append(np.array([[bounds[k0], bounds[k1]]]))
                continue
            off = angle_from_cos_deg(dirs[b0:b1] @ np.stack([up[k0], up[k1 + 1]]).T) - tilt[b0:b1, None]
            before, after = (off < steady_deg).T
            # cost of the split at (t1, t2), t1 <= t2: unsteady before t1 + steady in [t1, t2) + unsteady from t2
            c_before = np.concatenate(([0], np.cumsum(~before)))
            c_steady = np.concatenate(([0], np.cumsum(before | after)))
            c_after = np.concatenate(([0], np.cumsum(~after)))
            cost = (c_before[:, None] + STEADY_COST * (c_steady[None, :] - c_steady[:, None])
                    + (c_after[-1] - c_after)[None, :])
            t1, t2 = np.meshgrid(np.arange(b1 - b0 + 1), np.arange(b1 - b0 + 1), indexing="ij")
            cost = np.where(t1 <= t2, cost - 1e-6 * (t2 - t1), np.inf)
            i1, i2 = np.unravel_index(int(np.argmin(cost)), cost.shape)
            spans.append(np.array([[(b0 + i1) * nb, (b0 + i2) * nb]]))
    out = np.concatenate(spans).astype(np.int64)
    return out[np.argsort(out[:, 0], kind="stable")]


def _gravity(means: np.ndarray, tol_mps2: float) -> tuple[np.ndarray, float]:
    """Gravity direction and magnitude from 1-s block means (n_blocks, 3) of the accelerometer."""
    mag = _norm(means)
    steady = np.abs(mag - _median(mag)) < tol_mps2
    use, mag = (means[steady], mag[steady]) if np.count_nonzero(steady) >= 3 else (means, mag)
    g_vec = _turning_medians(use) if use.shape[0] >= 3 else use.mean(axis=0)
    return _unit(g_vec), _median(mag)


def _horizontal_basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = _unit(_cross(up, helper))
    e2 = _cross(up, e1)
    return e1, e2


def _forward(means: np.ndarray, up: np.ndarray, gps_means: np.ndarray | None) -> tuple[np.ndarray, str]:
    """Forward axis from 1-s block means of the horizontal acceleration (regressed on the block means of GPS dv/dt
    and v*dpsi/dt, ``gps_means`` (n_blocks, 1 or 2)), else their principal axis."""
    e1, e2 = _horizontal_basis(up)
    h = means @ np.column_stack([e1, e2])
    h -= _turning_medians(h)
    if gps_means is not None:
        a_mat = gps_means
        ok = np.all(np.isfinite(a_mat), axis=1)
        if np.count_nonzero(ok) > 10 and np.std(a_mat[ok, 0]) > 0.05:
            coef, *_ = np.linalg.lstsq(a_mat[ok], h[ok], rcond=None)
            f2 = coef[0]
            if np.linalg.norm(f2) > 0.3:         # ~unit response expected for a rigid mount
                f2 = f2 / np.linalg.norm(f2)
                return _unit(f2[0] * e1 + f2[1] * e2), "gps"
    cov = _cov_columns(h) if h.shape[0] > 2 else np.eye(2)
    w, v = np.linalg.eigh(cov)
    f2 = v[:, int(np.argmax(w))]
    return _unit(f2[0] * e1 + f2[1] * e2), "pca"


def _horizontal_block_means(regs: list[np.ndarray], step: int, n: int, n_block: int) -> np.ndarray:
    """(ceil(n / n_block), 2) block means of the car's GPS longitudinal and centripetal acceleration [m/s^2] over
    blocks of ``n_block`` grid samples, from values every ``step`` samples; unknown (NaN) counts as 0 (no tilt
    explained)."""
    n_blocks = -(-n // n_block)
    cols = []
    for r in regs:                                   # two columns
        r = np.nan_to_num(r[:, None])
        if n_block % step:
            r, per = np.repeat(r, step, axis=0)[:n], n_block
        else:
            per = n_block // step
        cols.append(block_means(r, per)[:n_blocks, 0])
    return np.column_stack(cols)


def orient(acc: np.ndarray, fs_hz: float, *, dvdt_mps2: np.ndarray | None = None,
           centripetal_mps2: np.ndarray | None = None, gps_step: int = 1, steady_tolerance_mps2: float = 0.6,
           remount_block_s: float = 1.0, remount_context_s: float = 8.0,
           remount_angle_deg: float = 20.0) -> Orientation:
    """Estimate the car frame of a phone from uniformly sampled accelerometer data (n, 3) [m/s^2].

    ``dvdt_mps2`` (GPS longitudinal acceleration) and ``centripetal_mps2`` (speed x yaw rate from GPS heading)
    [m/s^2], NaN where unknown, help find the forward axis: on the same grid, or every ``gps_step`` grid samples
    (value j standing for the samples ``[j * gps_step, (j + 1) * gps_step)``, as :class:`detect.motion.Motion`
    keeps them).
    """
    n = acc.shape[0]
    n_block = max(1, round(fs_hz))
    n_remount = max(1, round(remount_block_s * fs_hz))
    k_remount = max(2, round(remount_context_s / remount_block_s))
    all_means = block_means(acc, n_block)
    regs = [r for r in (dvdt_mps2, centripetal_mps2 if dvdt_mps2 is not None else None) if r is not None]
    step = max(1, int(gps_step))
    horizontal = _horizontal_block_means(regs, step, n, n_remount) if len(regs) == 2 else None
    if n_remount == n_block:                 # the same blocks: one pass for both
        bounds = _remounts_from_means(all_means, n_block, k_blocks=k_remount, angle_deg=remount_angle_deg,
                                      horizontal_mps2=horizontal)
    else:
        bounds = find_remounts(acc, fs_hz, block_s=remount_block_s, context_s=remount_context_s,
                               angle_deg=remount_angle_deg, horizontal_mps2=horizontal)
    starts = np.concatenate(([0], bounds)).astype(np.int64)
    stops = np.concatenate((bounds, [n])).astype(np.int64)
    if regs and step > 1 and (n_block % step or np.any(starts % n_block)):
        regs, step = [np.repeat(r, step)[:n] for r in regs], 1    # blocks not made of whole coarse steps: the grid
    ups, fwds, lefts, gs, methods = [], [], [], [], []
    for s, e in zip(starts, stops, strict=True):          # loop over mount segments, not samples
        aligned = s % n_block == 0 and (e % n_block == 0 or e == n)
        means = all_means[s // n_block: -(-e // n_block)] if aligned else block_means(acc[s:e], n_block)
        gps_means = np.column_stack([block_means(r[s // step: -(-e // step), None], n_block // step)[:, 0]
                                     for r in regs]) if regs else None     # one column at a time: no copy
        up, g = _gravity(means, steady_tolerance_mps2)
        fwd, method = _forward(means, up, gps_means)
        ups.append(up)
        fwds.append(fwd)
        lefts.append(_cross(up, fwd))
        gs.append(g)
        methods.append(method)
    return Orientation(seg_start=starts, up=np.array(ups), forward=np.array(fwds), left=np.array(lefts),
                       g_mps2=np.array(gs), forward_method=tuple(methods))
