"""The analysts' replay API: stage frames aligned on one time index, impacts at cf peaks, plots with their artists.

Traces are built by hand (as in test_detect_cases.py): a car on smooth road with wheel-hop-like damped 11 Hz
oscillations at known times, one of them while the car is stopped (a door slam: a rejected candidate).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from scipy import signal as sps

import bump
import ingest
from bump.plots import (
    GID_IMPACT,
    GID_IMPACT_LABEL,
    GID_IMPACT_LINE,
    GID_NO_GPS,
    GID_REJECTED,
    GID_ROUGHNESS,
    GID_SCORE,
    GID_TRACK,
    STAGE_LABELS,
    envelope,
)
from bump.replay import TIME_INDEX, Replay, ReplayError
from bump.store import Store, StoreError
from detect import DetectorParams, detect
from detect.events import characteristic_function

T0 = 1_780_000_000.0
FS_HZ = 100.0
STOP_S = 6.0                 # the car stands still until then, then drives at 10 m/s
HITS_S = (3.0, 15.0, 24.5)   # the first hit is while stopped: rejected as "stopped"


def _trace(*, duration_s: float = 36.0, hits_s: tuple[float, ...] = HITS_S, gps: bool = True,
           seed: int = 1, trip_id: str = "replay-test") -> ingest.Trace:
    """A car standing until STOP_S, then at 10 m/s on smooth road, with damped 11 Hz wheel hops at ``hits_s``."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * FS_HZ)
    t = np.arange(n) / FS_HZ
    up = rng.normal(0.0, 0.15, n)
    for h in hits_s:
        tau = np.clip(t - h, 0.0, None)
        up += np.where(t >= h, 8.0 * np.exp(-tau / 0.07) * np.sin(2 * np.pi * 11.0 * tau), 0.0)
    doc: dict[str, Any] = {"format": "bump.trace/1", "trip_id": trip_id, "device_id": "d",
                           "accel": {"t": T0 + t, "x": rng.normal(0, 0.1, n), "y": rng.normal(0, 0.1, n),
                                     "z": 9.80665 + up, "unit": "m/s2"}}
    if gps:
        tg = np.arange(int(duration_s), dtype=float)
        v = np.where(tg < STOP_S, 0.0, 10.0)
        dist = np.maximum(tg - STOP_S, 0.0) * 10.0
        doc["gps"] = {"t": T0 + tg, "lat": 42.36 + dist / 111_195.0, "lon": np.full(tg.size, -71.06), "speed": v,
                      "heading": np.zeros(tg.size), "accuracy": np.full(tg.size, 4.0)}
    return ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


@pytest.fixture(scope="module")
def trace() -> ingest.Trace:
    return _trace()


@pytest.fixture(scope="module")
def rep(trace: ingest.Trace) -> Replay:
    return bump.replay(trace)


def _by_gid(fig: Any, gid: str) -> list[Any]:
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


# ------------------------------------------------------------------------------------------------ frames
def test_the_scenario_gives_two_impacts_and_one_rejected_candidate(rep: Replay) -> None:
    np.testing.assert_allclose(rep.impacts.index.to_numpy(), HITS_S[1:], atol=0.1)
    rejected = rep.candidates[rep.candidates["rejected"] != ""]
    assert list(rejected["rejected"]) == ["stopped"]
    assert rejected.index[0] == pytest.approx(HITS_S[0], abs=0.1)
    assert set(rep.impacts.index) < set(rep.candidates.index)


def test_grid_stages_share_one_index(rep: Replay) -> None:
    frames = [rep.oriented, rep.filtered, rep.characteristic, rep.speed, rep.grid]
    for f in frames:
        assert f.index is rep.grid_index or f.index.equals(rep.grid_index)
        assert f.index.name == TIME_INDEX
    idx = rep.grid_index.to_numpy()
    assert idx[0] == 0.0
    np.testing.assert_allclose(np.diff(idx), 1.0 / rep.detection.signals.fs_hz, rtol=1e-6)
    assert len(rep.grid) == idx.size and rep.grid.shape[1] == sum(f.shape[1] for f in frames[:4])


def test_raw_is_on_the_phone_timestamps_with_the_same_origin(rep: Replay, trace: ingest.Trace) -> None:
    np.testing.assert_allclose(rep.raw.index.to_numpy(), trace.t_s - T0, atol=1e-6)
    np.testing.assert_array_equal(rep.raw["accel_z_mps2"].to_numpy(), trace.accel_mps2[:, 2])
    assert rep.t0_s == T0 and rep.t0 == pd.Timestamp(T0, unit="s", tz="UTC")
    assert rep.to_datetime(rep.impacts.index)[0] == rep.t0 + pd.Timedelta(seconds=rep.impacts.index[0])


def test_frames_hold_the_detector_values_at_the_right_times(rep: Replay) -> None:
    sig = rep.detection.signals
    np.testing.assert_array_equal(rep.characteristic["cf_mps2"].to_numpy(), sig.cf_mps2)
    np.testing.assert_array_equal(rep.filtered["a_impact_mps2"].to_numpy(), sig.a_impact_mps2)
    # the characteristic function is the short-term RMS of the whitened band, which is not the band itself
    whitened = rep.filtered["a_whitened_mps2"].to_numpy()
    cf = characteristic_function(whitened, sig.fs_hz, rep.detection.params.energy_window_s)
    cf[~sig.valid] = 0.0
    np.testing.assert_allclose(rep.characteristic["cf_mps2"].to_numpy(), cf, rtol=1e-12)
    assert not np.allclose(whitened, sig.a_impact_mps2)
    np.testing.assert_array_equal(rep.speed["speed_mps"].to_numpy(), sig.speed_mps)
    # speed on the grid follows the GPS profile: stopped before STOP_S, 10 m/s well after
    assert rep.speed["speed_mps"].loc[1.0:4.0].max() < 1.0
    assert rep.speed["speed_mps"].loc[10.0:30.0].min() == pytest.approx(10.0, abs=0.5)
    np.testing.assert_allclose(rep.impacts.index.to_numpy(), rep.impacts["t_s"].to_numpy() - T0, atol=1e-6)


def test_above_marks_where_either_trigger_fires(trace: ingest.Trace) -> None:
    # a candidate fires where cf clears its threshold or the axle-paired score clears confirm_score; with a low
    # confirm_score the score alone fires on the hits' shoulders, where cf is below its threshold
    r = bump.replay(trace, params={"confirm_score": 1.0})
    c, sig = r.characteristic, r.detection.signals
    np.testing.assert_array_equal(c["score"].to_numpy(), sig.score)
    level = np.maximum(sig.cf_mps2 / sig.threshold_mps2, sig.score / 1.0)
    np.testing.assert_allclose(c["level"].to_numpy(), level, rtol=1e-12)
    np.testing.assert_array_equal(c["above"].to_numpy(), level > 1.0)
    score_only = c["above"] & ~(c["cf_mps2"] > c["threshold_mps2"])
    assert score_only.sum() >= 5
    # every sample above lies in a candidate event (the trigger's runs, merged)
    inside = np.zeros(len(c), dtype=bool)
    for i0, i1 in zip(r.candidates["i_start"], r.candidates["i_stop"], strict=True):     # loop over events
        inside[i0:i1] = True
    assert inside[c["above"].to_numpy()].all()
    # the plot draws the score where it crosses the threshold's line exactly when it fires
    fig = r.plot()
    (line,) = [a for a in fig.axes[3].get_lines() if a.get_gid() == GID_SCORE]
    y = line.get_ydata()
    scaled = (sig.score / 1.0 * sig.threshold_mps2)
    np.testing.assert_allclose(y[np.isfinite(y)], scaled[sig.score > 0])
    assert ((y > sig.threshold_mps2) == (sig.score > 1.0))[np.isfinite(y)].all()


def test_each_impact_lies_at_a_local_maximum_of_cf(rep: Replay) -> None:
    cf = rep.characteristic["cf_mps2"]
    peaks, _ = sps.find_peaks(cf.to_numpy())
    t_peaks = cf.index.to_numpy()[peaks]
    assert len(rep.impacts) == 2
    for t, row in rep.impacts.iterrows():
        assert np.min(np.abs(t_peaks - t)) <= 0.15
        # the reported cf peak is the value of the cf frame at t_peak_trip_s, and it clears the threshold there
        at_peak = rep.characteristic.loc[row["t_peak_trip_s"]]
        assert at_peak["cf_mps2"] == pytest.approx(row["cf_peak_mps2"])
        assert at_peak["above"]
        assert row["t_peak_trip_s"] - t == pytest.approx(0.0, abs=0.15)


def test_event_frames_carry_positions_in_degrees_and_local_metres(rep: Replay) -> None:
    imp = rep.impacts
    assert {"kind", "severity", "confidence", "lat_deg", "lon_deg", "speed_mps"} <= set(imp.columns)
    assert np.isfinite(imp[["lat_deg", "lon_deg", "east_m", "north_m"]].to_numpy()).all()
    # driving north at 10 m/s from STOP_S: north_m ~ distance travelled (+ the phone-to-axle offset)
    expected = (imp.index.to_numpy() - STOP_S) * 10.0 + DetectorParams().phone_to_front_axle_m
    np.testing.assert_allclose(imp["north_m"].to_numpy(), expected, atol=2.0)
    rough = rep.roughness
    assert rough.index.name == TIME_INDEX and (rough["t_end_trip_s"] > rough.index).all()
    assert rough["valid"].any()


def test_replay_of_a_path_equals_replay_of_the_trace(rep: Replay, trace: ingest.Trace, tmp_path: Any) -> None:
    path = tmp_path / "trip.json.gz"
    path.write_bytes(ingest.dumps(trace, compress=True))
    other = bump.replay(path)
    for name in ("raw", "oriented", "filtered", "characteristic", "speed", "candidates", "impacts", "roughness"):
        pd.testing.assert_frame_equal(getattr(other, name), getattr(rep, name), check_exact=False, rtol=1e-9)
    assert len(bump.replay(str(path)).impacts) == 2


def test_params_are_passed_to_the_detector(trace: ingest.Trace) -> None:
    strict = bump.replay(trace, {"threshold_floor_mps2": 50.0})
    assert strict.detection.params.threshold_floor_mps2 == 50.0
    assert len(strict.impacts) == 0 and len(strict.candidates) == 0
    assert list(strict.impacts.columns) == list(bump.replay(trace).impacts.columns)


# ------------------------------------------------------------------------------------------------ plots
def test_plot_has_one_axis_per_stage_and_one_marker_per_impact(rep: Replay) -> None:
    fig = rep.plot()
    fig.canvas.draw()
    assert [ax.get_label() for ax in fig.axes] == list(STAGE_LABELS)
    assert len(_by_gid(fig, GID_IMPACT)) == len(rep.impacts) == 2
    assert len(_by_gid(fig, GID_IMPACT_LINE)) == 2 * len(STAGE_LABELS)
    assert len(_by_gid(fig, GID_REJECTED)) == 1
    labels = [a.get_text() for a in _by_gid(fig, GID_IMPACT_LABEL)]
    assert [s.split()[0] for s in labels] == list(rep.impacts["kind"])
    xs = sorted(float(m.get_xdata()[0]) for m in _by_gid(fig, GID_IMPACT))
    np.testing.assert_allclose(xs, rep.impacts["t_peak_trip_s"].to_numpy())
    assert fig.axes[0].get_xlim() == pytest.approx((0.0, rep.duration_s))
    assert fig.axes[3].get_yscale() == "log"


def test_start_and_end_crop_the_time_axis(rep: Replay) -> None:
    fig = rep.plot(start=13.0, end=17.0)
    for ax in fig.axes:
        assert ax.get_xlim() == pytest.approx((13.0, 17.0))
    assert len(_by_gid(fig, GID_IMPACT)) == 1 and len(_by_gid(fig, GID_REJECTED)) == 0
    line = fig.axes[3].get_lines()[0]
    assert line.get_xdata().min() >= 13.0 - 0.02 and line.get_xdata().max() <= 17.0 + 0.02
    t0 = rep.t0.to_pydatetime()
    fig_dt = rep.plot(start=t0 + dt.timedelta(seconds=13), end=np.datetime64(int((T0 + 17) * 1e9), "ns"))
    assert fig_dt.axes[0].get_xlim() == pytest.approx((13.0, 17.0))


def test_zoom_centres_on_an_impact_and_names_it(rep: Replay) -> None:
    t = rep.impacts.index[1]
    fig = rep.zoom(t, half_width_s=1.5)
    assert fig.axes[0].get_xlim() == pytest.approx((t - 1.5, t + 1.5))
    assert rep.impacts["kind"].iloc[1] in fig._suptitle.get_text()
    assert len(_by_gid(fig, GID_IMPACT)) == 1


def test_plot_map_draws_the_track_and_the_impacts_where_they_are(rep: Replay) -> None:
    fig = rep.plot_map()
    fig.canvas.draw()
    ax = fig.axes[0]
    (track,) = _by_gid(fig, GID_TRACK)
    np.testing.assert_allclose(track.get_ydata(), rep.gps["north_m"].to_numpy())
    pts = np.vstack([c.get_offsets() for c in _by_gid(fig, GID_IMPACT)])
    assert pts.shape == (len(rep.impacts), 2)
    np.testing.assert_allclose(np.sort(pts[:, 1]), np.sort(rep.impacts["north_m"].to_numpy()))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert all(any(k in s for s in legend) for k in rep.impacts["kind"])
    assert len(_by_gid(fig, GID_ROUGHNESS)) == 1 and len(fig.axes) == 2      # map + IRI colour bar
    assert len(_by_gid(rep.plot_map(roughness=False), GID_ROUGHNESS)) == 0


def test_a_trip_without_gps_plots_and_its_map_says_so() -> None:
    rep = bump.replay(_trace(gps=False, hits_s=(15.0,)))
    assert len(rep.impacts) == 1 and rep.gps.empty
    assert rep.impacts[["east_m", "north_m"]].isna().all().all()
    assert rep.speed["speed_mps"].isna().all()
    fig = rep.plot()
    fig.canvas.draw()
    assert len(_by_gid(fig, GID_IMPACT)) == 1
    fig_map = rep.plot_map()
    fig_map.canvas.draw()
    assert len(_by_gid(fig_map, GID_NO_GPS)) == 1 and len(_by_gid(fig_map, GID_TRACK)) == 0


def test_a_trip_without_candidates_plots() -> None:
    rep = bump.replay(_trace(hits_s=(), duration_s=12.0))
    assert rep.candidates.empty and rep.impacts.empty
    fig = rep.plot(start=2.0, end=8.0)
    fig.canvas.draw()
    assert _by_gid(fig, GID_IMPACT) == [] and len(fig.axes) == len(STAGE_LABELS)
    rep.plot_map().canvas.draw()


# ------------------------------------------------------------------------------------------------ errors
def test_bad_arguments_are_replay_errors(rep: Replay, trace: ingest.Trace) -> None:
    with pytest.raises(ReplayError, match="either a trace"):
        bump.replay()
    with pytest.raises(ReplayError, match="either a trace"):
        bump.replay(trace, db="x.db", trip_id="t")
    with pytest.raises(ReplayError, match="start"):
        rep.plot(start=10.0, end=5.0)
    with pytest.raises(ReplayError, match="neither seconds"):
        rep.plot(start="ten")  # type: ignore[arg-type]
    with pytest.raises(ReplayError, match="both db= and trip_id="):
        bump.replay(db="x.db")
    with pytest.raises(ReplayError, match="Store or a database path"):
        bump.replay(db=42, trip_id="t")


# ------------------------------------------------------------------------------------------------ database
def _stored(tmp_path: Any, trace: ingest.Trace) -> Path:
    path = tmp_path / "bump.db"
    info = {"trip_id": "stored-trip", "device_id": trace.device_id, "t_start_s": trace.t_s[0],
            "t_end_s": trace.t_s[-1], "ingested_at_s": 0.0, "source_format": trace.source_format,
            "n_samples": trace.n_samples, "n_impacts": 0, "length_m": 0.0, "detector": {}, "quality": {}}
    with Store.open(path) as store, store.transaction():
        store.add_trip(info, ingest.dumps(trace, compress=True), b"")
    return path


def test_replay_from_a_database_equals_replay_of_the_trace(rep: Replay, trace: ingest.Trace, tmp_path: Any) -> None:
    path = _stored(tmp_path, trace)
    from_path = bump.replay(db=path, trip_id="stored-trip")
    pd.testing.assert_frame_equal(from_path.impacts, rep.impacts)
    pd.testing.assert_frame_equal(from_path.characteristic, rep.characteristic)
    with Store.open(path, create=False) as store:
        from_store = bump.replay(db=store, trip_id="stored-trip")
        assert store.has_trip("stored-trip")          # an open Store passed in stays open
    pd.testing.assert_frame_equal(from_store.candidates, rep.candidates)
    with pytest.raises(StoreError, match="no trip 'other'"):
        bump.replay(db=path, trip_id="other")
    with pytest.raises(StoreError):
        bump.replay(db=tmp_path / "missing.db", trip_id="stored-trip")
    assert not (tmp_path / "missing.db").exists()


def test_bad_input_is_a_trace_error(tmp_path: Any) -> None:
    path = tmp_path / "junk.txt"
    path.write_text("not a trace\n")
    with pytest.raises(ingest.TraceError):
        bump.replay(path)


# ------------------------------------------------------------------------------------------------ kernel
def test_envelope_keeps_every_extreme_and_bounds_the_points() -> None:
    rng = np.random.default_rng(3)
    x = np.arange(200_003) / 100.0
    y = rng.normal(size=x.size)
    y[123_457] = 50.0
    y[7] = -40.0
    y[1000:3000] = np.nan
    xe, ye = envelope(x, y, max_points=2_000)
    assert xe.size <= 2_100 and np.all(np.diff(xe) >= 0)
    assert np.nanmax(ye) == 50.0 and np.nanmin(ye) == -40.0
    # reference: per-bucket max of the raw data equals the envelope's max in that bucket
    per = int(np.ceil(2 * x.size / 2_000))
    m = x.size // per
    ref_max = np.nanmax(np.where(np.isnan(y[: m * per]), -np.inf, y[: m * per]).reshape(m, per), axis=1)
    ref_max[np.isinf(ref_max)] = np.nan
    np.testing.assert_allclose(np.fmax(ye[0 : 2 * m : 2], ye[1 : 2 * m : 2]), ref_max)
    assert np.isnan(ye[2 * (1500 // per)])        # an all-NaN bucket stays a gap
    xs, ys = envelope(x[:100], y[:100], max_points=2_000)
    assert xs is not None and np.array_equal(ys, y[:100], equal_nan=True)


def test_detection_is_the_detectors(trace: ingest.Trace, rep: Replay) -> None:
    direct = detect(trace)
    np.testing.assert_array_equal(direct.impacts["t_s"], rep.detection.impacts["t_s"])


def test_zoom_and_plot_outside_the_trip_name_its_time_span(rep: Replay) -> None:
    for t in (-100.0, rep.duration_s + 1.0, 1e6):
        with pytest.raises(ReplayError, match=r"outside the trip, which spans 0\.\.36\.0 s since its start"):
            rep.zoom(t)
    with pytest.raises(ReplayError, match="outside the trip"):
        rep.plot(start=100.0, end=120.0)
    with pytest.raises(ReplayError, match="outside the trip"):
        rep.plot(start=rep.t0 - dt.timedelta(seconds=60), end=rep.t0 - dt.timedelta(seconds=30))
    assert len(rep.zoom(0.5).axes) == len(STAGE_LABELS)        # near the start: still a figure
    assert len(rep.plot(start=-5.0, end=2.0).axes) == len(STAGE_LABELS)   # overlaps the trip: drawn


def test_plots_without_matplotlib_say_how_to_install_it(rep: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)     # import of matplotlib now fails
    for draw in (rep.plot, rep.plot_map, lambda: rep.zoom(15.0)):
        with pytest.raises(ImportError, match="pip install matplotlib") as info:
            draw()
        assert info.value.name == "matplotlib"
