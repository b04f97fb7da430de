"""bump's processes keep BLAS to one thread unless the environment says otherwise (bump.runtime)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = ("import json, numpy; from threadpoolctl import threadpool_info; from bump.runtime import one_blas_thread; "
         "one_blas_thread(); print(json.dumps([i['num_threads'] for i in threadpool_info() "
         "if i['user_api'] == 'blas']))")


def _blas_threads(**env: str) -> list[int]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_one_blas_thread_unless_the_environment_sets_it() -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: BLAS has one thread anyway")
    assert _blas_threads() and set(_blas_threads()) == {1}
    assert set(_blas_threads(OPENBLAS_NUM_THREADS="2")) == {2}       # an explicit setting is left alone
