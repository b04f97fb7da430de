"""In-process token buckets, one per key (a device, a client address).

A bucket holds up to ``burst`` tokens and refills at ``rate_per_minute``; a request takes one token or is refused
with the time until one is back (``Retry-After``). Per process: with ``--workers N`` each worker keeps its own
buckets, so the effective limit is up to N times the setting.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from bump.service import RateLimitedError


class RateLimiter:
    """Token buckets by key. Thread-safe; forgets idle full buckets when it holds more than ``max_keys``."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}     # key -> (tokens, last refill time [s])
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def take(self, key: str, rate_per_minute: float, burst: int) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available (nothing taken)."""
        rate_per_s = rate_per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > self._max_keys:
                    self._forget(now, rate_per_s, burst)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate_per_s

    def check(self, key: str, rate_per_minute: float, burst: int, what: str) -> None:
        """Take a token or raise :class:`RateLimitedError` (HTTP 429 with Retry-After)."""
        wait_s = self.take(key, rate_per_minute, burst)
        if wait_s > 0:
            raise RateLimitedError(f"too many {what} (limit {rate_per_minute:g} per minute); retry in "
                                   f"{math.ceil(wait_s)} s", retry_after_s=wait_s)

    def _forget(self, now: float, rate_per_s: float, burst: int) -> None:
        full = [k for k, (tok, last) in self._buckets.items() if tok + (now - last) * rate_per_s >= burst]
        for k in full:
            del self._buckets[k]
