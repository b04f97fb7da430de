"""`bump defects` output shapes (RFC 7946 GeoJSON, CSV with lat/lon, JSON), filters, crew decisions, and
`bump ingest` / `bump reprocess` on real sample traces."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from test_store import DAY_S, T0_S, add_trip

from bump import views
from bump.cli.main import main
from bump.store import Store

REQUIRED = ("id", "kind", "status", "severity", "confidence", "priority", "hits", "devices", "traversals",
            "hit_rate", "first_seen", "last_seen", "uncertainty_m")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """Two confirmed potholes (deep on a busy road, shallow elsewhere), a candidate, a dismissed one."""
    path = tmp_path_factory.mktemp("cli") / "defects.db"
    with Store.open(path) as store:
        for k, dev in enumerate(["a", "b", "c", "d"]):
            add_trip(store, f"t{k}", dev, T0_S + k * DAY_S,
                     [(0.0, 0.0, "pothole", 14.0, 0.9), (0.0, 100.0, "pothole", 3.0, 0.8)]
                     + ([(0.0, -120.0, "cover", 4.0, 0.7)] if k == 0 else [])
                     + ([(0.0, 60.0, "pothole", 6.0, 0.9)] if k < 3 else []), length_m=400.0)
        d = store.all_defects()
        dismissed = int(d["defect_id"][d["y_m"].argsort()[2]])          # the one at y = 60 m
        views.set_status(store, dismissed, "dismissed", reason="manhole, flush", at_s=T0_S + 9 * DAY_S)
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_geojson_is_rfc7946(db, capsys) -> None:
    code, out, _ = _run(capsys, "defects", "--db", str(db), "--format", "geojson")
    assert code == 0
    doc = json.loads(out)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 3
    for f in doc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
        lon, lat = f["geometry"]["coordinates"]
        assert -71.1 < lon < -71.0 and 42.3 < lat < 42.4              # [lon, lat], not [lat, lon]
        for v in (lon, lat):
            assert len(repr(v).split(".")[1]) <= 6
        assert all(k in f["properties"] for k in REQUIRED)
    prios = [f["properties"]["priority"] for f in doc["features"]]
    assert prios == sorted(prios, reverse=True)
    assert {f["properties"]["status"] for f in doc["features"]} == {"confirmed", "candidate"}


def test_csv_has_lat_lon_and_every_field(db, capsys) -> None:
    code, out, _ = _run(capsys, "defects", "--db", str(db), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3
    assert all(k in rows[0] for k in (*REQUIRED, "lat", "lon"))
    assert rows[0]["severity"] == "14.0" and float(rows[0]["priority"]) > float(rows[1]["priority"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0]["first_seen"])
    assert 42.3 < float(rows[0]["lat"]) < 42.4 and -71.1 < float(rows[0]["lon"]) < -71.0


def test_filters_status_kind_bbox_limit(db, capsys) -> None:
    _, out, _ = _run(capsys, "defects", "--db", str(db), "--format", "json", "--status", "all")
    every = json.loads(out)["defects"]
    assert len(every) == 4 and "dismissed" in {d["status"] for d in every}
    _, out, _ = _run(capsys, "defects", "--db", str(db), "--format", "json", "--kind", "cover")
    assert [d["kind"] for d in json.loads(out)["defects"]] == ["cover"]
    _, out, _ = _run(capsys, "defects", "--db", str(db), "--format", "json", "--bbox=-71.1,42.3599,-71.0,42.3605")
    near = json.loads(out)["defects"]
    assert len(near) == 1 and near[0]["severity"] == 14.0
    _, out, _ = _run(capsys, "defects", "--db", str(db), "--format", "json", "--limit", "1")
    page = json.loads(out)
    assert len(page["defects"]) == 1 and page["next_cursor"]
    _, out, _ = _run(capsys, "defects", "--db", str(db), "--format", "json", "--cursor", page["next_cursor"])
    assert page["defects"][0]["id"] not in {d["id"] for d in json.loads(out)["defects"]}


def test_table_show_and_errors(db, capsys) -> None:
    code, out, _ = _run(capsys, "defects", "--db", str(db))
    assert code == 0 and out.splitlines()[0].split()[:3] == ["id", "kind", "status"] and len(out.splitlines()) == 4
    first = int(out.splitlines()[1].split()[0])
    code, out, _ = _run(capsys, "defects", "--db", str(db), "--show", str(first))
    rec = json.loads(out)
    assert code == 0 and rec["history"][0]["to"] == "candidate" and len(rec["passes"]) == 4
    code, _, err = _run(capsys, "defects", "--db", str(db), "--set", str(first), "repaired")
    assert code == 2 and "reason" in err
    code, _, err = _run(capsys, "defects", "--db", str(db), "--bbox", "1,2,3")
    assert code == 2 and "W,S,E,N" in err
    code, _, err = _run(capsys, "defects", "--db", str(db.parent / "missing.db"))
    assert code == 2 and "bump ingest" in err and not (db.parent / "missing.db").exists()


def test_ingest_twice_and_reprocess_real_traces(tmp_path, capsys) -> None:
    src = sorted((ROOT / "sample_traces" / "trips").glob("*.json.gz"))[:2]
    if len(src) < 2:
        pytest.skip("sample_traces/trips not present")
    folder = tmp_path / "run" / "trips"
    folder.mkdir(parents=True)
    for p in src:
        shutil.copy(p, folder / p.name)
    db = tmp_path / "d.db"
    code, out, _ = _run(capsys, "ingest", str(tmp_path / "run"), "--db", str(db))
    assert code == 0 and out.startswith("2 trips ingested (0 already stored")
    with Store.open(db) as store:
        counts = store.counts()
    code, out, _ = _run(capsys, "ingest", str(tmp_path / "run"), "--db", str(db))
    assert code == 0 and out.startswith("0 trips ingested (2 already stored")
    with Store.open(db) as store:
        assert store.counts() == counts
    code, out, _ = _run(capsys, "reprocess", "--db", str(db))
    assert code == 0 and out.startswith("2 trips re-detected")
    with Store.open(db) as store:
        assert store.counts()["trips"] == 2 and store.counts()["hits"] == counts["hits"]


@pytest.mark.parametrize("command", ["detect", "reprocess"])
def test_a_bad_parameter_file_is_one_clear_line(tmp_path, capsys, command: str) -> None:
    target = ["--db", str(tmp_path / "x.db")] if command == "reprocess" else [str(ROOT / "sample_traces" / "trips")]
    bad = tmp_path / "params.json"
    bad.write_text('{"threshold_ratio": ')
    for path, fragment in [(tmp_path / "missing.json", "cannot be read (No such file or directory)"),
                           (bad, "is not valid JSON"), (None, "unknown")]:
        if path is None:
            bad.write_text('{"no_such_param": 1}')
            path = bad
        code, _, err = _run(capsys, command, *target, "--params", str(path))
        assert code == 2
        assert err.count("\n") == 1 and str(path) in err and fragment in err


def test_iso_time_of_a_time_no_calendar_holds_is_none_not_a_crash() -> None:
    """A database written before ingest refused times after 2100 (ms read as s) once crashed `bump defects`."""
    assert views.iso_time(1_780_000_000.4) == "2026-05-28T20:26:40Z"
    assert views.iso_time(3e11) is None and views.iso_time(-1e20) is None and views.iso_time(float("nan")) is None


def test_trips_ingested_after_a_reprocess_use_its_detector_parameters(tmp_path) -> None:
    """Once a reprocess with other parameters was followed by ingests with the defaults: one database, two
    detectors, without a word."""
    import ingest
    from bump import pipeline
    from bump.store import Store
    from detect import DetectorParams

    src = sorted((ROOT / "sample_traces" / "trips").glob("*.json.gz"))
    custom = DetectorParams(threshold_ratio=3.0)
    with Store.open(tmp_path / "p.db") as store:
        assert pipeline.database_params(store) == DetectorParams()
        pipeline.ingest_trace(store, ingest.read(src[0]))
        pipeline.reprocess(store, custom)
        assert pipeline.database_params(store) == custom
    assert main(["ingest", str(src[1]), "--db", str(tmp_path / "p.db")]) == 0
    with Store.open(tmp_path / "p.db") as store:
        digests = {t["detector"]["params_digest"] for t in store.trips()}
    assert digests == {custom.digest()}


def test_a_python_callers_bbox_out_of_range_gets_the_ranges(db) -> None:
    """The API's and the CLI's message; the Python one once said only 'with S <= N'."""
    from bump.store import Store

    with Store.open(db) as store, pytest.raises(ValueError, match=r"-180 <= W, E <= 180 and -90 <= S <= N <= 90"):
        views.list_defects(store, bbox=(-200.0, 42.0, -71.0, 43.0))
