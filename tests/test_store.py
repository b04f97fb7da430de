"""Storage: PRAGMAs, migrations, idempotent ingest, raw traces kept, keyset pagination, device override.

Also the home of the hand-made trips used by test_cluster, test_lifecycle and test_defects_cli: straight roads
through a known origin, 1 Hz GPS, and impacts placed by hand (a fake Detection), so no test depends on the
detector's tuning.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

import ingest
from bump import cells as cellmap
from bump import pipeline, refresh, views
from bump import store as store_module
from bump.store import SCHEMA_VERSION, DefectQuery, Store, StoreError
from bump.store import checkpoint as store_checkpoint
from bump.store import database as store_database
from bump.store import rows as store_rows
from bump.traversals import Track
from detect import Detection
from detect.columns import Columns
from detect.geo import LocalProjection
from detect.params import DetectorParams

T0_S = 1_780_000_000.0
DAY_S = 86_400.0
ORIGIN = (42.36, -71.06)
PROJ = LocalProjection(*ORIGIN)


def road_trace(trip_id: str, device_id: str, *, t0_s: float, heading_deg: float = 0.0, speed_mps: float = 10.0,
               length_m: float = 400.0, offset_m: float = 0.0, accuracy_m: float = 4.0) -> ingest.Trace:
    """A trip along a straight road through the origin at ``heading_deg`` (starting length/2 before it),
    shifted ``offset_m`` to the right; 25 Hz quiet accelerometer, 1 Hz GPS."""
    duration = length_m / speed_mps
    n_gps = int(duration) + 1
    t_gps = t0_s + np.arange(n_gps, dtype=float)
    h = np.deg2rad(heading_deg)
    ux, uy = np.sin(h), np.cos(h)
    s = -0.5 * length_m + speed_mps * (t_gps - t0_s)
    x, y = s * ux + offset_m * uy, s * uy - offset_m * ux
    lat, lon = PROJ.to_latlon(x, y)
    rate = 25.0
    n = int(duration * rate)
    rng = np.random.default_rng(abs(hash(trip_id)) % 2**32)
    t = t0_s + np.arange(n) / rate
    doc = {"format": "bump.trace/1", "trip_id": trip_id, "device_id": device_id,
           "accel": {"t": t, "x": rng.normal(0, 0.05, n), "y": rng.normal(0, 0.05, n),
                     "z": 9.81 + rng.normal(0, 0.05, n), "unit": "m/s2"},
           "gps": {"t": t_gps, "lat": lat, "lon": lon, "speed": np.full(n_gps, speed_mps),
                   "heading": np.full(n_gps, heading_deg % 360.0), "accuracy": np.full(n_gps, accuracy_m)}}
    return ingest.read(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), name=trip_id)


# north through the origin, round a 100 m x 400 m block, north through it again
BLOCK_LOOP_M = np.array([[0.0, -200.0], [0.0, 200.0], [100.0, 200.0], [100.0, -200.0], [0.0, -200.0],
                         [0.0, 200.0]])


def block_loop(spacing_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fixes every ``spacing_m`` along :data:`BLOCK_LOOP_M`: x [m], y [m], heading [deg], distance along [m]. The
    origin is passed at 200 m and at 1200 m."""
    s_end = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(BLOCK_LOOP_M, axis=0).T))])
    s = np.arange(0.0, s_end[-1] + 1e-9, spacing_m)
    leg = np.minimum(np.searchsorted(s_end, s, side="right") - 1, BLOCK_LOOP_M.shape[0] - 2)
    step = np.diff(BLOCK_LOOP_M, axis=0)[leg]
    return (np.interp(s, s_end, BLOCK_LOOP_M[:, 0]), np.interp(s, s_end, BLOCK_LOOP_M[:, 1]),
            np.degrees(np.arctan2(step[:, 0], step[:, 1])) % 360.0, s)


def fake_detection(trace: ingest.Trace, impacts: list[tuple[Any, ...]], *,
                   heading_deg: float | None = None, speed_mps: float = 10.0) -> Detection:
    """A Detection whose impacts sit at local (x, y) [m] with (kind, severity, confidence[, spot kind]); times from
    the trace's closest GPS fix. No roughness windows unless the trace is long: one reading every 20 m."""
    xs, ys, times = [], [], []
    fx, fy = PROJ.to_xy(trace.lat_deg, trace.lon_deg)
    for x, y, *_ in impacts:
        k = int(np.argmin(np.hypot(fx - x, fy - y)))
        xs.append(x)
        ys.append(y)
        times.append(float(trace.gps_t_s[k]))
    lat, lon = PROJ.to_latlon(np.array(xs, dtype=float), np.array(ys, dtype=float))
    n = len(impacts)
    head = float(trace.heading_deg[0]) if heading_deg is None else heading_deg
    imp = Columns({"t_s": np.array(times, dtype=float), "lat_deg": lat, "lon_deg": lon,
                   "accuracy_m": np.full(n, 4.0), "heading_deg": np.full(n, head),
                   "kind": np.array([i[2] for i in impacts], dtype="U10"),
                   "spot_kind": np.array([i[5] if len(i) > 5 else i[2] for i in impacts], dtype="U10"),
                   "severity": np.array([i[3] for i in impacts], dtype=float),
                   "depth_class": np.full(n, "high", dtype="U8"),
                   "confidence": np.array([i[4] for i in impacts], dtype=float),
                   "speed_mps": np.full(n, speed_mps), "snr": np.full(n, 9.0)})
    m = max(int(trace.gps_t_s.size // 2) - 1, 0)
    k = np.arange(m) * 2
    rough = Columns({"t_start_s": trace.gps_t_s[k], "t_end_s": trace.gps_t_s[k + 2], "length_m": np.full(m, 20.0),
                     "speed_mps": np.full(m, 10.0), "rms_mps2": np.full(m, 0.5), "iri_m_per_km": np.full(m, 3.0),
                     "valid": np.ones(m, dtype=bool), "lat_deg": trace.lat_deg[k + 1], "lon_deg": trace.lon_deg[k + 1],
                     "heading_deg": trace.heading_deg[k + 1]})
    return Detection(trace.trip_id, trace.device_id, imp, imp, rough, None, None, DetectorParams())  # type: ignore[arg-type]


def add_trip(store: Store, trip_id: str, device_id: str, t0_s: float,
             impacts: list[tuple[Any, ...]], *, heading_deg: float = 0.0,
             device_override: str | None = None, **kw: float) -> pipeline.IngestSummary:
    """Ingest one hand-made trip with impacts at local positions (kind, severity, confidence)."""
    trace = road_trace(trip_id, device_id, t0_s=t0_s, heading_deg=heading_deg, **kw)
    return pipeline.ingest_trace(store, trace, detection=fake_detection(trace, impacts), device_id=device_override,
                                 clock=lambda: t0_s + 3600.0)


POTHOLE = (0.0, 0.0, "pothole", 9.0, 0.9)


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "defects.db")
    yield s
    s.close()


def _all_defect_rows(store: Store) -> list[dict]:
    cols = store.all_defects()
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in
             zip(cols.names, row, strict=True)} for row in zip(*(cols[k].tolist() for k in cols.names), strict=True)]


# --------------------------------------------------------------------------------------------------- settings


def test_pragmas_wal_full_foreign_keys(store: Store) -> None:
    assert store.pragma("journal_mode").lower() == "wal"
    assert store.pragma("synchronous") == 2          # FULL
    assert store.pragma("foreign_keys") == 1
    assert store.pragma("busy_timeout") > 0
    assert store.schema_version == SCHEMA_VERSION


def test_commits_are_checkpointed_in_the_background_and_the_wal_stays_one_commit_long(tmp_path) -> None:
    path = tmp_path / "ck.db"
    store = Store.open(path)
    assert store.pragma("wal_autocheckpoint") == store_checkpoint.BACKSTOP_PAGES     # the writers' own: a backstop
    wal_bytes = []
    for k in range(5):                                  # ~60 pages each, far below the backstop
        with store.transaction():
            store.set_meta(f"big-{k}", "x" * 240_000)
        assert store.wait_for_checkpoint()
        wal_bytes.append((path.parent / "ck.db-wal").stat().st_size)
        in_wal, copied = store.checkpointer.last
        assert in_wal == copied >= 55                   # all of this commit's WAL is in the database file
    assert store.checkpointer.checkpoints >= 5
    assert max(wal_bytes) < 1.5 * wal_bytes[0]          # the next writer starts the WAL over: it does not grow
    copy = tmp_path / "alone.db"                        # the database file alone, without its WAL, holds them all
    copy.write_bytes(path.read_bytes())
    con = sqlite3.connect(copy)
    assert con.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'big-%'").fetchone()[0] == 5
    con.close()
    store.close()


def _checkpoint_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("bump-checkpoint"))


def test_one_checkpointer_per_file_and_process_stopped_by_its_last_user(tmp_path) -> None:
    before = _checkpoint_threads()
    a, b = Store.open(tmp_path / "one.db"), Store.open(tmp_path / "one.db")
    other = Store.open(tmp_path / "two.db")
    assert a.checkpointer is b.checkpointer and a.checkpointer is not other.checkpointer
    assert len(_checkpoint_threads()) == len(before) + 2
    a.close()
    with b.transaction():                               # the other user's commits are still checkpointed
        b.set_meta("k", "v")
    assert b.wait_for_checkpoint() and b.checkpointer.checkpoints >= 1
    b.close()
    b.close()                                           # closing twice gives it back once
    assert _checkpoint_threads() == sorted([*before, "bump-checkpoint two.db"])
    del other                                           # a store never closed gives it back when collected
    gc.collect()
    assert _checkpoint_threads() == before
    with Store.open(":memory:") as mem:
        assert mem.checkpointer is None and mem.wait_for_checkpoint()


def test_old_database_is_upgraded_on_open(tmp_path) -> None:
    path = tmp_path / "old.db"
    old = Store.open(path, target_version=1)
    assert old.schema_version == 1
    with pytest.raises(sqlite3.OperationalError):
        old._ex("SELECT COUNT(*) FROM cells")           # the version-2 tables are not there yet
    trace = road_trace("t-old", "dev-a", t0_s=T0_S)
    with old.transaction():
        old.add_trip({"trip_id": "t-old", "device_id": "dev-a", "t_start_s": T0_S, "t_end_s": T0_S + 40,
                      "ingested_at_s": T0_S, "source_format": "bump.trace/1", "n_samples": 1, "n_impacts": 0,
                      "length_m": 400.0, "detector": {"version": "x"}, "quality": {}},
                     ingest.dumps(trace, compress=True), b"")
    old.close()
    new = Store.open(path)
    assert new.schema_version == SCHEMA_VERSION
    assert new.has_trip("t-old")
    assert new.counts()["cells"] == 0
    assert ingest.read(new.trip_raw("t-old")).n_samples == trace.n_samples
    new.close()


def test_newer_schema_refused(tmp_path) -> None:
    path = tmp_path / "future.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(path)


def test_missing_database_not_created_for_reading(tmp_path) -> None:
    with pytest.raises(StoreError, match="bump ingest"):
        Store.open(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()


def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.set_meta("k", "v")
        raise RuntimeError("boom")
    assert store.get_meta("k") is None


# ------------------------------------------------------------------------------------------------- ingestion


def test_ingest_twice_changes_nothing(store: Store) -> None:
    for k, dev in enumerate(["a", "b", "c"]):
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, [POTHOLE])
    counts = store.counts()
    rows = _all_defect_rows(store)
    history = store.all_history()
    assert counts["defects"] == 1 and counts["hits"] == 3 and rows[0]["status"] == "confirmed"
    for k, dev in enumerate(["a", "b", "c"]):
        s = add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, [POTHOLE, (50.0, 0.0, "pothole", 5.0, 0.5)])
        assert s.skipped
    assert store.counts() == counts
    assert _all_defect_rows(store) == rows
    assert store.all_history() == history


def test_raw_trace_is_stored_for_replay(store: Store) -> None:
    trace = road_trace("t-raw", "dev-a", t0_s=T0_S)
    pipeline.ingest_trace(store, trace, detection=fake_detection(trace, [POTHOLE]))
    back = ingest.read(store.trip_raw("t-raw"))
    np.testing.assert_array_equal(back.t_s, trace.t_s)
    np.testing.assert_array_equal(back.lat_deg, trace.lat_deg)
    info = store.trips()[0]
    assert info["detector"]["version"] == DetectorParams().version
    assert info["detector"]["params_digest"] == DetectorParams().digest()


def test_device_override_is_recorded(store: Store) -> None:
    add_trip(store, "t1", "from-trace", T0_S, [POTHOLE], device_override="from-token")
    assert store.trips()[0]["device_id"] == "from-token"
    assert set(store.all_hits()["device_id"].tolist()) == {"from-token"}


def test_trip_without_impacts_still_counts_as_a_pass(store: Store) -> None:
    for k, dev in enumerate(["a", "b", "c"]):
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, [POTHOLE])
    s = add_trip(store, "t-clean", "d", T0_S + 5 * DAY_S, [])
    assert s.n_traversals == 1
    d = store.all_defects()
    assert int(d["n_traversals"][0]) == 4 and int(d["n_traversal_hits"][0]) == 3


def test_roughness_cells_need_three_readings(store: Store) -> None:
    add_trip(store, "t0", "a", T0_S, [])
    add_trip(store, "t1", "b", T0_S + DAY_S, [])
    assert views.list_cells(store) == []          # two readings per cell: not reported
    add_trip(store, "t2", "c", T0_S + 2 * DAY_S, [])
    cells = views.list_cells(store)
    assert cells and all(c["n_readings"] >= 3 and c["n_rough_devices"] == 3 for c in cells)
    assert all(abs(c["iri_mean"] - 3.0) < 1e-9 and c["iri_upper"] >= c["iri_mean"] for c in cells)
    cov = views.coverage(store, since_s=T0_S + 0.5 * DAY_S)
    assert cov and max(c["n_devices"] for c in cov) == 2


def test_cells_added_per_trip_equal_a_rebuild_from_every_row(store: Store) -> None:
    trips = [("t0", "a", 0.0, 0.0), ("t1", "b", 0.0, 0.0), ("t2", "a", 180.0, 0.0), ("t3", "a", 0.0, 60.0),
             ("t4", "c", 90.0, 0.0), ("t5", "b", 0.0, 0.0)]      # repeat devices, both directions, a crossing
    for k, (trip, dev, heading, offset) in enumerate(trips):
        add_trip(store, trip, dev, T0_S + k * DAY_S, [], heading_deg=heading, offset_m=offset)
    added = store.list_cells()
    keys = store.roughness_cell_keys()
    with store.transaction():
        store.refresh_cells(None, cellmap.cell_centres(keys, pipeline.projection(store)))
    rebuilt = store.list_cells()
    assert len(added) > 20 and added["cell_key"].tolist() == rebuilt["cell_key"].tolist()
    assert rebuilt["n_devices"].max() == 2 and rebuilt["n_rough_devices"].max() == 2
    for name in rebuilt.names:
        assert np.allclose(added[name], rebuilt[name], rtol=1e-12, atol=0.0, equal_nan=True), name


# ------------------------------------------------------------------------------------------------ pagination


def _insert_defects(store: Store, prio: np.ndarray, *, kind: list[str] | None = None,
                    depth_class: list[str] | None = None) -> None:
    n = prio.size
    x = np.arange(n) * 100.0
    with store.transaction():
        store.insert_defects({
            "status": ["confirmed"] * n, "crew_status": [None] * n, "crew_at_s": [np.nan] * n,
            "kind": kind or ["pothole"] * n, "kind_reason": [""] * n, "lat_deg": np.full(n, 42.36),
            "lon_deg": np.full(n, -71.0),
            "x_m": x, "y_m": np.zeros(n), "grid_key": np.zeros(n, dtype=np.int64), "heading_deg": np.zeros(n),
            "spans": np.zeros(n, dtype=np.int64), "uncertainty_m": np.full(n, 2.0), "severity": np.ones(n),
            "depth_class": depth_class or ["high"] * n, "confidence": np.ones(n), "priority": prio,
            "n_hits": np.ones(n, dtype=np.int64), "n_devices": np.ones(n, dtype=np.int64),
            "n_traversals": np.ones(n, dtype=np.int64), "n_traversal_hits": np.ones(n, dtype=np.int64),
            "hit_rate": np.ones(n), "traversals_per_day": np.ones(n), "first_seen_s": np.full(n, T0_S),
            "last_seen_s": np.full(n, T0_S), "last_traversal_s": np.full(n, T0_S), "status_since_s": np.full(n, T0_S),
            "created_at_s": np.full(n, T0_S), "updated_at_s": np.full(n, T0_S), "detector": ["{}"] * n})


def test_keyset_pagination_visits_every_defect_once_in_rank_order(store: Store) -> None:
    n = 23
    prio = np.array([5.0, 5.0, 5.0, 1.0, 2.0] * 4 + [0.0, 0.0, 7.0])
    _insert_defects(store, prio)
    seen, cursor = [], None
    while True:
        cols, cursor = store.list_defects(DefectQuery(limit=4, cursor=cursor))
        seen += list(zip(cols["priority"].tolist(), cols["defect_id"].tolist(), strict=True))
        if cursor is None:
            break
    assert len(seen) == n and len({d for _, d in seen}) == n
    assert seen == sorted(seen, key=lambda p: (-p[0], p[1]))
    with pytest.raises(StoreError, match="cursor"):
        store.list_defects(DefectQuery(cursor="not-a-cursor"))


def test_default_list_leaves_out_castings_standing_proud_or_barely_sunk(store: Store) -> None:
    from bump import views

    _insert_defects(store, np.array([5.0, 4.0, 3.0, 2.0, 1.0]), kind=["pothole", "cover", "cover", "pothole", "cover"],
                    depth_class=["high", "proud", "moderate", "low", "low"])
    default = views.list_defects(store).defects
    # a shallow pothole stays (it grows); a casting sunk < 25 mm or standing proud has nothing to fix
    assert [(d["kind"], d["depth_class"]) for d in default] == [("pothole", "high"), ("cover", "moderate"),
                                                                ("pothole", "low")]
    covers = views.list_defects(store, kind="cover").defects
    assert [d["depth_class"] for d in covers] == ["proud", "moderate", "low"]
    # a casting a crew confirmed on site is on the list whatever its class
    low_cover = int(covers[2]["id"])
    store.update_defects({"defect_id": np.array([low_cover]), "crew_status": ["confirmed"]})
    assert low_cover in {d["id"] for d in views.list_defects(store).defects}


def test_defect_ids_are_never_reused(store: Store) -> None:
    add_trip(store, "t0", "a", T0_S, [POTHOLE])
    first = int(store.all_defects()["defect_id"][0])
    with store.transaction():
        store.delete_defects([first])
    add_trip(store, "t1", "b", T0_S + DAY_S, [(300.0, 0.0, "pothole", 5.0, 0.5)], length_m=800.0)
    assert int(store.all_defects()["defect_id"].max()) > first


def test_get_metas_reads_many_keys_at_once(store) -> None:
    for k in range(1200):
        store.set_meta(f"k{k}", str(k))
    got = store.get_metas([f"k{k}" for k in range(0, 1200, 2)] + ["missing", "k0"])
    assert len(got) == 600 and got["k0"] == "0" and got["k1198"] == "1198" and "missing" not in got


def test_min_confidence_compares_the_confidence_as_reported(store) -> None:
    for k, dev in enumerate("abc"):
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, [POTHOLE])
    store.update_defects({"defect_id": store.all_defects()["defect_id"], "confidence": [0.99351]})
    listed = views.list_defects(store, status="all", kind="all").defects
    assert len(listed) == 1
    shown = listed[0]["confidence"]
    assert shown == 0.994                                           # reported to 3 decimals, stored 0.99351
    cols, _ = store.list_defects(DefectQuery(min_confidence=shown))
    assert len(cols) == 1                                           # what a crew sees at 0.994 passes ">= 0.994"
    cols, _ = store.list_defects(DefectQuery(min_confidence=shown + 0.001))
    assert len(cols) == 0


# ------------------------------------------------------------------------------------- write volume, batching


def test_a_version_6_database_keeps_its_passes_and_coverage_when_they_move_to_key_order(tmp_path) -> None:
    path = tmp_path / "v6.db"
    old = Store.open(path, target_version=6)
    with old.transaction():
        for k in range(3):
            old.add_trip({"trip_id": f"t{k}", "device_id": f"dev-{k % 2}", "t_start_s": T0_S + k, "t_end_s": T0_S + k,
                          "ingested_at_s": T0_S, "source_format": "bump.trace/1", "n_samples": 1, "n_impacts": 0,
                          "length_m": 0.0, "detector": {}, "quality": {}}, b"raw", b"")
    _insert_defects(old, np.array([3.0, 2.0]))
    v6_columns = [c for c in store_module.TRAVERSAL_COLUMNS if c != "pass_no"]   # one pass per (defect, trip)
    v6_rows = {"defect_id": [2, 1, 1, 2], "trip_id": ["t0", "t2", "t1", "t1"],
               "device_id": ["dev-0", "dev-0", "dev-1", "dev-1"], "t_s": [T0_S + 5, T0_S + 9, T0_S + 7, T0_S + 6],
               "hit": [1, 0, 1, 0], "distance_m": [1.0, np.nan, 2.0, 3.0]}
    with old.transaction():
        old._exmany(f"INSERT INTO traversals ({', '.join(v6_columns)}) VALUES ({', '.join('?' * len(v6_columns))})",
                    store_rows._rows(v6_rows, v6_columns))
        old.add_coverage({"cell_key": [7, 5, 7], "trip_id": ["t0", "t1", "t1"],
                          "device_id": ["dev-0", "dev-1", "dev-1"], "t_s": [T0_S, T0_S + 1, T0_S + 2]})
    before = old.coverage_rows()
    old.close()
    new = Store.open(path)
    assert new.schema_version == SCHEMA_VERSION
    after = new.traversals_of_defects([1, 2]), new.coverage_rows()
    for name in before.names:
        assert after[1][name].tolist() == pytest.approx(before[name].tolist(), nan_ok=True), name
    order = [2, 1, 0, 3]                                                       # by defect, then time
    for name in v6_columns:
        assert after[0][name].tolist() == pytest.approx([v6_rows[name][k] for k in order], nan_ok=True), name
    assert after[0]["pass_no"].tolist() == [0, 0, 0, 0]                        # 11: each the trip's first pass
    for table in ("traversals", "coverage"):                                   # stored in key order: no rowid
        with pytest.raises(sqlite3.OperationalError):
            new._ex(f"SELECT rowid FROM {table}")
    with new.transaction():                                                    # the keys still hold
        new.upsert_traversals({"defect_id": [1, 1], "trip_id": ["t2", "t2"], "pass_no": [0, 1],
                               "device_id": ["dev-0", "dev-0"], "t_s": [0.0, T0_S + 99], "hit": [1, 0],
                               "distance_m": [np.nan, 4.0]})
        new.add_coverage({"cell_key": [7], "trip_id": ["t0"], "device_id": ["dev-0"], "t_s": [0.0]})
    trav = new.traversals_of_defects([1])                                      # t2 came by again: a second pass
    assert trav["hit"].tolist() == [1, 1, 0] and trav["t_s"].tolist() == [T0_S + 7, T0_S + 9, T0_S + 99]
    assert trav["pass_no"].tolist() == [0, 0, 1]
    assert len(new.coverage_rows()) == 3
    assert new.trips_covering([7], since_s=T0_S + 1) == ["t1"]
    new.close()


def _wal_frames(store: Store, update) -> int:
    """WAL frames (pages) one committed transaction running ``update(store)`` writes."""
    assert store.wait_for_checkpoint()        # the background one would make the TRUNCATE below busy
    store._ex("PRAGMA wal_checkpoint(TRUNCATE)")
    with store.transaction():
        update(store)
    return (Path(store.path + "-wal").stat().st_size - 32) // (4096 + 24)


def test_updating_an_indexed_column_to_its_value_writes_no_index_page(tmp_path) -> None:
    store = Store.open(tmp_path / "wal.db")
    n = 4000
    rng = np.random.default_rng(3)
    _insert_defects(store, rng.uniform(0, 50, n))
    ids = np.arange(1, n + 1)[::8]
    stored = store.defects_by_id(ids, ["defect_id", "priority", "grid_key", "lat_deg"])
    keys = stored["grid_key"]
    same = _wal_frames(store, lambda s: s.update_defects({"defect_id": ids, "priority": stored["priority"],
                                                          "grid_key": keys, "n_hits": np.full(ids.size, 2)}))
    moved = _wal_frames(store, lambda s: s.update_defects({"defect_id": ids, "priority": stored["priority"] + 1.0,
                                                           "grid_key": keys, "n_hits": np.full(ids.size, 3)}))
    assert same + 10 < moved                           # the rank index's pages, written only when the rank moves
    # values as asked, whichever way each row went (read here, or given by the caller)
    prio = stored["priority"].copy()
    prio[::2] += 5.0
    store.update_defects({"defect_id": ids, "priority": prio, "lat_deg": np.full(ids.size, 42.5)})
    store.update_defects({"defect_id": ids[:3], "priority": prio[:3] - 1.0},
                         old={"priority": store.defects_by_id(ids[:3], ["defect_id", "priority"])["priority"]})
    got = store.defects_by_id(ids, ["defect_id", "priority", "lat_deg", "n_hits"])
    assert got["priority"].tolist() == pytest.approx([*(prio[:3] - 1.0), *prio[3:]])
    assert set(got["lat_deg"].tolist()) == {42.5} and set(got["n_hits"].tolist()) == {3}
    store.update_defects({"defect_id": [ids[0], ids[0]], "priority": [7.0, 8.0]})      # a repeated id: the last wins
    assert store.defects_by_id([ids[0]], ["defect_id", "priority"])["priority"].tolist() == [8.0]
    store.close()


def test_latest_hits_of_many_defects_match_one_query_per_defect(store: Store) -> None:
    rng = np.random.default_rng(5)
    n_def, n = 70, 900                                  # three statements of up to 32 ranges, the last padded
    _insert_defects(store, np.ones(n_def))
    owner = rng.integers(1, n_def + 1, n)
    owner[owner == 9] = 10                               # defect 9 has no hits
    t = T0_S + rng.integers(0, 40, n).astype(float)      # ties in time: the later id first
    with store.transaction():
        store.add_trip({"trip_id": "t", "device_id": "d", "t_start_s": T0_S, "t_end_s": T0_S, "ingested_at_s": T0_S,
                        "source_format": "x", "n_samples": 1, "n_impacts": n, "length_m": 0.0, "detector": {},
                        "quality": {}}, b"raw", b"")
        ids = store.add_hits({"trip_id": np.full(n, "t"), "device_id": np.full(n, "d"), "t_s": t,
                              "lat_deg": np.zeros(n), "lon_deg": np.zeros(n), "x_m": rng.normal(size=n),
                              "y_m": np.zeros(n), "accuracy_m": np.ones(n), "heading_deg": np.zeros(n),
                              "kind": np.full(n, "pothole"), "severity": np.ones(n), "depth_class": np.full(n, "high"),
                              "confidence": np.ones(n), "speed_mps": np.ones(n),
                              "defect_id": np.where(np.arange(n) % 50 == 0, -1, owner)}, [{}] * n, {})
    assert store.hits_of_trip("t")["defect_id"].tolist().count(-1) == 18          # -1: stored without a defect
    owner = np.where(np.arange(n) % 50 == 0, -1, owner)
    for k in (1, 6, 100):
        want = sorted(int(ids[i]) for d in range(1, n_def + 1)
                      for i in sorted(np.flatnonzero(owner == d), key=lambda i: (-t[i], -ids[i]))[:k])
        got = store.hits_of_defects(np.arange(1, n_def + 1), ["hit_id", "x_m", "defect_id"], recent=k)
        assert got["hit_id"].tolist() == want
        assert got["x_m"].tolist() == store.hits_of_trip("t").select(np.isin(ids, want))["x_m"].tolist()
    assert len(store.hits_of_defects([9], ["hit_id"], recent=5)) == 0


def test_latest_hits_filtered_by_kind_and_trip_are_those_of_the_latest(store: Store) -> None:
    rng = np.random.default_rng(8)
    n_def, n = 40, 600
    _insert_defects(store, np.ones(n_def))
    owner = rng.integers(1, n_def + 1, n)
    trip = np.array([f"t{k}" for k in rng.integers(0, 3, n)])
    kind = rng.choice(["pothole", "speed_bump", "joint"], n)
    with store.transaction():
        for k in range(3):
            store.add_trip({"trip_id": f"t{k}", "device_id": "d", "t_start_s": T0_S, "t_end_s": T0_S,
                            "ingested_at_s": T0_S, "source_format": "x", "n_samples": 1, "n_impacts": 0,
                            "length_m": 0.0, "detector": {}, "quality": {}}, b"raw", b"")
        store.add_hits({"trip_id": trip, "device_id": np.full(n, "d"), "t_s": T0_S + rng.integers(0, 30, n) * 1.0,
                        "lat_deg": np.zeros(n), "lon_deg": np.zeros(n), "x_m": rng.normal(size=n), "y_m": np.zeros(n),
                        "accuracy_m": np.ones(n), "heading_deg": np.zeros(n), "kind": kind, "severity": np.ones(n),
                        "depth_class": np.full(n, "high"), "confidence": np.ones(n), "speed_mps": np.ones(n),
                        "defect_id": owner}, [{}] * n, {})
    names = ["hit_id", "x_m", "trip_id", "kind"]
    for recent in (4, None):
        every = store.hits_of_defects(np.arange(1, n_def + 1), names, recent=recent)
        keep = np.isin(every["kind"], ["speed_bump", "joint"]) & (every["trip_id"] != "t1")
        got = store.hits_of_defects(np.arange(1, n_def + 1), names, recent=recent, kinds=("speed_bump", "joint"),
                                    not_trip="t1")
        assert 0 < len(got) < keep.size
        for name in names:                              # among the latest, not the latest of that kind
            assert got[name].tolist() == every[name][keep].tolist(), name
    assert len(store.hits_of_defects([1, 2], ["hit_id"], recent=4, kinds=())) == 0


def test_rows_inserted_many_a_statement_are_those_inserted_one_by_one(tmp_path) -> None:
    stores = [Store.open(tmp_path / f"{k}.db") for k in range(2)]
    n = 2 * store_database._ROWS_PER_INSERT + 7              # whole batches and a rest
    rows = {"defect_id": np.arange(1, n + 1), "trip_id": np.full(n, "t"), "pass_no": np.arange(n) % 2,
            "device_id": np.full(n, "d"),
            "t_s": T0_S + np.arange(n) * 1.0, "hit": np.arange(n) % 2,
            "distance_m": np.where(np.arange(n) % 5, 1.5, np.nan)}
    flip = {k: v[::3] for k, v in rows.items()} | {"hit": np.ones(len(rows["hit"][::3]), dtype=np.int64)}
    for s in stores:
        _insert_defects(s, np.ones(n))
        with s.transaction():
            s.add_trip({"trip_id": "t", "device_id": "d", "t_start_s": T0_S, "t_end_s": T0_S, "ingested_at_s": T0_S,
                        "source_format": "x", "n_samples": 1, "n_impacts": 0, "length_m": 0.0, "detector": {},
                        "quality": {}}, b"raw", b"")
    with stores[0].transaction():
        stores[0].upsert_traversals(rows)
        stores[0].upsert_traversals(flip)                   # conflicts: the hit flag moves, the time stays
    one = list(store_module.TRAVERSAL_COLUMNS)
    with stores[1].transaction():                           # a row a statement
        for part in (rows, flip):
            stores[1]._exmany(f"INSERT INTO traversals ({', '.join(one)}) VALUES ({', '.join('?' * len(one))}) "
                              "ON CONFLICT (defect_id, trip_id, pass_no) DO UPDATE SET hit = excluded.hit",
                              store_rows._rows(part, one))
    got, want = (s.traversals_of_defects(np.arange(1, n + 1)) for s in stores)
    assert len(got) == n and got["hit"].sum() == len(flip["hit"]) + n // 2 - np.sum(rows["hit"][::3])
    for name in one:
        assert got[name].tolist() == pytest.approx(want[name].tolist(), nan_ok=True), name
    for s in stores:
        s.close()


def test_a_version_7_database_opens_and_its_defects_have_no_kept_summary_yet(tmp_path) -> None:
    path = tmp_path / "v7.db"
    old = Store.open(path, target_version=7)
    _insert_defects(old, np.array([3.0, 2.0]))
    before = old.defects_by_id([1, 2], ["defect_id", "priority", "x_m", "status"])
    old.close()
    new = Store.open(path)
    assert new.schema_version == SCHEMA_VERSION == 13
    after = new.defects_by_id([1, 2], ["defect_id", "priority", "x_m", "status", "latency_s", "latency_devices"])
    for name in before.names:
        assert after[name].tolist() == before[name].tolist(), name
    assert np.isnan(after["latency_s"]).all() and after["latency_devices"].tolist() == [-1, -1]   # NULL
    new.close()


def _old_store_with_hits(path, version: int, devices: list[str]) -> Store:
    """A database at schema ``version`` holding one defect (id 1) and one hit on it from each trip t0, t1, ... of
    ``devices``, written in SQL (today's code writes today's columns)."""
    old = Store.open(path, target_version=version)
    _insert_defects(old, np.array([3.0]))
    with old.transaction():
        for k, dev in enumerate(devices):
            old.add_trip({"trip_id": f"t{k}", "device_id": dev, "t_start_s": T0_S + k * DAY_S,
                          "t_end_s": T0_S + k * DAY_S, "ingested_at_s": T0_S, "source_format": "x", "n_samples": 1,
                          "n_impacts": 1, "length_m": 0.0, "detector": {}, "quality": {}}, b"raw", b"")
            old._ex("INSERT INTO hits (trip_id, device_id, defect_id, t_s, lat_deg, lon_deg, x_m, y_m, kind, "
                    "confidence, features, detector) VALUES (?, ?, 1, ?, 0, 0, 1.5, 2.5, 'pothole', 0.9, '{}', '{}')",
                    (f"t{k}", dev, T0_S + k * DAY_S))
    return old


def test_a_version_9_databases_hits_open_without_a_latency_of_their_own(tmp_path) -> None:
    """Migration 10: hits stored before it were corrected by the fleet's latency alone (NULL own latency), and the
    defects' summaries read the new column from their covering index, as they read the others."""
    path = tmp_path / "v9.db"
    _old_store_with_hits(path, 9, ["d"]).close()
    new = Store.open(path)
    hits = new.hits_of_defects([1], ["x_m", "own_latency_s"], recent=5)
    assert hits["x_m"].tolist() == [1.5] and np.isnan(hits["own_latency_s"]).all()
    plan = " ".join(str(r) for r in new._ex(
        "EXPLAIN QUERY PLAN SELECT x_m, own_latency_s FROM hits WHERE defect_id = ? ORDER BY t_s DESC LIMIT 5",
        (1,)).fetchall())
    assert "COVERING INDEX hits_defect_summary" in plan
    new.close()


def test_a_version_11_databases_hits_keep_their_kind_as_their_spot_kind(tmp_path) -> None:
    """Migration 12: hits stored before the detector told a hit's spot kind are what their kind says; new hits
    store theirs (their kind when left out), and the defects' summaries read it from their covering index."""
    path = tmp_path / "v11.db"
    _old_store_with_hits(path, 11, ["d0", "d1"]).close()
    new = Store.open(path)
    assert new.hits_of_defects([1], ["kind", "spot_kind"], recent=5)["spot_kind"].tolist() == ["pothole"] * 2
    with new.transaction():
        new.add_hits({**_hit_cols(["rough", "rough"]), "spot_kind": np.array(["cover", "rough"])}, [{}, {}], {})
        new.add_hits(_hit_cols(["joint"]), [{}], {})
    got = new.hits_of_defects([1], ["kind", "spot_kind"], recent=10)
    assert sorted(zip(got["kind"].tolist(), got["spot_kind"].tolist(), strict=True)) == [
        ("joint", "joint"), ("pothole", "pothole"), ("pothole", "pothole"), ("rough", "cover"), ("rough", "rough")]
    plan = " ".join(str(r) for r in new._ex(
        "EXPLAIN QUERY PLAN SELECT kind, spot_kind FROM hits WHERE defect_id = ? ORDER BY t_s DESC LIMIT 5",
        (1,)).fetchall())
    assert "COVERING INDEX hits_defect_summary" in plan
    new.close()


def test_a_version_12_databases_proud_hits_tell_their_first_motion_and_the_rest_do_not(tmp_path) -> None:
    """Migration 13: a hit read proud lifted its wheel first (its first motion is up by definition); the others
    stored before it are unknown (NaN) until reprocessed; new hits store theirs, and the summaries read it from
    their covering index."""
    path = tmp_path / "v12.db"
    old = _old_store_with_hits(path, 12, ["d0", "d1"])
    with old.transaction():
        old._ex("UPDATE hits SET depth_class = 'proud' WHERE trip_id = 't0'")
    old.close()
    new = Store.open(path)
    got = new.hits_of_defects([1], ["trip_id", "first_motion"], recent=5)
    motion = dict(zip(got["trip_id"].tolist(), got["first_motion"].tolist(), strict=True))
    assert motion["t0"] == 1.0 and np.isnan(motion["t1"])
    with new.transaction():
        new.add_hits({**_hit_cols(["cover", "pothole"]), "first_motion": np.array([1, -1])}, [{}, {}], {})
    got = new.hits_of_defects([1], ["kind", "first_motion"], recent=10)      # by hit id: the new two last
    assert list(zip(got["kind"].tolist(), got["first_motion"].tolist(), strict=True))[-2:] == [
        ("cover", 1.0), ("pothole", -1.0)]
    plan = " ".join(str(r) for r in new._ex(
        "EXPLAIN QUERY PLAN SELECT kind, first_motion FROM hits WHERE defect_id = ? ORDER BY t_s DESC LIMIT 5",
        (1,)).fetchall())
    assert "COVERING INDEX hits_defect_summary" in plan
    new.close()


def _hit_cols(kinds: list[str]) -> dict[str, np.ndarray]:
    """Hits of trip t0 (device d0) on defect 1, one per kind."""
    n = len(kinds)
    return {"trip_id": np.full(n, "t0"), "device_id": np.full(n, "d0"), "defect_id": np.ones(n, np.int64),
            "t_s": T0_S + np.arange(n, dtype=float), "lat_deg": np.zeros(n), "lon_deg": np.zeros(n),
            "x_m": np.zeros(n), "y_m": np.zeros(n), "accuracy_m": np.full(n, 5.0), "heading_deg": np.zeros(n),
            "kind": np.array(kinds), "severity": np.full(n, 3.0), "depth_class": np.full(n, "moderate"),
            "confidence": np.full(n, 0.5), "speed_mps": np.full(n, 10.0)}


def test_many_merges_at_once_move_the_rows_one_merge_at_a_time_would(tmp_path) -> None:
    rng = np.random.default_rng(11)
    stores = [Store.open(tmp_path / f"{k}.db") for k in range(2)]
    n_def, n_trip = 9, 12
    for s in stores:
        _insert_defects(s, np.ones(n_def))
        with s.transaction():
            for k in range(n_trip):
                s.add_trip({"trip_id": f"t{k}", "device_id": f"d{k}", "t_start_s": T0_S, "t_end_s": T0_S,
                            "ingested_at_s": T0_S, "source_format": "x", "n_samples": 1, "n_impacts": 0,
                            "length_m": 0.0, "detector": {}, "quality": {}}, b"raw", b"")
            pairs = sorted({(int(d), int(t)) for d, t in zip(rng.integers(1, n_def + 1, 60),
                                                             rng.integers(0, n_trip, 60), strict=True)})
            s.upsert_traversals({"defect_id": [d for d, _ in pairs], "trip_id": [f"t{t}" for _, t in pairs],
                                 "pass_no": [t % 2 for _, t in pairs],
                                 "device_id": [f"d{t}" for _, t in pairs], "t_s": T0_S + rng.uniform(0, 9, len(pairs)),
                                 "hit": rng.integers(0, 2, len(pairs)), "distance_m": rng.uniform(0, 5, len(pairs))})
            n = 40
            s.add_hits({"trip_id": np.array([f"t{k}" for k in rng.integers(0, n_trip, n)]),
                        "device_id": np.full(n, "d"), "t_s": np.full(n, T0_S), "lat_deg": np.zeros(n),
                        "lon_deg": np.zeros(n), "x_m": np.zeros(n), "y_m": np.zeros(n), "accuracy_m": np.ones(n),
                        "heading_deg": np.zeros(n), "kind": np.full(n, "pothole"), "severity": np.ones(n),
                        "depth_class": np.full(n, "high"), "confidence": np.ones(n), "speed_mps": np.ones(n),
                        "defect_id": rng.integers(1, n_def + 1, n)}, [{}] * n, {})
        rng = np.random.default_rng(11)                    # the same rows in both
    into = {2: 1, 5: 1, 3: 4, 9: 7, 8: 7}                   # three merges: into 1, 4 and 7
    with stores[0].transaction():
        stores[0].move_defects_rows(into)
    with stores[1].transaction():
        for source in sorted(into):                          # one at a time, in id order
            stores[1].move_defect_rows(source, into[source])
    trav = [s.traversals_of_defects(range(1, n_def + 1)) for s in stores]
    assert set(trav[0]["defect_id"].tolist()) == {1, 4, 6, 7}
    for name in store_module.TRAVERSAL_COLUMNS:
        assert trav[0][name].tolist() == pytest.approx(trav[1][name].tolist()), name
    hits = [s.hits_of_defects(range(1, n_def + 1), ["hit_id", "defect_id"]) for s in stores]
    assert hits[0]["defect_id"].tolist() == hits[1]["defect_id"].tolist()
    assert not set(hits[0]["defect_id"].tolist()) & set(into)
    for s in stores:
        s.close()


@pytest.mark.parametrize(("n", "m"), [(0, 5), (5, 0), (1, 1), (170, 60), (300, 900)])
def test_ids_in_answers_as_isin_does(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    values, among = rng.integers(-5, 400, n), rng.integers(-5, 400, m)      # repeats on both sides
    assert store_module.ids_in(values, among).tolist() == np.isin(values, among).tolist()
    assert store_module.ids_in(values.tolist(), among.astype(np.int32)).tolist() == np.isin(values, among).tolist()
    assert store_module.ids_in(values, []).tolist() == [False] * n
    words = np.array([f"k{v}" for v in values])
    assert store_module.ids_in(words, ["k1", "k7"]).tolist() == np.isin(words, ["k1", "k7"]).tolist()


def test_a_transaction_with_its_statement_journal_in_memory_commits_and_rolls_back_as_any(store: Store) -> None:
    assert store.pragma("temp_store") == 0
    with store.transaction(journal_in_memory=True):
        assert store.pragma("temp_store") == 2                      # read as the write transaction began
        store.set_meta("k", "v")
        with store.transaction(journal_in_memory=True):             # nested: joins the outer one
            store.set_meta("k2", "v2")
    assert store.pragma("temp_store") == 0 and store.get_metas(["k", "k2"]) == {"k": "v", "k2": "v2"}
    with pytest.raises(RuntimeError), store.transaction(journal_in_memory=True):
        store.set_meta("k", "changed")
        raise RuntimeError("boom")
    assert store.pragma("temp_store") == 0 and store.get_meta("k") == "v"
    # a failing statement alone is undone (from the journal in memory), the transaction goes on
    _insert_defects(store, np.array([1.0, 2.0]))
    with store.transaction(journal_in_memory=True):
        store.set_meta("k", "kept")
        with pytest.raises(sqlite3.IntegrityError):                 # the second row breaks NOT NULL: both undone
            store._ex("UPDATE defects SET status = CASE WHEN defect_id = 2 THEN NULL ELSE 'x' END")
    assert store.get_meta("k") == "kept"
    assert store.defects_by_id([1, 2], ["defect_id", "status"])["status"].tolist() == ["confirmed", "confirmed"]


def test_an_update_of_indexed_columns_to_their_values_alone_writes_nothing(store: Store) -> None:
    _insert_defects(store, np.array([3.0, 4.0]))
    before = store.defects_by_id([1, 2], ["defect_id", "priority", "grid_key"])
    store.update_defects({"defect_id": [1, 2], "priority": before["priority"], "grid_key": before["grid_key"]})
    after = store.defects_by_id([1, 2], ["defect_id", "priority", "grid_key", "updated_at_s"])
    assert after["priority"].tolist() == [3.0, 4.0] and after["grid_key"].tolist() == before["grid_key"].tolist()


def _records_a_value_at_a_time(cols: dict[str, np.ndarray], decimals: int) -> list[dict]:
    """The straightforward twin of ``Columns.to_records``: every float rounded and checked one by one."""
    out = {}
    for k, v in cols.items():
        arr = np.asarray(v)
        if arr.dtype.kind == "f":
            out[k] = [None if not np.isfinite(x) else float(x) for x in np.round(arr, decimals).tolist()]
        else:
            out[k] = arr.tolist()
    return [dict(zip(out, row, strict=True)) for row in zip(*out.values(), strict=True)]


def test_feature_records_made_a_column_at_a_time_are_those_made_a_value_at_a_time() -> None:
    rng = np.random.default_rng(4)
    n = 9
    cols = {"a": rng.normal(0, 3, n), "b": np.where(rng.random(n) < 0.3, np.nan, rng.random(n) * 1e5),
            "c": rng.integers(-5, 5, n), "d": np.array([np.inf, -np.inf, *rng.random(n - 2)]),
            "e": rng.random(n).astype(np.float32), "f": rng.random(n) < 0.5, "g": np.full(n, 0.00005)}
    want = _records_a_value_at_a_time(cols, 4)
    got = Columns(cols).to_records(decimals={k: 4 for k in cols})
    assert got == want
    assert orjson.dumps(got, option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(want, option=orjson.OPT_SERIALIZE_NUMPY)
    assert all(type(a) is type(b) for r, s in zip(got, want, strict=True) for a, b in zip(r.values(), s.values(),
                                                                                          strict=True))
    assert Columns({"a": np.empty(0)}).to_records(decimals={"a": 4}) == []


def test_pass_totals_of_the_rows_read_are_those_the_database_adds_up(store: Store) -> None:
    for k, dev in enumerate(["a", "b", "c", "a"]):
        add_trip(store, f"t{k}", dev, T0_S + k * DAY_S, [POTHOLE] if k % 2 == 0 else [])
        add_trip(store, f"u{k}", dev, T0_S + k * DAY_S + 60.0, [(0.0, 60.0, "pothole", 9.0, 0.9)] if k < 3 else [])
    ids = store.all_defects()["defect_id"].tolist()
    assert len(ids) == 2
    for some in (ids, ids[:1], [], [*ids, 999]):
        want = store.traversal_totals(some)
        got = refresh._pass_totals(store.traversals_of_defects(some))
        assert got.names == want.names and len(got) == len(want) == len(set(some) & set(ids))
        for n in want.names:
            assert got[n].dtype == want[n].dtype and got[n].tolist() == want[n].tolist(), n


def test_an_upload_is_stored_as_it_came_with_its_digest_and_track_made_aside(store: Store, monkeypatch) -> None:
    import gzip
    import hashlib

    trace = road_trace("t-up", "dev-a", t0_s=T0_S)
    body = gzip.compress(ingest.dumps(trace), mtime=0)
    pipeline.ingest_trace(store, trace, detection=fake_detection(trace, [POTHOLE]), raw=body)
    assert store.trip_raw("t-up") == body
    assert store.get_trip("t-up")["raw_sha256"] == hashlib.sha256(body).hexdigest()
    want = pipeline.trace_track(trace, 0.0).to_bytes()
    assert store.trip_tracks(["t-up"])["t-up"] == ("dev-a", want)
    # what goes wrong making them reaches the caller, and nothing is stored
    monkeypatch.setattr(Track, "to_bytes", lambda self: (_ for _ in ()).throw(MemoryError("no room")))
    other = road_trace("t-up2", "dev-a", t0_s=T0_S + DAY_S)
    with pytest.raises(MemoryError, match="no room"):
        pipeline.ingest_trace(store, other, detection=fake_detection(other, [POTHOLE]), raw=body)
    assert not store.has_trip("t-up2")


def test_fetched_columns_turn_nulls_into_their_fill_values_and_keep_a_text_none() -> None:
    rows = [(1, "dev-a", 2.5, "None"), (None, None, None, "x"), (3, "dev-b", 1.0, None)]
    cols = store_rows._columns(rows, ["n", "device_id", "t_s", "note"],
                                 {"n": "i8", "device_id": "U", "t_s": "f8", "note": "U"})
    assert cols["n"].dtype == np.int64 and cols["n"].tolist() == [1, -1, 3]
    assert cols["device_id"].tolist() == ["dev-a", "", "dev-b"]
    assert cols["note"].tolist() == ["None", "x", ""]            # the text "None" is a value, not a NULL
    assert np.isnan(cols["t_s"][1]) and cols["t_s"][[0, 2]].tolist() == [2.5, 1.0]
    empty = store_rows._columns([], ["n", "device_id"], {"n": "i8", "device_id": "U"})
    assert empty["n"].dtype == np.int64 and empty["device_id"].dtype.kind == "U" and len(empty) == 0


def test_a_version_8_database_gets_the_defect_device_index_and_answers_who_hit_what(tmp_path) -> None:
    path = tmp_path / "v8.db"
    old = _old_store_with_hits(path, 8, ["a", "b", "a"])
    old.close()
    new = Store.open(path)
    assert new.schema_version == SCHEMA_VERSION
    names = [r[0] for r in new._ex("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()]
    assert "hits_defect_device" in names
    (did,) = new.all_defects()["defect_id"].tolist()
    assert new.defects_hit_by("a", [did]).tolist() == [did]
    assert new.defects_hit_by("a", [did, did + 1], exclude_trip="t0").tolist() == [did]      # t2 too
    assert new.defects_hit_by("b", [did], exclude_trip="t1").tolist() == []
    assert new.defects_hit_by("c", [did]).tolist() == []
    totals = new.trip_hit_totals("t1", [did, did + 1])
    assert totals["defect_id"].tolist() == [did] and totals["n_hits"].tolist() == [1]
    new.close()


def test_a_migration_another_process_applied_meanwhile_is_skipped(tmp_path, monkeypatch) -> None:
    """Two first ingests into a new file: both saw version 0, the second then failed on 'duplicate column'."""
    Store.open(tmp_path / "race.db").close()                      # the other process migrated it fully
    late = Store.open(tmp_path / "race.db", migrate=False)
    real = Store.schema_version.fget
    stale = iter([0])                                             # this one read the version before that
    monkeypatch.setattr(Store, "schema_version", property(lambda self: next(stale, real(self))))
    assert late.migrate() == [] and late.schema_version == SCHEMA_VERSION
    late.close()


def test_another_programs_sqlite_file_is_refused_untouched(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "invoices.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    with pytest.raises(StoreError, match=r"another program \(tables: invoices\)"):
        Store.open(path)
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["invoices"]


def test_passes_follow_hits_that_moved_the_pass_nearest_a_trips_first_hit_is_its_hit(tmp_path) -> None:
    """After hits moved between defects (a merge, a re-cluster), a trip's passes agree with its hits again: of a
    trip that came by twice, the pass nearest in time to its first hit is the hit; a defect that lost a trip's hits
    has no hit of it left; a trip with hits and no pass gets one at its first hit."""
    store = Store.open(tmp_path / "sync.db")
    _insert_defects(store, np.array([3.0, 2.0]))
    n = 3
    with store.transaction():
        for k in range(2):
            store.add_trip({"trip_id": f"t{k}", "device_id": f"dev-{k}", "t_start_s": T0_S, "t_end_s": T0_S + 500,
                            "ingested_at_s": T0_S, "source_format": "x", "n_samples": 1, "n_impacts": 0,
                            "length_m": 0.0, "detector": {}, "quality": {}}, b"raw", b"")
        store.upsert_traversals({"defect_id": [1, 1, 2], "trip_id": ["t0", "t0", "t0"], "pass_no": [0, 1, 0],
                                 "device_id": ["dev-0"] * 3, "t_s": [T0_S + 10, T0_S + 300, T0_S + 12],
                                 "hit": [0, 0, 1], "distance_m": [1.0, 2.0, 1.5]})
        # t0's hit, once on defect 2, now on defect 1 at its second pass; t1 hit defect 2 and passed nothing found
        store.add_hits({"trip_id": np.array(["t0", "t1", "t1"]), "device_id": np.array(["dev-0", "dev-1", "dev-1"]),
                        "t_s": np.array([T0_S + 295, T0_S + 40, T0_S + 41]), "lat_deg": np.zeros(n),
                        "lon_deg": np.zeros(n), "x_m": np.zeros(n), "y_m": np.zeros(n), "accuracy_m": np.ones(n),
                        "heading_deg": np.zeros(n), "kind": np.full(n, "pothole"), "severity": np.ones(n),
                        "depth_class": np.full(n, "high"), "confidence": np.ones(n), "speed_mps": np.ones(n),
                        "defect_id": np.array([1, 2, 2])}, [{}] * n, {})
        trav = refresh._sync_traversal_hits(store, store.hit_trips([1, 2]), store.traversals_of_defects([1, 2]))
    rows = list(zip(trav["defect_id"].tolist(), trav["trip_id"].tolist(), trav["pass_no"].tolist(),
                    trav["hit"].tolist(), (trav["t_s"] - T0_S).tolist(), strict=True))
    assert rows == [(1, "t0", 0, 0, 10.0), (1, "t0", 1, 1, 300.0),          # the pass nearest the hit, its time
                    (2, "t0", 0, 0, 12.0), (2, "t1", 0, 1, 40.0)]             # lost its hit; a pass at the first hit
    assert store.traversals_of_defects([1, 2])["hit"].tolist() == trav["hit"].tolist()
    store.close()
