"""Whether Redis answers, as one replica sees it, and what follows when that changes.

``up`` is False from the first failed call until a heartbeat succeeds again.
A replica that saw Redis fail bumps the global epoch when it returns, which
retires every L2 record written before the outage (changes may have been
committed meanwhile without a generation bump). ``leases_lapsed`` tells a
writer that Redis has been down longer than a lease, so no replica can still
answer from memory and there is nobody to tell.
"""

from __future__ import annotations

import logging
import time

from billing_service.entitlements.metrics import EntitlementMetrics
from billing_service.redis_client import Redis

log = logging.getLogger(__name__)

# Slack over a lease for clock granularity and the last ping in flight.
LEASE_MARGIN_SECONDS = 0.05


class RedisHealth:
    """Redis reachability for one replica, mirrored in ``billing_redis_up``."""

    def __init__(self, redis: Redis, epoch_key: str, metrics: EntitlementMetrics) -> None:
        self.up = False
        # When this replica first saw Redis fail (monotonic); None while it answers.
        self._down_since: float | None = None
        self._seen_failure = False
        self._redis = redis
        self._epoch_key = epoch_key
        self._up_gauge = metrics.redis_up

    def mark_down(self, exc: BaseException) -> None:
        """A call to Redis failed with ``exc``."""
        self._seen_failure = True
        if self._down_since is None:
            self._down_since = time.monotonic()
        if self.up:
            log.warning(
                "Redis unreachable (%s: %s); entitlements are served from the database "
                "until it returns",
                type(exc).__name__,
                exc,
            )
        self.up = False
        self._up_gauge.set(0)

    async def mark_up(self) -> None:
        """A heartbeat succeeded; after an outage, retire the L2 records written before it."""
        if self.up:
            return
        if self._seen_failure:
            # Changes may have been committed without a generation bump during
            # the outage: retire every L2 record written before it.
            await self._redis.incr(self._epoch_key)
            log.warning("Redis reachable again; entitlement cache coherence restored")
        self._seen_failure = False
        self._down_since = None
        self.up = True
        self._up_gauge.set(1)

    def leases_lapsed(self, now: float, lease_seconds: float, own_lease_until: float) -> bool:
        """True when Redis has been down longer than a lease: no replica can answer from memory."""
        return (
            not self.up
            and self._down_since is not None
            and now - self._down_since > lease_seconds + LEASE_MARGIN_SECONDS
            and now > own_lease_until
        )
