"""Tiny hand-made traces whose answer is obvious, and degenerate inputs that must not break the detector."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from scipy.signal import butter, sosfilt
from scipy.spatial.transform import Rotation

import ingest
from detect import DetectorParams, detect

T0 = 1_780_000_000.0


def _trace(*, fs_hz: float = 100.0, duration_s: float = 60.0, hits_s: tuple[float, ...] = (), amp_mps2: float = 8.0,
           rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0), speed_mps: float | None = 10.0,
           gps: bool = True, gyro: bool = False, seed: int = 0, unit: str = "m/s2",
           turned_s: tuple[float, float] | None = None, idle_s: tuple[float, float] | None = None,
           first_fix_s: float = 0.0, hand_s: tuple[float, float] | None = None) -> ingest.Trace:
    """A car on smooth road: small noise, plus wheel-hop-like damped 11 Hz oscillations at ``hits_s``; during
    ``turned_s`` (from, to) the phone sits turned by 60 degrees (in a hand, or re-mounted); during ``hand_s`` (from,
    to) a hand turns it, wobbling, to 60 degrees, where it stays; during ``idle_s`` the car stands with its engine
    idling (a tenth of the noise, speed 0); GPS fixes from ``first_fix_s`` on."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * fs_hz)
    t = np.arange(n) / fs_hz
    standing = (t >= idle_s[0]) & (t < idle_s[1]) if idle_s is not None else np.zeros(n, dtype=bool)
    up = rng.normal(0.0, 0.15, n) * np.where(standing, 0.1, 1.0)
    for h in hits_s:
        tau = np.clip(t - h, 0.0, None)
        up += np.where(t >= h, amp_mps2 * np.exp(-tau / 0.07) * np.sin(2 * np.pi * 11.0 * tau), 0.0)
    car = np.column_stack([rng.normal(0, 0.1, n), rng.normal(0, 0.1, n), 9.80665 + up])
    phone = Rotation.from_euler("xyz", rotation_deg, degrees=True).apply(car)
    if turned_s is not None:
        inside = (t >= turned_s[0]) & (t < turned_s[1])
        phone[inside] = Rotation.from_euler("x", 60.0, degrees=True).apply(phone[inside])
    if hand_s is not None:
        angle = (np.interp(t, hand_s, (0.0, 60.0))
                 + np.where((t > hand_s[0]) & (t < hand_s[1]), 25.0 * np.sin(2 * np.pi * 0.7 * (t - hand_s[0])), 0.0))
        phone = Rotation.from_euler("x", angle[:, None], degrees=True).apply(phone)
    if unit == "g":
        phone = phone / 9.80665
    doc: dict[str, Any] = {"format": "bump.trace/1", "trip_id": "hand", "device_id": "d",
                           "accel": {"t": T0 + t, "x": phone[:, 0].copy(), "y": phone[:, 1].copy(),
                                     "z": phone[:, 2].copy(), "unit": unit}}
    if gyro:
        g = rng.normal(0, 0.01, (n, 3))
        doc["gyro"] = {"t": T0 + t, "x": g[:, 0].copy(), "y": g[:, 1].copy(), "z": g[:, 2].copy()}
    if gps:
        t_fix = np.arange(int(duration_s), dtype=float)
        v = np.full(t_fix.size, speed_mps if speed_mps is not None else 0.0)
        if idle_s is not None:
            v[(t_fix >= idle_s[0]) & (t_fix < idle_s[1])] = 0.0
        lat = 42.36 + np.concatenate(([0.0], np.cumsum(v[:-1]))) / 111_195.0
        keep = t_fix >= first_fix_s
        doc["gps"] = {"t": T0 + t_fix[keep], "lat": lat[keep], "lon": np.full(keep.sum(), -71.06), "speed": v[keep],
                      "heading": np.zeros(keep.sum()), "accuracy": np.full(keep.sum(), 4.0)}
    return ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


def test_smooth_road_has_no_impacts() -> None:
    det = detect(_trace())
    assert det.n_impacts == 0
    assert len(det.impacts["t_s"]) == 0 and det.impacts["kind"].dtype.kind == "U"


def test_single_hits_are_found_at_their_times() -> None:
    hits = (12.0, 31.5, 47.25)
    det = detect(_trace(hits_s=hits))
    assert det.n_impacts == 3
    np.testing.assert_allclose(np.sort(det.impacts["t_s"]) - T0, hits, atol=0.1)


@pytest.mark.parametrize("rotation", [(0, 0, 0), (90, 0, 0), (35, -20, 110), (180, 0, 45), (60, 45, -30)])
def test_any_phone_orientation_gives_the_same_answer(rotation: tuple[float, float, float]) -> None:
    flat = detect(_trace(hits_s=(20.0, 40.0)))
    turned = detect(_trace(hits_s=(20.0, 40.0), rotation_deg=rotation))
    assert turned.n_impacts == 2
    np.testing.assert_allclose(turned.impacts["t_s"], flat.impacts["t_s"], atol=0.02)
    np.testing.assert_allclose(turned.impacts["impact_p2p_mps2"], flat.impacts["impact_p2p_mps2"], rtol=0.05)


def test_units_in_g_give_the_same_answer() -> None:
    a = detect(_trace(hits_s=(20.0,)))
    b = detect(_trace(hits_s=(20.0,), unit="g"))
    np.testing.assert_allclose(b.impacts["t_s"], a.impacts["t_s"], atol=1e-6)


def test_a_hit_while_the_phone_is_held_is_handling_but_one_after_a_remount_counts() -> None:
    held = detect(_trace(hits_s=(15.0, 34.0, 50.0), turned_s=(30.0, 38.0)))       # 8 s in a hand, then back
    np.testing.assert_allclose(np.sort(held.impacts["t_s"]) - T0, (15.0, 50.0), atol=0.1)
    c = held.candidates
    assert c["rejected"][np.argmin(np.abs(c["t_s"] - T0 - 34.0))] == "handling"
    moved = detect(_trace(hits_s=(15.0, 50.0), turned_s=(30.0, 60.0)))          # re-mounted for good
    assert moved.orientation.seg_start.size == 2
    np.testing.assert_allclose(np.sort(moved.impacts["t_s"]) - T0, (15.0, 50.0), atol=0.1)


def test_a_remount_guards_the_seconds_around_the_hand_not_around_its_coarse_boundary() -> None:
    """A hand takes 4 s to re-mount the phone (26-30 s). The re-mount's block boundary lands seconds from the
    hand; the hit as the phone seats (+0.5 s) is handling, one 2.5 s later is the road."""
    det = detect(_trace(hits_s=(15.0, 30.5, 32.5, 50.0), hand_s=(26.0, 30.0)))
    spans = det.signals.handling_spans / 100.0
    np.testing.assert_allclose([spans[:, 0].min(), spans[:, 1].max()], [26.0, 30.0], atol=0.6)
    np.testing.assert_allclose(np.sort(det.impacts["t_s"]) - T0, (15.0, 32.5, 50.0), atol=0.1)
    c = det.candidates
    assert c["rejected"][np.argmin(np.abs(c["t_s"] - T0 - 30.5))] == "handling"


def test_a_phone_picked_up_and_put_back_guards_the_seconds_around_the_hand() -> None:
    """2 s in a hand (turned 60 degrees), then back in the same mount: no re-mount, but a span in no mount; the
    hit as the phone is put back (+0.5 s) is handling, one 2.5 s later is the road."""
    det = detect(_trace(hits_s=(15.0, 32.5, 34.5, 50.0), turned_s=(30.0, 32.0)))
    assert det.orientation.seg_start.tolist() == [0]
    np.testing.assert_allclose(det.signals.handling_spans / 100.0, [[30.0, 32.0]], atol=0.3)
    np.testing.assert_allclose(np.sort(det.impacts["t_s"]) - T0, (15.0, 34.5, 50.0), atol=0.1)
    c = det.candidates
    assert c["rejected"][np.argmin(np.abs(c["t_s"] - T0 - 32.5))] == "handling"


def test_impact_while_stopped_is_rejected_as_door_slam() -> None:
    det = detect(_trace(hits_s=(20.0,), speed_mps=0.0))
    assert det.n_impacts == 0
    assert list(det.candidates["rejected"]) == ["stopped"]


def test_without_gps_a_slam_in_a_quiet_standstill_is_rejected_and_road_hits_kept() -> None:
    # the car stands idling for 30 s (a door slam at 10 s), then drives over two hits; no GPS tells the speed
    det = detect(_trace(duration_s=90.0, hits_s=(10.0, 50.0, 70.0), idle_s=(0.0, 30.0), gps=False))
    np.testing.assert_allclose(np.sort(det.impacts["t_s"]) - T0, (50.0, 70.0), atol=0.1)
    c = det.candidates
    assert c["rejected"][np.argmin(np.abs(c["t_s"] - T0 - 10.0))] == "stopped"


def test_hits_before_the_first_fix_are_kept_unplaced() -> None:
    # 1.5 s before the first fix the car is 15 m from it: no position rather than the first fix's
    det = detect(_trace(duration_s=90.0, hits_s=(15.0, 28.5, 60.0), first_fix_s=30.0, speed_mps=15.0))
    np.testing.assert_allclose(np.sort(det.impacts["t_s"]) - T0, (15.0, 28.5, 60.0), atol=0.1)
    order = np.argsort(det.impacts["t_s"])
    lat, acc = det.impacts["lat_deg"][order], det.impacts["accuracy_m"][order]
    assert np.isnan(lat[:2]).all() and np.isnan(acc[:2]).all() and np.isfinite(lat[2])


def test_minutes_parked_before_the_drive_do_not_make_the_road_rough() -> None:
    driving = detect(_trace(duration_s=60.0, hits_s=(20.0, 40.0)))
    parked_first = detect(_trace(duration_s=660.0, hits_s=(620.0, 640.0), idle_s=(0.0, 600.0)))
    assert list(parked_first.impacts["kind"]) == list(driving.impacts["kind"])
    assert "rough" not in set(parked_first.impacts["kind"])
    ratio = parked_first.impacts["background_ratio"] / driving.impacts["background_ratio"]
    np.testing.assert_allclose(ratio, 1.0, rtol=0.2)


def test_without_gps_impacts_have_time_but_no_position() -> None:
    det = detect(_trace(hits_s=(20.0,), gps=False))
    assert det.n_impacts == 1
    assert np.isnan(det.impacts["lat_deg"][0]) and np.isnan(det.impacts["speed_mps"][0])


def test_position_is_interpolated_at_the_impact_time() -> None:
    det = detect(_trace(hits_s=(20.5,)))
    expected_lat = 42.36 + (20.5 * 10.0 + DetectorParams().phone_to_front_axle_m) / 111_195.0
    assert det.impacts["lat_deg"][0] == pytest.approx(expected_lat, abs=2e-6)


@pytest.mark.parametrize("fs_hz", [5.0, 10.0, 50.0, 200.0])
def test_low_and_high_rates_run(fs_hz: float) -> None:
    det = detect(_trace(fs_hz=fs_hz, hits_s=(20.0, 40.0)))
    assert det.signals.fs_hz == pytest.approx(fs_hz, rel=1e-4)
    assert det.impacts["t_s"].shape == det.impacts["kind"].shape
    if fs_hz >= 50:
        assert det.n_impacts == 2


@pytest.mark.parametrize("duration_s", [1.5, 3.0])
def test_too_short_for_the_windows_is_not_an_error(duration_s: float) -> None:
    det = detect(_trace(duration_s=duration_s, gps=False))
    assert det.n_impacts == 0
    assert not np.any(det.roughness["valid"])


def test_gap_swallows_an_impact() -> None:
    tr = _trace(hits_s=(20.0, 40.0))
    doc = ingest.to_document(tr)
    keep = ~((tr.t_s > T0 + 19.9) & (tr.t_s < T0 + 21.0))          # the first hit falls in a 1.1 s gap
    for k in ("t", "x", "y", "z"):
        doc["accel"][k] = np.ascontiguousarray(doc["accel"][k][keep])
    det = detect(ingest.read(ingest.formats.bump_json.dumps_document(doc)))
    assert det.n_impacts == 1
    assert abs(det.impacts["t_s"][0] - (T0 + 40.0)) < 0.1


def test_params_are_recorded_with_a_version() -> None:
    p = DetectorParams(threshold_ratio=5.0)
    det = detect(_trace(), p)
    assert det.params.to_dict()["threshold_ratio"] == 5.0
    assert det.params.digest() != DetectorParams().digest()
    assert DetectorParams.from_dict(p.to_dict()) == p


def _mount_trace(*, mount_coupling: float, hit_lateral: float = 0.7, fs_hz: float = 100.0, duration_s: float = 60.0,
                 hits_s: tuple[float, ...] = (15.0, 30.0, 45.0), seed: int = 0) -> ingest.Trace:
    """A car at 10 m/s whose phone mount rings at 13-15 Hz (0.3 m/s^2 RMS, vertical), and 3 m/s^2 wheel hits at
    ``hits_s`` that move the phone sideways by ``hit_lateral`` of their vertical motion (one wheel rolling the
    car). ``mount_coupling``: the share of the ringing that the mount passes to the lateral axis too (a loose
    mount rings every axis together)."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * fs_hz)
    t = np.arange(n) / fs_hz
    ring = sosfilt(butter(2, (13.0, 15.0), btype="bandpass", fs=fs_hz, output="sos"), rng.normal(size=n))
    ring *= 0.3 / np.std(ring)
    hit = np.zeros(n)
    for h in hits_s:
        tau = np.clip(t - h, 0.0, None)
        hit += np.where(t >= h, 3.0 * np.exp(-tau / 0.07) * np.sin(2 * np.pi * 11.0 * tau), 0.0)
    forward = rng.normal(0.0, 0.1, n) + 0.6 * np.sin(2 * np.pi * 0.05 * t)
    left = rng.normal(0.0, 0.1, n) + hit_lateral * hit + mount_coupling * ring
    up = 9.80665 + rng.normal(0.0, 0.1, n) + ring + hit
    t_fix = np.arange(int(duration_s), dtype=float)
    doc = {"format": "bump.trace/1", "trip_id": "mount", "device_id": "d",
           "accel": {"t": T0 + t, "x": forward, "y": left, "z": up, "unit": "m/s2"},
           "gps": {"t": T0 + t_fix, "lat": 42.36 + 10.0 * t_fix / 111_195.0, "lon": np.full(t_fix.size, -71.06),
                   "speed": np.full(t_fix.size, 10.0), "heading": np.zeros(t_fix.size),
                   "accuracy": np.full(t_fix.size, 4.0)}}
    return ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


def test_weak_hits_count_only_if_more_coherent_than_the_mount_rings_by_chance() -> None:
    """Every hit is made weak (``confirm_snr`` out of reach), so only its lateral coherence can keep it. On a firm
    mount the hits' coherence (>= weak_coherence) is a wheel's roll and they are kept; on a loose mount the same
    hits read even more coherent, but so does the trip's quiet driving (chance coherence ~0.98): rejected."""
    params = {"confirm_snr": 1e3}
    firm = detect(_mount_trace(mount_coupling=0.0), params).candidates
    loose = detect(_mount_trace(mount_coupling=1.0), params).candidates
    for c in (firm, loose):
        np.testing.assert_allclose(c["t_s"] - T0, (15.0, 30.0, 45.0), atol=0.1)
    assert np.all(firm["lateral_up_corr"] >= DetectorParams().weak_coherence)
    assert list(firm["rejected"]) == ["", "", ""]
    assert loose["lateral_up_corr"].min() > firm["lateral_up_corr"].max()
    assert list(loose["rejected"]) == ["weak", "weak", "weak"]


def _axle_pair_trace(*, amp_mps2: float, paired_s: tuple[float, ...] = (15.0, 35.0),
                     lone_s: tuple[float, ...] = (25.0, 45.0), speed_mps: float = 10.0, wheelbase_m: float = 2.7,
                     duration_s: float = 60.0, fs_hz: float = 100.0, seed: int = 0) -> ingest.Trace:
    """A car at ``speed_mps`` on a rough road (1-20 Hz vibration, 0.8 m/s^2 RMS on every axis) meeting defects at
    ``paired_s`` with the front and then the rear wheels (one wheelbase later), and at ``lone_s`` one hit each
    alone (a burst no second axle repeats). Every hit rings at 11 Hz on all three axes: vertical ``amp_mps2``,
    forward and lateral 0.6 of it, the lateral a quarter period out of step (no one-wheel coherence)."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * fs_hz)
    t = np.arange(n) / fs_hz
    hit, quad = np.zeros(n), np.zeros(n)
    for h in [p + k * wheelbase_m / speed_mps for p in paired_s for k in (0, 1)] + list(lone_s):
        tau = np.clip(t - h, 0.0, None)
        decay = np.where(t >= h, amp_mps2 * np.exp(-tau / 0.05), 0.0)
        hit += decay * np.sin(2 * np.pi * 11.0 * tau)
        quad += decay * np.cos(2 * np.pi * 11.0 * tau)
    sos = butter(2, (1.0, 20.0), btype="bandpass", fs=fs_hz, output="sos")

    def road() -> np.ndarray:
        x = sosfilt(sos, rng.normal(size=n))
        return 0.8 * x / np.std(x)

    t_fix = np.arange(int(duration_s), dtype=float)
    doc = {"format": "bump.trace/1", "trip_id": "axles", "device_id": "d", "vehicle": {"wheelbase_m": wheelbase_m},
           "accel": {"t": T0 + t, "x": road() + 0.6 * hit, "y": road() + 0.6 * quad, "z": 9.80665 + road() + hit,
                     "unit": "m/s2"},
           "gps": {"t": T0 + t_fix, "lat": 42.36 + speed_mps * t_fix / 111_195.0, "lon": np.full(t_fix.size, -71.06),
                   "speed": np.full(t_fix.size, speed_mps), "heading": np.zeros(t_fix.size),
                   "accuracy": np.full(t_fix.size, 4.0)}}
    return ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


def test_a_hit_both_axles_repeat_counts_where_a_lone_burst_as_strong_does_not() -> None:
    """On a rough road, hits too weak for the vertical band alone (snr < ``confirm_snr``) are kept when all three
    axes feel them and the rear wheels meet the same spot one wheelbase later (the axle-paired score); bursts as
    strong that no second axle repeats are rejected as weak. Without the score the paired hits are lost too."""
    params = DetectorParams()
    trace = _axle_pair_trace(amp_mps2=7.0)
    found = detect(trace, params).candidates
    paired = np.abs(found["t_s"][:, None] - T0 - np.array([15.0, 35.0])[None, :]).min(axis=1) < 0.3
    lone = np.abs(found["t_s"][:, None] - T0 - np.array([25.0, 45.0])[None, :]).min(axis=1) < 0.3
    assert paired.sum() == 2 and lone.sum() == 2
    assert np.all(found["snr"][paired] < params.confirm_snr)
    assert np.all(found["score"][paired] >= params.confirm_score)
    assert list(found["rejected"][paired]) == ["", ""]
    assert list(found["rejected"][lone]) == ["weak", "weak"]
    without = detect(trace, {"confirm_score": 1e9}).candidates
    near = np.abs(without["t_s"][:, None] - T0 - np.array([15.0, 35.0])[None, :]).min(axis=1) < 0.3
    assert np.all(without["rejected"][near] != "")
