"""Prometheus metrics of the entitlement cache, as one object built on a registry.

Production uses ``PROCESS_METRICS``, registered in the default registry when
this module is imported. Tests that run two replicas in one process give each
its own ``EntitlementMetrics(CollectorRegistry())``, so each replica's counts
are its own. ``billing_redis_up`` is process-wide in production: other modules
that use Redis should read it from ``PROCESS_METRICS`` rather than register a
second gauge of the same name.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class LoopCounter(Collector):
    """A counter bumped with a plain ``+= 1`` on the event loop, read at scrape time.

    prometheus-client's Counter takes a lock on every ``inc()``; for counts
    made on the hot path, only ever from the event loop thread, an integer
    attribute does the same job without it. Registered as a custom collector.
    """

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.value = 0
        self._name = name
        self._documentation = documentation
        registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily]:
        """The current count, as a counter family."""
        yield CounterMetricFamily(self._name, self._documentation, value=self.value)


class EntitlementMetrics:
    """Every entitlement metric, in ``registry`` (the names docs/entitlements.md lists)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.redis_up = Gauge(
            "billing_redis_up",
            "1 while Redis answers (entitlement cache coherent across replicas), "
            "0 during an outage",
            registry=registry,
        )
        self.cache_hits = LoopCounter(
            "billing_entitlement_cache_hits",
            "Entitlement answers served from the in-process cache",
            registry,
        )
        self.cache_misses = Counter(
            "billing_entitlement_cache_misses_total",
            "Entitlement lookups that had to go to Redis or the database",
            registry=registry,
        )
        self.l2_hits = Counter(
            "billing_entitlement_redis_hits_total",
            "Cache misses answered from the Redis (L2) copy",
            registry=registry,
        )
        self.db_loads = Counter(
            "billing_entitlement_db_loads_total",
            "Users whose entitlements were read from the database",
            registry=registry,
        )
        self.invalidations = Counter(
            "billing_entitlement_invalidations_total",
            "Users dropped from the in-process cache",
            ["source"],
            registry=registry,
        )
        self.ack_timeouts = Counter(
            "billing_entitlement_ack_timeouts_total",
            "Changes whose writer waited for a replica's lease to lapse instead of its "
            "acknowledgement",
            registry=registry,
        )
        self.announces_skipped = Counter(
            "billing_entitlement_announces_skipped_total",
            "Changes not published because Redis had been down longer than a lease "
            "(every lease lapsed)",
            registry=registry,
        )
        self.watch_streams = Gauge(
            "billing_entitlement_watch_streams", "Open WatchEntitlements streams", registry=registry
        )
        self.watch_overflows = Counter(
            "billing_entitlement_watch_overflows_total",
            "WatchEntitlements streams ended because the consumer fell too far behind",
            registry=registry,
        )
        self.cache_complete = Gauge(
            "billing_entitlement_cache_complete",
            "1 while every subscription is cached (unknown users answered free from memory)",
            registry=registry,
        )
        self.cache_warming = Gauge(
            "billing_entitlement_cache_warming",
            "1 while the cache is being filled with every subscription "
            "(answers read through meanwhile)",
            registry=registry,
        )
        self.cache_entries = Gauge(
            "billing_entitlement_cache_entries",
            "Users held by the cache after the last complete fill",
            registry=registry,
        )
        self.warm_seconds = Gauge(
            "billing_entitlement_cache_warm_seconds",
            "Duration of the last complete fill of the cache",
            registry=registry,
        )
        self.warm_cpu_seconds = Gauge(
            "billing_entitlement_cache_warm_cpu_seconds",
            "CPU time the last complete fill took on its reading thread "
            "(reading and building entries)",
            registry=registry,
        )


PROCESS_METRICS = EntitlementMetrics()
"""The metrics of this process's entitlement service, in the default registry."""
