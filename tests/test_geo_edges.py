"""Places at the edges of the map: the antimeridian, the poles, and GPS fixes no car could have driven between."""

from __future__ import annotations

import numpy as np
import pytest

from bump.traversals import TRACK_MAX_SPEED_MPS, densify
from detect.geo import LocalProjection, haversine_m, wrap_lon_deg
from detect.pipeline import _move_ahead


def test_longitudes_wrap_into_the_map_and_ordinary_ones_stay_bit_for_bit() -> None:
    lon = np.array([-71.0586, 179.5, -180.0, 180.0, 181.0, -181.5, 540.0])
    out = wrap_lon_deg(lon)
    assert out[:4].tolist() == lon[:4].tolist()                 # unchanged where already on the map
    assert out[4:].tolist() == pytest.approx([-179.0, 178.5, 180.0 - 360.0])


def test_the_projection_keeps_east_small_across_the_antimeridian() -> None:
    proj = LocalProjection(-17.0, -179.9999)
    x, y = proj.to_xy(np.array([-17.0, -17.0]), np.array([179.9999, -179.9998]))
    metres = haversine_m(-17.0, -179.9999, -17.0, 179.9999)
    assert x[0] == pytest.approx(-metres, rel=1e-6) and abs(x[0]) < 30.0
    _, lon = proj.to_latlon(x, y)
    assert lon.tolist() == pytest.approx([179.9999, -179.9998], abs=1e-9)
    assert (np.abs(lon) <= 180.0).all()


def test_a_fix_kilometres_off_is_a_jump_not_road_to_fill() -> None:
    t = np.arange(6.0)
    x = np.array([0.0, 10.0, 20.0, 900_000.0, 40.0, 50.0])       # one fix 900 km away, a second apart
    y = np.zeros(6)
    _, xx, _, _, _ = densify((x, y, t), np.zeros(6), np.full(6, 5.0), 2.0)
    assert xx.size < 40                                          # ~25 points along the 50 m driven, not 450,000
    assert np.all((xx <= 50.0) | (xx == 900_000.0))
    # a fast but possible segment (a motorway at 40 m/s) is filled as before
    _, xx, _, _, _ = densify((np.array([0.0, 40.0]), np.zeros(2), np.array([0.0, 1.0])), np.zeros(2),
                              np.full(2, 5.0), 2.0)
    assert xx.size == 21 and 40.0 < TRACK_MAX_SPEED_MPS


def test_moving_to_the_front_axle_at_the_antimeridian_and_at_a_pole() -> None:
    lat, lon = _move_ahead(np.array([10.0, 90.0, -90.0, 42.36]), np.array([-180.0, -71.0, -71.0, -71.06]),
                           np.array([270.0, 90.0, 0.0, 0.0]), 1.0)
    assert -180.0 <= lon[0] <= 180.0 and lon[0] == pytest.approx(180.0 - 1.0 / 109_640.0, abs=1e-6)
    assert lat[1:3].tolist() == [90.0, -90.0] and lon[1:3].tolist() == [-71.0, -71.0]     # not moved at a pole
    assert lat[3] == pytest.approx(42.36 + 1.0 / 111_195.0, abs=1e-9) and lon[3] == -71.06


def test_a_gps_speed_no_road_vehicle_reaches_is_unknown_and_noted() -> None:
    import orjson

    import ingest
    n, k = 3000, 30
    t0 = 1_780_000_000.0
    speed = np.full(k, 12.0)
    speed[7] = 1000.0                                           # a km/h value, or a corrupt one
    doc = {"format": "bump.trace/1", "trip_id": "fast", "device_id": "d",
           "accel": {"t": t0 + np.arange(n) / 100.0, "x": np.zeros(n), "y": np.zeros(n),
                     "z": 9.81 + np.random.default_rng(0).normal(0, 0.2, n)},
           "gps": {"t": t0 + np.arange(k, dtype=float), "lat": 42.36 + 12.0 * np.arange(k) / 111_195.0,
                   "lon": np.full(k, -71.06), "speed": speed, "heading": np.zeros(k), "accuracy": np.full(k, 5.0)}}
    trace = ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))
    assert np.isnan(trace.speed_mps[7]) and np.isfinite(np.delete(trace.speed_mps, 7)).all()
    assert any("gps.speed: 1 values above 100 m/s" in p for p in trace.quality.problems)
