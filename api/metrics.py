"""Prometheus metrics, written by hand in the text exposition format (version 0.0.4): counters and histograms in
a small thread-safe registry, and an ASGI middleware timing every request by route.

Per process: with ``--workers N`` each worker exposes its own numbers (scrape each, or run one worker).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = (*labels, *extra)
    if not items:
        return ""
    esc = [(k, v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')) for k, v in items]
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc) + "}"


def _num(v: float) -> str:
    return "+Inf" if v == float("inf") else repr(float(v)) if not float(v).is_integer() else str(int(v))


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(_labels(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter",
                *(f"{self.name}{_fmt_labels(k)} {_num(v)}" for k, v in items)]


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(sorted(buckets))
        self._data: dict[Labels, list[float]] = {}        # per label set: bucket counts..., +Inf count, sum
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            d = self._data.setdefault(key, [0.0] * (len(self.buckets) + 2))
            d[i] += 1                                      # non-cumulative here, cumulated when rendered
            d[-1] += value

    def count(self, **labels: str) -> int:
        d = self._data.get(_labels(labels))
        return 0 if d is None else int(sum(d[:-1]))

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._data.items())
        for key, d in items:
            cum = 0.0
            for le, c in zip((*self.buckets, float("inf")), d[:-1], strict=True):
                cum += c
                out.append(f"{self.name}_bucket{_fmt_labels(key, (('le', _num(le)),))} {_num(cum)}")
            out.append(f"{self.name}_sum{_fmt_labels(key)} {_num(round(d[-1], 6))}")
            out.append(f"{self.name}_count{_fmt_labels(key)} {_num(cum)}")
        return out


class Metrics:
    """The service's metrics."""

    def __init__(self) -> None:
        self.requests = Counter("bump_http_requests_total", "HTTP requests by method, route and status code.")
        self.latency = Histogram("bump_http_request_duration_seconds", "HTTP request latency by route [s].")
        self.uploads = Counter("bump_uploads_total", "Trip uploads by result (created, retry).")
        self.upload_bytes = Counter("bump_upload_bytes_total", "Bytes of accepted trip uploads (as sent).")
        self.upload_samples = Counter("bump_upload_samples_total", "Accelerometer samples of accepted uploads.")
        self.errors = Counter("bump_errors_total", "Error responses by error code.")
        self._all = (self.requests, self.latency, self.uploads, self.upload_bytes, self.upload_samples, self.errors)

    def upload(self, *, created: bool, n_bytes: int, n_samples: int) -> None:
        """Count an accepted upload (created, or an idempotent retry)."""
        self.uploads.inc(result="created" if created else "retry")
        self.upload_bytes.inc(n_bytes)
        self.upload_samples.inc(n_samples)

    def render(self) -> str:
        return "\n".join(line for m in self._all for line in m.render()) + "\n"


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template (not the raw path) and status."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.inc(method=scope["method"], route=route, status=str(status))
            self.metrics.latency.observe(time.perf_counter() - start, route=route)
