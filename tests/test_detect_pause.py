"""A recording paused and resumed, its sample clock restarting half a period out of phase: the impacts after the
pause read as they do in the same recording unpaused (``detect.clock.sample_clock`` gives each run between gaps
its own phase): measured within 0.4 % of it. One phase for the whole trip put every sample of one run off its grid
points, and linear interpolation there moved the same impacts' severities by 2-8 %."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ingest
from bump.sim.phone import slow_phone
from detect import detect
from ingest import Trace
from ingest.formats.bump_json import dumps_document

ROOT = Path(__file__).parent.parent
TRIPS = ROOT / "sample_traces" / "trips"
PAUSE_S = 20.0
AWAY_S = 8.0           # impacts this far from the pause: its filters' and background's edges do not reach them


def paused(trace: Trace, cut_s: float, pause_s: float, jump_steps: float, fs_hz: float) -> Trace:
    """``trace`` with every reading (accelerometer, gyroscope, GPS) from ``cut_s`` on moved ``pause_s`` later and
    the sensors' clock ``jump_steps`` of a period further (a recording paused and resumed)."""
    doc = ingest.to_document(trace)
    shift_s = pause_s + jump_steps / fs_hz
    for block in ("accel", "gyro", "gps"):
        if block in doc:
            t = np.asarray(doc[block]["t"], dtype=np.float64)
            doc[block]["t"] = np.where(t >= cut_s, t + shift_s, t)
    return ingest.read(dumps_document(doc))


@pytest.mark.parametrize(("trip", "jump_steps"), [("smoke-d03-t01", 0.5), ("smoke-d04-t00", 0.3)])
def test_impacts_after_a_pause_keep_their_severity(trip: str, jump_steps: float) -> None:
    """Each impact more than AWAY_S after the pause is found once, at its time moved by the pause, with the
    severity it has unpaused (1 %). The trips sampled at 50 Hz, where a half-step offset costs most."""
    fs_hz = 50.0
    trace = slow_phone(ingest.read(TRIPS / f"{trip}.json.gz"), fs_hz)
    cut_s = float(trace.t_s[0] + 0.45 * trace.duration_s)
    before = detect(trace).impacts
    after = detect(paused(trace, cut_s, PAUSE_S, jump_steps, fs_hz)).impacts
    late = before["t_s"] > cut_s + AWAY_S
    assert np.count_nonzero(late) >= 3, "the trip needs impacts after the pause to compare"
    t_moved = np.where(after["t_s"] > cut_s + PAUSE_S, after["t_s"] - PAUSE_S - jump_steps / fs_hz, after["t_s"])
    for t_s, severity in zip(before["t_s"][late], before["severity"][late], strict=True):
        match = np.abs(t_moved - t_s) < 0.05
        assert match.sum() == 1, f"the impact at {t_s - trace.t_s[0]:.1f} s is not found once after the pause"
        assert after["severity"][match][0] == pytest.approx(severity, rel=0.01)
