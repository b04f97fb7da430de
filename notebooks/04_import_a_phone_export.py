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
# # 04 · Import a phone export
#
# Drivers will not upload `bump.trace/1` files: they record with an app and export what the app writes.
# `ingest.read(path)` sniffs the format (Sensor Logger zip or folder, phyphox, SensorLog, Physics Toolbox Sensor
# Suite, plain CSV, bump JSON), converts every unit once (g → m/s², ns → s, iOS axis signs → Android's) and
# validates the result.
#
# To have an export whose road we know, we write one ourselves: a **Sensor Logger** "Zipped CSV" export
# (Android) of one simulated trip from `sample_traces/`, with the app's quirks — `time` in integer nanoseconds
# since the UNIX epoch, axis columns stored as `z,y,x`, `-1` for an invalid GPS value, a `Metadata.csv` row.
# Then we read it back, run it through the detector and score it against the truth.

# %%
import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

import bump
import ingest
from bump.evaluate import evaluate_impacts, load_truth

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "sample_traces" / "truth.json").is_file())
SAMPLES = ROOT / "sample_traces"
truth = load_truth(SAMPLES / "truth.json")

# %% [markdown]
# ## The trip to export
#
# A phone with a gyroscope, on the trip that hit the most reportable defects (potholes and sunk covers), so
# the detector has something to find. The truth's `impacts` list every wheel that touched a defect.

# %%
trips = pd.DataFrame(truth.trips).set_index("trip_id")
hits = pd.DataFrame(truth.impacts)
reportable_ids = {d["id"] for d in truth.defects if d["reportable"]}
reportable_hits = hits[hits["defect_id"].isin(reportable_ids)].groupby("trip_id")["defect_id"].nunique()
trip_id = reportable_hits[trips.loc[reportable_hits.index, "has_gyro"]].idxmax()
original = ingest.read(SAMPLES / trips.loc[trip_id, "file"])
print(f"{trip_id}: {reportable_hits[trip_id]} reportable defects hit, {original.n_samples} accelerometer "
      f"samples at {original.quality.accel_rate_hz:.0f} Hz, {original.quality.gps_fixes} GPS fixes")

# %% [markdown]
# ## Write it as Sensor Logger would
#
# Sensor Logger's files, as the app's own notes document them (github.com/tszheichoi/awesome-sensor-logger:
# the README's "Understanding Timestamps", UNITS.md, COORDINATES.md, CROSSPLATFORM.md): every CSV starts with
# `time` (int ns since the epoch) and `seconds_elapsed` (s since the recording started). `TotalAcceleration`
# is the accelerometer with gravity, in m/s² (Android); `Gyroscope` is rad/s. Both list the axes as `z,y,x`.
# `Location.csv` (newer app versions) holds speed in m/s, bearing and accuracies, and -1 where a value is
# invalid.

# %%
def epoch_ns(t_s: np.ndarray) -> np.ndarray:
    """Epoch seconds (float) -> integer nanoseconds, whole seconds and fraction apart to keep the digits."""
    whole = np.floor(t_s)
    return whole.astype(np.int64) * 1_000_000_000 + np.round((t_s - whole) * 1e9).astype(np.int64)


start_ns = int(epoch_ns(original.t_s[:1])[0]) // 1_000_000 * 1_000_000   # the app's recording start, whole ms


def axis_csv(t_s: np.ndarray, xyz: np.ndarray) -> str:
    ns = epoch_ns(t_s)
    frame = pd.DataFrame({"time": ns, "seconds_elapsed": (ns - start_ns) / 1e9,
                          "z": xyz[:, 2], "y": xyz[:, 1], "x": xyz[:, 0]})
    return frame.to_csv(index=False, float_format="%.9g")


def invalid(values: np.ndarray) -> np.ndarray:
    """Unknown values (NaN) written as the app writes them: -1."""
    return np.where(np.isfinite(values), values, -1.0)


def location_csv(tr: ingest.Trace) -> str:
    ns = epoch_ns(tr.gps_t_s)
    frame = pd.DataFrame({
        "time": ns, "seconds_elapsed": (ns - start_ns) / 1e9, "bearingAccuracy": 10.0, "speedAccuracy": 0.5,
        "verticalAccuracy": 3.0, "horizontalAccuracy": invalid(tr.accuracy_m), "speed": invalid(tr.speed_mps),
        "bearing": invalid(tr.heading_deg), "altitude": 12.0, "longitude": tr.lon_deg, "latitude": tr.lat_deg})
    return frame.to_csv(index=False, float_format="%.10g")


recording = pd.Timestamp(start_ns, unit="ns", tz="UTC")
metadata = pd.DataFrame([{
    "version": 3, "device name": original.phone.get("model", "Pixel 7"), "recording epoch time": start_ns // 1_000_000,
    "recording time": recording.strftime("%Y-%m-%d_%H-%M-%S"), "recording timezone": "UTC", "platform": "android",
    "appVersion": "1.32.2", "device id": original.device_id,
    "sensors": "Gyroscope|Location|TotalAcceleration|Annotation",
    "sampleRateMs": f"{1000 / original.quality.accel_rate_hz:.0f}|1000|{1000 / original.quality.accel_rate_hz:.0f}|",
    "standardisation": "false", "platform version": 14}]).to_csv(index=False)

files = {"TotalAcceleration.csv": axis_csv(original.t_s, original.accel_mps2),
         "Gyroscope.csv": axis_csv(original.gyro_t_s, original.gyro_rad_s),
         "Location.csv": location_csv(original),
         "Metadata.csv": metadata,
         "Annotation.csv": "time,seconds_elapsed,text,millisecond_press_duration\n"}
workdir = tempfile.TemporaryDirectory(prefix="bump-export-")
export = Path(workdir.name) / f"{recording.strftime('%Y-%m-%d_%H-%M-%S')}.zip"
with zipfile.ZipFile(export, "w", compression=zipfile.ZIP_DEFLATED) as zf:
    for name, text in files.items():
        zf.writestr(name, text)
members = zipfile.ZipFile(export).namelist()
print(f"{export.name}: {export.stat().st_size / 1e6:.1f} MB, {members}")
print("".join(files["TotalAcceleration.csv"].splitlines(keepends=True)[:3]))

# %%
accel_header = pd.read_csv(io.StringIO(files["TotalAcceleration.csv"]), nrows=0).columns.tolist()
pd.read_csv(io.StringIO(files["Location.csv"]), nrows=3)

# %% [markdown]
# ## Read it back
#
# `ingest.read` needs no hint: it recognises the export, reads the axes **by name** (the file's `z,y,x` order
# does not matter), turns nanoseconds into float seconds and checks rates, gaps and GPS. `quality` says what
# it found; `problems` lists anything it had to work around.

# %%
imported = ingest.read(export)
print(imported.source_format, imported.trip_id, imported.device_id)
imported.quality.to_dict()

# %% [markdown]
# The same samples as the simulated trace, to the precision the CSV kept (nine significant digits, ns
# timestamps):

# %%
max_accel_error_mps2 = float(np.max(np.abs(imported.accel_mps2 - original.accel_mps2)))
max_time_error_s = float(np.max(np.abs(imported.t_s - original.t_s)))
print(f"{imported.n_samples} samples (original {original.n_samples}); largest differences: "
      f"{max_accel_error_mps2:.1e} m/s², {max_time_error_s:.1e} s; GPS fixes {imported.quality.gps_fixes}")

# %% [markdown]
# ## Through the detector
#
# Exactly as for any trace. One thing is lost on the way: a phone app does not know the car, so the
# detector uses its default wheelbase (`DetectorParams.wheelbase_default_m`) to pair front and rear axle hits.

# %%
r = bump.replay(imported)
n_impacts = len(r.impacts)
print(r)
r.impacts[["kind", "severity", "confidence", "speed_mps", "lat_deg", "lon_deg"]].round(3)

# %% [markdown]
# ## Scored against the truth
#
# The export's trip id is Sensor Logger's (`sensorlogger-<recording ms>-<device id>`), but the clock is the
# same, so the detections are scored against the truth of the trip we exported: passes over reportable
# defects found within 0.5 s.

# %%
found = [{"t": t, "kind": k} for t, k in zip(r.impacts["t_s"], r.impacts["kind"], strict=True)]
score = evaluate_impacts(truth, found, trip_id=trip_id)
print(f"{score.n_detected} impacts, {score.n_passes} passes over reportable defects: precision "
      f"{score.precision:.2f}, recall {score.recall:.2f}; missed {[m[1] for m in score.missed]}")
pd.DataFrame(score.to_dict()["false_positives"])

# %% [markdown]
# `nearest` names what each unmatched detection lay on: a speed bump reported as `speed_bump` or a joint as
# `joint` is a right label for something that is not a defect, so it counts against precision here but would
# not become a pothole report. `03_city_defects` shows how many trips together separate the two.
#
# The most severe impact called a pothole (or the most severe of any kind if none was), zoomed; the stages
# from top to bottom: raw, oriented, filtered, characteristic, speed.

# %%
potholes = r.impacts[r.impacts["kind"] == "pothole"]
zoom_t = (potholes if len(potholes) else r.impacts)["severity"].idxmax()
print(f"{r.impacts.loc[zoom_t, 'kind']} at {zoom_t:.2f} s, severity {r.impacts.loc[zoom_t, 'severity']:.1f} cm"
      + ("" if len(potholes) else " (the detector called nothing on this trip a pothole)"))
r.zoom(zoom_t, half_width_s=1.5)

# %%
r.plot_map()

# %% [markdown]
# ## Other exports
#
# The repository's reader tests keep small hand-made exports in `tests/data/`: Sensor Logger from Android (a
# zip) and iOS (a folder: gravity removed, in the app's iOS axis signs), phyphox (times in seconds since the
# experiment start, quoted headers with units), a Physics Toolbox Sensor Suite "Multi Record" (g-force in g,
# semicolons and decimal commas, each sensor's cells filled only when it updated) and SensorLog (iOS: g with
# Core Motion's sign, local times without an offset, GPS values repeated on every row until the next fix). They
# last a few seconds, with a handful of GPS fixes: they show that the same call reads them all into the same
# canonical units. They are no test of the detector, but some of them carry a small impact that their
# generators put there on purpose (a few samples of extra vertical acceleration), and the detector reports it
# (the `impacts` and `kinds` columns; on a clip this short, with no road around it, the kind means little).

# %%
DATA = ROOT / "tests" / "data"
fixtures = {name: ingest.read(DATA / rel) for name, rel in [
    ("Sensor Logger, Android zip", "sensor_logger/android.zip"),
    ("Sensor Logger, iOS folder", "sensor_logger/ios"),
    ("phyphox zip", "phyphox/simple_comma.zip"),
    ("Physics Toolbox Multi Record", "physics_toolbox/multi_record_semicolon.csv"),
    ("SensorLog, iOS", "sensorlog/sensorlog_comma.csv"),
]}
fixture_impacts = {name: bump.replay(tr).impacts for name, tr in fixtures.items()}
pd.DataFrame({name: {"format": tr.source_format, "samples": tr.n_samples, "rate_hz": round(tr.quality.accel_rate_hz),
                     "duration_s": round(tr.duration_s, 2), "gps_fixes": tr.quality.gps_fixes, "gyro": tr.has_gyro,
                     "median |a| (m/s²)": round(float(np.median(np.linalg.norm(tr.accel_mps2, axis=1))), 2),
                     "impacts": len(fixture_impacts[name]),
                     "kinds": ", ".join(fixture_impacts[name]["kind"])}
              for name, tr in fixtures.items()}).T
