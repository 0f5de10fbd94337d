"""Prometheus metrics of one gateway process, on a registry of its own."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]


class GatewayMetrics:
    """Answers by status and reason, dead letters, redeliveries answered here, Redis, forwards."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.responses = Counter(
            "billing_gateway_responses",
            "Answers to POST /webhooks/stripe by HTTP status and reason.",
            ["status", "reason"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "billing_gateway_dead_letters",
            "Verified events stored as dead letters (refused as invalid by the service).",
            registry=self.registry,
        )
        self.seen_answers = Counter(
            "billing_gateway_seen_answers",
            "Redeliveries answered duplicate from this process's memory of finished events,"
            " without a forward.",
            registry=self.registry,
        )
        self.marker_answers = Counter(
            "billing_gateway_marker_answers",
            "Redeliveries answered duplicate from the service's processed marker in Redis,"
            " without a forward.",
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "billing_gateway_redis_errors",
            "Failed reads of processed markers (the delivery was forwarded; Redis is then"
            " skipped for a while).",
            registry=self.registry,
        )
        self.forward_seconds = Histogram(
            "billing_gateway_forward_seconds",
            "Time from a delivery's forward to its result (its call's duration), by result.",
            ["result"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

        self.forward_batch_size = Histogram(
            "billing_gateway_forward_batch_size",
            "Events per forward call: an ApplyStripeEvents call's, or 1 for ApplyStripeEvent.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
            registry=self.registry,
        )

    def answered(self, status: int, reason: str) -> None:
        """Count one answer."""
        self.responses.labels(str(status), reason).inc()

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
