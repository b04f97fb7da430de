"""Replay one trip through the detector and look at every stage: the analysts' view of :func:`detect.detect`.

::

    import bump
    r = bump.replay("trip.json.gz")              # or a Trace, bytes, or bump.replay(db=..., trip_id=...)
    r.characteristic.loc[30:40]                   # cf, threshold, background, axle score, trigger level
    r.impacts[["kind", "severity", "lat_deg", "lon_deg"]]
    r.plot(start=30, end=40); r.plot_map(); r.zoom(r.impacts.index[0])

Time index. Every frame is indexed by ``t_trip_s``: float seconds since the trip's first accelerometer sample
(``Replay.t0_s``, UNIX epoch seconds; ``Replay.t0`` as a UTC Timestamp). Floats make slicing (``.loc[30:40]``)
and arithmetic plain; :meth:`Replay.to_datetime` turns any such index into a UTC DatetimeIndex. The grid stages
(``oriented``, ``filtered``, ``characteristic``, ``speed``, ``grid``) share one and the same Index object;
``raw`` is on the phone's own timestamps, ``gps`` on the fix times, the event frames on the event times.
Absolute epoch times stay available as columns (``t_s``, ``t_start_s``, ``t_end_s``) for joins with stored data.

Parameters. ``bump.replay(x)`` detects with the defaults of :class:`detect.DetectorParams`, a stored trip
(``db=``, ``trip_id=``) with the parameters it was detected with (its trip row keeps them), else its database's
(those of its last ``bump reprocess --params``), and either with ``params=`` when given; ``Replay.params_source``
and the repr say which.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detect import Detection, DetectorParams, detect
from detect.geo import LocalProjection
from detect.params import ParamsError
from detect.pipeline import trigger_level
from ingest import Source, Trace, read
from ingest.errors import BumpError

if TYPE_CHECKING:                  # pandas is imported where a frame is made: the CLI and service start without it
    import pandas as pd
    from matplotlib.figure import Figure

    TimeLike = float | int | dt.datetime | pd.Timestamp | np.datetime64

TIME_INDEX = "t_trip_s"


class ReplayError(BumpError, ValueError):
    """A replay was asked for something it cannot do (bad arguments, no store, unknown trip)."""

    code = "replay"


class ReplayTypeError(ReplayError, TypeError):
    """An argument of :func:`replay` has the wrong type (also a TypeError, as Python's own would be)."""


@dataclass(frozen=True, eq=False, repr=False)
class Replay:
    """A trace and its detection, with every stage of the detector as a pandas DataFrame (see module docstring).

    ``params_source``: where ``detection.params`` came from: ``"default"`` (DetectorParams()), ``"trip"`` (those
    the stored trip was detected with), ``"database"`` (those its database detects with, when the trip keeps none
    this detector takes) or ``"caller"`` (``params=``).
    """

    trace: Trace
    detection: Detection
    params_source: str = "default"

    # ------------------------------------------------------------------------------------------------ time
    @property
    def t0_s(self) -> float:
        """Time of the first accelerometer sample, UNIX epoch seconds: the origin of every index."""
        return float(self.trace.t_s[0])

    @property
    def t0(self) -> pd.Timestamp:
        """Time of the first accelerometer sample as a UTC Timestamp (:attr:`t0_s`): index 0.0 of every frame."""
        import pandas as pd
        return pd.Timestamp(self.t0_s, unit="s", tz="UTC")

    @property
    def duration_s(self) -> float:
        """Length of the trip [s], first to last accelerometer sample: the end of every frame's index."""
        return self.trace.duration_s

    @property
    def params(self) -> DetectorParams:
        """The detector parameters of this replay (``detection.params``; where from: :attr:`params_source`)."""
        return self.detection.params

    def to_trip_s(self, t: TimeLike) -> float:
        """Seconds since trip start of ``t``: a number is taken as such; a datetime (naive = UTC) is converted."""
        import pandas as pd
        if isinstance(t, int | float | np.integer | np.floating) and not isinstance(t, bool):
            return float(t)
        if isinstance(t, dt.datetime | pd.Timestamp | np.datetime64):
            ts = pd.Timestamp(t)
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            return (ts - self.t0).total_seconds()
        raise ReplayError(f"time {t!r} is neither seconds since trip start nor a datetime; pass e.g. 12.5 or "
                          f"{self.t0.isoformat()}", source=self.trace.trip_id)

    def to_datetime(self, index: pd.Index | np.ndarray) -> pd.DatetimeIndex:
        """UTC datetimes of seconds since trip start (e.g. ``r.to_datetime(r.impacts.index)``)."""
        import pandas as pd
        return self.t0 + pd.to_timedelta(np.asarray(index, dtype=float), unit="s")

    def _rel(self, t_s: np.ndarray) -> pd.Index:
        import pandas as pd
        return pd.Index(np.asarray(t_s, dtype=float) - self.t0_s, name=TIME_INDEX)

    # ------------------------------------------------------------------------------------------------ stages
    @cached_property
    def grid_index(self) -> pd.Index:
        """The detector's uniform grid as seconds since trip start; shared by every grid stage.

        Computed from the grid's rate rather than by subtracting epoch times, which carry ~0.2 us of rounding."""
        import pandas as pd
        sig = self.detection.signals
        offset_s = float(sig.t_s[0] - self.t0_s) if sig.t_s.size else 0.0
        return pd.Index(offset_s + np.arange(sig.t_s.size) / sig.fs_hz, name=TIME_INDEX)

    def _grid_frame(self, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
        import pandas as pd
        return pd.DataFrame(dict(columns), index=self.grid_index, copy=True)

    @cached_property
    def raw(self) -> pd.DataFrame:
        """Phone-frame accelerometer including gravity on the phone's own timestamps [m/s^2], and its norm."""
        import pandas as pd
        acc = self.trace.accel_mps2
        return pd.DataFrame({"accel_x_mps2": acc[:, 0], "accel_y_mps2": acc[:, 1], "accel_z_mps2": acc[:, 2],
                             "norm_mps2": np.linalg.norm(acc, axis=1)}, index=self._rel(self.trace.t_s))

    @cached_property
    def oriented(self) -> pd.DataFrame:
        """Car-frame acceleration on the grid [m/s^2] (up without gravity, forward, left), gap mask, mount segment."""
        s = self.detection.signals
        return self._grid_frame({"a_up_mps2": s.a_up_mps2, "a_forward_mps2": s.a_forward_mps2,
                                 "a_left_mps2": s.a_left_mps2, "valid": s.valid, "segment": s.segment})

    @cached_property
    def filtered(self) -> pd.DataFrame:
        """Band-passed signals: vertical impact band (and whitened, as the characteristic function reads it) and body
        band, horizontal impact magnitude, roll and pitch rates."""
        s = self.detection.signals
        return self._grid_frame({"a_impact_mps2": s.a_impact_mps2, "a_whitened_mps2": s.a_whitened_mps2,
                                 "a_body_mps2": s.a_body_mps2,
                                 "a_horizontal_impact_mps2": s.a_horizontal_impact_mps2,
                                 "roll_rate_rad_s": s.roll_rate_rad_s, "pitch_rate_rad_s": s.pitch_rate_rad_s})

    @cached_property
    def characteristic(self) -> pd.DataFrame:
        """The two triggers: characteristic function, adaptive threshold, local background [m/s^2 RMS]; the
        axle-paired three-axis ``score`` [unitless, :meth:`detect.features.Signals.score_at`]; ``level``, the higher
        of cf / threshold and score / ``confirm_score`` (:func:`detect.pipeline.trigger_level`); ``above``: level
        > 1, where candidate events fire."""
        s = self.detection.signals
        level = trigger_level(s, self.params)
        return self._grid_frame({"cf_mps2": s.cf_mps2, "threshold_mps2": s.threshold_mps2,
                                 "background_mps2": s.background_mps2, "score": s.score, "level": level,
                                 "above": level > 1.0})

    @cached_property
    def speed(self) -> pd.DataFrame:
        """GPS speed [m/s] (NaN without GPS) and distance travelled [m] on the grid."""
        s = self.detection.signals
        return self._grid_frame({"speed_mps": s.speed_mps, "distance_m": s.distance_m})

    @cached_property
    def grid(self) -> pd.DataFrame:
        """All grid stages side by side (oriented, filtered, characteristic, speed)."""
        import pandas as pd
        return pd.concat([self.oriented, self.filtered, self.characteristic, self.speed], axis=1)

    @cached_property
    def projection(self) -> LocalProjection | None:
        """Local metres around the first GPS fix (None without GPS)."""
        if not self.trace.has_gps:
            return None
        return LocalProjection(float(self.trace.lat_deg[0]), float(self.trace.lon_deg[0]))

    def _with_xy(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.projection is None or "lat_deg" not in frame:
            frame["east_m"] = np.nan
            frame["north_m"] = np.nan
        else:
            frame["east_m"], frame["north_m"] = self.projection.to_xy(frame["lat_deg"].to_numpy(dtype=float),
                                                                      frame["lon_deg"].to_numpy(dtype=float))
        return frame

    @cached_property
    def gps(self) -> pd.DataFrame:
        """GPS fixes: position [deg], local east/north [m], speed, heading, accuracy; empty without GPS."""
        import pandas as pd
        tr = self.trace
        frame = pd.DataFrame({"lat_deg": tr.lat_deg, "lon_deg": tr.lon_deg, "speed_mps": tr.speed_mps,
                              "heading_deg": tr.heading_deg, "accuracy_m": tr.accuracy_m},
                             index=self._rel(tr.gps_t_s))
        return self._with_xy(frame)

    def _events(self, cols: Any) -> pd.DataFrame:
        frame = cols.to_frame()
        frame.index = self._rel(frame["t_s"].to_numpy(dtype=float))
        t_grid = self.grid_index.to_numpy()
        i_peak = frame["i_peak"].to_numpy(dtype=np.int64)
        frame["t_peak_trip_s"] = t_grid[i_peak] if t_grid.size else np.empty(0)
        return self._with_xy(frame)

    @cached_property
    def candidates(self) -> pd.DataFrame:
        """Every candidate event (index: impact time, s since trip start), accepted or not: the columns of
        :attr:`impacts`, with ``rejected`` the reason ("" when accepted: "stopped", "handling", "gap", ...)."""
        return self._events(self.detection.candidates)

    @cached_property
    def impacts(self) -> pd.DataFrame:
        """The accepted impacts, one row each (index: time of the first axle's contact, s since trip start).

        ``kind`` (pothole, cover, speed_bump, joint, ...); ``severity``: equivalent depth of the drop [cm] (the lift
        for a bump; docs/detector.md), binned in ``depth_class`` (low/moderate/high at 2.5 and 5 cm);
        ``confidence`` 0..1 that the kind is right; position ``lat_deg``/``lon_deg`` [deg] (NaN before the first
        fix), ``accuracy_m``, ``heading_deg``, local ``east_m``/``north_m`` [m]; ``speed_mps``; ``t_s`` (UNIX
        epoch s), ``t_peak_trip_s`` (characteristic-function peak, s since trip start), ``duration_s``; grid
        indices ``i_start``/``i_peak``/``i_stop``; then the classifier's features, unit in each name
        (``cf_peak_mps2``, ``energy_m2ps3``; ``snr``, ``*_ratio`` and ``*_corr`` are unitless; see
        :class:`detect.Detection`)."""
        return self._events(self.detection.impacts)

    @cached_property
    def roughness(self) -> pd.DataFrame:
        """Roughness windows (index: window start): ``t_end_trip_s``, length, speed, RMS, IRI [m/km], position."""
        frame = self.detection.roughness.to_frame()
        frame.index = self._rel(frame["t_start_s"].to_numpy(dtype=float))
        frame["t_end_trip_s"] = frame["t_end_s"].to_numpy(dtype=float) - self.t0_s
        return self._with_xy(frame)

    # ------------------------------------------------------------------------------------------------ plots
    def _span(self) -> str:
        import pandas as pd
        end = self.t0 + pd.Timedelta(seconds=self.duration_s)
        return (f"0..{self.duration_s:.1f} s since its start ({self.t0.strftime('%Y-%m-%d %H:%M:%S')} to "
                f"{end.strftime('%H:%M:%S')} UTC)")

    def _title(self, extra: str = "") -> str:
        head = f"trip {self.trace.trip_id} ({self.trace.device_id}), {self.t0.strftime('%Y-%m-%d %H:%M:%S')} UTC"
        return f"{head} — {extra}" if extra else head

    def plot(self, start: TimeLike | None = None, end: TimeLike | None = None, *,
             figsize: tuple[float, float] = (12.0, 10.0), title: str | None = None) -> Figure:
        """The stages stacked on one time axis between ``start`` and ``end`` (seconds since trip start or
        datetimes; default the whole trip), impacts marked and labelled with kind and severity, rejected
        candidates greyed. Returns the Figure (5 axes: raw, oriented, filtered, characteristic, speed)."""
        from bump.plots import stage_figure

        start_s = 0.0 if start is None else self.to_trip_s(start)
        end_s = self.duration_s if end is None else self.to_trip_s(end)
        if not end_s > start_s:
            raise ReplayError(f"plot window is empty: start {start_s:.3f} s is not before end {end_s:.3f} s; "
                              f"give start < end within 0..{self.duration_s:.1f} s", source=self.trace.trip_id)
        if end_s <= 0.0 or start_s >= self.duration_s:
            raise ReplayError(f"plot window {start_s:.3f}..{end_s:.3f} s lies outside the trip, which spans "
                              f"{self._span()}; give times within it", source=self.trace.trip_id)
        return stage_figure(raw=self.raw, oriented=self.oriented, filtered=self.filtered,
                            characteristic=self.characteristic, speed=self.speed, candidates=self.candidates,
                            impacts=self.impacts, confirm_score=self.params.confirm_score, start_s=start_s,
                            end_s=end_s, figsize=figsize,
                            title=self._title() if title is None else title)

    def zoom(self, t: TimeLike, half_width_s: float = 2.0, **kw: Any) -> Figure:
        """:meth:`plot` of ``t`` ± ``half_width_s`` (e.g. ``r.zoom(r.impacts.index[0])``), titled with the
        nearest impact in the window."""
        t_s = self.to_trip_s(t)
        if not 0.0 <= t_s <= self.duration_s:
            raise ReplayError(f"zoom time {t_s:.3f} s is outside the trip, which spans {self._span()}; give a "
                              "time within it (e.g. r.impacts.index[0])", source=self.trace.trip_id)
        near = self.impacts[np.abs(self.impacts.index.to_numpy() - t_s) <= half_width_s]
        what = f"t = {t_s:.2f} s"
        if len(near):
            row = near.iloc[int(np.argmin(np.abs(near.index.to_numpy() - t_s)))]
            what += f", {row['kind']} (severity {row['severity']:.1f}, confidence {row['confidence']:.2f})"
        kw.setdefault("title", self._title(what))
        return self.plot(t_s - half_width_s, t_s + half_width_s, **kw)

    def plot_map(self, *, roughness: bool = True, figsize: tuple[float, float] = (8.0, 8.0),
                 title: str | None = None) -> Figure:
        """The GPS track in local metres with impacts coloured by kind (legend) and, with ``roughness``, the
        track coloured by IRI. No map tiles. A trip without GPS gives a figure saying so."""
        from bump.plots import map_figure

        return map_figure(gps=self.gps, impacts=self.impacts, roughness=self.roughness, show_roughness=roughness,
                          figsize=figsize, title=self._title() if title is None else title)

    def __repr__(self) -> str:
        d = self.detection
        return (f"Replay(trip_id={self.trace.trip_id!r}, duration_s={self.duration_s:.1f}, "
                f"fs_hz={d.signals.fs_hz:.1f}, impacts={d.n_impacts}, candidates={len(d.candidates)}, "
                f"roughness_windows={len(d.roughness)}, gps={self.trace.has_gps}, "
                f"params={self.params_source!r}, params_digest={d.params.digest()!r})")


def _params(params: object) -> DetectorParams:
    """Caller's ``params`` (DetectorParams or a mapping of their fields) as DetectorParams."""
    if isinstance(params, DetectorParams):
        return params
    if not isinstance(params, Mapping):
        raise ReplayTypeError(f"must be detect.DetectorParams, a dict of their fields (e.g. "
                              f"{{'threshold_ratio': 3.0}}) or None, not {type(params).__name__}", field="params")
    return DetectorParams.from_dict(dict(params))      # bad names or values: detect.params.ParamsError (ValueError)


def _database_params(store: Any) -> DetectorParams:
    """The parameters ``store`` detects new trips with (:func:`bump.pipeline.database_params`), or ParamsError
    saying they came from the database when this detector cannot take them."""
    from bump.pipeline import database_params

    try:
        return database_params(store)
    except ParamsError as exc:
        raise ParamsError(f"the database's detector parameters (from its last `bump reprocess --params`) do not fit "
                          f"this detector: {exc}; pass params= to replay, or run `bump reprocess` again",
                          source=str(store.path), field="params") from exc


def _trip_params(store: Any, trip_id: str) -> DetectorParams | None:
    """The parameters ``trip_id`` was detected with, as its trip row keeps them; None when it keeps none or this
    detector cannot take them (made by a version with other fields)."""
    info = store.get_trip(trip_id) or {}
    stored = info.get("detector")
    fields = stored.get("params") if isinstance(stored, dict) else None
    if not isinstance(fields, dict):
        return None
    try:
        return DetectorParams.from_dict(fields)
    except ParamsError:
        return None


def _from_store(db: Any, trip_id: str, params: DetectorParams | None) -> tuple[Trace, DetectorParams, str]:
    """The raw trace stored for ``trip_id`` in ``db`` (an open :class:`bump.store.Store`, or a database path), the
    parameters to replay it with and where they came from: ``params`` ("caller"), else those the trip was detected
    with ("trip"), else the database's ("database")."""
    from bump.store import Store

    def load(store: Store) -> tuple[Trace, DetectorParams, str]:
        trace = read(store.trip_raw(trip_id), name=f"trip {trip_id}")
        if params is not None:
            return trace, params, "caller"
        own = _trip_params(store, trip_id)
        return (trace, own, "trip") if own is not None else (trace, _database_params(store), "database")

    if isinstance(db, Store):
        return load(db)
    if not isinstance(db, str | os.PathLike):
        raise ReplayTypeError(f"must be a bump Store or a database path, not {type(db).__name__}", field="db")
    with Store.open(db, create=False, migrate=False) as store:
        return load(store)


def _check_input(trace_or_path: object) -> None:
    """ReplayTypeError unless ``trace_or_path`` is a Trace or something :func:`ingest.read` takes."""
    if isinstance(trace_or_path, Trace | Source | str | os.PathLike | bytes | bytearray | memoryview):
        return
    hint = ("; this is already a Replay: look at it (r.impacts, r.plot()) or replay r.trace with other params="
            if isinstance(trace_or_path, Replay) else "")
    raise ReplayTypeError(f"replay() takes an ingest.Trace, a path (str or pathlib.Path: file, folder, zip or .gz) "
                          f"or the bytes of a trace, or db= and trip_id= for a stored trip; not "
                          f"{type(trace_or_path).__name__}{hint}")


def replay(trace_or_path: Trace | str | Path | bytes | None = None,
           params: DetectorParams | Mapping[str, Any] | None = None, *, db: Any = None,
           trip_id: str | None = None) -> Replay:
    """Run the detector on one trace and keep every stage for inspection; returns a :class:`Replay`.

    ``trace_or_path``: a :class:`ingest.Trace`, or anything :func:`ingest.read` takes (path, bytes).
    Or ``db=`` (a :class:`bump.store.Store` or a database path) and ``trip_id=``: the raw trace stored for that
    trip, run through the current detector. ``params``: DetectorParams or a dict of their fields; when None, the
    defaults for a trace or path, and for a stored trip the parameters it was detected with (kept in its trip row:
    those of the database's last ``bump reprocess --params``, or of a server's ``BUMP_DETECTOR_PARAMS``), else the
    database's, so that the replay matches what is stored. ``Replay.params_source`` says which ("default",
    "trip", "database" or "caller").

    Raises :class:`ReplayError` (a ValueError) on bad arguments, :class:`ReplayTypeError` (also a TypeError) for
    arguments of the wrong type, ``detect.params.ParamsError`` on bad parameter names or values,
    ``bump.store.StoreError`` for a missing database or trip, TraceError on bad input. Plots need matplotlib
    (ImportError with the install command without it).
    """
    from_db = db is not None or trip_id is not None
    if (trace_or_path is None) == (not from_db):
        raise ReplayError("give either a trace (or path) or db= and trip_id=, not both and not neither")
    given = None if params is None else _params(params)
    if from_db:
        if db is None or not trip_id:
            raise ReplayError("loading from a database needs both db= and trip_id=", field="trip_id")
        if not isinstance(trip_id, str):
            raise ReplayTypeError(f"must be a str (a trip id as `bump defects` and the API show them), not "
                                  f"{type(trip_id).__name__}", field="trip_id")
        trace, p, source = _from_store(db, trip_id, given)
    else:
        _check_input(trace_or_path)
        trace = trace_or_path if isinstance(trace_or_path, Trace) else read(trace_or_path)  # type: ignore[arg-type]
        p, source = (DetectorParams(), "default") if given is None else (given, "caller")
    return Replay(trace=trace, detection=detect(trace, p), params_source=source)
