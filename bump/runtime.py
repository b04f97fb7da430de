"""Process-wide settings for running `bump`'s own jobs (the CLI, each service worker, the benches).

BLAS threads. bump's work is many small array operations, parallel across processes (one uvicorn worker per core,
one batch job per core), not big linear algebra. OpenBLAS starts a thread per core for a matrix product as small as
a (3, 3) rotation of a trip, and its idle threads then spin on the other cores for a while: on 2 cores one
``detect()`` of an hour of 100 Hz cost 88 ms of CPU with the default pool and 44 ms with one thread, for the same
45 ms of wall time. So bump's processes keep BLAS to one thread (``threadpoolctl``; an explicit
``OPENBLAS_NUM_THREADS`` or similar setting in the environment is left alone). ``detect.detect`` called from
another program runs on one BLAS thread for the time of the call anyway (:mod:`detect.threads`).

Freed memory. glibc gives the top of a heap back to the kernel (``madvise``/``brk``) once it holds more than a
threshold of freed memory, and maps blocks above an adaptive size apart, unmapping them when freed; the next trip's
arrays then fault those pages in again. A service worker handled each upload with ~1,200 page faults and ~2.5 ms of
system CPU per 10-minute trip that way, and ``detect()`` of an hour of 100 Hz, repeated in one process, with 0 or
~4,200-4,500 faults (~8-10 ms of system CPU, a sixth of the call) depending on the order of the process's earlier
frees. Keeping ``KEPT_HEAP_BYTES`` at the top of each heap (glibc's ``M_TOP_PAD``) and serving blocks below
``MMAP_THRESHOLD_BYTES`` from the heaps (glibc's own adaptive ceiling on 64-bit) ends it: no faults once a trip's
working set is in, for ~45 MB more resident memory per worker (bench/service_bench.py).

:func:`set_up_process` makes both settings; the CLI, each service worker and the benches call it first.
"""

from __future__ import annotations

import ctypes
import os
import platform

from threadpoolctl import threadpool_limits

KEPT_HEAP_BYTES = 64 << 20        # freed memory a heap keeps rather than returns to the kernel [bytes]
MMAP_THRESHOLD_BYTES = 32 << 20  # blocks at least this big are mapped apart and unmapped when freed [bytes]
_M_TOP_PAD, _M_MMAP_THRESHOLD = -2, -3      # glibc's mallopt parameters (malloc.h)
_MALLOC_VARIABLES = ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def set_up_process() -> None:
    """bump's settings for a process that runs its jobs: BLAS on one thread, freed memory kept (module docstring)."""
    one_blas_thread()
    keep_freed_memory()


def one_blas_thread() -> None:
    """Limit BLAS to one thread in this process, unless the environment sets the number of threads."""
    if not any(os.environ.get(v) for v in _THREAD_VARIABLES):
        threadpool_limits(limits=1, user_api="blas")


def keep_freed_memory(n_bytes: int = KEPT_HEAP_BYTES) -> bool:
    """Let each glibc heap of this process keep ``n_bytes`` [bytes] of freed memory at its top (``M_TOP_PAD``)
    instead of giving it back to the kernel and faulting it in again for the next request, and serve blocks below
    :data:`MMAP_THRESHOLD_BYTES` from the heaps (``M_MMAP_THRESHOLD``; setting the pad alone freezes glibc's
    adaptive threshold at 128 KiB, so every array of a trip would be mapped and faulted in anew). An explicit
    ``MALLOC_TOP_PAD_`` or ``MALLOC_MMAP_THRESHOLD_`` in the environment is left alone. Returns whether the
    settings were made (False off glibc)."""
    if any(os.environ.get(v) for v in _MALLOC_VARIABLES) or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(libc.mallopt(_M_TOP_PAD, int(n_bytes)))
