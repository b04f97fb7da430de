"""DetectorParams checks every value's type and range, in the constructor and in ``from_dict``, and the CLI
(`bump detect --params`, `bump reprocess --params`) and ``bump.replay`` report a bad one in one clear line."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from test_replay import _trace

import bump
from bump.cli.main import main
from detect import DetectorParams
from detect.params import BAND, ParamsError, VersionedParams
from ingest.errors import BumpError


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("threshold_ratio", "abc", "finite number > 0"),
    ("threshold_ratio", -5.0, "finite number > 0"),
    ("threshold_ratio", 0.0, "finite number > 0"),
    ("threshold_ratio", math.nan, "finite number > 0"),
    ("threshold_ratio", math.inf, "finite number > 0"),
    ("threshold_ratio", True, "finite number > 0"),        # a bool is no number here
    ("threshold_ratio", None, "finite number > 0"),
    ("gap_s", 0.0, "finite number > 0"),
    ("energy_window_s", 0.0, "finite number > 0"),
    ("threshold_floor_mps2", -0.1, ">= 0"),
    ("weak_coherence", 1.5, "<= 1"),
    ("release_ratio", 0.0, "> 0 and <= 1"),
    ("handling_tilt_deg", 200.0, "<= 180"),
    ("gps_latency_s", math.nan, "finite number"),
    ("impact_band_hz", (3.0,), "band"),
    ("impact_band_hz", (25.0, 3.0), "band"),
    ("impact_band_hz", (0.0, 25.0), "band"),
    ("impact_band_hz", (3.0, math.nan), "band"),
    ("impact_band_hz", ("3", 25.0), "band"),
    ("impact_band_hz", 3.0, "band"),
    ("body_band_hz", (0.4, 3.0, 5.0), "band"),
])
def test_a_bad_value_names_the_field_the_value_and_the_range(name: str, value: object, fragment: str) -> None:
    with pytest.raises(ParamsError) as info:
        DetectorParams(**{name: value})
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, BumpError) and err.field == name
    assert str(err).startswith(f"{name}: ") and repr(value) in str(err) and fragment in str(err)


def test_good_values_are_kept_and_normalised_to_the_default_types() -> None:
    p = DetectorParams(threshold_ratio=3, impact_band_hz=[3, 500], gps_latency_s=-0.2, merge_gap_s=0,
                       threshold_floor_mps2=np.float32(0.5))
    assert p.threshold_ratio == 3.0 and type(p.threshold_ratio) is float
    assert p.impact_band_hz == (3.0, 500.0) and all(type(v) is float for v in p.impact_band_hz)  # above Nyquist: ok
    assert p.gps_latency_s == -0.2 and p.merge_gap_s == 0.0 and type(p.threshold_floor_mps2) is float
    # an int and a float of one value are one parameter set: same digest (stored with results)
    assert DetectorParams(threshold_ratio=3).digest() == DetectorParams(threshold_ratio=3.0).digest()
    assert DetectorParams().to_dict() == DetectorParams.from_dict(DetectorParams().to_dict()).to_dict()


def test_every_float_field_has_a_declared_range() -> None:
    """A new parameter must be given a range in RANGES (the default, 'any finite number', is rarely right)."""
    for f in dataclasses.fields(DetectorParams):
        assert f.name in DetectorParams.RANGES, f"{f.name} has no entry in DetectorParams.RANGES"
        if DetectorParams.RANGES[f.name] == BAND:
            assert isinstance(f.default, tuple) and len(f.default) == 2
    DetectorParams()     # the defaults pass their own checks


def test_int_and_bool_fields_are_checked_by_their_default_type() -> None:
    @dataclasses.dataclass(frozen=True)
    class Toy(VersionedParams):
        RANGES = {"count": (1.0, None, True, False)}       # noqa: RUF012 (a ClassVar in VersionedParams)
        count: int = 3
        enabled: bool = True

        def __post_init__(self) -> None:
            self.check_values()

    assert Toy(count=4.0).count == 4 and type(Toy(count=4.0).count) is int
    for kwargs, fragment in [({"count": 2.5}, "whole number"), ({"count": 0}, ">= 1"), ({"count": "3"}, "whole"),
                             ({"enabled": 1}, "true or false")]:
        with pytest.raises(ParamsError, match=fragment):
            Toy(**kwargs)


@pytest.mark.parametrize(("data", "fragment"), [
    ({"threshold_ratio": "abc"}, "threshold_ratio: must be a finite number > 0, got 'abc'"),
    ({"impact_band_hz": [3]}, "impact_band_hz: must be a band"),
    ({"impact_band_hz": [25, 3]}, "impact_band_hz: must be a band"),
    ({"no_such": 1}, "unknown detector parameters ['no_such']"),
    ([1, 2], "must be an object"),
])
def test_from_dict_goes_through_the_same_checks(data: object, fragment: str) -> None:
    with pytest.raises(ParamsError) as info:
        DetectorParams.from_dict(data)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_construction_stays_cheap() -> None:
    """DetectorParams() is built per call in places (replay, API params): the checks must cost microseconds."""
    DetectorParams()
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        DetectorParams()
    per_call_s = (time.perf_counter() - started) / n
    assert per_call_s < 300e-6          # ~20 us measured on the 2-core box; 15x headroom for a loaded machine


@pytest.mark.parametrize("command", ["detect", "reprocess"])
@pytest.mark.parametrize(("doc", "fragment"), [
    ({"threshold_ratio": "abc"}, "threshold_ratio: must be a finite number > 0, got 'abc'"),
    ({"impact_band_hz": [3]}, "impact_band_hz: must be a band"),
    ({"impact_band_hz": [25, 3]}, "impact_band_hz: must be a band"),
    ({"threshold_ratio": -5}, "threshold_ratio: must be a finite number > 0, got -5"),
])
def test_cli_params_file_with_a_bad_value_is_one_line_exit_2(tmp_path: Path, capsys, command: str, doc: dict,
                                                             fragment: str) -> None:
    path = tmp_path / "params.json"
    path.write_bytes(orjson.dumps(doc))
    target = ["--db", str(tmp_path / "x.db")] if command == "reprocess" else [str(tmp_path / "none.json.gz")]
    code = main([command, *target, "--params", str(path)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and fragment in err and str(path) in err
    assert "Traceback" not in err and not (tmp_path / "x.db").exists()


def test_cli_params_given_as_inline_json_says_it_must_be_a_file(tmp_path: Path, capsys) -> None:
    code = main(["reprocess", "--db", str(tmp_path / "x.db"), "--params", '{"threshold_ratio": 5.0}'])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "path of a JSON file, not inline JSON" in err
    code = main(["detect", str(tmp_path), "--params", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 2 and "is a folder" in err


def test_replay_with_bad_params_raises_the_params_error() -> None:
    trace = _trace(duration_s=12.0, hits_s=(8.0,))
    with pytest.raises(ParamsError, match="threshold_ratio: must be a finite number > 0, got 'abc'"):
        bump.replay(trace, {"threshold_ratio": "abc"})
    with pytest.raises(ValueError, match="DetectorParams, a dict of their fields"):
        bump.replay(trace, "threshold_ratio=3")  # type: ignore[arg-type]


def test_detect_of_a_path_says_to_read_it_first() -> None:
    import detect

    with pytest.raises(TypeError, match=r"ingest\.read\(path\)"):
        detect.detect("x.json.gz")


@pytest.mark.parametrize(("change", "field", "fragment"), [
    ({"gate_sigmas": -1}, "gate_sigmas", "> 0"),
    ({"opposite_deg": 200}, "opposite_deg", "<= 180"),
    ({"repaired_miss_prob": 1.0}, "repaired_miss_prob", "< 1"),
    ({"summary_hits": "x"}, "summary_hits", "whole number"),
    ({"confirm_hit_rate": float("nan")}, "confirm_hit_rate", "finite"),
    ({"confirm_devices": 1}, "confirm_devices", "one device never confirms"),
])
def test_defect_parameters_are_checked_like_the_detectors(change: dict, field: str, fragment: str) -> None:
    """DefectParams once took any gate, angle or rate (only three fields were checked, with plain ValueErrors)."""
    from bump.cluster import DefectParams

    with pytest.raises(ParamsError, match=fragment) as info:
        DefectParams(**change)
    assert info.value.field == field
    with pytest.raises(ParamsError):
        DefectParams.from_dict(change)
    assert DefectParams(summary_hits=4.0).summary_hits == 4 and DefectParams().digest() == DefectParams().digest()
