"""A circuit breaker in front of Redis: after a failure, stop asking for a while.

Redis only makes the event path faster and calmer (the database holds the
guarantees, see locks.py). A Redis that hangs rather than refuses costs a
full timeout per command, several per event, so every event would wait
seconds for nothing. After one failure the breaker opens for
``BILLING_REDIS_BREAKER_SECONDS``: callers skip Redis and run on the database
alone. The health probe (health.py) pings Redis in the background; an answer
closes the breaker at once, and while it stays silent the breaker stays open.
When the period ends without a probe, the next caller tries Redis once.

``billing_redis_breaker_open`` is 1 while callers skip Redis.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

BREAKER_OPEN = Gauge(
    "billing_redis_breaker_open",
    "1 while the service skips Redis after a failure (events run on the database alone)",
)
BREAKER_TRIPS = Counter(
    "billing_redis_breaker_trips_total", "Redis failures that opened (or kept open) the breaker"
)
SKIPPED = Counter(
    "billing_redis_skipped_total",
    "Redis commands not sent because the breaker was open, by purpose",
    ["purpose"],
)


class RedisBreaker:
    """Open for ``seconds`` after a failure; closed again by a success."""

    def __init__(self, seconds: float = 10.0) -> None:
        self.seconds = seconds
        self._open_until = 0.0
        BREAKER_OPEN.set(0)

    @property
    def is_open(self) -> bool:
        """True while Redis must not be asked."""
        return time.monotonic() < self._open_until

    def allows(self, purpose: str) -> bool:
        """True when a command for ``purpose`` may go to Redis; counts it when not."""
        if self.is_open:
            SKIPPED.labels(purpose).inc()
            return False
        return True

    def failed(self, purpose: str, exc: BaseException) -> None:
        """Redis failed: skip it for the next ``seconds``."""
        was_open = self.is_open or self._open_until > 0
        self._open_until = time.monotonic() + self.seconds
        BREAKER_TRIPS.inc()
        BREAKER_OPEN.set(1)
        if not was_open:
            log.warning(
                "redis failed during %s (%s); skipping Redis for %gs, events use the database only",
                purpose,
                type(exc).__name__,
                self.seconds,
            )

    def succeeded(self) -> None:
        """Redis answered: use it again (cheap when nothing failed)."""
        if self._open_until == 0.0:
            return
        log.info("redis answers again; using it again")
        self._open_until = 0.0
        BREAKER_OPEN.set(0)
