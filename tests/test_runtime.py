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


def test_keep_freed_memory_on_glibc_unless_the_environment_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    from bump.runtime import keep_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's mallopt only")
    monkeypatch.setenv("MALLOC_TOP_PAD_", str(1 << 20))
    assert keep_freed_memory() is False                   # an explicit setting is left alone
    monkeypatch.delenv("MALLOC_TOP_PAD_")
    assert keep_freed_memory() is True                    # mallopt accepted M_TOP_PAD
