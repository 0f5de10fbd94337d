"""The billing service's "event already processed" markers in Redis, read by every gateway replica.

The service writes a marker (``billing_service.locks``) for each event once
its transaction committed, whatever the outcome (applied, ignored, stale),
and keeps it for ``BILLING_EVENT_DEDUPE_TTL_SECONDS``. A gateway that shares the
service's ``REDIS_URL`` asks for it before forwarding, so a redelivery that
lands on a replica which never saw the event (or on one that restarted) is
answered ``duplicate`` after one Redis read instead of a forward, the
service's lock round trip and its database read.

Redis only saves work here: when it fails or is slow, the delivery is
forwarded (the service holds the exactly-once guarantee), and after a
failure the gateway stops asking for ``skip_seconds`` so that a Redis that
hangs costs one timeout, not one per delivery::

    markers = ProcessedMarkers.connect(url, 1.0, errors_counter)
    if await markers.processed("evt_1"):
        ...  # answer duplicate
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import Counter

from billing_service.processed_marker import marker_key
from billing_service.turn_batch import TurnBatch

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


class ProcessedMarkers:
    """Asks Redis whether the billing service committed an event; False when it cannot tell.

    Deliveries that ask during the same turn of the event loop share one
    ``MGET`` (``TurnBatch``): one round trip per batch instead of one per
    delivery, which is most of what a read costs the gateway (measured in
    docs/performance.md).
    """

    def __init__(
        self, redis: Redis, timeout: float, errors: Counter, skip_seconds: float = 10.0
    ) -> None:
        from redis.exceptions import RedisError  # loaded with the client already

        self.redis = redis
        self.timeout = timeout
        # A timeout (asyncio.timeout's TimeoutError) is an OSError.
        self._failures: tuple[type[BaseException], ...] = (RedisError, OSError)
        self.skip_seconds = skip_seconds
        self._errors = errors
        self._skip_until = 0.0
        self._read: TurnBatch[str, bool] = TurnBatch(self._read_all)

    @classmethod
    def connect(cls, url: str, timeout: float, errors: Counter) -> ProcessedMarkers:
        """Markers read from the Redis at ``url``; a read fails after ``timeout`` seconds.

        The whole batch read is bounded by one ``asyncio.timeout`` rather than
        redis-py's ``socket_timeout`` (5 s unless given), which wraps every
        socket write in a task of its own.
        """
        # Imported here: redis-py costs a gateway without REDIS_URL ~8 MB of RSS for nothing.
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(
            url, socket_timeout=None, socket_connect_timeout=timeout, decode_responses=True
        )
        return cls(client, timeout, errors)

    async def processed(self, event_id: str) -> bool:
        """True when the service's marker for ``event_id`` exists; False if absent or unknown."""
        if not event_id or time.monotonic() < self._skip_until:
            return False
        return await self._read(marker_key(event_id))

    async def _read_all(self, keys: list[str]) -> list[bool]:
        """One ``MGET`` for a turn's questions; all False when Redis fails or is slow."""
        try:
            async with asyncio.timeout(self.timeout):
                found = await self.redis.mget(keys)
        except self._failures as exc:
            self._failed(exc)
            return [False] * len(keys)
        if self._skip_until:
            log.info("redis answers again; reading processed markers again")
            self._skip_until = 0.0
        return [value is not None for value in found]

    def _failed(self, exc: BaseException) -> None:
        self._errors.inc()
        if not self._skip_until:
            log.warning(
                "redis marker read failed (%s); forwarding every delivery for %gs",
                type(exc).__name__,
                self.skip_seconds,
            )
        self._skip_until = time.monotonic() + self.skip_seconds

    async def close(self) -> None:
        """Close the client's connections."""
        await self.redis.aclose()
