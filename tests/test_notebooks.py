"""The analysts' notebooks (notebooks/*.py, jupytext py:percent) run top to bottom in a real Jupyter kernel.

Each notebook is converted in memory with jupytext and executed cell by cell with nbclient, in notebooks/ as the
working directory, with the headless matplotlib backend (MPLBACKEND=Agg). The kernel is registered by the test
itself in a temporary JUPYTER_PATH (the venv's own Python running ipykernel), so nothing has to be installed
beyond the `test` extra. A failing cell fails the test with its number and source. After the last cell one
extra cell sends back, as JSON, a few values computed in the notebook's namespace (see CHECKS), and each notebook
is checked for what it promises: impacts found, a sweep with the expected rows, defects ranked, a phone export
that reads back to the trace it was made from. Each notebook must finish within BUDGET_S on a 2-core machine.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL_NAME = "bump-notebook-test"
BUDGET_S = 60.0                       # every notebook, cells only (kernel start-up excluded)
MARKER = "BUMP-NOTEBOOK-EXPORT:"
ANSI = re.compile(r"\x1b\[[0-9;]*m")          # colours of IPython's tracebacks

# notebook -> {name: Python expression evaluated in the notebook's namespace after its last cell}; values must
# be JSON-serialisable (plain int / float / str / list / dict).
CHECKS: dict[str, dict[str, str]] = {
    "01_replay_a_trip": {
        "n_impacts": "n_impacts",
        "n_impacts_frame": "len(r.impacts)",
        "duration_s": "r.duration_s",
        "zoom_t": "{k: float(v) for k, v in zoom_t.items()}",
        "chosen_detected": "{k: bool(pd.notna(v['t_detected_s'])) for k, v in chosen.items()}",
        "chosen_types": "{k: v['type'] for k, v in chosen.items()}",
        "figure_axes": "{k: len(f.axes) for k, f in figures.items()}",
        "n_passes": "len(matched)",
        "n_truth_defects": "int(hits.loc[hits['trip_id'] == trip_id, 'defect_id'].nunique())",
        "evidence_rows": "list(evidence.index)",
        "stored_as_file": "bool(same_as_file[\"identical to the file's\"].all())",
        "stored_stages": "len(same_as_file)",
    },
    "02_tune_the_detector": {
        "columns": "list(sweep.columns)",
        "grid": "sweep[[PARAM_A, PARAM_B]].values.tolist()",
        "values_a": "list(VALUES_A)",
        "values_b": "list(VALUES_B)",
        "precision": "sweep['precision'].tolist()",
        "recall": "sweep['recall'].tolist()",
        "n_detected": "sweep['n_detected'].tolist()",
        "n_passes": "sweep['n_passes'].tolist()",
        "n_trips": "len(traces)",
        "best": "[float(best_params[PARAM_A]), float(best_params[PARAM_B])]",
        "check_rows": "list(check.index)",
        "check_recall": "check['recall'].tolist()",
        "read_back_same": "read_back == tuned",
        "cli_status": "cli.returncode",
    },
    "03_city_defects": {
        "n_trips": "sum(not s.skipped for s in summaries)",
        "skipped_again": "again.skipped",
        "n_sample_files": "len(trip_files)",
        "n_defects": "len(defects)",
        "priorities": "defects['priority'].tolist()",
        "matched_ids": "sorted(m[1] for m in score.matches)",
        "recall": "score.recall",
        "hit_rate_by_type": "{k: float(v) for k, v in hit_rate_by_type.items()}",
        "n_cells": "len(cells)",
        "n_coverage": "len(coverage_cells)",
        "same_as_cli": "bool(same_as_cli)",
    },
    "04_import_a_phone_export": {
        "members": "sorted(members)",
        "header": "accel_header",
        "source_format": "imported.source_format",
        "n_samples": "[len(original.t_s), len(imported.t_s)]",
        "max_accel_error_mps2": "max_accel_error_mps2",
        "max_time_error_s": "max_time_error_s",
        "n_impacts": "n_impacts",
        "recall": "score.recall",
        "n_fixture_traces": "len(fixtures)",
    },
}


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for a kernel spec of this very Python, registered in a temporary JUPYTER_PATH."""
    base = tmp_path_factory.mktemp("jupyter")
    spec_dir = base / "data" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "bump (test)", "language": "python", "metadata": {"debugger": False}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return {"JUPYTER_PATH": str(base / "data"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1", "IPYTHONDIR": str(base / "ipython"), "MPLBACKEND": "Agg",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def run_notebook(path: Path, exports: dict[str, str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                 *, cwd: Path = NOTEBOOKS, budget_s: float = BUDGET_S) -> tuple[dict[str, Any], float]:
    """Execute ``path`` (py:percent) cell by cell; return (exported values, seconds spent in its own cells)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = jupytext.read(path, fmt="py:percent")
    n_cells = len(nb.cells)
    body = ", ".join(f"{json.dumps(k)}: ({expr})" for k, expr in exports.items())
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import json as _json\nprint({MARKER!r} + _json.dumps({{{body}}}, default=str))"))
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=budget_s, allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    elapsed_s = 0.0
    with client.setup_kernel():
        start = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            if index == n_cells:
                elapsed_s = time.perf_counter() - start
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
                where = "the export cell of the test" if index == n_cells else f"cell {index} (0-based)"
                pytest.fail(f"{path.name}: {where} failed:\n{cell.source}\n\n{ANSI.sub('', str(exc))}", pytrace=False)
    outputs = [o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream"]
    line = next(ln for ln in "".join(outputs).splitlines() if ln.startswith(MARKER))
    return json.loads(line[len(MARKER):]), elapsed_s


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def test_every_notebook_is_checked() -> None:
    """Each notebook has its checks here and nothing else is checked: a new notebook must be added to CHECKS."""
    assert [p.stem for p in notebook_paths()] == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs(name: str, kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = NOTEBOOKS / f"{name}.py"
    nb = jupytext.read(path, fmt="py:percent")
    kinds = [c.cell_type for c in nb.cells]
    assert kinds[0] == "markdown" and kinds.count("markdown") >= 4 and kinds.count("code") >= 4, kinds
    values, elapsed_s = run_notebook(path, CHECKS[name], kernel_env, monkeypatch)
    sys.stderr.write(f"\n{name}: {elapsed_s:.1f} s\n")
    assert elapsed_s < BUDGET_S, f"{name} took {elapsed_s:.1f} s, budget {BUDGET_S:.0f} s"
    globals()[f"check_{name[:2]}"](values)


def check_01(v: dict[str, Any]) -> None:
    assert v["n_impacts"] > 0 and v["n_impacts"] == v["n_impacts_frame"]
    wanted = ["cover", "pothole", "speed_bump"]
    assert sorted(v["zoom_t"]) == wanted
    assert v["chosen_types"] == {k: k for k in wanted}              # each zoom is over a truth feature of that type
    assert all(v["chosen_detected"].values()), v["chosen_detected"]  # ... that the detector found
    assert all(0.0 <= t <= v["duration_s"] for t in v["zoom_t"].values())
    assert v["figure_axes"]["map"] >= 1
    assert all(v["figure_axes"][k] == 5 for k in wanted), v["figure_axes"]   # raw .. speed stacked
    assert v["n_passes"] == v["n_truth_defects"] >= 3
    assert sorted(v["evidence_rows"]) == wanted
    assert v["stored_as_file"] and v["stored_stages"] >= 3          # a stored trip replays as its file


def check_02(v: dict[str, Any]) -> None:
    grid = [[a, b] for a in v["values_a"] for b in v["values_b"]]
    assert len(v["values_a"]) >= 3 and len(v["values_b"]) >= 2
    assert sorted(v["grid"]) == sorted(grid)                     # one row per parameter pair, none missing
    assert {"precision", "recall", "f1", "n_detected", "n_passes", "false_pothole_rate"} <= set(v["columns"])
    assert v["n_trips"] >= 2
    assert len(set(v["n_passes"])) == 1 and v["n_passes"][0] > 0  # the same truth for every setting
    assert all(0.0 <= x <= 1.0 for x in v["recall"] if x == x)
    assert all(0.0 <= x <= 1.0 for x in v["precision"] if x == x)
    assert len(set(v["n_detected"])) > 1                         # the sweep changes what the detector reports
    assert max(v["recall"]) > 0.0
    assert v["check_rows"] == ["default", "tuned"] and all(r > 0.0 for r in v["check_recall"])
    assert v["best"] in grid
    assert v["read_back_same"] and v["cli_status"] == 0             # the saved parameters work from the CLI


def check_03(v: dict[str, Any]) -> None:
    assert v["n_trips"] == v["n_sample_files"] > 0 and v["skipped_again"] is True
    assert v["n_defects"] > 0
    assert v["priorities"] == sorted(v["priorities"], reverse=True)  # ranked
    assert v["recall"] > 0.0 and v["matched_ids"]
    rates = v["hit_rate_by_type"]
    assert "pothole" in rates and "speed_bump" in rates
    assert rates["speed_bump"] > rates["pothole"]                # designed features are hit on (nearly) every pass
    assert v["n_cells"] > 0 and v["n_coverage"] > 0
    assert v["same_as_cli"]                                         # the notebook's list is bump defects'


def check_04(v: dict[str, Any]) -> None:
    assert {"TotalAcceleration.csv", "Location.csv", "Metadata.csv"} <= set(v["members"])
    assert v["header"] == ["time", "seconds_elapsed", "z", "y", "x"]
    assert v["source_format"] == "sensor_logger"
    assert v["n_samples"][0] == v["n_samples"][1] > 1000
    assert v["max_accel_error_mps2"] < 1e-5 and v["max_time_error_s"] < 1e-6
    assert v["n_impacts"] > 0 and v["recall"] > 0.0
    assert v["n_fixture_traces"] >= 2


def test_a_broken_notebook_fails_with_its_cell(kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("# %% [markdown]\n# A notebook with an error in its third cell.\n\n"
                    "# %%\nx = 1\n\n# %%\ny = x / 0\n\n# %%\nz = 3\n")
    with pytest.raises(pytest.fail.Exception) as info:
        run_notebook(path, {"x": "x"}, kernel_env, monkeypatch, cwd=tmp_path)
    message = str(info.value)
    assert "cell 2 (0-based)" in message and "y = x / 0" in message and "ZeroDivisionError" in message
