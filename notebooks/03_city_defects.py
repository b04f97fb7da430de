# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · A city's defects
#
# One trip sees an impact; a city needs **defects**: places where many drivers' phones, on different days,
# felt the same thing. Here the 12 trips of `sample_traces/` (6 drivers, 6 phones, 6 days) go into a
# temporary SQLite database exactly as uploads would, and we look at what a road crew would see:
#
# * the defects ranked by priority, with their status (`candidate` until hits from several different phones
#   confirm it; `likely_repaired` when enough passes since its last hit all missed it: the rule is at the end);
# * the roughness map (IRI, m/km, per 20 m road cell and direction) and the coverage map (passes and phones
#   per cell: where the absence of reports means something);
# * how the **hit rate** (passes that hit ÷ passes) tells potholes from designed features.
#
# The same from the command line: `bump ingest sample_traces --db city.db` then `bump defects --db city.db`
# (the notebook checks that it gives the same list, ids included).

# %%
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import ingest
from bump import pipeline, views
from bump.cluster import DEFAULT_DEFECT_PARAMS
from bump.evaluate import evaluate_defects, load_truth
from bump.lifecycle import repaired_streak
from bump.plots import kind_color
from bump.store import Store
from detect.geo import LocalProjection

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "sample_traces" / "truth.json").is_file())
SAMPLES = ROOT / "sample_traces"
truth = load_truth(SAMPLES / "truth.json")
roads = json.loads((SAMPLES / "truth.json").read_text())["roads"]      # centrelines, for the maps only

workdir = tempfile.TemporaryDirectory(prefix="bump-city-")
store = Store.open(Path(workdir.name) / "city.sqlite")
store.path

# %% [markdown]
# ## Ingest the trips
#
# Each trace is read, run through the detector, and its impacts with a GPS position become **hits**. A hit
# joins the nearest compatible defect (same direction of travel, within a gate set by the GPS accuracy) or
# starts a new one. The trip's track is also matched against every defect it drove past, hit or not: those
# **traversals** are what make a hit rate, and what can later say that a pothole has been repaired. Each
# trip is one transaction; ingesting it again changes nothing.
#
# Trips are ingested in the order `bump ingest sample_traces` takes them: by file name, here driver by driver
# rather than in the order they were driven. Statuses are replayed from the data's own times, whatever the
# order; defect ids, though, are numbered as defects appear, and another order can give other ids (and small
# differences elsewhere), so this order is what makes the list below the one the command line prints.

# %%
trip_files = sorted((SAMPLES / "trips").glob("*.json.gz"))       # bump ingest's order
traces = [ingest.read(p) for p in trip_files]
summaries = [pipeline.ingest_trace(store, tr) for tr in traces]
summary = pd.DataFrame([{
    "trip_id": s.trip_id, "device_id": s.device_id,
    "start": pd.Timestamp(tr.t_s[0], unit="s", tz="UTC").strftime("%m-%d %H:%M"),
    "impacts": s.n_impacts, "hits": s.n_hits, "joined": s.n_joined, "new_defects": len(s.new_defects),
    "traversals": s.n_traversals, "status_changes": len(s.status_changes), "skipped": s.skipped,
} for s, tr in zip(summaries, traces, strict=True)])
summary

# %%
again = pipeline.ingest_trace(store, traces[0])
print(f"ingesting {again.trip_id} again: skipped={again.skipped}; database: {store.counts()}")

# %% [markdown]
# ## The ranked list
#
# What a crew sees by default (`views.list_defects(store)`, or `bump defects`): every defect that is not
# repaired or dismissed and is not a designed feature, highest **priority** first. Priority grows with
# severity (equivalent depth, cm), confidence, traffic (`traversals_per_day`) and kind (potholes before
# covers), and is halved for an unconfirmed candidate. `uncertainty_m` is the 1-sigma error of the position,
# from the spread of the hits and their GPS accuracy; `hits` / `devices` / `traversals` are the evidence.

# %%
page = views.list_defects(store)
defects = pd.DataFrame(page.defects)
defects[["id", "kind", "status", "priority", "severity", "depth_class", "confidence", "hits", "devices",
         "traversals", "hit_rate", "uncertainty_m", "lat", "lon"]]

# %% [markdown]
# The command line on the same files, into a database of its own: the same defects under the same ids.

# %%
cli_db = Path(workdir.name) / "cli.sqlite"
bump_cli = [sys.executable, "-m", "bump"]                       # the `bump` command of this environment
subprocess.run([*bump_cli, "ingest", str(SAMPLES), "--db", str(cli_db)], check=True, capture_output=True)
cli_page = subprocess.run([*bump_cli, "defects", "--db", str(cli_db), "--format", "json"], check=True,
                          capture_output=True, text=True)
cli_defects = pd.DataFrame(json.loads(cli_page.stdout)["defects"])
COMPARED = ["id", "kind", "status", "priority"]
same_as_cli = (len(cli_defects) == len(defects)
               and all(cli_defects[c].tolist() == defects[c].tolist() for c in COMPARED))
print(f"bump ingest + bump defects: {len(cli_defects)} defects; the same {', '.join(COMPARED)} as above: "
      f"{same_as_cli}")
cli_defects[COMPARED]

# %% [markdown]
# Why a defect has its kind and status is kept with it, together with every pass:

# %%
top = views.get_defect(store, int(defects["id"].iloc[0]))
print(f"defect {top['id']}: {top['kind']}, {top['status']} — {top['kind_reason']}")
pd.DataFrame(top["history"])

# %% [markdown]
# For a crew's GIS: the same list as CSV with `lat`/`lon` columns (QGIS and kepler.gl pick them up) or as
# GeoJSON (`views.defects_geojson`, `bump defects --format geojson`).

# %%
print("\n".join(views.defects_csv(page.defects).splitlines()[:4]))

# %% [markdown]
# ## Against the truth
#
# The simulator knows where the reportable defects are (potholes ≥ 3 cm deep, covers sunk > 2.5 cm) and that
# one pothole was repaired during the week. `evaluate_defects` matches the listed defects to them one to one
# within 10 m, as of the last trip: a defect listed on the repaired pothole counts as a false positive then.
# The false positives are named by what lies nearest (a proud cover, a speed bump, nothing).

# %%
as_of_s = max(float(tr.t_s[-1]) for tr in traces)
score = evaluate_defects(truth, page.defects, radius_m=10.0, as_of_s=as_of_s)
print(f"{score.n_detected} listed, {score.n_reportable} reportable: precision {score.precision:.2f}, recall "
      f"{score.recall:.2f}, position error median {score.error_median_m:.1f} m; missed {list(score.missed)}")
pd.concat([
    pd.DataFrame([{"listed": defects["id"].iloc[i], "truth": d, "error_m": e} for i, d, e in score.matches]),
    pd.DataFrame([{"listed": defects["id"].iloc[i], "truth": f"({c})", "error_m": e}
                  for i, c, e in score.false_positives]),
], ignore_index=True).round(1)

# %% [markdown]
# ## Potholes or designed features? The hit rate
#
# A speed bump, hump or expansion joint spans the road: nearly every car that passes hits it, with both
# wheels, from both directions. A pothole sits in part of one lane, and drivers wander ~0.3 m in their lane,
# so only some passes hit it. The pipeline calls a defect a designed feature (kind `speed_bump` or `joint`,
# priority 0, not listed by default) when it was hit on at least `designed_hit_rate` of at least
# `designed_traversals` passes and from both directions (or by both wheels).
#
# Below, every stored defect (designed features included), labelled with the truth feature nearest to it;
# for each truth feature the defect with the most hits represents it. The crosses are what the road did: the
# share of the simulated passes in the feature's lane whose wheels touched it.

# %%
everything = pd.DataFrame(views.list_defects(store, status="all", kind="all", limit=1000).defects)
proj = LocalProjection(truth.origin_lat_deg, truth.origin_lon_deg)
truth_defects = pd.DataFrame(truth.defects)
tx, ty = proj.to_xy(truth_defects["lat"].to_numpy(float), truth_defects["lon"].to_numpy(float))
ex, ey = proj.to_xy(everything["lat"].to_numpy(float), everything["lon"].to_numpy(float))
dist_m = np.hypot(ex[:, None] - tx[None, :], ey[:, None] - ty[None, :])
near = dist_m.min(axis=1) <= 10.0
everything["truth_id"] = np.where(near, truth_defects["id"].to_numpy()[dist_m.argmin(axis=1)], "none")
everything["truth_type"] = everything["truth_id"].map(truth_defects.set_index("id")["type"]).fillna("none")
representative = everything[near].sort_values("hits", ascending=False).drop_duplicates("truth_id")
hit_rate_by_type = representative.groupby("truth_type")["hit_rate"].mean()
everything[["id", "kind", "status", "hits", "traversals", "hit_rate", "truth_id", "truth_type"]]

# %%
passes = pd.DataFrame(json.loads((SAMPLES / "truth.json").read_text())["passes"])
in_lane = passes[passes["in_lane"] & passes["present"]]
road_hit_rate = (in_lane.groupby("defect_id")["hit"].mean()
                 .rename("road_hit_rate").to_frame().join(truth_defects.set_index("id")["type"]))

types = sorted(set(everything["truth_type"]) | set(road_hit_rate["type"]), key=lambda t: (t == "none", t))
fig, ax = plt.subplots(figsize=(9, 4.5), constrained_layout=True)
rng = np.random.default_rng(0)                      # horizontal jitter only, so overlapping points show
for i, t in enumerate(types):
    rows = everything[everything["truth_type"] == t]
    ax.scatter(i + rng.uniform(-0.15, 0.15, len(rows)), rows["hit_rate"], s=20 + 12 * rows["hits"],
               c=[kind_color(k) for k in rows["kind"]], edgecolors="k", alpha=0.8)
    road = road_hit_rate[road_hit_rate["type"] == t]["road_hit_rate"]
    ax.scatter(np.full(len(road), i + 0.3), road, marker="x", c="k")
ax.axhline(DEFAULT_DEFECT_PARAMS.designed_hit_rate, ls="--", c="grey", label="designed_hit_rate")
for k in sorted(set(everything["kind"])):
    ax.scatter([], [], c=kind_color(k), edgecolors="k", label=f"stored as {k}")
ax.scatter([], [], marker="x", c="k", label="the road (truth)")
ax.set_xticks(range(len(types)), types)
ax.set(xlabel="nearest truth feature", ylabel="hit rate (hits / passes)", ylim=(-0.05, 1.1),
       title="hit rate per defect (marker size: hits)")
ax.legend(fontsize=8, loc="lower right")
plt.close(fig)
fig

# %%
hit_rate_by_type.round(2).rename("mean hit rate of the representative defects").to_frame()

# %% [markdown]
# ## Roughness and coverage maps
#
# Every roughness window of every trip (IRI from the phone's vertical vibration at the trip's speed, m/km) is
# averaged in the 20 m cell and direction of its midpoint; a cell is shown once it has 3 readings
# (SmartRoadSense's rule), with a one-sided 95 % upper bound. FHWA calls < 1.5 m/km good and > 2.7 m/km
# poor; phone IRI is an estimate (the best published phone methods reach ~0.6 m/km RMSE). The coverage map
# counts passes and distinct phones per cell: no report from a well-covered cell is itself information.
#
# Both in local metres around the simulation's origin, with the road centrelines (and their ISO 8608 class)
# and the listed defects.

# %%
cells = pd.DataFrame(views.list_cells(store))
coverage_cells = pd.DataFrame(views.coverage(store))
cx, cy = proj.to_xy(cells["lat_deg"].to_numpy(float), cells["lon_deg"].to_numpy(float))
vx, vy = proj.to_xy(coverage_cells["lat_deg"].to_numpy(float), coverage_cells["lon_deg"].to_numpy(float))
dx, dy = proj.to_xy(defects["lat"].to_numpy(float), defects["lon"].to_numpy(float))

fig, axes = plt.subplots(2, 1, figsize=(12, 6), constrained_layout=True, sharex=True, sharey=True)
panels = [(axes[0], cx, cy, cells["iri_mean"], "RdYlGn_r", "mean IRI [m/km]", "roughness"),
          (axes[1], vx, vy, coverage_cells["n_devices"], "viridis", "distinct phones", "coverage")]
for ax, x, y, value, cmap, label, title in panels:
    for road in roads:
        rx, ry = proj.to_xy(np.asarray(road["lat"], float), np.asarray(road["lon"], float))
        ax.plot(rx, ry, c="0.8", lw=6, zorder=0)
        ax.annotate(f"{road['road_id']} (class {road['iso_class']})", (rx[len(rx) // 2], ry[len(ry) // 2]),
                    textcoords="offset points", xytext=(0, 12), fontsize=8)
    sc = ax.scatter(x, y, c=value, cmap=cmap, s=30, marker="s", zorder=1)
    fig.colorbar(sc, ax=ax, label=label)
    ax.scatter(dx, dy, c=[kind_color(k) for k in defects["kind"]], s=40 + 2 * defects["priority"], marker="o",
               edgecolors="k", zorder=2)
    ax.set(title=f"{title}: {len(x)} cells, listed defects by kind (size: priority)", ylabel="north [m]")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
axes[1].set_xlabel("east [m]")
plt.close(fig)
fig

# %%
cells[["n_readings", "iri_mean", "iri_sd", "iri_upper", "n_rough_devices"]].describe().round(2)

# %% [markdown]
# ## The repaired pothole
#
# One pothole was filled in mid-week (`repaired_after` in the truth). The stored defect nearest to it, and its
# passes, newest first: no hit can come after the repair.
#
# A **confirmed** defect becomes `likely_repaired` without any crew telling the system when the passes since
# its last hit all missed it, came from at least `repaired_devices` phones, and are so many that a defect
# still there would have been hit: at least `repaired_traversals` of them, and at least
# ln(`repaired_miss_prob`) / ln(1 − p), where p is its hit rate on the passes after its first hit up to its
# last one. A defect still there, hit on p of the passes, would then miss them all with a probability of at
# most `repaired_miss_prob`. So a pothole hit on few of its passes needs a long run of misses, a feature hit on
# every pass only the minimum. One that was never confirmed stays a (low-priority) candidate. The next hit
# makes a likely repaired defect confirmed again (`bump/lifecycle.py`).

# %%
dp = DEFAULT_DEFECT_PARAMS
print(f"defaults: repaired_devices {dp.repaired_devices}, repaired_traversals {dp.repaired_traversals}, "
      f"repaired_miss_prob {dp.repaired_miss_prob:g}")
streaks = pd.DataFrame({"hit rate p": [0.1, 0.2, 0.3, 0.5, 0.8, 1.0]})
streaks["clean passes needed"] = [repaired_streak(p, dp) for p in streaks["hit rate p"]]
streaks["P(a defect still there misses them all)"] = (
    (1 - streaks["hit rate p"]) ** streaks["clean passes needed"]).round(4)
streaks

# %%
repaired = [d for d in truth.defects if d.get("repaired_after") is not None]
rows = everything[everything["truth_id"].isin([d["id"] for d in repaired])]
if len(rows):
    record = views.get_defect(store, int(rows.sort_values("hits", ascending=False)["id"].iloc[0]))
    repaired_at = pd.Timestamp(repaired[0]["repaired_after"], unit="s", tz="UTC")
    print(f"{repaired[0]['id']} repaired after {repaired_at:%Y-%m-%d %H:%M} UTC -> stored defect {record['id']}: "
          f"{record['status']}")
    display_passes = pd.DataFrame(record["passes"])
else:
    display_passes = pd.DataFrame()
    print("no stored defect near the repaired pothole")
display_passes

# %%
store.close()
workdir.cleanup()
