"""The analysts' Python API used wrongly, and its stored-trip replay (QA6 findings 3, 7, 8, 9).

Misuse must raise an error that names what was given and what to pass instead, of the type a caller catches
(TypeError for a wrong type, ValueError for a wrong value); ``bump.replay(db=, trip_id=)`` must detect with the
parameters the database detects with, so that it shows what is stored; a Trace prints on one line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from test_replay import _trace as replay_trace

import bump
import detect
import ingest
from bump import pipeline
from bump.replay import Replay, ReplayError, ReplayTypeError
from bump.store import Store
from detect import DetectorParams
from detect.params import ParamsError

STRICT = DetectorParams(threshold_floor_mps2=50.0)   # a threshold no hit of the trace below reaches: no impacts


def _trace() -> ingest.Trace:
    """test_replay's car (standing 6 s, then 10 m/s) with two wheel hops: the default detector finds one impact at
    each."""
    return replay_trace(hits_s=(15.0, 24.5), seed=3, trip_id="misuse-trip")


@pytest.fixture(scope="module")
def trace() -> ingest.Trace:
    return _trace()


@pytest.fixture(scope="module")
def trip_file(trace: ingest.Trace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trip") / "trip.json.gz"
    path.write_bytes(ingest.dumps(trace, compress=True))
    return path


@pytest.fixture(scope="module")
def reprocessed_db(trace: ingest.Trace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database that stored the trip, then was reprocessed with STRICT (`bump reprocess --params`)."""
    path = tmp_path_factory.mktemp("db") / "bump.db"
    with Store.open(path) as store:
        pipeline.ingest_trace(store, trace)
        pipeline.reprocess(store, STRICT)
    return path


# ------------------------------------------------------------------------------------------------ finding 3
def test_the_scenario_has_impacts_with_default_parameters_and_none_with_strict_ones(trace: ingest.Trace) -> None:
    assert len(bump.replay(trace).impacts) == 2
    assert len(bump.replay(trace, STRICT).impacts) == 0


def test_replay_of_a_stored_trip_uses_the_parameters_of_its_database(reprocessed_db: Path) -> None:
    with Store.open(reprocessed_db, create=False) as store:
        stored_impacts = store.get_trip("misuse-trip")["n_impacts"]
        r_store = bump.replay(db=store, trip_id="misuse-trip")
    r_path = bump.replay(db=reprocessed_db, trip_id="misuse-trip")
    for r in (r_store, r_path):
        assert r.params == STRICT and r.detection.params.digest() == STRICT.digest()
        assert r.params_source == "trip"                      # reprocess detected the trip again with STRICT
        assert len(r.impacts) == stored_impacts == 0           # what the database stores, not the defaults' 2


def test_params_given_to_replay_win_over_the_database(reprocessed_db: Path) -> None:
    r = bump.replay(db=reprocessed_db, trip_id="misuse-trip", params={})       # {}: every default
    assert r.params == DetectorParams() and r.params_source == "caller"
    assert len(r.impacts) == 2


def test_a_database_never_reprocessed_replays_with_the_defaults(trace: ingest.Trace, tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    with Store.open(path) as store:
        pipeline.ingest_trace(store, trace)
    r = bump.replay(db=path, trip_id="misuse-trip")
    assert r.params == DetectorParams() and r.params_source == "trip"


def test_a_trip_detected_with_other_parameters_than_its_database_replays_with_its_own(
        trace: ingest.Trace, tmp_path: Path) -> None:
    """A server run with BUMP_DETECTOR_PARAMS detects uploads with that file's parameters, whatever the
    database's; the replay must show what the trip stored (helper 41's review)."""
    path = tmp_path / "server.db"
    with Store.open(path) as store:
        pipeline.ingest_trace(store, trace, STRICT)
        assert pipeline.database_params(store) == DetectorParams()
    r = bump.replay(db=path, trip_id="misuse-trip")
    assert r.params == STRICT and r.params_source == "trip" and len(r.impacts) == 0


def test_database_parameters_this_detector_cannot_take_are_named_with_the_fix(trace: ingest.Trace,
                                                                               tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store.open(path) as store:
        pipeline.ingest_trace(store, trace)
        with store.transaction():
            store.set_meta(pipeline.PARAMS_META_KEY, orjson.dumps({"threshold_ration": 3.0}).decode())
            store._ex("UPDATE trips SET detector = ?", ('{"version": "bump-detect/0.1", "params": {"old": 1}}',))
    with pytest.raises(ParamsError, match=r"database's detector parameters .*threshold_ration.*pass params="):
        bump.replay(db=path, trip_id="misuse-trip")
    assert bump.replay(db=path, trip_id="misuse-trip", params=STRICT).params == STRICT


def test_replay_says_which_parameters_it_used(trace: ingest.Trace, reprocessed_db: Path) -> None:
    assert bump.replay(trace).params_source == "default"
    assert bump.replay(trace, STRICT).params_source == "caller"
    text = repr(bump.replay(db=reprocessed_db, trip_id="misuse-trip"))
    assert "params='trip'" in text and STRICT.digest() in text


# ------------------------------------------------------------------------------------------------ finding 7
def test_read_names_what_it_takes_when_given_a_trace_a_number_or_none(trace: ingest.Trace) -> None:
    with pytest.raises(TypeError, match=r"read\(\) takes a path .* not Trace; this is already a Trace"):
        ingest.read(trace)                                                # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"read\(\) takes a path .* not int"):
        ingest.read(123)                                                  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not None"):
        ingest.read(None)                                                 # type: ignore[arg-type]


def test_read_refuses_a_dict_for_limits_and_shows_the_limits_to_build(trip_file: Path) -> None:
    with pytest.raises(TypeError, match=r"limits= takes an ingest.Limits, not dict.*ingest.Limits\(max_samples=10\)"):
        ingest.read(trip_file, limits={"max_samples": 10})               # type: ignore[arg-type]
    with pytest.raises(ingest.ValidationError, match="more than the limit of 10"):
        ingest.read(trip_file, limits=ingest.Limits(max_samples=10))     # the fix the message shows works


def test_read_refuses_a_format_or_name_of_the_wrong_type(trip_file: Path) -> None:
    with pytest.raises(TypeError, match="format= takes a format name"):
        ingest.read(trip_file, format=1)                                  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name= takes a str"):
        ingest.read(trip_file, name=Path("x"))                            # type: ignore[arg-type]


def test_read_of_json_text_says_to_pass_its_bytes(trace: ingest.Trace) -> None:
    text = ingest.dumps(trace).decode()
    with pytest.raises(ingest.FormatError, match=r"looks like JSON text.*text\.encode\(\)"):
        ingest.read(text)
    assert ingest.read(text.encode()).n_samples == trace.n_samples


def test_detect_format_takes_a_path_or_bytes_besides_a_source(trip_file: Path) -> None:
    assert ingest.detect_format(trip_file) == "bump"
    assert ingest.detect_format(str(trip_file)) == "bump"
    assert ingest.detect_format(trip_file.read_bytes()) == "bump"
    assert ingest.detect_format(ingest.open_source(trip_file)) == "bump"
    with pytest.raises(TypeError, match=r"detect_format\(\) takes a path .* not dict"):
        ingest.detect_format({"format": "bump.trace/1"})                 # type: ignore[arg-type]


def test_is_one_file_format_names_the_formats_for_an_unknown_one() -> None:
    assert ingest.is_one_file_format("bump") and not ingest.is_one_file_format("phyphox")
    with pytest.raises(ingest.FormatError, match="unknown format 'nope'; choose one of bump, "):
        ingest.is_one_file_format("nope")


def test_replay_names_what_it_takes_as_a_type_error(trace: ingest.Trace) -> None:
    for bad in (123, 4.5, ["trip.json"]):
        with pytest.raises(ReplayTypeError, match=rf"replay\(\) takes an ingest.Trace.*; not {type(bad).__name__}"):
            bump.replay(bad)                                              # type: ignore[arg-type]
    r = bump.replay(trace)
    with pytest.raises(TypeError, match="this is already a Replay"):
        bump.replay(r)                                                    # type: ignore[arg-type]
    with pytest.raises(TypeError, match="trip_id: must be a str"):
        bump.replay(db="x.db", trip_id=7)                                 # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"params: must be detect.DetectorParams, a dict"):
        bump.replay(trace, params="x")                                    # type: ignore[arg-type]
    assert issubclass(ReplayTypeError, ReplayError) and issubclass(ReplayTypeError, ValueError)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("min_rate_hz", -1, "min_rate_hz must be a finite number > 0, got -1"),
    ("min_rate_hz", 0, "> 0"),
    ("min_rate_hz", math.nan, "got nan"),
    ("max_rate_hz", 3.0, "max_rate_hz must be a number (or inf) > min_rate_hz (4), got 3.0"),
    ("min_duration_s", -0.5, "min_duration_s must be a finite number >= 0"),
    ("max_duration_s", 0.5, "> min_duration_s (1)"),
    ("max_samples", 0, "max_samples must be a whole number >= 1"),
    ("max_samples", 10.5, "whole number"),
    ("max_nonfinite_fraction", 1.0, ">= 0 and < 1, got 1.0"),
    ("max_nonfinite_fraction", -0.1, ">= 0 and < 1"),
    ("max_backward_jump_s", -1.0, ">= 0"),
    ("gap_factor", 1.0, "gap_factor must be a finite number > 1"),
    ("max_epoch_s", 0.0, "> 0"),
    ("max_accel_mps2", -5.0, "> 0"),
    ("max_gyro_rad_s", 0.0, "> 0"),
])
def test_limits_refuse_values_no_trace_could_meet(field: str, value: float, words: str) -> None:
    with pytest.raises(ValueError, match="Limits." + field) as err:
        ingest.Limits(**{field: value})
    assert words in str(err.value) and "the default is" in str(err.value)


@pytest.mark.parametrize(("field", "value"), [("min_rate_hz", "4"), ("max_samples", "10"), ("gap_factor", None),
                                              ("max_duration_s", True)])
def test_limits_refuse_non_numbers_as_type_errors(field: str, value: Any) -> None:
    with pytest.raises(TypeError, match=f"Limits.{field} must be a .*number, not {type(value).__name__}"):
        ingest.Limits(**{field: value})


def test_limits_accept_sensible_values_and_no_upper_bound() -> None:
    limits = ingest.Limits(min_rate_hz=1.0, max_rate_hz=math.inf, max_duration_s=math.inf, max_samples=np.int64(5),
                           max_nonfinite_fraction=0.0, max_backward_jump_s=0.0, min_duration_s=0.0)
    assert limits.max_duration_s == math.inf and limits.max_samples == 5
    assert ingest.Limits() == ingest.Limits(min_rate_hz=4.0)             # the defaults pass their own checks


def test_dumps_and_to_document_name_what_they_take(trip_file: Path) -> None:
    with pytest.raises(TypeError, match=r"dumps\(\) takes an ingest.Trace.*not str"):
        ingest.dumps(str(trip_file))                                      # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"to_document\(\) takes an ingest.Trace.*not dict"):
        ingest.to_document({"a": 1})                                      # type: ignore[arg-type]


def test_detect_takes_params_as_replay_does(trace: ingest.Trace) -> None:
    assert detect.detect(trace, {"threshold_floor_mps2": 50.0}).params == STRICT   # type: ignore[arg-type]
    assert detect.detect(trace, None).params == DetectorParams()                  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DetectorParams, a dict of their fields"):
        detect.detect(trace, "x")                                                  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ finding 9
def test_a_trace_prints_on_one_line_with_its_summary(trace: ingest.Trace) -> None:
    text = repr(trace)
    assert text == str(trace) and "\n" not in text and len(text) < 250 and "array" not in text
    assert text == ("Trace(trip_id='misuse-trip', device_id='d', n_samples=3600, duration_s=36.0, "
                    "accel_rate_hz=100.0, gyro=False, gps_fixes=36, source_format='bump')")


def test_a_hand_built_trace_still_prints() -> None:
    rows = ingest.Trace(trip_id="a", device_id="b", t_s=[0.0, 0.5], accel_mps2=[[0, 0, 9.8]] * 2,  # type: ignore[arg-type]
                        gyro_t_s=[1.0], gyro_rad_s=[[0, 0, 0]], gps_t_s=[], lat_deg=[], lon_deg=[],  # type: ignore[arg-type]
                        speed_mps=[], heading_deg=[], accuracy_m=[], quality=None)  # type: ignore[arg-type]
    assert repr(rows) == ("Trace(trip_id='a', device_id='b', n_samples=2, duration_s=0.5, accel_rate_hz=nan, "
                          "gyro=True, gps_fixes=0, source_format='bump.trace/1')")


# ------------------------------------------------------------------------------------------------ finding 8
PUBLIC = {"ingest": ["read", "detect_format", "format_names", "is_one_file_format", "Limits"],
          "bump": ["replay", "Replay", "Replay.t0_s", "Replay.t0", "Replay.duration_s", "Replay.params",
                   "Replay.impacts", "Replay.candidates"]}


@pytest.mark.parametrize("name", [f"{m}.{n}" for m, names in PUBLIC.items() for n in names])
def test_public_names_have_docstrings(name: str) -> None:
    obj: Any = {"ingest": ingest, "bump": bump}[name.split(".")[0]]
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_docstrings_state_units_and_what_is_returned() -> None:
    assert "[cm]" in (Replay.impacts.__doc__ or "") and "depth_class" in (Replay.impacts.__doc__ or "")
    assert "returns a :class:`Replay`" in (bump.replay.__doc__ or "")
    assert "database" in (bump.replay.__doc__ or "") and "params_source" in (bump.replay.__doc__ or "")
    read_doc = ingest.read.__doc__ or ""
    assert "Returns a validated :class:`ingest.Trace`" in read_doc and "m/s^2" in read_doc and "TypeError" in read_doc
    assert "[Hz]" in (ingest.Limits.__doc__ or "") or "Rates in Hz" in (ingest.Limits.__doc__ or "")
