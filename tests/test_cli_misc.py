"""CLI option checks and messages: `bump simulate` options (checked before anything is written), `bump defects`
filters, limits, paging notices and --out, `bump evaluate` option combinations and as-of default, `bump token list`
times, and the help texts that promise these."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import orjson
import pytest
from test_evaluate import dets, truth_doc
from test_store import DAY_S, T0_S, add_trip

from bump.cli.main import build_parser, main
from bump.sim.generate import generate
from bump.sim.scenario import ScenarioError, check_origin, check_seed, check_workers
from bump.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices[command].format_help().split())       # one line: argparse wraps at the width


# ------------------------------------------------------------------------------------------------ simulate


@pytest.mark.parametrize(("option", "fragment"), [
    (["--seed", "-1"], "seed: must be a whole number >= 0, got -1"),
    (["--workers", "0"], "workers: must be a whole number >= 1"),
    (["--workers", "-2"], "workers: must be a whole number >= 1"),
    (["--origin", "91", "0"], "latitude 91.0 is not within -80..80"),
    (["--origin", "42", "200"], "longitude 200.0 is not within"),
    (["--origin", "nan", "nan"], "latitude nan"),
    (["--origin", "0", "179.9999"], "would cross the antimeridian"),
    (["--origin", "42", "nan"], "longitude nan"),
    (["--drivers", "0"], "drivers is 0; use 1..1000"),
])
def test_simulate_refuses_bad_options_before_writing(tmp_path: Path, capsys, option: list[str],
                                                     fragment: str) -> None:
    out = tmp_path / "sim"
    code, stdout, err = _run(capsys, "simulate", "--drivers", "1", "--trips-per-driver", "1", "--out", str(out),
                             *option)
    assert code == 2 and stdout == "" and err.count("\n") == 1
    assert err.startswith("bump simulate: error: ") and fragment in err
    assert not out.exists()                                 # no half-made OUT/trips/


def test_simulate_option_checks_accept_the_good_and_normalise() -> None:
    assert check_seed(0) == 0 and check_seed(2**40) == 2**40
    assert check_workers(1) == 1 and check_workers(4) == 4
    assert check_origin((42, -71)) == (42.0, -71.0)
    assert check_origin((-33.87, 151.21)) == (-33.87, 151.21)               # Sydney
    assert check_origin((0.0, 179.9)) == (0.0, 179.9)                       # ~5.5 km from the antimeridian
    assert check_origin((-64.0, -179.8)) == (-64.0, -179.8)
    for bad in [(True,), (1.5,), ("3",)]:
        with pytest.raises(ScenarioError):
            check_seed(*bad)
    with pytest.raises(ScenarioError, match="would cross"):
        check_origin((64.0, -179.95))                                       # 4.9 km away at 64 deg: too close
    with pytest.raises(ScenarioError, match="two numbers"):
        check_origin((1.0,))


def test_generate_checks_before_writing_and_refuses_a_file_as_out(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="seed"):
        generate("smoke", -1, tmp_path / "a", drivers=1, trips_per_driver=1, progress=False)
    with pytest.raises(ScenarioError, match="origin"):
        generate("smoke", 1, tmp_path / "a", drivers=1, trips_per_driver=1, progress=False, origin=(91.0, 0.0))
    assert not (tmp_path / "a").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ScenarioError, match="is a file"):
        generate("smoke", 1, tmp_path / "f", drivers=1, trips_per_driver=1, progress=False)
    assert (tmp_path / "f").read_text() == "x"


def test_simulate_help_example_matches_the_sample_and_does_not_overwrite_it() -> None:
    text = _help("simulate")
    readme = (ROOT / "sample_traces" / "README.md").read_text()
    made_with = re.search(r"bump simulate --scenario smoke --seed (\d+)", readme)
    assert made_with is not None
    example = re.search(r"bump simulate --scenario smoke --seed (\d+) --out (\S+)", text)
    assert example is not None and example.group(1) == made_with.group(1)
    assert "sample_traces" not in example.group(2)
    assert "(default 0)" in text and "default the scenario's: arterial 20, city 20, dense 20, hard 20, smoke 6" in text
    assert "created if missing" in text


# ------------------------------------------------------------------------------------------------ defects


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """Three confirmed potholes on one road (four devices)."""
    path = tmp_path_factory.mktemp("misc") / "defects.db"
    with Store.open(path) as store:
        for k, dev in enumerate(["a", "b", "c", "d"]):
            add_trip(store, f"t{k}", dev, T0_S + k * DAY_S,
                     [(0.0, 0.0, "pothole", 14.0, 0.9), (0.0, 100.0, "pothole", 3.0, 0.8),
                      (0.0, 200.0, "pothole", 6.0, 0.9)], length_m=400.0)
    return path


@pytest.mark.parametrize("bbox", ["-200,42,-71,43", "-71.07,91,-71.04,92", "-71.07,42.4,-71.04,42.3"])
def test_defects_bbox_out_of_range_gives_the_ranges(db: Path, capsys, bbox: str) -> None:
    code, out, err = _run(capsys, "defects", "--db", str(db), f"--bbox={bbox}")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "-180 <= W, E <= 180 and -90 <= S <= N <= 90" in err and "--bbox" in err


@pytest.mark.parametrize(("option", "value"), [("--status", ","), ("--status", ""), ("--kind", ""),
                                               ("--kind", " , ")])
def test_defects_an_empty_filter_is_an_error_naming_the_option(db: Path, capsys, option: str, value: str) -> None:
    code, out, err = _run(capsys, "defects", "--db", str(db), option, value)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{option} {value!r} names nothing" in err


@pytest.mark.parametrize("limit", ["0", "100001"])
def test_defects_limit_range_is_checked_and_stated(db: Path, capsys, limit: str) -> None:
    code, _, err = _run(capsys, "defects", "--db", str(db), "--limit", limit)
    assert code == 2 and "--limit must be between 1 and 100000" in err
    assert "1..100000 (default 100)" in _help("defects") and "(default table)" in _help("defects")
    assert "antimeridian" in _help("defects")


@pytest.mark.parametrize("fmt", ["csv", "geojson", "table"])
def test_defects_cut_at_limit_say_so_on_stderr_not_in_the_data(db: Path, capsys, fmt: str) -> None:
    code, out, err = _run(capsys, "defects", "--db", str(db), "--limit", "2", "--format", fmt)
    assert code == 0
    cursor = re.search(r"next page: --cursor (\S+)", err)
    assert cursor is not None and "more defects than --limit 2" in err
    assert "cursor" not in out
    if fmt == "csv":
        assert len(out.strip().splitlines()) == 3                      # header and two rows
    elif fmt == "geojson":
        assert len(json.loads(out)["features"]) == 2
    code, out, err = _run(capsys, "defects", "--db", str(db), "--limit", "2", "--format", fmt,
                          "--cursor", cursor.group(1))
    assert code == 0 and err == ""                                     # the last page: no notice
    _, _, err_all = _run(capsys, "defects", "--db", str(db), "--format", fmt)       # under the default limit
    assert err_all == ""


def test_defects_out_to_a_folder_or_into_a_missing_folder(db: Path, tmp_path: Path, capsys) -> None:
    code, _, err = _run(capsys, "defects", "--db", str(db), "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "is a folder; give a file name" in err and "Errno" not in err
    target = tmp_path / "new" / "deeper" / "d.csv"
    code, _, _ = _run(capsys, "defects", "--db", str(db), "--format", "csv", "--out", str(target))
    assert code == 0 and target.read_text().startswith("id,")


# ------------------------------------------------------------------------------------------------ evaluate


def _truth_with_a_repair(tmp_path: Path) -> tuple[str, str]:
    """The test_evaluate truth, P1 repaired at t=500 and the last trip ending at t=2000; defects reported at the
    three other reportable defects (what `bump run` confirms once P1's hits have aged out)."""
    doc = truth_doc()
    p1 = next(d for d in doc["defects"] if d["id"] == "P1")
    p1["repaired_after"] = 500.0
    doc["trips"] = [{**doc["trips"][0], "end_t": 600.0}, {**doc["trips"][1], "end_t": 2000.0}]
    truth = tmp_path / "truth.json"
    truth.write_bytes(orjson.dumps(doc))
    reported = tmp_path / "defects.json"
    reported.write_bytes(orjson.dumps(dets([(100.0, 0.0), (200.0, 0.0), (0.0, 100.0)])))
    return str(truth), str(reported)


def test_evaluate_scores_defects_as_of_the_last_trip_by_default(tmp_path: Path, capsys) -> None:
    truth, reported = _truth_with_a_repair(tmp_path)
    code, out, _ = _run(capsys, "evaluate", "--truth", truth, "--defects", reported, "--json")
    score = orjson.loads(out)
    assert code == 0 and (score["tp"], score["fp"], score["fn"]) == (3, 0, 0) and score["recall"] == 1.0
    code, out, _ = _run(capsys, "evaluate", "--truth", truth, "--defects", reported, "--json", "--as-of", "0")
    score = orjson.loads(out)
    assert code == 0 and (score["tp"], score["fn"]) == (3, 1) and math.isclose(score["recall"], 0.75)
    assert "as `bump run` scores" in _help("evaluate")


def test_evaluate_refuses_options_that_do_not_apply(tmp_path: Path, capsys) -> None:
    truth, reported = _truth_with_a_repair(tmp_path)
    code, out, err = _run(capsys, "evaluate", "--truth", truth, "--defects", reported, "--trip", "nope")
    assert code == 2 and out == "" and "--trip applies to --impacts only" in err
    impacts = tmp_path / "det.jsonl"
    impacts.write_bytes(orjson.dumps({"trip_id": "t1", "impacts": []}) + b"\n")
    code, _, err = _run(capsys, "evaluate", "--truth", truth, "--impacts", str(impacts), "--as-of", "5")
    assert code == 2 and "--as-of applies to --defects only" in err


@pytest.mark.parametrize(("option", "name"), [("--defects", "missing.json"), ("--defects", "."),
                                              ("--truth", "missing.json")])
def test_evaluate_unreadable_files_name_the_option(tmp_path: Path, capsys, option: str, name: str) -> None:
    truth, reported = _truth_with_a_repair(tmp_path)
    args = {"--truth": truth, "--defects": reported, option: str(tmp_path / name)}
    code, _, err = _run(capsys, "evaluate", *[x for kv in args.items() for x in kv])
    assert code == 2 and err.count("\n") == 1 and f"{option} {tmp_path / name}" in err and "Errno" not in err
    assert ("is a folder" if name == "." else "cannot be read (No such file or directory)") in err


# ------------------------------------------------------------------------------------------------ token, help


def test_token_list_prints_utc_times_with_z(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "t.db")
    assert main(["token", "create", "--role", "crew", "--db", db]) == 0
    capsys.readouterr()
    code, out, _ = _run(capsys, "token", "list", "--db", db)
    created = re.search(r"created (\S+)", out)
    assert code == 0 and created is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created.group(1)) and "+00:00" not in out


def test_reprocess_help_says_params_is_a_file() -> None:
    text = _help("reprocess")
    assert "--params FILE" in text and "not inline JSON" in text and "--params JSON" not in text


def test_bump_run_checks_its_limit_before_ingesting(tmp_path, capsys) -> None:
    from bump.cli.main import main

    assert main(["run", str(tmp_path / "nothing-here"), "--db", str(tmp_path / "r.db"), "--limit", "0"]) == 2
    assert "--limit must be between 1" in capsys.readouterr().err and not (tmp_path / "r.db").exists()


def test_output_piped_into_a_reader_that_stops_ends_quietly(tmp_path) -> None:
    import subprocess
    import sys

    r = subprocess.run(f"{sys.executable} -m bump defects --help | head -1", shell=True, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("usage: bump defects") and "Broken pipe" not in r.stderr


@pytest.mark.parametrize("command", ["detect", "info"])
def test_a_folder_of_recordings_gives_each_of_them(command: str, capsys) -> None:
    folder = Path(__file__).parent / "data" / "physics_toolbox"                 # five one-file recordings
    assert main([command, "--json", str(folder)]) == 0
    files = [json.loads(line)["file"] for line in capsys.readouterr().out.splitlines()]
    assert sorted(Path(f).name for f in files) == sorted(p.name for p in folder.glob("*.csv"))


def test_detect_json_impacts_tell_their_spot_kind(capsys) -> None:
    trip = sorted((Path(__file__).parents[1] / "sample_traces" / "trips").glob("*.json.gz"))[0]
    assert main(["detect", "--json", str(trip)]) == 0
    impacts = json.loads(capsys.readouterr().out)["impacts"]
    assert impacts and all(i["spot_kind"] == i["kind"] for i in impacts if i["kind"] != "rough")


def test_detect_table_shows_what_reading_the_trace_changed(tmp_path: Path, capsys) -> None:
    import numpy as np

    t = 1_780_000_000.0 + np.repeat(np.arange(0.0, 60.0, 0.05), 5)          # bursts of 5 samples on one stamp
    n = t.size
    rng = np.random.default_rng(1)
    doc = {"format": "bump.trace/1", "trip_id": "bursts", "device_id": "d",
           "accel": {"t": t, "x": rng.normal(0, 0.1, n), "y": rng.normal(0, 0.1, n), "z": 9.81 + rng.normal(0, 0.1, n)}}
    path = tmp_path / "bursts.json"
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))
    assert main(["detect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "! accel:" in out and "bursts" in out and "re-spaced" in out


def test_reading_a_folder_of_several_recordings_names_them_and_the_commands_that_read_each() -> None:
    import ingest

    folder = Path(__file__).parent / "data" / "physics_toolbox"
    with pytest.raises(ingest.FormatError, match=r"holds 5 recordings .*bump ingest, bump detect or bump info"):
        ingest.read(folder)
    assert ingest.read(folder / "ios_sensor.csv").n_samples > 0                     # one of them reads


def test_a_folder_of_one_recording_and_a_note_reads_as_that_recording(tmp_path: Path) -> None:
    import shutil

    import ingest

    trace = Path(__file__).parent / "data" / "physics_toolbox" / "ios_sensor.csv"
    shutil.copy(trace, tmp_path / trace.name)
    (tmp_path / "notes.txt").write_text("drove to work, phone in the cradle\n")
    assert ingest.read(tmp_path).n_samples == ingest.read(trace).n_samples


@pytest.mark.parametrize("command", ["detect", "info"])
def test_an_empty_folder_among_the_paths_does_not_stop_the_others(command: str, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    trace = Path(__file__).parent / "data" / "physics_toolbox" / "ios_sensor.csv"
    assert main([command, "--json", str(empty), str(trace)]) == 2
    out, err = capsys.readouterr()
    assert [json.loads(line)["file"] for line in out.splitlines()] == [str(trace)]
    assert f"bump {command}: error:" in err and "holds no traces" in err


def test_token_commands_on_a_missing_database(tmp_path: Path, capsys) -> None:
    typo = tmp_path / "typo.db"
    assert main(["token", "list", "--db", str(typo)]) == 2                  # nothing to list: an error, no file made
    assert "no database here" in capsys.readouterr().err and not typo.exists()
    assert main(["token", "create", "--role", "crew", "--db", str(typo)]) == 0
    out, err = capsys.readouterr()
    assert typo.exists() and "did not exist: created a new, empty database" in err
    assert len(out.splitlines()[-1]) >= 40                                   # the token alone on its last line


def test_ingest_of_paths_that_name_nothing_makes_no_database(tmp_path: Path, capsys) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    db = tmp_path / "new.db"
    assert main(["ingest", str(tmp_path / "a"), str(tmp_path / "b"), "--db", str(db)]) == 2
    assert not db.exists() and capsys.readouterr().err.count("holds no traces") == 2


def test_detect_json_is_the_same_bytes_whatever_the_hash_seed() -> None:
    """Rejection reasons come sorted: a set's order follows Python's per-process string hashing, so unsorted they
    differed from run to run (this trace has three reasons: 3! orders)."""
    import os
    import subprocess
    import sys

    trace = str(Path(__file__).resolve().parents[1] / "sample_traces" / "trips" / "smoke-d02-t01.json.gz")
    outs = {subprocess.run([sys.executable, "-m", "bump.cli.main", "detect", "--json", trace], check=True,
                           capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2", "3", "4")}
    assert len(outs) == 1
    rejected = orjson.loads(outs.pop())["quality"]["candidates_rejected"]
    assert list(rejected) == sorted(rejected) and len(rejected) == 3


def test_detect_on_a_bump_json_trace_never_loads_pandas() -> None:
    """pandas (~0.3 s to import) is loaded only where a frame is made (``bump.replay``, ``Columns.to_frame``, the CSV
    formats): ``bump detect`` on ``bump.trace/1`` JSON, the phones' upload format, runs without it."""
    import subprocess
    import sys

    trace = str(ROOT / "sample_traces" / "trips" / "smoke-d02-t01.json.gz")
    code = ("import sys; from bump.cli.main import main; rc = main(['detect', '--json', sys.argv[1]]); "
            "sys.stderr.write(repr(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, trace], capture_output=True, check=True, cwd=ROOT)
    assert done.stderr.decode().endswith("[]")
    assert len(orjson.loads(done.stdout)["impacts"]) > 0
