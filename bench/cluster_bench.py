"""Speed of clustering: a full re-cluster of 1,000,000 hits, and one 10-minute trip ingested into a database that
already holds 100,000 defects (detection included).

1. Full re-cluster (``bump.recluster.recluster`` + robust centres): synthetic hits of defects on a 10 x 10 km street
   grid (100 m blocks), each defect hit from one direction (road-spanning kinds from both), GPS scatter 2-8 m,
   plus 5 % stray hits; reports the time and how well the clusters match the defects (purity, completeness).
2. Incremental ingest: a database with 100,000 defects (3 hits and 5 passes each, from 2,000 stored trips) on the
   same grid; one synthetic 10-minute trace (100 Hz accelerometer with a few sharp bumps, 1 Hz GPS, ~6 km of
   grid streets through the defects), uploaded as gzip JSON, is read and goes through ``bump.pipeline.ingest_trace``
   with its upload bytes (stored as they came, as the HTTP upload does); reports detection, serialisation and store
   (SQL + clustering + traversals + maps + commit) times for ``--repeats`` trips one after another (the median,
   then the mean and the slowest total, which carry any WAL checkpoint a commit waited for), and the time to
   read the upload.

Targets (issue 5): re-cluster 1M hits <= 10 s; incremental ingest <= 50 ms, detection included.

Usage:
  python bench/cluster_bench.py                  # both parts
  python bench/cluster_bench.py --hits 200000 --defects 20000 --repeats 5
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

import ingest
from bump import pipeline
from bump.cells import grid_keys
from bump.cluster import DefectParams, robust_centres
from bump.recluster import recluster
from bump.runtime import set_up_process
from bump.store import SCHEMA_VERSION, Store
from detect.geo import LocalProjection

ORIGIN = (42.36, -71.06)
PROJ = LocalProjection(*ORIGIN)
BLOCK_M = 100.0
CITY_M = 10_000.0
T0_S = 1_780_000_000.0


def defects_on_grid(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, y [m], heading [deg], spans of n defects on the streets of a square grid, in a lane of their road."""
    ns = rng.random(n) < 0.5                       # on a north-south street, else east-west
    along = rng.uniform(0, CITY_M, n)
    street = rng.integers(0, int(CITY_M / BLOCK_M), n) * BLOCK_M
    forward = rng.random(n) < 0.5
    lane = np.where(forward, 1.8, -1.8)
    x = np.where(ns, street + lane, along)
    y = np.where(ns, along, street - lane)
    heading = np.where(ns, np.where(forward, 0.0, 180.0), np.where(forward, 90.0, 270.0))
    spans = rng.random(n) < 0.15
    return x, y, heading, spans


def bench_recluster(n_hits: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_def = n_hits // 60
    dx, dy, dh, dspans = defects_on_grid(rng, n_def)
    n_stray = int(0.05 * n_hits)
    owner = rng.integers(0, n_def, n_hits - n_stray)
    sigma = rng.uniform(2.0, 8.0, owner.size) / 1.5
    flip = dspans[owner] & (rng.random(owner.size) < 0.5)
    x = np.r_[dx[owner] + rng.normal(0, 1, owner.size) * sigma, rng.uniform(0, CITY_M, n_stray)]
    y = np.r_[dy[owner] + rng.normal(0, 1, owner.size) * sigma, rng.uniform(0, CITY_M, n_stray)]
    h = np.r_[np.mod(dh[owner] + 180.0 * flip + rng.normal(0, 4, owner.size), 360.0),
              rng.choice([0.0, 90.0, 180.0, 270.0], n_stray)]
    spans = np.r_[dspans[owner], np.zeros(n_stray, bool)]
    acc = np.r_[1.5 * sigma, np.full(n_stray, 6.0)]
    trip = rng.integers(0, max(n_hits // 10, 1), n_hits)
    t_s = T0_S + trip * 3600.0 + rng.uniform(0.0, 3600.0, n_hits)       # ~10 hits in an hour per trip
    params = DefectParams()
    t0 = time.perf_counter()
    labels = recluster(x, y, h, spans, acc, trip, params, t_s=t_s)
    t1 = time.perf_counter()
    k = int(labels.max()) + 1
    robust_centres(labels, x, y, acc, trip, k, params)
    t2 = time.perf_counter()
    truth = np.r_[owner, np.full(n_stray, -1)]
    real = truth >= 0
    # purity: share of a cluster's real hits from its main defect; completeness: share of a defect's hits in its
    # main cluster (hit-weighted)
    pairs, counts = np.unique(np.column_stack([labels[real], truth[real]]), axis=0, return_counts=True)
    best_by_cluster = np.zeros(k)
    np.maximum.at(best_by_cluster, pairs[:, 0], counts)
    best_by_defect = np.zeros(n_def)
    np.maximum.at(best_by_defect, pairs[:, 1], counts)
    purity = best_by_cluster.sum() / real.sum()
    completeness = best_by_defect.sum() / real.sum()
    big = np.bincount(labels) >= 5
    print(f"re-cluster {n_hits:,} hits ({n_def:,} defects, 5 % stray): {t1 - t0:.2f} s clustering + "
          f"{t2 - t1:.2f} s robust centres = {t2 - t0:.2f} s (target <= 10 s for 1,000,000); "
          f"{k:,} clusters ({big.sum():,} with >= 5 hits); purity {purity:.3f}, completeness {completeness:.3f}")


# ------------------------------------------------------------------------------------------ incremental ingest


def build_database(path: Path, n_defects: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y, h, spans = defects_on_grid(rng, n_defects)
    lat, lon = PROJ.to_latlon(x, y)
    n_trips = 2000
    with Store.open(path) as store, store.transaction():
        store.set_meta("origin", f"{ORIGIN[0]!r},{ORIGIN[1]!r}")
        blob = b"{}"
        for k in range(n_trips):
            store.add_trip({"trip_id": f"old-{k}", "device_id": f"dev-{k % 300}", "t_start_s": T0_S + k * 600.0,
                            "t_end_s": T0_S + k * 600.0 + 500.0, "ingested_at_s": T0_S, "source_format": "synthetic",
                            "n_samples": 0, "n_impacts": 0, "length_m": 0.0, "detector": {}, "quality": {}},
                           blob, b"")
        n = n_defects
        kind = np.where(spans, "speed_bump", "pothole")
        now = np.full(n, T0_S)
        trips = rng.integers(0, n_trips, (n, 5))          # each defect passed by 5 trips: a pothole hit on 3 of
        passed_s = T0_S + trips * 600.0                   # them, a speed bump on all 5
        hit = np.where(spans[:, None], True, np.arange(5)[None, :] < 3)
        n_hit = hit.sum(axis=1)
        hit_s = np.where(hit, passed_s, np.nan)
        ids = store.insert_defects({
            "status": np.full(n, "confirmed"), "crew_status": np.full(n, None), "crew_at_s": np.full(n, np.nan),
            "kind": kind, "kind_reason": np.full(n, "synthetic"), "lat_deg": lat, "lon_deg": lon, "x_m": x, "y_m": y,
            "grid_key": grid_keys(x, y), "heading_deg": np.where(spans, np.mod(h, 180.0), h),
            "spans": spans.astype(np.int64), "uncertainty_m": np.full(n, 3.0), "severity": np.full(n, 6.0),
            "depth_class": np.full(n, "moderate"), "confidence": np.full(n, 0.9), "priority": rng.uniform(0, 50, n),
            "n_hits": n_hit, "n_devices": n_hit, "n_traversals": np.full(n, 5),
            "n_traversal_hits": n_hit, "hit_rate": n_hit / 5.0, "traversals_per_day": np.full(n, 1.0),
            "first_seen_s": np.nanmin(hit_s, axis=1), "last_seen_s": np.nanmax(hit_s, axis=1),
            "last_traversal_s": passed_s.max(axis=1), "status_since_s": now,
            "created_at_s": now, "updated_at_s": now, "detector": np.full(n, "{}")})
        hid = np.repeat(ids, n_hit)
        hx = np.repeat(x, n_hit) + rng.normal(0, 3, hid.size)
        hy = np.repeat(y, n_hit) + rng.normal(0, 3, hid.size)
        hlat, hlon = PROJ.to_latlon(hx, hy)
        htrip = np.array([f"old-{t}" for t in trips[hit]])
        m = hid.size
        hit_ids = store.add_hits({
            "trip_id": htrip, "device_id": np.array([f"dev-{int(t[4:]) % 300}" for t in htrip]),
            "t_s": passed_s[hit], "lat_deg": hlat, "lon_deg": hlon, "x_m": hx, "y_m": hy,
            "accuracy_m": np.full(m, 5.0),
            "heading_deg": np.repeat(h, n_hit), "kind": np.repeat(kind, n_hit), "severity": np.full(m, 6.0),
            "depth_class": np.full(m, "moderate"), "confidence": np.full(m, 0.9), "speed_mps": np.full(m, 10.0)},
            [{}] * m, {"version": "synthetic"})
        store.set_hit_defects(hit_ids, hid)
        tid = np.repeat(ids, 5)
        ttrip = trips.ravel()
        store.upsert_traversals({"defect_id": tid, "trip_id": np.array([f"old-{t}" for t in ttrip]),
                                 "pass_no": np.zeros(tid.size, dtype=np.int64),
                                 "device_id": np.array([f"dev-{t % 300}" for t in ttrip]),
                                 "t_s": T0_S + ttrip * 600.0, "hit": hit.ravel().astype(np.int64),
                                 "distance_m": np.full(tid.size, 1.0)})


def ten_minute_upload(seed: int, trip_id: str, start_s: float = T0_S + 2e6) -> bytes:
    """A phone's upload (gzip ``bump.trace/1`` JSON) of 600 s at 100 Hz from ``start_s`` over ~6 km of grid
    streets (east, north, east, ... at 10 m/s), 1 Hz GPS, sharp bumps (12 Hz ring-downs, front and rear axle)
    every ~40 s."""
    rng = np.random.default_rng(seed)
    fs, duration, v = 100.0, 600.0, 10.0
    t_gps = np.arange(int(duration) + 1, dtype=float)
    s = v * t_gps
    leg = 500.0                                   # alternate 500 m east, 500 m north on the grid
    k = np.floor(s / leg).astype(int)
    r = s - k * leg
    ex = np.where(k % 2 == 0, r, leg) + (k // 2) * leg
    ny = np.where(k % 2 == 1, r, 0.0) + ((k + 1) // 2) * leg - np.where(k % 2 == 1, leg, 0.0)
    x0, y0 = 2000.0 + 1.8 * 0, 2000.0 - 1.8
    lat, lon = PROJ.to_latlon(x0 + ex, y0 + ny)
    heading = np.where(k % 2 == 0, 90.0, 0.0)
    n = int(duration * fs)
    t = np.arange(n) / fs
    z = 9.81 + rng.normal(0, 0.15, n)
    tt = np.arange(int(0.4 * fs)) / fs
    ring = np.exp(-tt / 0.08) * np.sin(2 * np.pi * 12.0 * tt)     # a wheel-hop ring-down
    for tb in np.arange(20.0, duration - 5, 40.0):
        i = int(tb * fs)
        z[i:i + ring.size] += 12.0 * ring
        j = i + int(2.7 / v * fs)                                 # the rear axle
        z[j:j + ring.size] += 8.0 * ring
    doc = {"format": "bump.trace/1", "trip_id": trip_id, "device_id": "dev-bench",
           "accel": {"t": start_s + t, "x": rng.normal(0, 0.1, n), "y": rng.normal(0, 0.1, n), "z": z,
                     "unit": "m/s2"},
           "gps": {"t": start_s + t_gps, "lat": lat, "lon": lon, "speed": np.full(t_gps.size, v),
                   "heading": heading, "accuracy": np.full(t_gps.size, 5.0)}}
    return gzip.compress(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), compresslevel=6, mtime=0)


def bench_incremental(n_defects: int, repeats: int, workdir: Path, seed: int) -> None:
    base = workdir / f"base-{n_defects}-schema{SCHEMA_VERSION}.db"    # one built at this schema: a migrated one
    # carries the migration's whole WAL and rebuilt indexes into the figures
    for old in (workdir / f"base-{n_defects}.db", *workdir.glob(f"base-{n_defects}-schema*.db")):
        if old != base and old.exists():
            old.unlink()
    if not base.exists():
        t0 = time.perf_counter()
        build_database(base, n_defects, seed)
        print(f"  built a database of {n_defects:,} defects in {time.perf_counter() - t0:.0f} s ({base})")
    db = workdir / "incremental.db"
    for p in workdir.glob("incremental.db*"):
        p.unlink()
    shutil.copy(base, db)
    timings = []
    with Store.open(db) as store:                 # one long-lived connection, as in a service
        warm = ten_minute_upload(seed + 1000, "warm-up")
        pipeline.ingest_trace(store, ingest.read(warm), raw=warm)                   # caches, calibration
        for r in range(repeats):
            body = ten_minute_upload(seed + r, f"bench-{r}", T0_S + 2e6 + 1000.0 * (r + 1))   # trips one after another
            t0 = time.perf_counter()
            trace = ingest.read(body)             # as `POST /v1/traces` does
            t1 = time.perf_counter()
            s = pipeline.ingest_trace(store, trace, raw=body)
            total = time.perf_counter() - t1
            timings.append((total, s.timings_s.get("detect", 0.0), s.timings_s.get("serialise", 0.0),
                            s.timings_s.get("store", 0.0), t1 - t0, s.n_impacts, s.n_traversals,
                            len(s.updated_defects)))
        store.wait_for_checkpoint()
        n_checkpoints = store.checkpointer.checkpoints
    ms = np.array([t[:5] for t in timings]) * 1e3
    med = np.median(ms, axis=0)
    last = timings[-1]
    print(f"incremental ingest of a 10-minute trip (100 Hz) into {n_defects:,} defects: total {med[0]:.0f} ms = "
          f"detection {med[1]:.0f} ms + serialisation {med[2]:.0f} ms + store/cluster/maps {med[3]:.0f} ms "
          f"(median of {repeats} trips in a row; mean {ms[:, 0].mean():.0f} ms, slowest {ms[:, 0].max():.0f} ms; "
          f"target <= 50 ms total; reading the {len(body) / 1e6:.1f} MB gzip upload before: {med[4]:.0f} ms); "
          f"{last[5]} impacts, {last[6]} defects passed, {last[7]} updated; background WAL checkpoints: "
          f"{n_checkpoints}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hits", type=int, default=1_000_000)
    ap.add_argument("--defects", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=20, help="trips ingested one after another (default: "
                    "%(default)s: the WAL reaches a checkpoint's size in ~10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "bump-cluster-bench"))
    ap.add_argument("--only", choices=["recluster", "incremental"])
    args = ap.parse_args(argv)
    set_up_process()            # one core, as the targets say; freed memory kept (bump.runtime)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "recluster"):
        bench_recluster(args.hits, args.seed)
    if args.only in (None, "incremental"):
        bench_incremental(args.defects, args.repeats, work, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
