"""``/service/metrics/ping`` and ``/service/metrics/prometheus`` (Prometheus text exposition 0.0.4).

Request counters live in a small per-app registry (``stowage.extension("metrics", ...)``), so two apps in
one process never mix counts. Why no ``prometheus_client``: its default registry is a process global and
its multi-process mode needs a shared directory and environment variable; what we expose is a handful of
counters and one histogram, a few dozen lines.

Multi-process caveat: request counters are per process. Under ``stowage serve --workers N`` a scrape is
answered by whichever worker accepts it, so the counters are that worker's (each series carries a
``pid`` label, and ``stowage_worker_info`` names the worker); sum over ``pid`` in queries, and expect a
series to restart when its worker does. Blob store and repository gauges come from the catalog and are
the same from every worker.
"""

from __future__ import annotations

import bisect
import itertools
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable

import falcon

from stowage.errors import Forbidden, Unauthorized
from stowage.http.auth import BASIC_CHALLENGE, authenticate

if TYPE_CHECKING:
    from stowage.stowage import Stowage

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"})
PRIVILEGES = ("nx-all", "nx-metrics-all")


class MetricsRegistry:
    """Counters of one app: requests and latency by method and status class, bytes served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}
        self.duration_sum: dict[tuple[str, str], float] = {}
        self.duration_buckets: dict[tuple[str, str], list[int]] = {}
        self.bytes_served: dict[str, int] = {}
        self.started = time.time()

    @classmethod
    def of(cls, stowage: "Stowage") -> "MetricsRegistry":
        return stowage.extension("metrics", cls)

    def observe(self, method: str, status: int, seconds: float, body_bytes: int) -> None:
        method = method if method in METHODS else "other"
        key = (method, f"{status // 100}xx")
        with self._lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            self.duration_sum[key] = self.duration_sum.get(key, 0.0) + seconds
            # Kept per bucket, not cumulative (one increment on the request path); summed when rendered.
            buckets = self.duration_buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            if body_bytes:
                self.bytes_served[method] = self.bytes_served.get(method, 0) + body_bytes

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self.requests), "duration_sum": dict(self.duration_sum),
                    "duration_buckets": {k: list(itertools.accumulate(v))[:len(BUCKETS)]
                                         for k, v in self.duration_buckets.items()},
                    "bytes_served": dict(self.bytes_served)}


class MetricsMiddleware:
    def __init__(self, stowage: "Stowage"):
        self.registry = MetricsRegistry.of(stowage)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.metrics_started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        started = getattr(req.context, "metrics_started", None)
        if started is None:
            return
        length = 0
        if req.method != "HEAD":
            if resp.content_length is not None:
                length = int(resp.content_length)
            elif resp.data is not None:
                length = len(resp.data)
        self.registry.observe(req.method, resp.status_code, time.perf_counter() - started, length)


def _labels(**labels: Any) -> str:
    def escape(value: Any) -> str:
        return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, Any]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value}" for labels, value in samples]
    return lines


def exposition(stowage: "Stowage") -> str:
    pid = os.getpid()
    snap = MetricsRegistry.of(stowage).snapshot()
    lines: list[str] = []
    lines += _family("stowage_worker_info", "gauge", "The process that answered this scrape.",
                     [(_labels(pid=pid, node=stowage.node_id), 1)])
    lines += _family("stowage_http_requests_total", "counter", "HTTP requests by method and status class.",
                     [(_labels(method=m, status=s, pid=pid), n) for (m, s), n in sorted(snap["requests"].items())])
    histogram: list[str] = ["# HELP stowage_http_request_duration_seconds Time to produce a response.",
                            "# TYPE stowage_http_request_duration_seconds histogram"]
    for (method, status), buckets in sorted(snap["duration_buckets"].items()):
        for bound, count in zip(BUCKETS, buckets):
            histogram.append(f"stowage_http_request_duration_seconds_bucket"
                             f"{_labels(method=method, status=status, pid=pid, le=bound)} {count}")
        total = snap["requests"][(method, status)]
        histogram.append(f"stowage_http_request_duration_seconds_bucket"
                         f"{_labels(method=method, status=status, pid=pid, le='+Inf')} {total}")
        histogram.append(f"stowage_http_request_duration_seconds_sum{_labels(method=method, status=status, pid=pid)}"
                         f" {snap['duration_sum'][(method, status)]:.6f}")
        histogram.append(f"stowage_http_request_duration_seconds_count"
                         f"{_labels(method=method, status=status, pid=pid)} {total}")
    lines += histogram
    lines += _family("stowage_http_response_bytes_total", "counter", "Response body bytes served, by method.",
                     [(_labels(method=m, pid=pid), n) for m, n in sorted(snap["bytes_served"].items())])
    stores = []
    for name, store in sorted(stowage.blob_stores().items()):
        count, size = stowage.catalog.blob_store_usage(name)
        try:
            available = store.usage().get("availableSpaceInBytes")
        except OSError:
            available = None
        stores.append((name, count, size, available))
    lines += _family("stowage_blob_store_blobs", "gauge", "Blobs the catalog records per blob store.",
                     [(_labels(store=n), c) for n, c, _, _ in stores])
    lines += _family("stowage_blob_store_size_bytes", "gauge", "Bytes of blobs per blob store.",
                     [(_labels(store=n), s) for n, _, s, _ in stores])
    lines += _family("stowage_blob_store_available_bytes", "gauge", "Free space where the blob store lives.",
                     [(_labels(store=n), a) for n, _, _, a in stores if a is not None])
    counts: dict[tuple[str, str], int] = {}
    for repository in stowage.repositories():
        key = (repository.format_name, repository.type.value)
        counts[key] = counts.get(key, 0) + 1
    lines += _family("stowage_repositories", "gauge", "Repositories by format and type.",
                     [(_labels(format=f, type=t), n) for (f, t), n in sorted(counts.items())])
    return "\n".join(lines) + "\n"


def require_metrics_access(req: falcon.Request, stowage: "Stowage") -> None:
    """Like Nexus: an authenticated user holding ``nx-metrics-all`` (or ``nx-all``)."""
    user = authenticate(req, stowage)
    if user is None:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    if not set(PRIVILEGES) & stowage.security.privileges(user.roles):
        raise Forbidden(f"user {user.user_id} may not read metrics (needs nx-metrics-all)")


class PingResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_metrics_access(req, self.stowage)
        resp.content_type = "text/plain; charset=utf-8"
        resp.text = "pong\n"
        resp.cache_control = ["must-revalidate", "no-cache", "no-store"]


class PrometheusResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_metrics_access(req, self.stowage)
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8"
        resp.text = exposition(self.stowage)


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_middleware(MetricsMiddleware(stowage))
    app.add_route("/service/metrics/ping", PingResource(stowage))
    app.add_route("/service/metrics/prometheus", PrometheusResource(stowage))
