"""The batched event features against a slow twin that handles one event at a time with plain slices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from test_detect_cases import _trace

from detect.features import (
    FEATURE_DTYPES,
    IMPACT_PAD_S,
    _filter_rows,
    _ptp,
    _row_reduce,
    event_features,
    quiet_velocity_swing,
)
from detect.filters import bandpass
from detect.params import DetectorParams
from detect.pipeline import build_signals, candidate_events


def reference_features(sig, starts, stops, *, wheelbase_m, motion_band_hz, context_s=0.3, body_context_s=1.0,
                       max_event_s=2.5, quiet_swing_mps=0.0) -> dict[str, list]:
    fs, n = sig.fs_hz, sig.t_s.size
    ctx, body_ctx = round(context_s * fs), round(body_context_s * fs)
    e_all = [min(int(b), int(a) + round(max_event_s * fs) + 1) for a, b in zip(starts, stops, strict=True)]
    margin = ctx + 2 * body_ctx
    length = max(e - int(a) for a, e in zip(starts, e_all, strict=True)) + 2 * margin
    out: dict[str, list] = {k: [] for k in FEATURE_DTYPES}
    for s, stop, e in zip(starts.tolist(), stops.tolist(), e_all, strict=True):
        js = list(range(s - margin, s - margin + length))
        g = [min(max(j, 0), n - 1) for j in js]

        def row(x, g=g):
            return np.array([x[i] for i in g])

        def sel(mask, values):
            return np.array([v for m, v in zip(mask, values, strict=True) if m])

        ip = max((j for j in js if s <= j < e), key=lambda j: sig.cf_mps2[j])
        in_event = [s <= j < e for j in js]
        in_ctx = [s - ctx <= j < e + ctx for j in js]
        in_body = [ip - body_ctx <= j < ip + body_ctx for j in js]
        imp, up, left = row(sig.a_impact_mps2), row(sig.a_up_mps2), row(sig.a_left_mps2)
        ev_abs = [abs(v) if m else 0.0 for m, v in zip(in_event, imp, strict=True)]
        first = next(k for k, v in enumerate(ev_abs) if v > 0.5 * max(ev_abs))
        out["i_start"].append(s)
        out["i_stop"].append(stop)
        out["i_peak"].append(ip)
        out["t_s"].append(sig.t_s[min(max(s - margin + first, 0), n - 1)])
        out["t_start_s"].append(sig.t_s[s])
        out["duration_s"].append((stop - s) / fs)
        out["cf_peak_mps2"].append(sig.cf_mps2[ip])
        out["snr"].append(sig.cf_mps2[ip] / max(sig.background_mps2[ip], 1e-3))
        out["score"].append(max(sig.score[i] for i in range(s, max(e, s + 1))))
        out["background_ratio"].append(sig.background_mps2[ip] / max(sig.typical_background_mps2, 1e-6))
        out["impact_p2p_mps2"].append(np.ptp(sel(in_ctx, imp)))
        out["up_p2p_mps2"].append(np.ptp(sel(in_ctx, up)))
        out["body_p2p_mps2"].append(np.ptp(sel(in_body, bandpass(up, sig.body_band_hz, fs))))
        out["energy_m2ps3"].append(sum(v * v for v in sel(in_event, imp)) / fs)
        ev_up = sel(in_event, up)
        curv = [up[k - 1] - 2 * up[k] + up[k + 1] for k, m in enumerate(in_event) if m]
        out["sharpness"].append(sum(c * c for c in curv) / max(float(np.sum((ev_up - ev_up.mean()) ** 2)), 1e-12))
        out["first_motion"].append(int(np.sign(imp[first])))
        a = bandpass(up, motion_band_hz, fs)
        vel = bandpass(np.cumsum(a) / fs, motion_band_hz, fs)
        disp = bandpass(np.cumsum(vel) / fs, motion_band_hz, fs)
        in_motion = [s - round(0.1 * fs) <= j < e + ctx for j in js]
        out["vel_p2p_mps"].append(np.ptp(sel(in_motion, vel)))
        out["vel_background_mps"].append(quiet_swing_mps * out["background_ratio"][-1])
        out["disp_p2p_m"].append(np.ptp(sel(in_motion, disp)))
        o = margin - ctx - round(IMPACT_PAD_S * fs)         # impact-band filters run on the narrow window
        hf = bandpass(row(sig.a_forward_mps2)[o:length - o], sig.impact_band_hz, fs)
        hl = bandpass(left[o:length - o], sig.impact_band_hz, fs)
        rms = lambda x: math.sqrt(float(np.mean(np.square(x))))  # noqa: E731
        out["horizontal_ratio"].append(rms(sel(in_ctx[o:length - o], np.hypot(hf, hl)))
                                       / max(rms(sel(in_ctx, imp)), 1e-6))
        lc, uc = sel(in_ctx, left), sel(in_ctx, up)
        out["lateral_ratio"].append(rms(lc - lc.mean()) / max(rms(uc - uc.mean()), 1e-6))
        lat = sel(in_ctx, bandpass(left, motion_band_hz, fs))
        out["lateral_up_corr"].append(abs(np.corrcoef(lat, sel(in_ctx, imp))[0, 1]))
        out["tilt_max_deg"].append(np.nan)          # checked separately below
        car = sig.car_accel_mps2
        near = [car[min(max(j, 0), n - 1) // sig.car_accel_step] for j in range(ip - body_ctx, ip + body_ctx + 1)]
        seen = max((0.0 if math.isnan(a) else float(a) for a in near), default=0.0) if car.size else 0.0
        out["car_tilt_deg"].append(math.degrees(math.atan(seen / 9.80665)))
        out["roll_pitch_corr"].append(np.nan)
        out["roll_ratio"].append(np.nan)
        out["gyro_max_rad_s"].append(np.nan)
        v = sig.speed_mps[ip]
        out["speed_mps"].append(v)
        lag = round(wheelbase_m / max(v, 0.5) * fs) if np.isfinite(v) and v > 0.5 else 0
        later = [sig.cf_mps2[min(max(j + lag, 0), n - 1)] for j in js]
        both = [a or b for a, b in zip(in_event, in_ctx, strict=True)]
        cf_w, later_w = sel(both, row(sig.cf_mps2)), sel(both, later)
        out["axle_score"].append(abs(np.corrcoef(cf_w, later_w)[0, 1]) if lag > 0 else np.nan)
        i_before, i_near = max(0, ip - round(3.0 * fs)), max(0, ip - round(0.3 * fs))
        out["decel_mps2"].append((sig.speed_mps[i_before] - sig.speed_mps[i_near]) / max((i_near - i_before) / fs,
                                                                                         1e-3))
        out["valid"].append(all(sig.valid[gi] for m, gi in zip(in_ctx, g, strict=True) if m))
    return out


@pytest.mark.parametrize(("fs_hz", "hits"), [(100.0, (5.0, 20.0, 33.3)), (50.0, (0.6, 30.0, 59.2))])
def test_batched_features_match_the_one_event_twin(fs_hz: float, hits: tuple[float, ...]) -> None:
    params = DetectorParams()
    sig, _ = build_signals(_trace(fs_hz=fs_hz, hits_s=hits, duration_s=60.0), params)
    starts, stops = candidate_events(sig, params, 2.7)
    assert starts.size >= 3                       # includes events near both ends of the trace
    fast = event_features(sig, starts, stops, wheelbase_m=2.7, motion_band_hz=params.motion_band_hz,
                          quiet_swing_mps=0.07)
    slow = reference_features(sig, starts, stops, wheelbase_m=2.7, motion_band_hz=params.motion_band_hz,
                              quiet_swing_mps=0.07)
    assert np.all(fast["vel_background_mps"] > 0)
    for name in FEATURE_DTYPES:
        if name in ("tilt_max_deg", "roll_pitch_corr", "roll_ratio", "gyro_max_rad_s"):
            continue
        if FEATURE_DTYPES[name] in ("i8", "?"):
            assert_array_equal(fast[name], slow[name], err_msg=name)
        else:
            assert_allclose(fast[name], np.array(slow[name], dtype=float), rtol=1e-7, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("exact_above", [0.5, 0.2])
def test_trigger_level_is_exact_above_its_level_and_below_it_elsewhere(exact_above: float) -> None:
    from detect.events import trigger
    from detect.pipeline import trigger_level
    params = DetectorParams()
    sig, _ = build_signals(_trace(hits_s=(5.0, 20.0, 33.3), duration_s=60.0), params)
    exact = np.maximum(sig.cf_mps2 / sig.threshold_mps2, sig.score / params.confirm_score)
    assert_array_equal(trigger_level(sig, params), exact)
    fast = trigger_level(sig, params, exact_above=exact_above)
    high = exact > exact_above
    assert high.any() and not high.all()               # both sides are there
    assert_array_equal(fast[high], exact[high])
    assert (fast[~high] <= exact_above).all()
    # the events are those of the exact level: runs above exact_above that reach 1
    for a, b in zip(trigger(fast, 1.0, release_ratio=exact_above), trigger(exact, 1.0, release_ratio=exact_above),
                    strict=True):
        assert_array_equal(a, b)


def test_tilt_of_a_still_phone_is_small_and_of_a_turned_phone_large() -> None:
    params = DetectorParams()
    sig, _ = build_signals(_trace(hits_s=(20.0,), rotation_deg=(30, 20, 0)), params)
    starts, stops = candidate_events(sig, params, 2.7)
    feat = event_features(sig, starts, stops, wheelbase_m=2.7)
    assert feat["tilt_max_deg"][0] < 3.0
    turned = sig.accel_mps2.copy()
    i = int(feat["i_peak"][0])
    c, s_ = np.cos(np.deg2rad(40)), np.sin(np.deg2rad(40))
    turned[i - 20:i + 20] = turned[i - 20:i + 20] @ np.array([[1, 0, 0], [0, c, -s_], [0, s_, c]])
    from dataclasses import replace
    feat2 = event_features(replace(sig, accel_mps2=turned), starts, stops, wheelbase_m=2.7)
    assert feat2["tilt_max_deg"][0] > 25.0


def test_gyro_features_see_roll_for_one_wheel() -> None:
    params = DetectorParams()
    sig, _ = build_signals(_trace(hits_s=(20.0,), gyro=True), params)
    starts, stops = candidate_events(sig, params, 2.7)
    feat = event_features(sig, starts, stops, wheelbase_m=2.7)
    assert np.isfinite(feat["roll_ratio"]).all() and np.isfinite(feat["gyro_max_rad_s"]).all()
    assert feat["gyro_max_rad_s"][0] < 0.2          # the hand-made gyro is just noise


@pytest.mark.parametrize("cols", [1, 7, 40])
def test_row_reduce_matches_per_row_slices(cols: int) -> None:
    rng = np.random.default_rng(cols)
    x = rng.normal(size=(6, cols))
    lo = rng.integers(0, cols, size=6)
    hi = lo + 1 + rng.integers(0, cols - lo)         # 1 <= hi - lo, hi <= cols
    hi[-1] = cols                                    # the last row's range reaches the end of the buffer
    for ufunc, ref in ((np.maximum, np.max), (np.minimum, np.min), (np.add, np.sum)):
        want = [ref(x[r, lo[r]:hi[r]]) for r in range(6)]
        assert_allclose(_row_reduce(ufunc, x, lo, hi), want, rtol=1e-12, err_msg=ufunc.__name__)
    flags = x > 0
    assert_array_equal(_row_reduce(np.logical_and, flags, lo, hi), [flags[r, lo[r]:hi[r]].all() for r in range(6)])
    lo0 = min(1, cols - 1)                           # scalar bounds, the end short of the buffer's end
    assert_allclose(_row_reduce(np.add, x, lo0, cols), x[:, lo0:].sum(axis=1), rtol=1e-12)
    assert_allclose(_ptp(x, lo, hi), [np.ptp(x[r, lo[r]:hi[r]]) for r in range(6)], rtol=1e-12)


@pytest.mark.parametrize(("cols", "band_hz"),
                         [(700, (0.5, 20.0)), (300, (3.0, 25.0)), (40, (0.4, 3.0)), (10, (0.5, 20.0))])
def test_filter_rows_is_bandpass_of_each_row(cols: int, band_hz: tuple[float, float]) -> None:
    x = np.cumsum(np.random.default_rng(cols).normal(size=(5, cols)), axis=1)
    fast = _filter_rows(x, band_hz, 100.0)
    assert fast.flags.c_contiguous and fast.shape == x.shape
    assert_array_equal(_filter_rows(x, band_hz, 100.0, start=cols // 3), fast[:, cols // 3:])
    for r in range(x.shape[0]):
        assert_allclose(fast[r], bandpass(x[r], band_hz, 100.0), rtol=1e-12, atol=1e-12)


def test_window_gyro_at_is_linear_interpolation_of_each_axis() -> None:
    from dataclasses import replace
    params = DetectorParams()
    sig, _ = build_signals(_trace(hits_s=(20.0,), gyro=True, duration_s=30.0), params)
    rng = np.random.default_rng(3)
    gyro_t = np.sort(rng.uniform(sig.t_s[0] + 1.0, sig.t_s[-1] - 1.0, 900))      # irregular, inside the trace
    gyro = rng.normal(size=(gyro_t.size, 3))
    sig = replace(sig, gyro_t_s=gyro_t, gyro_rad_s=gyro)
    idx = np.array([[0, 5, 50, 101], [sig.t_s.size - 1, 2000, 2000, 7]])         # includes times outside the span
    want = np.stack([np.interp(sig.t_s[idx], gyro_t, gyro[:, k]) for k in range(3)], axis=-1)
    assert_allclose(sig.window_gyro_at(idx), want, rtol=1e-12, atol=1e-12)
    assert_array_equal(sig.window_gyro_at(np.array([0, sig.t_s.size - 1])), gyro[[0, -1]])   # held at the ends


@pytest.mark.parametrize("segments", [1, 2])
def test_rotation_features_match_per_event_windows(segments: int) -> None:
    """roll_ratio, roll_pitch_corr and gyro_max against Signals.window_rotation, one event at a time, with one
    mount and with a (made-up) re-mount between the events (per-sample axes)."""
    from dataclasses import replace
    params = DetectorParams()
    sig, _ = build_signals(_trace(hits_s=(15.0, 40.0), gyro=True, duration_s=60.0), params)
    if segments == 2:
        rng = np.random.default_rng(5)
        seg = (np.arange(sig.t_s.size) >= sig.t_s.size // 2).astype(sig.segment.dtype)
        fwd = np.vstack([sig.forward_axis, rng.normal(size=3)])
        fwd[1] /= np.linalg.norm(fwd[1])
        left = np.vstack([sig.left_axis, np.cross(sig.up_axis[0], fwd[1])])
        sig = replace(sig, segment=seg, forward_axis=fwd, left_axis=left,
                      gyro_rad_s=rng.normal(size=sig.gyro_rad_s.shape))
    starts, stops = candidate_events(sig, params, 2.7)
    assert starts.size >= 2
    fs = sig.fs_hz
    ctx, pad = round(0.3 * fs), round(IMPACT_PAD_S * fs)
    feat = event_features(sig, starts, stops, wheelbase_m=2.7, motion_band_hz=params.motion_band_hz)
    for k, (s, e) in enumerate(zip(starts, stops, strict=True)):
        e = min(e, s + round(params.max_event_s * fs) + 1)
        width = 2 * ctx + int((np.minimum(stops, starts + round(params.max_event_s * fs) + 1) - starts).max())
        roll, pitch, norm = sig.window_rotation(s - ctx, s - ctx + width, pad)
        hi = 2 * ctx + (e - s)
        rms_roll, rms_pitch = (math.sqrt(float(np.mean(x[:hi] ** 2))) for x in (roll, pitch))
        assert_allclose(feat["roll_ratio"][k], rms_roll / max(rms_pitch, 1e-4), rtol=1e-9)
        assert_allclose(feat["roll_pitch_corr"][k], abs(np.corrcoef(roll[:hi], pitch[:hi])[0, 1]), rtol=1e-9)
        assert_allclose(feat["gyro_max_rad_s"][k], norm[:hi].max(), rtol=1e-12)


@pytest.mark.parametrize("clock", ["regular", "jitter", "gaps"])
def test_interval_index_matches_searchsorted(clock: str) -> None:
    """The guessed-and-corrected interval of each time against a binary search, times before, inside and after
    the knots, in a 2-D array; a clock with gaps leaves some for the binary search."""
    from detect.features import _interval_index
    rng = np.random.default_rng(5)
    t = 1_780_000_000.0 + np.arange(3000) / 100.0
    if clock == "jitter":
        t += rng.uniform(-4e-3, 4e-3, t.size)
    elif clock == "gaps":
        t = np.delete(t, np.r_[500:900, 2000:2100])
    t = np.sort(t)
    q = t[0] - 0.5 + rng.uniform(0.0, t[-1] - t[0] + 1.0, (40, 70))
    q[0, :5] = t[:5]                                   # exactly on knots, and the last knot itself
    q[1, 0] = t[-1]
    want = np.clip(np.searchsorted(t, q, side="right") - 1, 0, t.size - 2)
    assert_array_equal(_interval_index(t, q), want)


@pytest.mark.parametrize("first", [[0, 10, 200], [-7, 50, 280]])
def test_windows_match_clipped_index_gather(first: list[int]) -> None:
    from detect.features import _window_index, _windows
    x = np.random.default_rng(6).normal(size=300)
    starts = np.array(first)
    want = [[x[min(max(f + j, 0), 299)] for j in range(25)] for f in first]   # past the ends: first or last
    assert_array_equal(_windows(x, starts, 25), want)
    assert_array_equal(_window_index(starts, 25, 300), np.clip(starts[:, None] + np.arange(25), 0, 299))


@pytest.mark.parametrize("fs_hz", [100.0, 16.7])
def test_quiet_swing_reads_windows_as_event_features_reads_events(fs_hz: float) -> None:
    """quiet_velocity_swing is the vel_p2p_mps the one-event twin reads over the same windows taken as events."""
    params = DetectorParams()
    sig, _ = build_signals(_trace(fs_hz=fs_hz, hits_s=(20.0,), duration_s=60.0), params)
    width = max(2, round(0.4 * sig.fs_hz))
    starts = np.array([3, round(10.0 * sig.fs_hz), round(40.0 * sig.fs_hz), sig.t_s.size - width - 1])
    swing = quiet_velocity_swing(sig, starts, width, motion_band_hz=params.motion_band_hz)
    slow = reference_features(sig, starts, starts + width, wheelbase_m=2.7, motion_band_hz=params.motion_band_hz)
    assert np.all(swing > 0)
    assert_allclose(swing, slow["vel_p2p_mps"], rtol=1e-7, atol=1e-9)
