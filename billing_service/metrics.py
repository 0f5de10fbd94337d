"""Prometheus metrics of the billing service (registered in the default registry).

Exposed over HTTP on BILLING_METRICS_ADDR by ``start_http_exporter``.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator

import grpc
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class MethodStats:
    """Calls of one method by status code, and their durations, as plain numbers."""

    __slots__ = ("codes", "counts", "sum")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.counts = [0] * (len(_RPC_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, code: str, seconds: float) -> None:
        """Count one finished call."""
        self.codes[code] = self.codes.get(code, 0) + 1
        self.counts[bisect.bisect_left(_RPC_BUCKETS, seconds)] += 1
        self.sum += seconds


class RpcMetrics(Collector):
    """``billing_grpc_requests_total{method,code}`` and ``billing_grpc_request_seconds{method}``.

    Every call updates them, always from the event loop thread, so they are
    plain integers bumped without the lock prometheus-client's Counter and
    Histogram take per update (a measurable share of a cache-hit call); the
    exporter thread reads them at scrape time through this custom collector.
    """

    def __init__(self) -> None:
        self._methods: dict[str, MethodStats] = {}

    def method(self, full_method: str) -> MethodStats:
        """The stats of one method (by its full gRPC name), created on first use."""
        name = _method_name(full_method)
        stats = self._methods.get(name)
        if stats is None:
            stats = self._methods[name] = MethodStats()
        return stats

    def collect(self) -> Iterator[Metric]:
        """Both families, read now."""
        calls = CounterMetricFamily(
            "billing_grpc_requests",
            "gRPC calls handled, by method and status code",
            labels=["method", "code"],
        )
        seconds = HistogramMetricFamily(
            "billing_grpc_request_seconds", "gRPC handling time, by method", labels=["method"]
        )
        for name, stats in sorted(dict(self._methods).items()):
            for code, count in sorted(dict(stats.codes).items()):
                calls.add_metric([name, code], count)
            counts, running, buckets = list(stats.counts), 0, []
            for bound, count in zip(
                (*map(str, map(float, _RPC_BUCKETS)), "+Inf"), counts, strict=True
            ):
                running += count
                buckets.append((bound, running))
            seconds.add_metric([name], buckets, stats.sum)
        yield calls
        yield seconds


RPC_METRICS = RpcMetrics()
REGISTRY.register(RPC_METRICS)
EVENTS = Counter(
    "billing_stripe_events_total", "Stripe events handled, by type and outcome", ["type", "outcome"]
)
STRIPE_CALLS = Counter(
    "billing_stripe_api_calls_total",
    "Stripe API calls, by operation and outcome",
    ["call", "outcome"],
)
EVENT_FETCHES = Counter(
    "billing_stripe_event_fetches_total",
    "Stripe API calls made while applying events, by cause "
    "(same_second_conflict, untied_subscription, unknown_user) and outcome "
    "(ok, not_found, failed, over_budget: refused by BILLING_STRIPE_EVENT_FETCH_RATE)",
    ["cause", "outcome"],
)
AUTH_FAILURES = Counter(
    "billing_auth_failures_total", "Calls refused by authentication or authorization", ["code"]
)


def _method_name(full: str) -> str:
    return full.rsplit("/", 1)[-1] if full else "unknown"


def observe_rpc(full_method: str, code: grpc.StatusCode, seconds: float) -> None:
    """Count one finished call with its status code and duration (on the event loop)."""
    RPC_METRICS.method(full_method).observe(code.name, seconds)


def start_http_exporter(addr: str) -> int:
    """Serve /metrics on ``addr`` (host:port; port 0 picks one); returns the port."""
    host, _, port = addr.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
    bound = int(server.server_port)
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return bound


GROUP_COMMIT_RERUNS = Counter(
    "billing_event_group_commit_reruns_total",
    "Group commits run again with a savepoint per event because one event's apply raised",
)
EVENT_LOCK_WAIT = Histogram(
    "billing_event_lock_wait_seconds",
    "Time an event waited for its customer's lock (in this process, then across replicas)",
    buckets=(0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GROUP_COMMIT_SIZE = Histogram(
    "billing_event_group_commit_size",
    "Events applied per group-commit transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
