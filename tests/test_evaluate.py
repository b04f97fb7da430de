"""bump.evaluate and `bump evaluate` on hand-made truths whose scores are obvious.

Defects sit on a local metre grid around the origin (placed with detect.geo.LocalProjection, checked against
haversine), so "5 m east" is exactly 5 m. Impacts are on a made-up trip clock.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from bump.cli.main import main
from bump.evaluate import (
    EvaluationInputError,
    Truth,
    evaluate_defects,
    evaluate_impacts,
    group_passes,
    load_defects,
    load_impacts,
    load_truth,
)
from detect.geo import LocalProjection, haversine_m
from ingest.errors import BumpError

LAT0, LON0 = 42.36, -71.06
PROJ = LocalProjection(LAT0, LON0)

# id, type, east_m, north_m, reportable
LAYOUT = [
    ("P1", "pothole", 0.0, 0.0, True),
    ("P2", "pothole", 100.0, 0.0, True),
    ("C1", "cover", 200.0, 0.0, True),
    ("P4", "pothole", 0.0, 100.0, True),
    ("B", "speed_bump", 300.0, 0.0, False),
    ("H", "hump", 400.0, 0.0, False),
    ("J", "joint", 500.0, 0.0, False),
    ("R", "rail", 600.0, 0.0, False),
    ("SC", "cover", 700.0, 0.0, False),
    ("SP", "pothole", 800.0, 0.0, False),
]
REPORTABLE = [row for row in LAYOUT if row[4]]


def latlon(east_m: float, north_m: float) -> tuple[float, float]:
    lat, lon = PROJ.to_latlon(np.array([east_m]), np.array([north_m]))
    return float(lat[0]), float(lon[0])


def truth_doc() -> dict[str, Any]:
    defects = []
    for did, kind, x, y, rep in LAYOUT:
        lat, lon = latlon(x, y)
        size = {"depth_m": 0.05 if rep else 0.01} if kind in ("pothole", "cover") else {"height_m": 0.08}
        defects.append({"id": did, "type": kind, "lat": lat, "lon": lon, **size, "length_m": 0.6, "width_m": 0.5,
                        "lateral_offset_m": 0.5, "direction": "both", "reportable": rep})

    def hit(trip: str, t: float, did: str, wheel: str) -> dict[str, Any]:
        kind = next(k for i, k, *_ in LAYOUT if i == did)
        return {"trip_id": trip, "t": t, "defect_id": did, "type": kind, "wheel": wheel, "speed_mps": 10.0}

    impacts = [
        hit("t1", 100.0, "P1", "FL"), hit("t1", 100.2, "P1", "RL"),          # one pass, two wheels
        hit("t1", 200.0, "P2", "FR"),
        hit("t1", 300.0, "B", "FL"), hit("t1", 300.0, "B", "FR"),            # speed bump: four wheels, one pass
        hit("t1", 300.2, "B", "RL"), hit("t1", 300.2, "B", "RR"),
        hit("t1", 400.0, "SC", "FL"),                                       # shallow cover
        hit("t2", 1000.0, "P1", "FL"), hit("t2", 1000.25, "P1", "RL"),     # t2 passes P1 twice
        hit("t2", 1100.0, "P1", "FL"),
    ]
    return {"origin": {"lat": LAT0, "lon": LON0}, "defects": defects, "impacts": impacts,
            "trips": [{"trip_id": "t1", "device_id": "d1"}, {"trip_id": "t2", "device_id": "d2"}],
            "events": [{"trip_id": "t1", "t": 500.0, "type": "handling"}]}


@pytest.fixture
def truth() -> Truth:
    return Truth.from_dict(truth_doc())


def dets(points: list[tuple[float, float]], **extra: Any) -> list[dict[str, Any]]:
    out = []
    for x, y in points:
        lat, lon = latlon(x, y)
        out.append({"lat": lat, "lon": lon, **extra})
    return out


def at_reportable(dx_m: float = 0.0, dy_m: float = 0.0, skip: tuple[str, ...] = ()) -> list[tuple[float, float]]:
    return [(x + dx_m, y + dy_m) for did, _, x, y, _ in REPORTABLE if did not in skip]


# ------------------------------------------------------------------------------------------------ defects


def test_layout_is_metric() -> None:
    lat, lon = latlon(100.0, 0.0)
    assert haversine_m(LAT0, LON0, lat, lon) == pytest.approx(100.0, rel=1e-3)


def test_perfect_match(truth: Truth) -> None:
    s = evaluate_defects(truth, dets(at_reportable()))
    assert (s.tp, s.fp, s.fn) == (4, 0, 0)
    assert s.precision == s.recall == s.f1 == 1.0
    assert s.error_median_m == pytest.approx(0.0, abs=1e-6)
    assert s.error_p90_m == pytest.approx(0.0, abs=1e-6)
    assert sorted(m[1] for m in s.matches) == ["C1", "P1", "P2", "P4"]


@pytest.mark.parametrize("dx, dy", [(5.0, 0.0), (0.0, -5.0), (3.0, 4.0)])
def test_shift_5m_still_matched(truth: Truth, dx: float, dy: float) -> None:
    s = evaluate_defects(truth, dets(at_reportable(dx, dy)), radius_m=10.0)
    assert (s.tp, s.fp, s.fn) == (4, 0, 0)
    assert s.error_median_m == pytest.approx(5.0, abs=0.01)
    assert s.error_p90_m == pytest.approx(5.0, abs=0.01)


def test_shift_15m_not_matched(truth: Truth) -> None:
    s = evaluate_defects(truth, dets(at_reportable(0.0, 15.0)), radius_m=10.0)
    assert (s.tp, s.fp, s.fn) == (0, 4, 4)
    assert s.precision == 0.0 and s.recall == 0.0 and s.f1 == 0.0
    assert math.isnan(s.error_median_m)
    assert s.fp_by_kind["none"] == 4
    # a wider radius catches them again
    assert evaluate_defects(truth, dets(at_reportable(0.0, 15.0)), radius_m=16.0).tp == 4


def test_missing_one(truth: Truth) -> None:
    s = evaluate_defects(truth, dets(at_reportable(skip=("P4",))))
    assert s.recall == pytest.approx(3 / 4)
    assert s.precision == 1.0
    assert s.missed == ("P4",)
    assert s.f1 == pytest.approx(2 * 0.75 / 1.75)


@pytest.mark.parametrize("did, category", [("B", "bump"), ("H", "hump"), ("J", "joint"), ("R", "rail"),
                                           ("SC", "shallow_cover"), ("SP", "shallow_pothole")])
def test_extra_near_feature_is_broken_down(truth: Truth, did: str, category: str) -> None:
    x, y = next((x, y) for i, _, x, y, _ in LAYOUT if i == did)
    s = evaluate_defects(truth, dets([*at_reportable(), (x + 3.0, y)]))
    assert (s.tp, s.fp, s.fn) == (4, 1, 0)
    assert s.fp_by_kind[category] == 1
    assert sum(s.fp_by_kind.values()) == 1
    assert s.false_positives[0][0] == 4 and s.false_positives[0][2] == pytest.approx(3.0, abs=0.01)


def test_extra_nowhere_is_none(truth: Truth) -> None:
    s = evaluate_defects(truth, dets([*at_reportable(), (5000.0, 5000.0)]))
    assert s.fp_by_kind["none"] == 1 and s.fp == 1
    assert s.precision == pytest.approx(4 / 5)


def test_greedy_one_to_one(truth: Truth) -> None:
    s = evaluate_defects(truth, dets([(3.0, 0.0), (0.0, 1.0), *at_reportable(skip=("P1",))]))
    assert (s.tp, s.fp, s.fn) == (4, 1, 0)
    p1 = next(m for m in s.matches if m[1] == "P1")
    assert p1[0] == 1 and p1[2] == pytest.approx(1.0, abs=0.01)       # the closer detection wins
    assert s.false_positives == ((0, "duplicate", pytest.approx(3.0, abs=0.01)),)


def test_greedy_closest_pair_first() -> None:
    doc = truth_doc()
    a, b = latlon(0.0, 0.0), latlon(9.0, 0.0)
    doc["defects"] = [{"id": "A", "type": "pothole", "lat": a[0], "lon": a[1], "depth_m": 0.05, "reportable": True},
                      {"id": "B", "type": "pothole", "lat": b[0], "lon": b[1], "depth_m": 0.05, "reportable": True}]
    doc["impacts"] = []
    s = evaluate_defects(doc, dets([(4.0, 0.0)]))
    assert [m[1] for m in s.matches] == ["A"] and s.missed == ("B",)


def test_non_reportable_never_false_negative(truth: Truth) -> None:
    assert evaluate_defects(truth, []).fn == 4            # only the 4 reportable ones, not all 10
    doc = truth_doc()
    doc["defects"] = [d for d in doc["defects"] if not d["reportable"]]
    doc["impacts"] = []
    s = evaluate_defects(doc, [])
    assert (s.n_reportable, s.fn, s.tp) == (0, 0, 0)
    assert math.isnan(s.recall)


def test_reportable_derived_when_missing() -> None:
    doc = truth_doc()
    for d in doc["defects"]:
        del d["reportable"]
    t = Truth.from_dict(doc)
    assert [d["id"] for d in t.defects if d["reportable"]] == ["P1", "P2", "C1", "P4"]


def test_repaired_as_of(truth: Truth) -> None:
    doc = truth_doc()
    doc["defects"][1]["repaired_after"] = 1_000.0                      # P2
    points = dets(at_reportable())
    before = evaluate_defects(doc, points, as_of_s=500.0)
    after = evaluate_defects(doc, points, as_of_s=2_000.0)
    assert (before.tp, before.fp, before.n_reportable) == (4, 0, 4)
    assert (after.tp, after.fp, after.fn, after.n_reportable) == (3, 1, 0, 3)
    assert after.fp_by_kind["repaired"] == 1


def test_array_and_dataframe_inputs_agree(truth: Truth) -> None:
    points = dets([*at_reportable(2.0, 1.0), (300.0, 2.0)])
    ref = evaluate_defects(truth, points).to_dict()
    arr = np.array([[p["lat"], p["lon"]] for p in points])
    assert evaluate_defects(truth, arr).to_dict() == ref
    assert evaluate_defects(truth, pd.DataFrame(points)).to_dict() == ref
    assert evaluate_defects(truth, {"lat_deg": arr[:, 0], "lon_deg": arr[:, 1]}).to_dict() == ref


def test_file_formats_give_identical_scores(truth: Truth, tmp_path) -> None:
    points = dets([*at_reportable(2.0, -1.0, skip=("C1",)), (301.0, 0.0)], kind="pothole", confidence=0.8)
    as_list = tmp_path / "d.json"
    as_list.write_bytes(orjson.dumps(points))
    geo = tmp_path / "d.geojson"
    geo.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
         "properties": {"kind": p["kind"], "confidence": p["confidence"]}} for p in points]}))
    lines = tmp_path / "d.jsonl"
    lines.write_bytes(b"\n".join(orjson.dumps(p) for p in points) + b"\n")
    table = tmp_path / "d.csv"                                   # as `bump defects --format csv` writes it
    table.write_text("id,kind,lat,lon,confidence\n" + "".join(
        f"{k},{p['kind']},{p['lat']!r},{p['lon']!r},{p['confidence']}\n" for k, p in enumerate(points)))
    scores = [evaluate_defects(truth, load_defects(f)).to_dict() for f in (as_list, geo, lines, table)]
    assert scores[0] == scores[1] == scores[2] == scores[3]
    assert load_defects(table)[0]["kind"] == "pothole" and load_defects(table)[0]["confidence"] == 0.8
    assert (scores[0]["tp"], scores[0]["fp"], scores[0]["fn"]) == (3, 1, 1)
    assert load_defects(geo)[0]["kind"] == "pothole"


@pytest.mark.parametrize("content, needle", [
    (b'[{"lat": 42.36}]', "no lon"),
    (b'[{"lat": 42.36, "lon": "x"}]', "finite number"),
    (b'[{"lat": 200.0, "lon": -71.0}]', "out of range"),
    (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "LineString"}}]}',
     "Point"),
    (b'[{"lat": 42.36, "lon": -71.06}', "neither valid JSON"),
    (b"", "empty"),
    (b"[1, 2]", "must be an object"),
])
def test_malformed_defect_files(tmp_path, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(EvaluationInputError, match=needle) as info:
        load_defects(path)
    assert isinstance(info.value, BumpError) and isinstance(info.value, ValueError)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.pop("origin"), "origin"),
    (lambda d: d["defects"][0].pop("lat"), r"defects\[0\]\.lat"),
    (lambda d: d["impacts"][0].update(defect_id="nope"), "not among the truth defects"),
    (lambda d: d["defects"].append(dict(d["defects"][0])), "unique"),
    (lambda d: d["defects"][0].update(reportable="yes"), "true or false"),
])
def test_malformed_truth(tmp_path, edit, needle: str) -> None:
    doc = truth_doc()
    edit(doc)
    path = tmp_path / "truth.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(EvaluationInputError, match=needle):
        load_truth(path)


# ------------------------------------------------------------------------------------------------ impacts


def test_group_passes() -> None:
    p = group_passes(np.array([0.0, 0.2, 5.0, 0.1, 1.6]), np.array([0, 0, 0, 1, 0]), gap_s=1.5)
    assert p[0] == p[1] == p[4]            # 0.0, 0.2, 1.6 chain with gaps <= 1.5 s
    assert len({p[0], p[2], p[3]}) == 3    # 5.0 is a later pass; defect 1 is its own pass
    assert sorted(p.tolist()) == [0, 0, 0, 1, 2]


def test_impacts_exact(truth: Truth) -> None:
    s = evaluate_impacts(truth, [{"t": 100.0, "kind": "pothole"}, {"t": 200.0, "kind": "pothole"}], "t1")
    assert (s.n_passes, s.tp, s.fp, s.fn) == (2, 2, 0, 0)     # P1's two wheel hits are one pass
    assert s.precision == s.recall == 1.0
    assert s.dt_median_s == pytest.approx(0.0)


def test_impacts_within_tolerance(truth: Truth) -> None:
    s = evaluate_impacts(truth, [99.7, 200.3], "t1", tol_s=0.5)
    assert (s.tp, s.fp, s.fn) == (2, 0, 0)
    assert s.dt_median_s == pytest.approx(0.3)


def test_impacts_outside_tolerance(truth: Truth) -> None:
    s = evaluate_impacts(truth, [99.3, 200.7], "t1", tol_s=0.5)
    assert (s.tp, s.fp, s.fn) == (0, 2, 2)
    assert s.fp_by_kind["none"] == 2
    assert [m[1] for m in s.missed] == ["P1", "P2"]


def test_per_wheel_hits_form_one_pass(truth: Truth) -> None:
    s = evaluate_impacts(truth, [{"t": 100.0}, {"t": 100.2}], "t1")       # a detector reporting both axles
    assert (s.n_passes, s.tp, s.fp, s.fn) == (2, 1, 1, 1)
    assert s.fp_by_kind["duplicate"] == 1
    t2 = evaluate_impacts(truth, [1000.1, 1100.0], "t2")                   # same defect, two passes 100 s apart
    assert (t2.n_passes, t2.tp, t2.fn) == (2, 2, 0)
    # without grouping every wheel hit would be its own pass
    assert evaluate_impacts(truth, [], "t1", group_s=0.0).n_passes == 3


def test_pothole_kind_on_features_and_events(truth: Truth) -> None:
    found = [{"t": 100.05, "kind": "pothole"}, {"t": 300.1, "kind": "pothole"}, {"t": 400.0, "kind": "bump"},
             {"t": 500.2, "kind": "pothole"}]
    s = evaluate_impacts(truth, found, "t1")
    assert (s.tp, s.fp, s.fn) == (1, 3, 1)
    assert s.fp_by_kind["bump"] == 1 and s.fp_by_kind["shallow_cover"] == 1 and s.fp_by_kind["event"] == 1
    assert s.pothole_fp_by_kind["bump"] == 1 and s.pothole_fp_by_kind["shallow_cover"] == 0
    assert (s.n_near_features, s.n_pothole_on_features, s.n_near_events, s.n_pothole_on_events) == (2, 1, 1, 1)
    assert s.n_feature_passes == 2                                          # the bump and the shallow cover
    assert s.false_pothole_rate == pytest.approx(0.5)


def test_false_positive_takes_the_nearer_of_feature_and_event() -> None:
    doc = truth_doc()
    doc["events"].append({"trip_id": "t1", "t": 300.4, "type": "door_slam"})     # bump hits end at 300.2
    s = evaluate_impacts(doc, [300.25, 300.5], "t1")
    assert [f[4] for f in s.false_positives] == ["bump", "event"]


def test_passes_no_phone_could_feel_are_left_out_of_the_scores() -> None:
    doc = truth_doc()
    for r in doc["impacts"]:
        if r["trip_id"] == "t2" and r["t"] < 1050:
            r["input_m"] = -0.004                               # t2's first pass over P1 only grazed the hole
    doc["impacts"].append({**doc["impacts"][0], "trip_id": "t2", "t": 1200.0, "input_m": -0.06})
    doc["events"] += [{"trip_id": "t2", "t": 1099.0, "type": "handling", "duration_s": 3.0},
                      {"trip_id": "t2", "t": 1199.9, "type": "gap", "duration_s": 0.2},
                      {"trip_id": "t2", "t": 1300.0, "type": "door_slam", "duration_s": 0.3}]
    truth = Truth.from_dict(doc)
    s = evaluate_impacts(truth, [1000.1], "t2")     # found the graze; missed the pass in hand and the one in the gap
    assert (s.n_passes, s.tp, s.fp, s.fn) == (0, 0, 0, 0)
    assert [(u[2], u[3]) for u in s.unscored] == [(1000.0, True), (1100.0, False), (1200.0, False)]
    assert s.to_dict()["unscored"][0] == {"trip_id": "t2", "defect_id": "P1", "t": 1000.0, "detected": True}
    doc["events"][-2]["type"] = "door_slam"         # a door slam does not blind the phone: that pass counts
    s = evaluate_impacts(Truth.from_dict(doc), [], "t2")
    assert (s.n_passes, s.fn) == (1, 1) and s.missed[0][2] == 1200.0


def test_impacts_all_trips_sum(truth: Truth, tmp_path) -> None:
    path = tmp_path / "det.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(o) for o in [
        {"trip_id": "t1", "file": "a.json.gz", "impacts": [{"t": 100.1, "kind": "pothole", "lat": 0, "lon": 0}]},
        {"trip_id": "t2", "file": "b.json.gz", "impacts": [{"t": 1000.0}, {"t": 1100.2}, {"t": 1200.0}]},
    ]))
    by_trip = load_impacts(path)
    assert sorted(by_trip) == ["t1", "t2"]
    s = evaluate_impacts(truth, by_trip, "all")
    assert s.trips == ("t1", "t2")
    assert (s.n_passes, s.n_detected, s.tp, s.fp, s.fn) == (4, 4, 3, 1, 1)
    one = evaluate_impacts(truth, by_trip, "t2")
    assert (one.n_passes, one.tp, one.fp) == (2, 2, 1)


def test_impacts_trip_errors(truth: Truth) -> None:
    with pytest.raises(EvaluationInputError, match="not in the truth"):
        evaluate_impacts(truth, [1.0], "t9")
    with pytest.raises(EvaluationInputError, match="trips found: t1"):
        evaluate_impacts(truth, {"t1": []}, "t2")
    with pytest.raises(EvaluationInputError, match="no trip_id"):
        evaluate_impacts(truth, {None: [{"t": 1.0}]}, None)
    assert evaluate_impacts(truth, {None: [{"t": 200.0}]}, "t1").tp == 1    # a bare list belongs to the named trip


# ------------------------------------------------------------------------------------------------ CLI


def write_truth(tmp_path) -> str:
    path = tmp_path / "truth.json"
    path.write_bytes(orjson.dumps(truth_doc()))
    return str(path)


def test_cli_defects_text(tmp_path, capsys) -> None:
    path = tmp_path / "defects.json"
    path.write_bytes(orjson.dumps(dets([*at_reportable(skip=("P4",)), (302.0, 0.0)])))
    assert main(["evaluate", "--truth", write_truth(tmp_path), "--defects", str(path)]) == 0
    out = capsys.readouterr().out
    assert "precision 0.750  recall 0.750  F1 0.750  TP 3  FP 1  FN 1" in out
    assert "median 0.00 m" in out
    assert "bump 1" in out and "none 0" in out


def test_cli_defects_json(tmp_path, capsys) -> None:
    path = tmp_path / "defects.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]}, "properties": {}}
        for p in dets(at_reportable(5.0, 0.0))]}))
    assert main(["evaluate", "--truth", write_truth(tmp_path), "--defects", str(path), "--radius", "4", "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert (out["tp"], out["fp"], out["fn"]) == (0, 4, 4)
    assert out["radius_m"] == 4.0 and out["error_median_m"] is None and out["fp_by_kind"]["none"] == 4


def test_cli_impacts(tmp_path, capsys) -> None:
    path = tmp_path / "det.jsonl"
    path.write_bytes(orjson.dumps({"trip_id": "t1", "file": "a", "impacts": [
        {"t": 100.0, "kind": "pothole"}, {"t": 300.0, "kind": "pothole"}]}) + b"\n")
    assert main(["evaluate", "--truth", write_truth(tmp_path), "--impacts", str(path), "--trip", "t1",
                 "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert (out["n_passes"], out["tp"], out["fp"], out["fn"]) == (2, 1, 1, 1)
    assert out["n_pothole_on_features"] == 1 and out["false_pothole_rate"] == 0.5
    assert main(["evaluate", "--truth", write_truth(tmp_path), "--impacts", str(path)]) == 0
    text = capsys.readouterr().out
    assert "precision 0.500  recall 0.500" in text and "pothole-kind 1 in 2 feature passes" in text


@pytest.mark.parametrize("content, needle", [(b'[{"lat": 42.36}]', "no lon"), (b"{oops", "valid JSON")])
def test_cli_malformed_file_exits_2(tmp_path, capsys, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert main(["evaluate", "--truth", write_truth(tmp_path), "--defects", str(path)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and captured.out == ""
    assert err.startswith("bump evaluate: error:") and str(path) in err and needle in err


def test_cli_unknown_trip_names_file(tmp_path, capsys) -> None:
    path = tmp_path / "det.jsonl"
    path.write_bytes(orjson.dumps({"trip_id": "t1", "impacts": []}) + b"\n")
    assert main(["evaluate", "--truth", write_truth(tmp_path), "--impacts", str(path), "--trip", "t2"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "t2" in err
