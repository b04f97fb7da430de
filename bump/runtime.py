"""Process-wide settings for running `bump`'s own jobs (the CLI, each service worker, the benches).

BLAS threads. bump's work is many small array operations, parallel across processes (one uvicorn worker per core,
one batch job per core), not big linear algebra. OpenBLAS starts a thread per core for a matrix product as small as
a (3, 3) rotation of a trip, and its idle threads then spin on the other cores for a while: on 2 cores one
``detect()`` of an hour of 100 Hz cost 88 ms of CPU with the default pool and 44 ms with one thread, for the same
45 ms of wall time. So bump's processes keep BLAS to one thread (``threadpoolctl``; an explicit
``OPENBLAS_NUM_THREADS`` or similar setting in the environment is left alone). ``detect.detect`` called from
another program runs on one BLAS thread for the time of the call anyway (:mod:`detect.threads`).

Freed memory. A service worker handles each upload in a pool thread, whose glibc arena gives the top of its heap
back to the kernel (``madvise``) once a request has freed its arrays; the next upload then faults those pages in
again. In a ``bump serve`` worker under the upload bench that was ~1,200 page faults and ~2.5 ms of system CPU per
10-minute trip. Keeping ``KEPT_HEAP_BYTES`` at the top of each heap (glibc's ``M_TOP_PAD``) ends it: ~115 faults and
~2.5 ms less system CPU per upload (the total's gain is within the runs' noise), for ~45 MB more
resident memory per worker (bench/service_bench.py).
"""

from __future__ import annotations

import ctypes
import os
import platform

from threadpoolctl import threadpool_limits

KEPT_HEAP_BYTES = 64 << 20        # freed memory a heap keeps rather than returns to the kernel [bytes]
_M_TOP_PAD = -2                   # glibc's mallopt parameter (malloc.h)
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def one_blas_thread() -> None:
    """Limit BLAS to one thread in this process, unless the environment sets the number of threads."""
    if not any(os.environ.get(v) for v in _THREAD_VARIABLES):
        threadpool_limits(limits=1, user_api="blas")


def keep_freed_memory(n_bytes: int = KEPT_HEAP_BYTES) -> bool:
    """Let each glibc heap of this process keep ``n_bytes`` [bytes] of freed memory at its top (``M_TOP_PAD``)
    instead of giving it back to the kernel and faulting it in again for the next request. An explicit
    ``MALLOC_TOP_PAD_`` in the environment is left alone. Returns whether the setting was made (False off glibc)."""
    if os.environ.get("MALLOC_TOP_PAD_") or platform.libc_ver()[0] != "glibc":
        return False
    return bool(ctypes.CDLL(None).mallopt(_M_TOP_PAD, int(n_bytes)))
