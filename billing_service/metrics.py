"""Prometheus metrics of the billing service (registered in the default registry).

Exposed over HTTP on BILLING_METRICS_ADDR by ``start_http_exporter``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import grpc
from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

RPCS = Counter(
    "billing_grpc_requests_total",
    "gRPC calls handled, by method and status code",
    ["method", "code"],
)
RPC_SECONDS = Histogram(
    "billing_grpc_request_seconds",
    "gRPC handling time, by method",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS = Counter(
    "billing_stripe_events_total", "Stripe events handled, by type and outcome", ["type", "outcome"]
)
STRIPE_CALLS = Counter(
    "billing_stripe_api_calls_total",
    "Stripe API calls, by operation and outcome",
    ["call", "outcome"],
)
AUTH_FAILURES = Counter(
    "billing_auth_failures_total", "Calls refused by authentication or authorization", ["code"]
)


def _method_name(full: str) -> str:
    return full.rsplit("/", 1)[-1] if full else "unknown"


@functools.cache
def _rpc_children(full_method: str, code: str) -> tuple[Any, Any]:
    # Resolving labelled children once per (method, code) keeps the hot path cheap.
    method = _method_name(full_method)
    return RPCS.labels(method, code), RPC_SECONDS.labels(method)


def rpc_children(full_method: str, code: grpc.StatusCode) -> tuple[Any, Any]:
    """The (call counter, duration histogram) children of one method and status code."""
    return _rpc_children(full_method, code.name)


def observe_rpc(full_method: str, code: grpc.StatusCode, seconds: float) -> None:
    """Count one finished call with its status code and duration."""
    counter, histogram = _rpc_children(full_method, code.name)
    counter.inc()
    histogram.observe(seconds)


def start_http_exporter(addr: str) -> int:
    """Serve /metrics on ``addr`` (host:port; port 0 picks one); returns the port."""
    host, _, port = addr.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
    bound = int(server.server_port)
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return bound
