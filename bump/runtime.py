"""Process-wide settings for running `bump`'s own jobs (the CLI, each service worker, the benches).

BLAS threads. bump's work is many small array operations, parallel across processes (one uvicorn worker per core,
one batch job per core), not big linear algebra. OpenBLAS starts a thread per core for a matrix product as small as
a (3, 3) rotation of a trip, and its idle threads then spin on the other cores for a while: on 2 cores one
``detect()`` of an hour of 100 Hz cost 88 ms of CPU with the default pool and 44 ms with one thread, for the same
45 ms of wall time. So bump's processes keep BLAS to one thread (``threadpoolctl``; an explicit
``OPENBLAS_NUM_THREADS`` or similar setting in the environment is left alone). A library user calling
``detect.detect`` decides for their own process.
"""

from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def one_blas_thread() -> None:
    """Limit BLAS to one thread in this process, unless the environment sets the number of threads."""
    if not any(os.environ.get(v) for v in _THREAD_VARIABLES):
        threadpool_limits(limits=1, user_api="blas")
