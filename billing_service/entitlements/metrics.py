"""Prometheus metrics of the entitlement cache, registered in the default registry.

``billing_redis_up`` is process-wide: other modules that use Redis should
import it from here rather than register a second gauge of the same name.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class LoopCounter(Collector):
    """A counter bumped with a plain ``+= 1`` on the event loop, read at scrape time.

    prometheus-client's Counter takes a lock on every ``inc()``; for counts
    made on the hot path, only ever from the event loop thread, an integer
    attribute does the same job without it. Registered as a custom collector.
    """

    def __init__(self, name: str, documentation: str) -> None:
        self.value = 0
        self._name = name
        self._documentation = documentation
        REGISTRY.register(self)

    def collect(self) -> Iterator[CounterMetricFamily]:
        """The current count, as a counter family."""
        yield CounterMetricFamily(self._name, self._documentation, value=self.value)


REDIS_UP = Gauge(
    "billing_redis_up",
    "1 while Redis answers (entitlement cache coherent across replicas), 0 during an outage",
)
CACHE_HITS = LoopCounter(
    "billing_entitlement_cache_hits", "Entitlement answers served from the in-process cache"
)
CACHE_MISSES = Counter(
    "billing_entitlement_cache_misses_total",
    "Entitlement lookups that had to go to Redis or the database",
)
L2_HITS = Counter(
    "billing_entitlement_redis_hits_total", "Cache misses answered from the Redis (L2) copy"
)
DB_LOADS = Counter(
    "billing_entitlement_db_loads_total", "Users whose entitlements were read from the database"
)
INVALIDATIONS = Counter(
    "billing_entitlement_invalidations_total",
    "Users dropped from the in-process cache",
    ["source"],
)
ACK_TIMEOUTS = Counter(
    "billing_entitlement_ack_timeouts_total",
    "Changes whose writer waited for a replica's lease to lapse instead of its acknowledgement",
)
ANNOUNCES_SKIPPED = Counter(
    "billing_entitlement_announces_skipped_total",
    "Changes not published because Redis had been down longer than a lease (every lease lapsed)",
)
WATCH_STREAMS = Gauge("billing_entitlement_watch_streams", "Open WatchEntitlements streams")
WATCH_OVERFLOWS = Counter(
    "billing_entitlement_watch_overflows_total",
    "WatchEntitlements streams ended because the consumer fell too far behind",
)
CACHE_COMPLETE = Gauge(
    "billing_entitlement_cache_complete",
    "1 while every subscription is cached (unknown users answered free from memory)",
)
CACHE_WARMING = Gauge(
    "billing_entitlement_cache_warming",
    "1 while the cache is being filled with every subscription (answers read through meanwhile)",
)
CACHE_ENTRIES = Gauge(
    "billing_entitlement_cache_entries", "Users held by the cache after the last complete fill"
)
WARM_SECONDS = Gauge(
    "billing_entitlement_cache_warm_seconds", "Duration of the last complete fill of the cache"
)
WARM_CPU_SECONDS = Gauge(
    "billing_entitlement_cache_warm_cpu_seconds",
    "CPU time the last complete fill took on its reading thread (reading and building entries)",
)
