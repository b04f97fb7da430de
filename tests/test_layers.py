"""Import direction between the four layers, checked on the source with ``ast``.

ingest imports none of detect, bump, api; detect may import ingest; bump may import ingest and detect; api may
import all. Every ``import x``, ``from x import`` and ``from x.y import`` counts, wherever it stands (inside
functions and ``if TYPE_CHECKING:`` blocks too); relative imports stay inside their own package and always pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("ingest", "detect", "bump", "api")
ALLOWED = {
    "ingest": set(),
    "detect": {"ingest"},
    "bump": {"ingest", "detect"},
    "api": {"ingest", "detect", "bump"},
}


def imported_layers(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import of one of the layers in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue                      # relative imports: their own package
        found += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in LAYERS]
    return found


def violations(source: str, layer: str, filename: str = "<string>") -> list[str]:
    """One message per import of a layer that ``layer`` may not import."""
    return [f"{filename}:{line}: {layer} imports {target}"
            for line, target in imported_layers(source, filename)
            if target != layer and target not in ALLOWED[layer]]


def layer_files() -> list[tuple[str, Path]]:
    return [(layer, path) for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))]


def test_layers_import_downward_only() -> None:
    files = layer_files()
    assert (ROOT / "ingest" / "errors.py") in {p for _, p in files}
    assert len(files) >= 10
    problems = [v for layer, path in files
                for v in violations(path.read_text(encoding="utf-8"), layer, str(path.relative_to(ROOT)))]
    assert problems == []


@pytest.mark.parametrize("layer, source, bad", [
    ("ingest", "import detect.geo\n", ["detect"]),
    ("ingest", "from bump.cli import main\n", ["bump"]),
    ("ingest", "from api import app\n", ["api"]),
    ("detect", "def f():\n    from bump.evaluate import Truth\n", ["bump"]),
    ("detect", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import api.routes\n", ["api"]),
    ("bump", "import os, api\n", ["api"]),
    ("bump", "from ingest.errors import BumpError\nfrom detect.geo import haversine_m\nfrom . import x\n", []),
    ("detect", "from ingest.trace import Trace\nimport numpy as np\nfrom .geo import bearing_deg\n", []),
    ("api", "import ingest, detect, bump\nfrom bump.evaluate import Truth\n", []),
    ("ingest", "from ..bump import x\nimport ingestion_helpers\n", []),   # relative; a name that only starts alike
])
def test_checker_catches_violations(layer: str, source: str, bad: list[str]) -> None:
    found = violations(source, layer)
    assert [v.rsplit(" ", 1)[-1] for v in found] == bad
