"""BLAS on one thread while :func:`detect.detect` runs, whatever the calling process has set.

The detector's matrix products are small: the block IIR filters (:mod:`detect.filters`) multiply chunks of a few
dozen columns, the orientation rotates (n, 3) by (3, 3). OpenBLAS splits even those across its thread pool, and its
idle threads then spin: in a process left at OpenBLAS's default (one thread per core), ``detect()`` of a 10-minute
100 Hz trace took a median 83 ms of wall time and 165 ms of CPU on this project's 2-core machine, against 19 and
20 ms on one thread. bump's own processes set one thread for good (:func:`bump.runtime.one_blas_thread`); an
analyst's notebook or script would not, so :func:`detect.detect` sets it for the time of the call and then gives
the process back its own limits. Calls from several threads at once share one setting: the first in sets it, the
last out restores it (other BLAS work of the process meanwhile also runs on one thread). threadpoolctl lets only
one thread of a process change OpenBLAS's shared pool (the first that tried, while it lives); a call from another
thread runs with the process's setting as it is. A notebook runs its cells on that first thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_users = 0                        # detect() calls running now
_controller: ThreadpoolController | None = None
_limiter: Any = None              # the setting to restore once the last call ends


@contextmanager
def blas_on_one_thread() -> Iterator[None]:
    """BLAS limited to one thread inside the ``with`` block; the process's own limits restored after the last
    block open in any thread ends."""
    global _users, _controller, _limiter
    with _lock:
        if _users == 0:
            if _controller is None:      # BLAS libraries loaded by now: numpy's, and scipy's (detect.filters)
                _controller = ThreadpoolController()
            _limiter = _controller.limit(limits=1, user_api="blas")
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None
