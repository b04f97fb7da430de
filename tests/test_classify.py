"""Hand-made event features through the classification rules (detect/classify.py)."""

from __future__ import annotations

import numpy as np
import pytest

from detect.classify import classify, equivalent_depth_m, step_depth_m
from detect.columns import Columns
from detect.features import FEATURE_DTYPES
from detect.params import DetectorParams

P = DetectorParams()
FS_HZ = 100.0


def _events(**cols: list[float]) -> Columns:
    """Events with quiet, one-second, clear (snr 8) defaults, overridden by ``cols``."""
    n = len(next(iter(cols.values())))
    base = {k: np.zeros(n, dtype=v) for k, v in FEATURE_DTYPES.items()}
    base.update(duration_s=np.full(n, 0.4), snr=np.full(n, 8.0), background_ratio=np.ones(n),
                roll_ratio=np.full(n, np.nan), first_motion=np.full(n, -1), valid=np.ones(n, dtype=bool))
    for k, v in cols.items():
        base[k] = np.asarray(v, dtype=FEATURE_DTYPES[k])
    return Columns(base)


def test_a_lift_on_both_wheels_is_a_speed_bump_but_a_lift_that_rolls_the_car_is_a_deep_hole() -> None:
    lift = dict(disp_p2p_m=[0.045] * 6, vel_p2p_mps=[0.45] * 6, cf_peak_mps2=[6.0] * 6)
    feat = _events(**lift, lateral_up_corr=[0.1, 0.8, 0.5, 0.8, 0.8, 0.5],
                   roll_ratio=[0.2, 1.6, 1.6, 0.3, np.nan, np.nan])
    c = classify(feat, P, FS_HZ)
    kind, severity = c.kind, c.severity_cm
    # both wheels; one wheel by gyroscope and lateral motion; by the gyroscope's roll with the lateral motion only
    # loosely in step; lateral motion but no roll; no gyroscope, lateral motion in step; no gyroscope, lateral
    # motion too loose (under weak_coherence) to tell a wheel from a bump
    assert kind.tolist() == ["speed_bump", "pothole", "pothole", "speed_bump", "pothole", "speed_bump"]
    assert severity[0] == pytest.approx(4.5)                          # a bump: the body's lift [cm]
    # a hole: the depth of the sharp-edged step ringing the phone as much, the background (cf / snr) removed [cm]
    assert severity[1] == pytest.approx(100 * np.sqrt(6.0**2 - (6.0 / 8.0) ** 2) / P.step_gain_per_s2)


def test_a_lift_needs_both_the_displacement_and_the_velocity_swing() -> None:
    # both wheels (no roll, loose lateral motion), rung as by a 2 cm step: the body displaced 3.5 cm at 0.6 m/s (a
    # bump); 3.5 cm at 0.3 m/s (a deep hole or a joint at speed, or the integral's drift); 0.6 m/s over 1 cm (a kick)
    feat = _events(disp_p2p_m=[0.035, 0.035, 0.01], vel_p2p_mps=[0.6, 0.3, 0.6], lateral_up_corr=[0.1] * 3,
                   roll_ratio=[0.3] * 3, cf_peak_mps2=[P.step_gain_per_s2 * 0.02] * 3)
    assert classify(feat, P, FS_HZ).kind.tolist() == ["speed_bump", "joint", "joint"]


def test_a_lift_whose_roll_is_between_both_wheels_and_one_wheel_stays_a_bump() -> None:
    # a hump taken at an angle rolls the car a little: roll/pitch 1.0 is neither both wheels (< 0.9) nor clearly one
    # wheel (~1.7, at least one_wheel_roll_ratio); with the lateral motion coherent it is still a bump, not a hole
    lift = dict(disp_p2p_m=[0.037] * 3, vel_p2p_mps=[0.42] * 3, cf_peak_mps2=[6.0] * 3)
    feat = _events(**lift, lateral_up_corr=[0.64] * 3,
                   roll_ratio=[1.0, P.one_wheel_roll_ratio - 0.01, P.one_wheel_roll_ratio + 0.01])
    assert classify(feat, P, FS_HZ).kind.tolist() == ["speed_bump", "speed_bump", "pothole"]


def test_with_a_gyroscope_a_clear_roll_is_one_wheel_even_when_the_lateral_motion_is_loose() -> None:
    # no lift, rung as by a 5 cm step. Lateral motion loosely in step (0.2, under one_wheel_coherence) and a roll/pitch
    # of: clearly both wheels; between the regimes; clearly one wheel; no gyroscope. Then the same with the lateral
    # motion in step (0.8): between the regimes it now says one wheel, below both_wheels_roll_ratio the roll wins
    rolls = [P.both_wheels_roll_ratio - 0.05, (P.both_wheels_roll_ratio + P.one_wheel_roll_ratio) / 2,
             P.one_wheel_roll_ratio + 0.05, np.nan]
    step = dict(vel_p2p_mps=[0.1] * 8, disp_p2p_m=[0.005] * 8, cf_peak_mps2=[P.step_gain_per_s2 * 0.05] * 8)
    feat = _events(**step, lateral_up_corr=[0.2] * 4 + [0.8] * 4, roll_ratio=rolls * 2)
    assert classify(feat, P, FS_HZ).kind.tolist() == ["joint", "joint", "pothole", "joint",
                                                      "joint", "pothole", "pothole", "pothole"]


def test_one_wheel_events_without_lift_keep_their_depth_rule() -> None:
    # rung as by a 1.9 cm and a 7.0 cm step; at 20 Hz (impact band unresolved) the body's swing: 1.9 vs 7.4 cm
    feat = _events(vel_p2p_mps=[0.05, 0.2], disp_p2p_m=[0.005, 0.01], lateral_up_corr=[0.8, 0.8],
                   roll_ratio=[1.5, 1.5], cf_peak_mps2=[1.2, 4.5])
    assert classify(feat, P, FS_HZ).kind.tolist() == ["cover", "pothole"]
    assert classify(feat, P, 20.0).kind.tolist() == ["cover", "pothole"]
    swapped = _events(vel_p2p_mps=[0.2, 0.05], disp_p2p_m=[0.01, 0.005], lateral_up_corr=[0.8, 0.8],
                      roll_ratio=[1.5, 1.5], cf_peak_mps2=[1.2, 4.5])
    assert classify(swapped, P, FS_HZ).kind.tolist() == ["cover", "pothole"]        # the ringing decides at 100 Hz
    assert classify(swapped, P, 20.0).kind.tolist() == ["pothole", "cover"]         # the body's swing at 20 Hz


def test_a_weak_event_on_a_rough_stretch_is_rough_but_keeps_the_kind_it_has_off_it() -> None:
    # one wheel, dropping first, rung as by a 5.5 cm step; a 1.8 cm step standing up; both wheels; too long to be one
    # impact. On smooth road (background 1x) each is what its evidence says; on a stretch 3x as rough as the trip's
    # typical level, the weak ones (snr 3 < 1.25 x confirm_snr) are rough, their spot kind unchanged
    rough_bg = P.rough_background_ratio + 0.5
    cols = dict(cf_peak_mps2=[3.75, 1.2, 3.0, 3.0], lateral_up_corr=[0.7, 0.7, 0.1, 0.7],
                first_motion=[-1, 1, -1, -1], duration_s=[0.2, 0.2, 0.2, P.max_event_s + 0.5],
                vel_p2p_mps=[0.2, 0.05, 0.2, 0.2])
    smooth = classify(_events(**cols, snr=[3.0] * 4), P, FS_HZ)
    rough = classify(_events(**cols, snr=[3.0] * 4, background_ratio=[rough_bg] * 4), P, FS_HZ)
    strong = classify(_events(**cols, snr=[8.0] * 4, background_ratio=[rough_bg] * 4), P, FS_HZ)
    assert smooth.kind.tolist() == ["pothole", "cover", "joint", "rough"]
    assert smooth.spot_kind.tolist() == smooth.kind.tolist()
    assert rough.kind.tolist() == ["rough"] * 4
    assert rough.spot_kind.tolist() == smooth.kind.tolist()
    assert strong.kind.tolist() == strong.spot_kind.tolist() == smooth.kind.tolist()    # judged on its own
    assert smooth.depth_class.tolist()[:2] == ["high", "proud"]
    assert rough.depth_class.tolist()[:2] == ["high", "low"]        # by depth: "proud" is a cover's class


def test_step_depth_removes_the_background_in_quadrature_and_needs_the_band_resolved() -> None:
    cf, snr = np.array([2.0, 2.0, 0.5]), np.array([2.0, 1e9, 0.8])
    assert step_depth_m(cf, snr, 64.0) == pytest.approx([np.sqrt(3.0) / 64.0, 2.0 / 64.0, 0.0])
    feat = _events(cf_peak_mps2=[3.2], vel_p2p_mps=[0.27], snr=[1e9])
    top_hz = P.impact_band_hz[1]
    assert equivalent_depth_m(feat, P, 2 * top_hz)[0] == pytest.approx(3.2 / P.step_gain_per_s2)
    assert equivalent_depth_m(feat, P, 2 * top_hz - 1)[0] == pytest.approx(0.27 / P.damper_rate_per_s)


def test_swing_depth_removes_the_roads_own_swing_in_quadrature_below_the_rates_that_resolve_the_band() -> None:
    """Below 2 x the band's top the depth is the body's velocity swing above the road's own (vel_background_mps):
    a swing no larger than the road gives is no hole; at rates that resolve the band the ringing decides alone."""
    feat = _events(cf_peak_mps2=[3.2] * 3, snr=[1e9] * 3, vel_p2p_mps=[0.25, 0.25, 0.1],
                   vel_background_mps=[0.0, 0.15, 0.2], lateral_up_corr=[0.8] * 3)     # one wheel
    low_hz = 2 * P.impact_band_hz[1] - 1
    assert equivalent_depth_m(feat, P, low_hz) == pytest.approx([0.25 / P.damper_rate_per_s,
                                                                 0.2 / P.damper_rate_per_s, 0.0])
    assert classify(feat, P, low_hz).kind.tolist() == ["pothole", "pothole", "cover"]
    quiet = _events(cf_peak_mps2=[3.2], snr=[1e9], vel_p2p_mps=[0.15], vel_background_mps=[0.12],
                    lateral_up_corr=[0.8])
    assert classify(quiet, P, low_hz).kind.tolist() == ["cover"]      # 0.09 / 2.7 = 3.3 cm of the 5.6 cm read
    assert equivalent_depth_m(feat, P, 2 * P.impact_band_hz[1]) == pytest.approx([3.2 / P.step_gain_per_s2] * 3)
