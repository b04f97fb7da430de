"""Turn arrays from any reader into a validated :class:`~ingest.trace.Trace`.

Every reader ends here, so the rules live in one place:

* non-finite accelerometer samples are dropped and counted (rejected above ``Limits.max_nonfinite_fraction``);
  nothing missing is ever filled with zeros;
* small timestamp reorderings are sorted, exact duplicate timestamps dropped, a clock that runs backwards by
  more than ``Limits.max_backward_jump_s`` rejected;
* accelerometer and gyroscope samples stamped in bursts (an app stamping samples on arrival: several share one
  time, or lie a fraction of a millisecond apart) are kept and re-spaced evenly, see :func:`_respace_bursts`;
* median sample rate, duration and sample count must lie within :class:`~ingest.trace.Limits`;
* the accelerometer unit must agree with the data (|a| at rest is 1 g = 9.80665 m/s^2);
* GPS fixes without a position or at (0, 0) are dropped and counted; coordinates out of range are rejected;
  negative speed or accuracy, or a speed above ``GPS_MAX_SPEED_MPS``, means unknown (NaN); a fix an impossible
  jump (above ``GPS_MAX_SPEED_MPS`` beyond the fixes' accuracies) from its neighbours is dropped and noted, a trip
  of mostly such jumps rejected.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ingest.errors import GpsError, SampleRateError, SchemaError, SizeError, TimestampError, UnitError
from ingest.geodesy import haversine_m
from ingest.trace import Limits, Quality, Trace
from ingest.units import ACCEL_UNITS, G_MPS2, GYRO_UNITS

GYRO_MAX_MEDIAN_RAD_S = 1.0     # a car's median rotation rate over a trip is ~0.01-0.1 rad/s; in deg/s it reads 57x

# Bursts (see _respace_bursts): an interval is "tight" when at most BURST_TIGHT_FRACTION of the trace's mean
# interval and at most BURST_TICK_S, one tick of a millisecond clock with float slack (an app stamping on arrival
# with a millisecond clock gives a burst 0 and 1 ms steps; phones sample at 500 Hz at most, 2 ms apart, so a
# genuine 200 Hz stretch in a 5 Hz trace is no burst; the fraction keeps a 1000 Hz clock's 1 ms steps apart); a
# trace is stamped in bursts when at least BURST_MIN_SHARE of its intervals are tight (bursts of 2 make 1/2 of them
# tight; a clock jittered by half an interval makes ~1/7 shorter than a quarter interval).
BURST_TIGHT_FRACTION = 0.25
BURST_TICK_S = 1.01e-3
BURST_MIN_SHARE = 0.2

ArrayLike = Any


def as_float_array(values: ArrayLike, *, field: str, source: str | None) -> np.ndarray:
    """``values`` as a 1-D float64 array; ``None`` entries become NaN. Raises SchemaError if non-numeric."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        arr = values
    else:
        if isinstance(values, Sequence) and not isinstance(values, str | bytes) and bool in set(map(type, values)):
            first = next(i for i, v in enumerate(values) if type(v) is bool)   # JSON true/false: not a reading
            raise SchemaError(f"holds {str(values[first]).lower()} at index {first}; every entry must be a number "
                              "(or null where allowed)", source=source, field=field)
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            bad = _first_non_numeric(values)
            raise SchemaError(
                f"holds a non-numeric value{bad}; every entry must be a number (or null where allowed)",
                source=source, field=field,
            ) from exc
    if arr.ndim != 1:
        raise SchemaError(f"must be a flat list of numbers, got an array of shape {arr.shape}",
                          source=source, field=field)
    return arr


def _first_non_numeric(values: ArrayLike) -> str:
    if isinstance(values, Sequence) and not isinstance(values, str | bytes):
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, int | float):
                try:
                    float(v)
                except (TypeError, ValueError):
                    return f" at index {i} ({v!r})"
    return ""


def _check_lengths(arrays: Mapping[str, np.ndarray], *, source: str | None) -> None:
    lengths = {k: v.size for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
        first = next(iter(lengths))
        raise SchemaError(f"arrays differ in length ({desc}); every array of a block needs one entry per sample",
                          source=source, field=first)


def _order_times(t_s: np.ndarray, cols: list[np.ndarray], *, field: str, source: str | None,
                 limits: Limits, dropped: dict[str, int], problems: list[str],
                 label: str, bursts: bool = False) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Sort small reorderings, drop exact duplicates, reject a clock that runs back too far.

    With ``bursts``, a trace stamped in bursts (:func:`_respace_bursts`) keeps its samples: repeated rows (same
    time, same values) are dropped, the rest re-spaced and noted in ``problems``. Otherwise, and for traces not
    stamped in bursts, every later sample of a duplicate time is dropped.

    Returns the times, the columns and ``np.diff`` of the returned times [s]. One ``diff > 0`` pass proves
    clean input (sorted, no duplicates; with ``bursts``, one more pass: not stamped in bursts), which is then
    returned as is, without copies."""
    dt = np.diff(t_s)
    if t_s.size < 2:
        return t_s, cols, dt
    clean = bool(np.all(dt > 0))
    if clean and not (bursts and _may_be_bursts(t_s, dt)):
        return t_s, cols, dt
    if not clean:
        run_max = np.maximum.accumulate(t_s)
        back_s = run_max - t_s
        worst = int(np.argmax(back_s))
        if back_s[worst] > limits.max_backward_jump_s:
            raise TimestampError(
                f"clock runs backwards by {back_s[worst]:.3f} s at index {worst} (t={t_s[worst]:.3f}); "
                f"more than {limits.max_backward_jump_s:g} s back is not a reordering: split the recording "
                "where the clock was reset", source=source, field=field)
        if np.any(dt < 0):
            order = np.argsort(t_s, kind="stable")
            t_s = t_s[order]
            cols = [c[order] for c in cols]
            problems.append(f"{label}: {int(np.count_nonzero(dt < 0))} out-of-order timestamps sorted")
        dt = np.diff(t_s)
    if bursts:
        spread = _respace_bursts(t_s, cols, dt, limits=limits, label=label, dropped=dropped, problems=problems)
        if spread is not None:
            return spread
    keep = np.concatenate(([True], dt > 0))
    n_dup = int(keep.size - np.count_nonzero(keep))
    if n_dup:
        dropped[f"{label}_duplicate_t"] = n_dup
        if bursts:
            _note_dropped_values(cols, keep, label=label, problems=problems)
        t_s = t_s[keep]
        cols = [c[keep] for c in cols]
        dt = np.diff(t_s)
    return t_s, cols, dt


def _note_dropped_values(cols: list[np.ndarray], keep: np.ndarray, *, label: str, problems: list[str]) -> None:
    """Note in ``problems`` how many of the samples dropped for a duplicate time (``~keep``) carried other values
    than the sample before them: readings lost, not repeated lines."""
    dup = np.flatnonzero(~keep)
    differ = np.zeros(dup.size, dtype=bool)
    for c in cols:
        differ |= c[dup] != c[dup - 1]
    n_differ = int(np.count_nonzero(differ))
    if n_differ:
        problems.append(f"{label}: {n_differ} samples dropped that share a time stamp with the one before but carry "
                        "other values (too few to be read as bursts); if the app stamps samples on arrival, stamp "
                        "each with the sensor's own event time (Android SensorEvent.timestamp, iOS "
                        "CMLogItem.timestamp)")


def _tight_s(reference_s: float) -> float:
    """Longest interval [s] that joins two samples into one burst (see BURST_TIGHT_FRACTION)."""
    return min(BURST_TIGHT_FRACTION * reference_s, BURST_TICK_S)


def _may_be_bursts(t_s: np.ndarray, dt: np.ndarray) -> bool:
    """Cheap pre-test of sorted times: could they be stamped in bursts? (A share of intervals tight against the
    overall mean interval, which is at least :func:`_burst_reference_s`: False here rules bursts out.)"""
    mean_s = (t_s[-1] - t_s[0]) / dt.size
    return bool(np.count_nonzero(dt <= _tight_s(mean_s)) >= BURST_MIN_SHARE * dt.size)


def _burst_reference_s(dt: np.ndarray, limits: Limits) -> float:
    """The trace's mean interval [s] without its gaps: the mean of the intervals up to
    ``limits.gap_factor / limits.min_rate_hz`` (1.25 s; longer ones are gaps at any accepted rate)."""
    short = dt <= limits.gap_factor / limits.min_rate_hz
    n_short = int(np.count_nonzero(short))
    return float(dt.sum(where=short) / n_short) if n_short else 0.0


def _respace_bursts(t_s: np.ndarray, cols: list[np.ndarray], dt: np.ndarray, *, limits: Limits, label: str,
                    dropped: dict[str, int], problems: list[str]
                    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray] | None:
    """Keep and re-space samples stamped in bursts; None when the sorted times ``t_s`` are not stamped so.

    Apps that stamp samples on arrival (Android sensor batching) give several samples one time, or times a
    fraction of a millisecond apart, with bursts every ~20-100 ms. The rule:

    * repeated rows (same time and same values as the row before: a line written twice) are dropped first,
      counted in ``dropped["<label>_duplicate_t"]``, when they make at least half of the equal stamps (fewer are
      readings of a quantised sensor at rest within a burst, kept);
    * an interval is tight when at most ``BURST_TIGHT_FRACTION`` (1/4) of the mean interval without gaps
      (:func:`_burst_reference_s`) and at most ``BURST_TICK_S`` (a millisecond clock's tick); the trace is stamped in
      bursts when at least ``BURST_MIN_SHARE`` (1/5) of its intervals are tight (fewer: stray duplicates, dropped
      by the caller as before);
    * a burst is a run of samples joined by tight intervals, stamped with its first sample's time; its k samples
      are spread evenly up to the next burst's time (spacing = interval / k). The last burst, and a burst followed
      by a gap (spacing above ``limits.gap_factor`` times the typical one), take the typical spacing: the median
      spacing over the bursts.

    Vectorised; the times are then approximate to within one burst's interval.
    """
    repeat = dt == 0
    for c in cols:
        repeat &= c[1:] == c[:-1]
    n_repeat = int(np.count_nonzero(repeat))
    if 2 * n_repeat < np.count_nonzero(dt == 0):     # a few equal samples in bursts of one stamp: readings (a
        n_repeat = 0                                 # quantised sensor at rest), not lines written twice
    if n_repeat:
        keep = np.concatenate(([True], ~repeat))
        t_s, cols = t_s[keep], [c[keep] for c in cols]
        dt = np.diff(t_s)
    if dt.size == 0:
        return None
    tight_s = _tight_s(_burst_reference_s(dt, limits))
    tight = dt <= tight_s
    if np.count_nonzero(tight) < BURST_MIN_SHARE * dt.size:
        return None
    starts = np.flatnonzero(np.concatenate(([True], ~tight)))
    if starts.size < 2:
        return None                                        # one burst: no interval to spread it over
    sizes = np.diff(np.append(starts, t_s.size))
    stamp_s = t_s[starts]
    spacing_s = np.diff(stamp_s) / sizes[:-1]
    typical_s = float(np.median(spacing_s))
    spacing_s = np.append(np.where(spacing_s > limits.gap_factor * typical_s, typical_s, spacing_s), typical_s)
    burst = np.repeat(np.arange(starts.size), sizes)
    new_t = stamp_s[burst] + (np.arange(t_s.size) - starts[burst]) * spacing_s[burst]
    new_dt = np.diff(new_t)
    if not np.all(new_dt > 0):                             # spacing below float resolution: leave it to the caller
        return None
    if n_repeat:
        dropped[f"{label}_duplicate_t"] = n_repeat
    multi = sizes > 1
    problems.append(
        f"{label}: {int(sizes[multi].sum())} of {t_s.size} samples came in {int(np.count_nonzero(multi))} bursts "
        f"that share a time stamp or lie within {tight_s * 1e3:.3g} ms (typically {int(np.median(sizes[multi]))} "
        f"samples every {np.median(np.diff(stamp_s)) * 1e3:.3g} ms: an app stamping samples on arrival); "
        f"re-spaced evenly up to the next burst ({typical_s * 1e3:.3g} ms apart), so their times are approximate "
        "to within one burst: stamp each sample with the sensor's own event time (Android SensorEvent.timestamp, "
        "iOS CMLogItem.timestamp)")
    return new_t, cols, new_dt


def unknown_device_note(missing: str, device_id: str) -> str:
    """The quality note of a recording without a device id, read as the reader's one ``device_id`` for all such
    recordings (so they never count as several phones); ``missing``: what the recording lacks."""
    return (f"no {missing}: read as device {device_id}, which cannot count as a separate device when confirming "
            "defects (bump ingest --device gives one; an upload takes its token's device)")


def _axis_block(t_s: ArrayLike, xyz: Sequence[ArrayLike] | np.ndarray, *, prefix: str, source: str | None
                ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Times and x, y, z of a three-axis sensor block as float64 arrays of one length (SchemaError otherwise)."""
    t = as_float_array(t_s, field=f"{prefix}.t", source=source)
    if isinstance(xyz, np.ndarray) and xyz.ndim == 2:
        if xyz.shape[1] != 3:
            raise SchemaError(f"needs 3 axes, got shape {xyz.shape}", source=source, field=prefix)
        axes = [np.asarray(xyz[:, i], dtype=np.float64) for i in range(3)]
    else:
        axes = [as_float_array(a, field=f"{prefix}.{k}", source=source) for k, a in zip("xyz", xyz, strict=True)]
    _check_lengths({f"{prefix}.t": t, **{f"{prefix}.{k}": a for k, a in zip("xyz", axes, strict=True)}},
                   source=source)
    return t, axes


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


_PROBE = 512           # values looked at for a dominant one (:func:`_partitioned`)


def _partitioned(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` ordered around its ``k``-th order statistic (at ``k``; nothing larger before it, nothing smaller after).

    By numpy's partition, unless one value fills more than an eighth of an evenly strided probe: the partition's
    pivots degenerate on such a value (the intervals of real time stamps, epoch seconds every 10 ms quantised to
    2.4e-7 s, are 96 % one value: 2.7 ms for 20,000, 20x slower than on distinct values), and a full sort, fast on
    few distinct values, takes its place."""
    probe = x[::max(1, x.size // _PROBE)]
    if np.unique(probe, return_counts=True)[1].max() * 8 > probe.size:
        return np.sort(x)
    return np.partition(x, k)


def _exact_median(x: np.ndarray, monotonic: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """``np.median(x)``, or ``np.median(monotonic(x))``, of a non-empty 1-D array, bit for bit, ~5x faster.

    numpy partitions around three points (both middle elements, and the last for its NaN check). One ordering
    around the upper middle element (:func:`_partitioned`), a max over the lower part for the other and one over
    the upper part for NaN give the same numbers; the mean of the two is computed as numpy does,
    ``(lo + hi) / 2``. A non-decreasing, elementwise ``monotonic`` (e.g. ``np.sqrt``) keeps the order, so it is
    applied to the middle elements only.
    """
    k = x.size // 2
    part = _partitioned(x, k)
    if np.isnan(part[k:].max()):
        return float("nan")
    hi = part[k] if monotonic is None else monotonic(part[k])
    if x.size % 2:
        return float(hi)
    lo = part[:k].max()
    return float(((lo if monotonic is None else monotonic(lo)) + hi) / 2)


def _stride(n: int, max_n: int = 16_384) -> int:
    """Step of the evenly strided subsample (at most ~``max_n`` long) that summary medians are taken over: the
    subsample's median lies within a fraction of a percentile of the full one, at a fraction of the cost."""
    return max(1, n // max_n)


def _norm_median(axes: Sequence[np.ndarray]) -> float:
    """Median of |v| = sqrt(x^2 + y^2 + z^2) over a strided subsample (:func:`_stride`) of three axis arrays.

    The squares are summed as (x^2 + z^2) + y^2, the order numpy's ``einsum("ij,ij->i")`` takes on the stacked
    (n, 3) array, so the unit checks see the numbers they always did."""
    step = _stride(axes[0].size)
    x, y, z = (a[::step] for a in axes)
    with np.errstate(over="ignore"):          # a corrupt 1e308 squares to inf: the top of the order, median intact
        sq = x * x
        sq += z * z
        sq += y * y
    return _exact_median(sq, np.sqrt)


def _median_interval_s(dt: np.ndarray) -> float:
    """Median sample interval [s] of the intervals ``dt`` [s], over their strided subsample (:func:`_stride`)."""
    return _exact_median(dt[::_stride(dt.size)])


def _rate_stats(dt: np.ndarray) -> tuple[float, float]:
    """Median sample interval (:func:`_median_interval_s`) and its robust spread (1.4826 * MAD) [s] from the
    intervals ``dt`` [s]."""
    sub = dt[::_stride(dt.size)]
    med = _median_interval_s(dt)
    jitter = 1.4826 * _exact_median(np.abs(sub - med))
    return med, jitter


def _stack3(axes: Sequence[np.ndarray], factor: float = 1.0) -> np.ndarray:
    """The (n, 3) C-ordered array of three axis arrays, times ``factor`` (one copy; no multiply when 1)."""
    out = np.column_stack(axes)
    if factor != 1.0:
        out *= factor
    return out


def _in_range(axes: Sequence[np.ndarray], max_abs: float) -> np.ndarray:
    """Samples whose three axes are finite and within +-``max_abs`` (NaN compares false: out)."""
    ok = np.abs(axes[0]) <= max_abs
    ok &= np.abs(axes[1]) <= max_abs
    ok &= np.abs(axes[2]) <= max_abs
    return ok


EPOCH_2000_S = 946_684_800.0
GPS_MAX_SPEED_MPS = 100.0             # 360 km/h: no road vehicle moves faster; a jump beyond is a bad fix
GPS_UNKNOWN_ACCURACY_M = 50.0         # allowance of a fix without a reported accuracy (phones: 5-13 m typical)


def _check_epoch(t_s: np.ndarray, limits: Limits, *, source: str | None, field: str, problems: list[str]) -> None:
    """Sorted times must be seconds since the UNIX epoch: not negative, not beyond ``limits.max_epoch_s`` (ms or
    ns read as s); times before 2000 are taken as elapsed seconds and noted (the trip is dated 1970)."""
    if t_s[0] < 0.0:
        raise TimestampError(f"starts at t={t_s[0]:.6g} s, before 1970; times must be seconds since the UNIX epoch",
                             source=source, field=field)
    if t_s[-1] > limits.max_epoch_s:
        raise TimestampError(f"runs to t={t_s[-1]:.6g} s, after the year 2100: are the times in ms, us or ns? "
                             "bump needs seconds since the UNIX epoch", source=source, field=field)
    if t_s[-1] < EPOCH_2000_S:
        problems.append(f"times run from {t_s[0]:.3f} s, before 2000: read as seconds since the start, the trip is "
                        "dated 1970; give absolute times (seconds since the UNIX epoch) to place it in time")


def _check_identifier(ident: str, field: str, source: str | None) -> None:
    """Trip and device ids end up in URLs, CSV cells, logs and file names: no control characters in them."""
    bad = [i for i, ch in enumerate(ident) if unicodedata.category(ch) == "Cc"]
    if bad:
        raise SchemaError(f"contains the control character U+{ord(ident[bad[0]]):04X} at position {bad[0]} "
                          f"({ident!r}); use printable characters only", source=source, field=field)


def build_trace(
    *,
    source: str | None,
    source_format: str,
    trip_id: str,
    device_id: str,
    accel_t_s: ArrayLike,
    accel_xyz: Sequence[ArrayLike] | np.ndarray,
    accel_unit: str = "m/s2",
    gyro_t_s: ArrayLike | None = None,
    gyro_xyz: Sequence[ArrayLike] | np.ndarray | None = None,
    gyro_unit: str = "rad/s",
    gps_t_s: ArrayLike | None = None,
    lat_deg: ArrayLike | None = None,
    lon_deg: ArrayLike | None = None,
    speed_mps: ArrayLike | None = None,
    heading_deg: ArrayLike | None = None,
    accuracy_m: ArrayLike | None = None,
    vehicle: Mapping[str, Any] | None = None,
    phone: Mapping[str, Any] | None = None,
    limits: Limits = Limits(),
    problems: Sequence[str] = (),
    dropped: Mapping[str, int] | None = None,
    field_prefix: Mapping[str, str] | None = None,
    unit_hint: str | None = None,
    gyro_unit_hint: str = "declare the unit \"deg/s\" (bump.trace/1: \"gyro\": {\"unit\": \"deg/s\"})",
) -> Trace:
    """Validate arrays from a reader and return a canonical :class:`Trace`.

    ``accel_xyz`` is three arrays (x, y, z) or an (n, 3) array in ``accel_unit`` ("m/s2" or "g"), gravity
    included; ``gyro_xyz`` likewise in ``gyro_unit`` ("rad/s" or "deg/s", converted to rad/s). ``field_prefix``
    maps "accel", "gyro", "gps" to the names the reader's format uses, so errors point at the user's own field or
    file (e.g. ``{"accel": "TotalAcceleration.csv"}``). ``unit_hint``: how to fix a unit that contradicts the data
    in the reader's format, whose unit is fixed (e.g. "Sensor Logger writes TotalAcceleration.csv in m/s2; ..."),
    instead of asking to set the unit. ``gyro_unit_hint``: how to declare a gyroscope in deg/s in that format.
    """
    names = {"accel": "accel", "gyro": "gyro", "gps": "gps", **(field_prefix or {})}
    for key, ident in (("trip_id", trip_id), ("device_id", device_id)):
        _check_identifier(str(ident), key, source)
    problems_out = list(problems)
    dropped_out: dict[str, int] = dict(dropped or {})

    # --- accelerometer -------------------------------------------------------------------------------
    if accel_unit not in ACCEL_UNITS:
        raise SchemaError(f"unknown unit {accel_unit!r}; use one of {sorted(ACCEL_UNITS)}",
                          source=source, field=f"{names['accel']}.unit")
    t, axes = _axis_block(accel_t_s, accel_xyz, prefix=names["accel"], source=source)
    n_in = t.size
    if n_in == 0:
        raise SchemaError("has no samples; a trace needs accelerometer samples: record again with the accelerometer "
                          "on, or export the recording again", source=source, field=names["accel"])
    if n_in > limits.max_samples:
        raise SizeError(f"has {n_in} samples, more than the limit of {limits.max_samples}; split the trip",
                        source=source, field=names["accel"])
    finite = np.isfinite(t) & np.isfinite(axes[0]) & np.isfinite(axes[1]) & np.isfinite(axes[2])
    n_bad = int(n_in - np.count_nonzero(finite))
    if n_bad:
        if n_bad > limits.max_nonfinite_fraction * n_in:
            first = int(np.argmin(finite))
            raise SchemaError(
                f"{n_bad} of {n_in} samples are NaN, inf or null (first at index {first}); at most "
                f"{limits.max_nonfinite_fraction:.0%} may be dropped: fix the recording", source=source,
                field=names["accel"])
        dropped_out["accel_nonfinite"] = n_bad
        t = t[finite]
        axes = [a[finite] for a in axes]
    t, axes, dt = _order_times(t, axes, field=f"{names['accel']}.t", source=source, limits=limits,
                               dropped=dropped_out, problems=problems_out, label="accel", bursts=True)
    if t.size < 2:
        raise TimestampError("needs at least 2 samples with distinct times", source=source,
                             field=f"{names['accel']}.t")
    _check_epoch(t, limits, source=source, field=f"{names['accel']}.t", problems=problems_out)
    duration_s = float(t[-1] - t[0])
    if duration_s < limits.min_duration_s:
        raise TimestampError(f"lasts {duration_s:.3f} s, shorter than {limits.min_duration_s:g} s; "
                             "record a longer trip", source=source, field=f"{names['accel']}.t")
    if duration_s > limits.max_duration_s:
        raise TimestampError(f"lasts {duration_s / 3600:.2f} h, longer than "
                             f"{limits.max_duration_s / 3600:g} h; split it into trips (are the times in s?)",
                             source=source, field=f"{names['accel']}.t")
    med_dt, jitter_s = _rate_stats(dt)
    rate_hz = 1.0 / med_dt
    if not limits.min_rate_hz <= rate_hz <= limits.max_rate_hz:
        raise SampleRateError(_rate_message(rate_hz, t.size, duration_s, limits), source=source,
                              field=f"{names['accel']}.t")
    norm_med = _norm_median(axes)
    norm_med_mps2 = norm_med * ACCEL_UNITS[accel_unit]
    unit_field = names["accel"] if unit_hint else f"{names['accel']}.unit"
    if accel_unit == "m/s2" and 0.5 < norm_med < 2.0:
        raise UnitError(f"median |a| is {norm_med:.3g} but the unit says m/s2; this looks like g: "
                        + (unit_hint or "set unit to \"g\""), source=source, field=unit_field)
    if accel_unit == "g" and 4.0 < norm_med < 25.0:
        raise UnitError(f"median |a| is {norm_med:.3g} but the unit says g; this looks like m/s2: "
                        + (unit_hint or "set unit to \"m/s2\""), source=source, field=unit_field)
    if norm_med_mps2 < 5.0:
        raise UnitError(f"median |a| is {norm_med_mps2:.3g} m/s2, far below 1 g: gravity is missing; bump needs "
                        "the raw accelerometer including gravity (add the gravity sensor to linear acceleration)",
                        source=source, field=names["accel"])
    if norm_med_mps2 > 3 * G_MPS2:
        problems_out.append(f"median |a| is {norm_med_mps2:.1f} m/s2, far above 1 g")
    if norm_med_mps2 > 10 * G_MPS2:
        raise UnitError(f"median |a| is {norm_med_mps2:.4g} m/s2 ({norm_med_mps2 / G_MPS2:.3g} g), but gravity alone "
                        "is 1 g and a driving car stays near it: the values are in another unit (cm/s2: divide by "
                        "100; milli-g: divide by 1000) or the sensor is broken; send m/s2 or g",
                        source=source, field=f"{names['accel']}.unit")
    # a corrupt cell (1e308, a sensor glitch) beyond any phone's range: dropped and counted, after the unit checks
    # (whose medians a few of them do not move) so that a wrong unit is named as such
    ok = _in_range(axes, limits.max_accel_mps2 / ACCEL_UNITS[accel_unit])
    n_out = int(ok.size - np.count_nonzero(ok))
    if n_out:
        if n_bad + n_out > limits.max_nonfinite_fraction * n_in:
            raise SchemaError(f"{n_out} of {n_in} samples are beyond {limits.max_accel_mps2:g} m/s2 (first at "
                              f"t={t[int(np.argmin(ok))]:.3f} s), more than any phone measures: fix the recording",
                              source=source, field=names["accel"])
        dropped_out["accel_out_of_range"] = n_out
        t = t[ok]
        axes = [a[ok] for a in axes]
        dt = np.diff(t)
    accel_mps2 = _stack3(axes, ACCEL_UNITS[accel_unit])
    gap_mask = dt > limits.gap_factor * med_dt

    # --- gyroscope -----------------------------------------------------------------------------------
    gyro_t = np.empty(0)
    gyro = np.empty((0, 3))
    gyro_rate_hz = 0.0
    if gyro_t_s is not None and gyro_xyz is not None:
        if gyro_unit not in GYRO_UNITS:
            raise SchemaError(f"unknown unit {gyro_unit!r}; use one of {sorted(GYRO_UNITS)} (default rad/s)",
                              source=source, field=f"{names['gyro']}.unit")
        gyro_factor = GYRO_UNITS[gyro_unit]
        gt, gaxes = _axis_block(gyro_t_s, gyro_xyz, prefix=names["gyro"], source=source)
        gfinite = np.isfinite(gt) & _in_range(gaxes, limits.max_gyro_rad_s / gyro_factor)   # beyond any phone
        if gfinite.size - np.count_nonzero(gfinite):
            dropped_out["gyro_nonfinite"] = int(gfinite.size - np.count_nonzero(gfinite))
            gt = gt[gfinite]
            gaxes = [a[gfinite] for a in gaxes]
        gt, gaxes, gdt = _order_times(gt, gaxes, field=f"{names['gyro']}.t", source=source, limits=limits,
                                      dropped=dropped_out, problems=problems_out, label="gyro", bursts=True)
        if gt.size >= 2 and (gt[-1] < t[0] - 60.0 or gt[0] > t[-1] + 60.0):
            problems_out.append(f"gyro: its times span {gt[0]:.3f}..{gt[-1]:.3f} s but the accelerometer's "
                                f"{t[0]:.3f}..{t[-1]:.3f} s (both must be seconds since the UNIX epoch on one "
                                "clock); ignored")
        elif gt.size >= 2:
            gyro_t = gt
            gyro = _stack3(gaxes, gyro_factor)
            gyro_rate_hz = 1.0 / _median_interval_s(gdt)
            omega_med_rad_s = _norm_median(gaxes) * gyro_factor
            if omega_med_rad_s > GYRO_MAX_MEDIAN_RAD_S:
                raise UnitError(_gyro_unit_message(omega_med_rad_s, gyro_unit, gyro_unit_hint), source=source,
                                field=names["gyro"])
        elif gt.size:
            problems_out.append("gyro: fewer than 2 samples, ignored")

    # --- GPS -----------------------------------------------------------------------------------------
    gps = _build_gps(gps_t_s, lat_deg, lon_deg, speed_mps, heading_deg, accuracy_m, source=source,
                     prefix=names["gps"], limits=limits, dropped=dropped_out, problems=problems_out)
    if gps[0].size == 0:
        problems_out.append("no GPS fixes: impacts can be timed but not placed on a map")
    elif gps[0][-1] < t[0] - 60.0 or gps[0][0] > t[-1] + 60.0:
        raise TimestampError(
            f"GPS fixes span t={gps[0][0]:.3f}..{gps[0][-1]:.3f} s but the accelerometer spans "
            f"{t[0]:.3f}..{t[-1]:.3f} s; both must be seconds since the UNIX epoch on one clock",
            source=source, field=f"{names['gps']}.t")

    quality = Quality(
        n_samples=int(t.size),
        duration_s=duration_s,
        accel_rate_hz=rate_hz,
        jitter_s=jitter_s,
        n_gaps=int(np.count_nonzero(gap_mask)),
        gap_total_s=float(dt[gap_mask].sum()),
        longest_gap_s=float(dt.max()),
        gyro_rate_hz=gyro_rate_hz,
        gps_fixes=int(gps[0].size),
        dropped=dropped_out,
        problems=tuple(problems_out),
    )
    return Trace(
        trip_id=str(trip_id),
        device_id=str(device_id),
        t_s=_readonly(t),
        accel_mps2=_readonly(accel_mps2),
        gyro_t_s=_readonly(gyro_t),
        gyro_rad_s=_readonly(gyro),
        gps_t_s=_readonly(gps[0]),
        lat_deg=_readonly(gps[1]),
        lon_deg=_readonly(gps[2]),
        speed_mps=_readonly(gps[3]),
        heading_deg=_readonly(gps[4]),
        accuracy_m=_readonly(gps[5]),
        quality=quality,
        source_format=source_format,
        vehicle=dict(vehicle or {}),
        phone=dict(phone or {}),
    )


def _digits_above(value: float, limit: float) -> str:
    """``value`` (> ``limit``) with the fewest significant digits (at least 3) that still read above ``limit``."""
    return next((text for text in (f"{value:.{p}g}" for p in range(3, 18)) if float(text) > limit), repr(value))


def _rate_message(rate_hz: float, n: int, duration_s: float, limits: Limits) -> str:
    """Why a median sample rate of ``rate_hz`` outside ``limits`` is refused, and what to check."""
    where = f"median sample rate is {rate_hz:.3g} Hz, outside {limits.min_rate_hz:g}-{limits.max_rate_hz:g} Hz"
    if rate_hz < limits.min_rate_hz:
        return f"{where}: check that t is in seconds (not ms or ns); bump needs at least {limits.min_rate_hz:g} Hz"
    mean_hz = (n - 1) / duration_s
    if mean_hz <= limits.max_rate_hz:
        return (f"{where}, but the {n} samples over {duration_s:.3g} s average {mean_hz:.3g} Hz: they come in groups "
                "stamped a fraction of a millisecond apart. If an app stamped bursts of samples on arrival (bursts "
                f"over {limits.gap_factor / limits.min_rate_hz:g} s apart are not re-spaced), stamp each sample with "
                "the sensor's own event time (Android SensorEvent.timestamp, iOS CMLogItem.timestamp); if the sensor "
                f"did run this fast, resample the recording to at most {limits.max_rate_hz:g} Hz")
    return (f"{where}, and the intervals are that short throughout (mean {mean_hz:.3g} Hz), not bursts: check that t "
            f"is in seconds, or resample the recording to at most {limits.max_rate_hz:g} Hz")


def _gyro_unit_message(omega_med_rad_s: float, unit: str, hint: str) -> str:
    """Why a gyroscope whose median |omega| is ``omega_med_rad_s`` [rad/s] (above the limit) is refused; ``hint``:
    how to declare deg/s."""
    limit = GYRO_MAX_MEDIAN_RAD_S
    median = f"median |omega| is {_digits_above(omega_med_rad_s, limit)} rad/s"
    if unit == "deg/s":
        return (f"{median} (converted from deg/s), above the {limit:g} rad/s a car's rotation stays under for most of "
                "a trip: check the gyroscope's values and unit")
    return (f"{median}, above the {limit:g} rad/s a car's rotation stays under for most of a trip; this looks like "
            f"deg/s: {hint} or send rad/s (x pi/180)")


def _build_gps(t_s: ArrayLike | None, lat: ArrayLike | None, lon: ArrayLike | None, speed: ArrayLike | None,
               heading: ArrayLike | None, accuracy: ArrayLike | None, *, source: str | None, prefix: str,
               limits: Limits, dropped: dict[str, int], problems: list[str]) -> list[np.ndarray]:
    if t_s is None and lat is None and lon is None:
        return [np.empty(0) for _ in range(6)]
    for name, v in (("t", t_s), ("lat", lat), ("lon", lon)):
        if v is None:
            raise SchemaError("is missing; a gps block needs t, lat and lon", source=source,
                              field=f"{prefix}.{name}")
    gt = as_float_array(t_s, field=f"{prefix}.t", source=source)
    cols = {"lat": as_float_array(lat, field=f"{prefix}.lat", source=source),
            "lon": as_float_array(lon, field=f"{prefix}.lon", source=source)}
    for name, v in (("speed", speed), ("heading", heading), ("accuracy", accuracy)):
        cols[name] = (np.full(gt.size, np.nan) if v is None
                      else as_float_array(v, field=f"{prefix}.{name}", source=source))
    _check_lengths({f"{prefix}.t": gt, **{f"{prefix}.{k}": v for k, v in cols.items()}}, source=source)
    la, lo = cols["lat"], cols["lon"]
    out_of_range = np.isfinite(la) & np.isfinite(lo) & ((np.abs(la) > 90) | (np.abs(lo) > 180))
    if out_of_range.any():
        i = int(np.argmax(out_of_range))
        raise GpsError(f"fix {i} has lat={float(la[i])!r}, lon={float(lo[i])!r}, outside [-90, 90] x [-180, 180]; "
                       "are lat and lon swapped or scaled?", source=source, field=f"{prefix}.lat")
    no_fix = ~(np.isfinite(gt) & np.isfinite(la) & np.isfinite(lo))
    null_island = ~no_fix & (la == 0) & (lo == 0)
    n_fixes_in = gt.size
    if no_fix.any():
        dropped["gps_no_fix"] = int(np.count_nonzero(no_fix))
    if null_island.any():
        dropped["gps_zero_zero"] = int(np.count_nonzero(null_island))
    keep = ~(no_fix | null_island)
    if n_fixes_in and not keep.any() and null_island.any():
        raise GpsError("every fix is at (0, 0), the phone's placeholder for 'no fix'; record with location "
                       "enabled, or send the trace without positions", source=source, field=f"{prefix}.lat")
    gt = gt[keep]
    rest = [cols[k][keep] for k in ("lat", "lon", "speed", "heading", "accuracy")]
    for i, name in ((2, "speed"), (4, "accuracy")):
        neg = rest[i] < 0
        if neg.any():
            rest[i] = np.where(neg, np.nan, rest[i])
            problems.append(f"gps.{name}: {int(np.count_nonzero(neg))} negative values treated as unknown")
    too_fast = rest[2] > GPS_MAX_SPEED_MPS
    if too_fast.any():
        rest[2] = np.where(too_fast, np.nan, rest[2])
        problems.append(f"{prefix}.speed: {int(np.count_nonzero(too_fast))} values above {GPS_MAX_SPEED_MPS:g} m/s "
                        "(no road vehicle) treated as unknown; is the speed in m/s?")
    rest[3] = np.where(np.isfinite(rest[3]) & (rest[3] >= 0), np.mod(rest[3], 360.0), np.nan)
    gt, rest, _ = _order_times(gt, rest, field=f"{prefix}.t", source=source, limits=limits, dropped=dropped,
                               problems=problems, label="gps")
    return _drop_impossible_fixes(gt, rest, source=source, prefix=prefix, dropped=dropped, problems=problems)


def _impossible_steps(t_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
                      accuracy_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance [m] (haversine) of each step between consecutive fixes (sorted, distinct times), and whether it
    implies more than :data:`GPS_MAX_SPEED_MPS` beyond the two fixes' accuracies (:data:`GPS_UNKNOWN_ACCURACY_M`
    where unknown)."""
    dist_m = haversine_m(lat_deg[:-1], lon_deg[:-1], lat_deg[1:], lon_deg[1:])
    acc_m = np.where(np.isfinite(accuracy_m), accuracy_m, GPS_UNKNOWN_ACCURACY_M)
    return dist_m, dist_m - (acc_m[:-1] + acc_m[1:]) > GPS_MAX_SPEED_MPS * np.diff(t_s)


def _fix_text(t_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray, i: int) -> str:
    return f"t={t_s[i]:.3f} s ({lat_deg[i]:.6f}, {lon_deg[i]:.6f})"


def _drop_impossible_fixes(t_s: np.ndarray, cols: list[np.ndarray], *, source: str | None, prefix: str,
                           dropped: dict[str, int], problems: list[str]) -> list[np.ndarray]:
    """Drop fixes an impossible jump away from each neighbour (:func:`_impossible_steps`: a cut or corrupt value,
    a glitch); ``cols`` are lat, lon, speed, heading, accuracy of the sorted fixes ``t_s`` [s].

    A fix is dropped when both its steps are impossible, or, for the first or last fix, its one step while its
    neighbour's other step is possible. The count goes to ``dropped["gps_impossible_jump"]`` and a note naming
    the first to ``problems``; impossible steps left (a glitch of several fixes) are noted. GpsError when more
    than half the fixes would go, or more than half the steps left are still impossible (times not in s, lat
    and lon of different fixes, ...)."""
    lat, lon = cols[0], cols[1]
    if t_s.size < 2:
        return [t_s, *cols]
    dist_m, bad = _impossible_steps(t_s, lat, lon, cols[4])
    if not bad.any():
        return [t_s, *cols]
    outlier = np.concatenate(([False], bad)) & np.concatenate((bad, [False]))
    if bad.size >= 2:
        outlier[0] = bad[0] and not bad[1]
        outlier[-1] = bad[-1] and not bad[-2]
    keep = ~outlier
    kt, kcols = t_s[keep], [c[keep] for c in cols]
    k_dist_m, k_bad = (_impossible_steps(kt, kcols[0], kcols[1], kcols[4]) if kt.size >= 2
                       else (np.empty(0), np.zeros(0, dtype=bool)))
    n_out, n_left = int(np.count_nonzero(outlier)), int(np.count_nonzero(k_bad))
    if 2 * n_out > t_s.size or 2 * n_left > k_bad.size:
        k = int(np.argmax(bad))
        raise GpsError(f"{int(np.count_nonzero(bad))} of {bad.size} steps between consecutive fixes imply more than "
                       f"{GPS_MAX_SPEED_MPS:g} m/s beyond the fixes' accuracies, the first from the fix at "
                       f"{_fix_text(t_s, lat, lon, k)} to the one at {_fix_text(t_s, lat, lon, k + 1)}: "
                       f"{dist_m[k]:.0f} m in {t_s[k + 1] - t_s[k]:.3g} s, which no road vehicle covers; check that "
                       f"{prefix}.t is in seconds and that lat and lon are degrees of the same fixes, or send the "
                       "trace without positions", source=source, field=f"{prefix}.lat")
    if n_out:
        first = int(np.argmax(outlier))
        dropped["gps_impossible_jump"] = n_out
        problems.append(f"{prefix}: {n_out} fixes dropped that lie impossibly far from their neighbours (more than "
                        f"{GPS_MAX_SPEED_MPS:g} m/s beyond their accuracies; a cut or corrupt value), the first at "
                        f"{_fix_text(t_s, lat, lon, first)}")
    if n_left:
        k = int(np.argmax(k_bad))
        problems.append(f"{prefix}: {n_left} steps between fixes still imply more than {GPS_MAX_SPEED_MPS:g} m/s, "
                        f"the first {k_dist_m[k]:.0f} m from the fix at {_fix_text(kt, kcols[0], kcols[1], k)}: "
                        "positions there are doubtful")
    return [kt, *kcols]
