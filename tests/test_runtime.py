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
    for variable in ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.setenv(variable, str(1 << 20))
        assert keep_freed_memory() is False, variable     # an explicit setting is left alone
        monkeypatch.delenv(variable)
    assert keep_freed_memory() is True                    # mallopt accepted both settings


FAULT_PROBE = """
import resource
from bump.runtime import keep_freed_memory
keep_freed_memory()
import numpy as np
def trip():                      # two 3.2 MB arrays alive at once, freed together: a trip's temporaries
    a = np.ones(400_000); b = a * 2.0; del a, b
trip()                           # the working set comes in once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    trip()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_kept_memory_is_not_faulted_in_again_for_each_trip() -> None:
    """Once a trip's arrays have been in, the next trips reuse the heap's pages: no page faults (glibc's default
    trims the heap's top and faults ~1,500 pages in again per trip; the pad alone, which freezes the adaptive mmap
    threshold at 128 KiB, maps every array anew)."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's mallopt only")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", FAULT_PROBE], env=clean, capture_output=True, text=True, check=True)
    assert int(out.stdout) < 100, out.stdout       # 20 trips of 2 x 782 pages each without the settings


def _blas_thread_counts() -> set[int]:
    from threadpoolctl import threadpool_info

    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_detect_runs_blas_on_one_thread_and_gives_the_process_its_limits_back(monkeypatch: pytest.MonkeyPatch
                                                                              ) -> None:
    """A notebook left at OpenBLAS's default pool: detect() runs on one thread (detect.threads), and the process
    has its own limits again once the last of several concurrent calls ends. (threadpoolctl lets only the thread
    that first set a limit, here this one, change the pool: calls from other threads run as the process is set.)"""
    import threading

    from threadpoolctl import threadpool_limits

    import detect.pipeline
    import ingest
    from detect import detect as run_detect
    from detect.threads import blas_on_one_thread
    from tests.conftest import make_doc

    trace = ingest.read(json.dumps(make_doc(duration_s=20.0)).encode(), name="probe.json")
    inside: list[set[int]] = []
    gate = threading.Barrier(2)
    build = detect.pipeline.build_signals

    def spying_build(*args: object, **kwargs: object) -> object:
        inside.append(_blas_thread_counts())
        if threading.current_thread().name.startswith("detect-"):
            gate.wait(timeout=30)                  # both threads inside detect() at once
        return build(*args, **kwargs)

    monkeypatch.setattr(detect.pipeline, "build_signals", spying_build)
    with threadpool_limits(limits=2, user_api="blas"):
        if _blas_thread_counts() != {2}:
            pytest.skip("BLAS cannot run 2 threads here (one core)")
        run_detect(trace)
        assert inside and all(c == {1} for c in inside), inside
        assert _blas_thread_counts() == {2}                    # given back
        with blas_on_one_thread():                             # a call inside another's time: the outer restores
            run_detect(trace)
            assert _blas_thread_counts() == {1}
        assert _blas_thread_counts() == {2}
        inside.clear()
        workers = [threading.Thread(target=run_detect, args=(trace,), name=f"detect-{k}") for k in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        assert len(inside) == 2 and not any(w.is_alive() for w in workers), inside      # both ran to the end
        assert _blas_thread_counts() == {2}                    # the last call out restored it
