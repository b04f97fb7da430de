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
# # 01 · Replay a trip
#
# One trip from `sample_traces/` goes through the detector, and we look at every stage: what the phone
# recorded, what the detector made of it, and why it called an impact a pothole, a speed bump or a cover.
#
# `bump.replay(path)` runs `detect.detect` on one trace and keeps every stage as a pandas DataFrame. All of
# them are indexed by **`t_trip_s`**, seconds since the trip's first accelerometer sample, so `.loc[30:40]`
# slices the same 10 s of every stage. Units are in the column names: `_mps2` = m/s², `_mps` = m/s,
# `_rad_s` = rad/s, `_m` = metres, `_deg` = degrees.
#
# The sample trips are simulated, so `truth.json` says what the road really held. We use it only to choose a
# trip and to compare: the detector never sees it.
#
# At the end the same trip is stored in a database, as uploads are, and replayed from there with
# `bump.replay(db=..., trip_id=...)`: stage by stage, it is the replay of the file.

# %%
import tempfile
from pathlib import Path

import pandas as pd

import bump
import ingest
from bump import pipeline
from bump.evaluate import load_truth
from bump.store import Store

# the repository root: the first folder upwards from here that holds sample_traces/
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "sample_traces" / "truth.json").is_file())
SAMPLES = ROOT / "sample_traces"
truth = load_truth(SAMPLES / "truth.json")
hits = pd.DataFrame(truth.impacts)        # one row per wheel that touched a defect: trip_id, t [epoch s], type, ...
hits.head()

# %% [markdown]
# ## Choose a trip
#
# We want a trip whose wheels met a pothole, a speed bump and a utility cover, and on which the detector
# called each of the three by its name at least once: the zooms below are meant to show what the detector
# takes for a pothole, a speed bump and a cover. So we ask the truth which trips met all three (phones with a
# gyroscope first), replay them one by one with `bump.replay(path)`, and keep the first on which the detector
# got all three right (or, if none did, the one with the most right, and the zooms below say which ones are
# not).
#
# To compare, `truth_vs_detection` takes each truth defect the trip met (the first wheel's contact, in
# `t_trip_s`) and the detector's candidate nearest to it within 0.5 s (none if there is none).

# %%
WANTED = ("pothole", "speed_bump", "cover")
MATCH_S = 0.5                             # a candidate this close to the first wheel's contact is that pass's


def truth_vs_detection(trip_id: str, r: bump.Replay) -> pd.DataFrame:
    """One row per truth defect the trip met (type, first contact t_trip_s, speed, wheels), with the candidate
    the detector found nearest to it within MATCH_S (kind, severity, confidence, rejected, t_detected_s)."""
    passes = (hits[hits["trip_id"] == trip_id]
              .assign(t_trip_s=lambda d: d["t"] - r.t0_s)
              .groupby("defect_id")
              .agg(type=("type", "first"), t_trip_s=("t_trip_s", "min"), speed_mps=("speed_mps", "mean"),
                   wheels=("wheel", lambda w: " ".join(sorted(w))))
              .sort_values("t_trip_s")
              .reset_index())
    found = (r.candidates[["kind", "severity", "confidence", "rejected"]]
             .assign(t_detected_s=r.candidates.index)
             .reset_index())                      # the index, t_trip_s, becomes the column to match on
    return pd.merge_asof(passes, found, on="t_trip_s", direction="nearest", tolerance=MATCH_S)


def labelled_right(matched: pd.DataFrame) -> list[str]:
    """The WANTED types of which the detector reported (as an impact, not rejected) a pass under their name."""
    right = matched[(matched["kind"] == matched["type"]) & (matched["rejected"] == "")]
    return [kind for kind in WANTED if kind in set(right["type"])]


trips = pd.DataFrame(truth.trips).set_index("trip_id")
types_by_trip = hits.groupby("trip_id")["type"].agg(set)
met_all = sorted((t for t, types in types_by_trip.items() if set(WANTED) <= types),
                 key=lambda t: (not trips.loc[t, "has_gyro"], t))
tried, best = [], None
for candidate_trip in met_all:                       # a loop over trips: each replay takes a fraction of a second
    replayed = bump.replay(SAMPLES / trips.loc[candidate_trip, "file"])
    compared = truth_vs_detection(candidate_trip, replayed)
    right = labelled_right(compared)
    tried.append({"trip_id": candidate_trip, "gyro": bool(trips.loc[candidate_trip, "has_gyro"]),
                  "labelled right": ", ".join(right) or "none"})
    if best is None or len(right) > len(best[2]):
        best = (candidate_trip, replayed, right, compared)
    if len(right) == len(WANTED):
        break
trip_id, r, right, matched = best
print(f"{len(met_all)} trips met a {', a '.join(WANTED)}; replayed {len(tried)}; chose {trip_id}" +
      ("" if len(right) == len(WANTED) else
       f" (no trip had all three labelled right: {', '.join(sorted(set(WANTED) - set(right)))} missing)"))
pd.DataFrame(tried)

# %%
trip_info = next(t for t in truth.trips if t["trip_id"] == trip_id)
{k: trip_info[k] for k in ("trip_id", "file", "fs_hz", "has_gyro", "mount", "vehicle_kind", "gps_sigma_m")}

# %% [markdown]
# Those are the trip's hidden facts (the mount, the sampling rate, the GPS error): the trace carries only what
# a phone would. The replay of that trip, `r = bump.replay(path)`, is what the rest of this notebook looks at:

# %%
r

# %% [markdown]
# ## Stage 1 · raw: what the phone recorded
#
# The accelerometer in the **phone's own frame**, gravity included, in m/s², on the phone's own (jittery)
# timestamps. Which axis points up depends on how the phone sits: flat on the dashboard `z` carries the ~9.81
# m/s² of gravity; in a cup holder gravity is shared between two axes. `norm_mps2` stays near 9.81 whatever
# the mount.

# %%
r.raw.describe().round(2)

# %% [markdown]
# ## Stage 2 · oriented: the car's frame
#
# The detector estimates gravity (a slow low-pass) and the forward direction (from braking and accelerating),
# rotates every sample into the car's frame and subtracts gravity: `a_up_mps2` is vertical acceleration
# without gravity (mean ≈ 0), `a_forward_mps2` and `a_left_mps2` the horizontal ones. Everything is resampled
# onto one uniform grid (`valid` is False inside gaps in the recording). `segment` counts mounts: it changes
# when the phone is picked up and put back differently.

# %%
r.oriented.describe().round(3)

# %%
print(f"grid rate {r.detection.signals.fs_hz:.0f} Hz, {len(r.oriented)} samples, "
      f"{(~r.oriented['valid']).mean():.1%} in gaps, {r.oriented['segment'].nunique()} mount segment(s)")

# %% [markdown]
# ## Stage 3 · filtered: impact band and body band
#
# A wheel hitting an edge rings the unsprung mass near 11 Hz: `a_impact_mps2` is vertical acceleration
# band-passed around that (3–25 Hz); `a_whitened_mps2` is that band with what its last few samples predict taken
# out (the trip's own autoregressive model: the road's coloured vibration and the mount's ringing), which is what
# the characteristic function reads. Bumps and humps lift the whole body slowly (~1.3 Hz): `a_body_mps2` is
# the 0.4–3 Hz band. `a_horizontal_impact_mps2` is the horizontal energy in the impact band (large when the
# phone itself is handled); roll and pitch rates (rad/s) come from the gyroscope when there is one.

# %%
r.filtered.abs().max().round(3).rename("max |value|").to_frame()

# %% [markdown]
# ## Stage 4 · the two triggers
#
# `cf_mps2` is the short-term RMS energy of the whitened impact band (m/s² RMS over ~0.12 s). It fires where it
# exceeds `threshold_mps2`: a multiple of the local `background_mps2` (a rough stretch raises its own bar)
# and never below a floor that grows with speed. The second trigger, `score`, is the axle-paired three-axis
# score: the hit seen on the vertical, forward and lateral axes against their own backgrounds, and again one
# wheelbase later when the rear wheel meets the spot; it fires above `confirm_score` (2.35). `level` is the higher
# of cf / threshold and score / confirm_score, and `above` (level > 1) marks where a candidate event fires: it
# should be a tiny fraction of the trip.

# %%
c = r.characteristic
by_score = c["above"] & ~(c["cf_mps2"] > c["threshold_mps2"])
print(f"a trigger fires {c['above'].mean():.2%} of the time ({by_score.mean():.2%} by the score alone); "
      f"median background {c['background_mps2'].median():.3f} m/s² RMS")
r.characteristic.describe().round(3)

# %% [markdown]
# ## Stage 5 · speed
#
# GPS speed (m/s, 1 Hz fixes interpolated onto the grid) and the distance travelled. Speed matters twice:
# below a few m/s an event is not a road impact (door slams, a phone put down), and the threshold grows with
# speed because every bump hits harder at speed.

# %%
r.speed.describe().round(2)

# %% [markdown]
# ## The whole trip, all stages stacked
#
# From top to bottom: raw, oriented, filtered, the triggers, speed. The triggers' axis draws cf with its threshold
# and the axle score at the threshold's scale, so each fires where its line crosses the dashed threshold. Accepted
# impacts are vertical lines labelled with their kind and severity; rejected candidates are grey.

# %%
r.plot()

# %% [markdown]
# ## Candidates and impacts
#
# Every run where a trigger fires is a **candidate**; it becomes an **impact** unless it is rejected
# (`rejected` says why: `stopped` = the car was not moving, `handling` = the phone was picked up, `weak` = a
# faint event without a one-wheel or lift signature). The index is the time the first axle met the feature.
# `severity` is centimetres: the equivalent depth of a hole, or the body lift of a bump.

# %%
r.candidates[["kind", "severity", "confidence", "speed_mps", "snr", "rejected"]].round(2)

# %%
n_impacts = len(r.impacts)
print(f"{n_impacts} impacts out of {len(r.candidates)} candidates")
r.impacts["kind"].value_counts()

# %% [markdown]
# ## What the road really held
#
# Each pass over a truth defect, with the candidate the detector found within 0.5 s of the first wheel's
# contact (blank when it found nothing): the table `truth_vs_detection` made when we chose the trip. A
# detected `kind` that differs from the truth `type` is a misclassification; `rejected` non-empty means the
# detector saw it and chose to drop it.

# %%
matched.round(2)

# %% [markdown]
# ## Zoom on a pothole, a speed bump and a cover
#
# For each of the three types we take a pass from the table above: one the detector reported under that name
# if there is one (the trip was chosen for that), else one it found under another name, else the first. We
# zoom to ±1.5 s around the detection (or around the truth contact if it found nothing). Above each figure a
# line says what the detector called the pass, so a zoom never passes off another kind as the one in its
# heading.


# %%
def pick(kind: str) -> pd.Series:
    """A pass over a truth feature of ``kind``: the first the detector reported as ``kind``, else the first it
    labelled ``kind`` but rejected, else the first it found at all, else the first."""
    rows = matched[matched["type"] == kind]
    named = rows["kind"] == kind
    for subset in (rows[named & (rows["rejected"] == "")], rows[named], rows[rows["t_detected_s"].notna()], rows):
        if len(subset):
            return subset.iloc[0]
    raise LookupError(f"the trip met no {kind}")


def caption(kind: str) -> str:
    """What the detector made of the pass chosen for ``kind``, in one line."""
    row = chosen[kind]
    where = f"{row['defect_id']} ({kind}, {row['speed_mps']:.1f} m/s)"
    if pd.isna(row["t_detected_s"]):
        return f"{where}: the detector found nothing here; the zoom is centred on the truth contact"
    said = (f"{row['kind']} at {row['t_detected_s']:.2f} s, severity {row['severity']:.1f} cm, confidence "
            f"{row['confidence']:.2f}" + (f", rejected as {row['rejected']}" if row["rejected"] else ""))
    if row["kind"] == kind:
        return f"{where}: the detector said {said}"
    return (f"{where}: NOTE no {kind} on this trip was labelled {kind} by the detector; it called this one "
            f"{said}. The figure shows a {row['kind']} call on a {kind}, not what the detector takes for a {kind}")


chosen = {kind: pick(kind) for kind in WANTED}
zoom_t = {kind: row["t_detected_s"] if pd.notna(row["t_detected_s"]) else row["t_trip_s"]
          for kind, row in chosen.items()}
pd.DataFrame(chosen).T[["defect_id", "type", "t_trip_s", "speed_mps", "wheels", "kind", "rejected",
                        "t_detected_s"]]

# %% [markdown]
# ### Pothole
#
# One wheel drops into the hole and hits its far edge: a short burst in the impact band, repeated by the rear
# wheel a wheelbase / speed later (`axle_score`: how well the burst repeats then), little body motion. One
# wheel track means the car rolls: lateral acceleration moves with the vertical one (`lateral_up_corr` high)
# and, with a gyroscope, roll rate exceeds pitch rate (`roll_ratio` > 1). The first motion is down
# (`first_motion` = -1).

# %%
print(caption("pothole"))
figures = {"pothole": r.zoom(zoom_t["pothole"], half_width_s=1.5)}
figures["pothole"]

# %% [markdown]
# ### Speed bump
#
# Drivers slow down for it (see the speed axis), and both wheels of an axle climb it at once: the whole body is
# lifted by centimetres (`disp_p2p_m`), visible in the body band rather than as a sharp kick, with little roll.

# %%
print(caption("speed_bump"))
figures["speed_bump"] = r.zoom(zoom_t["speed_bump"], half_width_s=1.5)
figures["speed_bump"]

# %% [markdown]
# ### Utility cover
#
# Also one wheel (so the car rolls, like a pothole), but shallow: a cover sunk or proud by a few centimetres
# rings the impact band little, i.e. a small equivalent depth. A proud cover lifts the wheel first
# (`first_motion` = +1). Castings caused most of Street Bump's "bumps", so telling them from potholes matters.

# %%
print(caption("cover"))
figures["cover"] = r.zoom(zoom_t["cover"], half_width_s=1.5)
figures["cover"]

# %% [markdown]
# The evidence the classifier used, side by side for the three zooms (rows: the candidates nearest to each
# zoom time). Compare `disp_p2p_m` (body lift: the speed bump), `lateral_up_corr` (one wheel: pothole and
# cover), `severity` (equivalent depth or lift, cm) and `first_motion`.

# %%
EVIDENCE = ["kind", "severity", "depth_class", "speed_mps", "first_motion", "lateral_up_corr", "roll_ratio",
            "disp_p2p_m", "vel_p2p_mps", "axle_score", "rejected"]
nearest = {kind: r.candidates.index[abs(r.candidates.index - t).argmin()] for kind, t in zoom_t.items()}
evidence = r.candidates.loc[list(nearest.values()), EVIDENCE].set_axis(list(nearest), axis=0)
evidence.round(3)

# %% [markdown]
# ## The map
#
# The GPS track in local metres (east/north of the first fix, no map tiles), coloured by roughness (IRI,
# m/km, per ~20 m window) with the impacts coloured by kind. GPS is off by a few metres on a single pass:
# that is why `03_city_defects` clusters impacts from many trips before reporting a defect.

# %%
figures["map"] = r.plot_map()
figures["map"]

# %%
r.roughness[["length_m", "speed_mps", "iri_m_per_km"]].describe().round(2)

# %% [markdown]
# ## The same trip, stored in a database
#
# A trip that reached the city's database (uploaded by a phone, or stored with `bump ingest`) is replayed the
# same way: `bump.replay(db=..., trip_id=...)` reads the raw trace the database keeps for that trip, as it came,
# and runs it through the detector again, with the parameters that trip was detected with (its trip row keeps them)
# unless `params=` says otherwise (the repr's `params` says which were used). Here the sample traces go into a
# temporary SQLite database as `bump ingest sample_traces --db trips.sqlite` puts them there: each file's bytes are
# read, detected with the database's detector parameters (the defaults in a new database), clustered into defects
# and stored with the bytes.

# %%
dbdir = tempfile.TemporaryDirectory(prefix="bump-replay-")
db_path = Path(dbdir.name) / "trips.sqlite"
with Store.open(db_path) as store:
    db_params = pipeline.database_params(store)
    for path in sorted((SAMPLES / "trips").glob("*.json.gz")):      # a loop over files, as bump ingest's
        data = path.read_bytes()
        pipeline.ingest_trace(store, ingest.read(data, name=str(path)), db_params, raw=data)
    stored_rows = store.counts()
print(f"{db_path.name}: {stored_rows['trips']} trips, {stored_rows['hits']} hits, {stored_rows['defects']} defects")

# %% [markdown]
# Now the chosen trip, from the database only (nothing of the file above is used):

# %%
stored = bump.replay(db=db_path, trip_id=trip_id)
stored

# %% [markdown]
# Stage by stage, the stored trip's replay against the file's: every DataFrame, from the phone's raw samples to
# the impacts and the roughness windows, should be identical (same index, same columns, same values).

# %%
STAGES = ("raw", "oriented", "filtered", "characteristic", "speed", "gps", "candidates", "impacts", "roughness")
same_as_file = pd.DataFrame([{"stage": stage, "rows": len(getattr(stored, stage)),
                              "columns": getattr(stored, stage).shape[1],
                              "identical to the file's": getattr(stored, stage).equals(getattr(r, stage))}
                             for stage in STAGES]).set_index("stage")
print("the stored trip replays exactly as the file" if same_as_file["identical to the file's"].all() else
      "the stored trip's replay DIFFERS from the file's in: "
      + ", ".join(same_as_file.index[~same_as_file["identical to the file's"]]))
same_as_file

# %% [markdown]
# Any step of it can be looked at as before, e.g. the characteristic function around the pothole zoomed above
# (±50 ms, one row per grid sample), or drawn with `stored.plot(start=..., end=...)` and `stored.zoom(t)`.

# %%
t_pothole = zoom_t["pothole"]
stored.characteristic.loc[t_pothole - 0.05:t_pothole + 0.05].round(3)

# %%
dbdir.cleanup()
