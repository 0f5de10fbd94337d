"""Per-customer locks and the "event already processed" fast path.

With Redis, a lock is redis-py's asyncio ``Lock``: a random owner token set
with ``NX`` and an expiry, so only the holder can release it and the expiry
(``BILLING_EVENT_LOCK_TTL_SECONDS``) frees it when a replica dies holding it.
The dedupe marker is written only after the event's transaction committed, so
it never claims an event that was not applied.

Redis only makes things faster and calmer; the database holds the
guarantees (unique processed-event id, advisory/IMMEDIATE transaction
locks). So a Redis error is logged and the work goes on with the
in-process lock: nothing is lost or applied twice, replicas merely stop
queueing behind each other. After a failure the breaker (redis_breaker.py)
keeps the locks off Redis for a while, so a Redis that hangs costs one
timeout, not several per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator

from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError, RedisError

from billing_service.errors import Unavailable
from billing_service.redis_breaker import RedisBreaker
from billing_service.redis_client import Redis

log = logging.getLogger(__name__)

_LOCK_PREFIX = "billing:lock:"
_SEEN_PREFIX = "billing:event:"
_RETRY_SECONDS = 0.02


class LocalLocks:
    """asyncio locks per key for one process, with a bounded wait."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    @contextlib.asynccontextmanager
    async def hold(self, key: str, wait: float) -> AsyncIterator[None]:
        """Hold the lock for ``key``; Unavailable when it is not free within ``wait`` s."""
        lock = self._lock(key)
        try:
            await asyncio.wait_for(lock.acquire(), wait)
        except TimeoutError:
            raise Unavailable(f"lock for {key} not obtained in {wait:g}s; retry") from None
        try:
            yield
        finally:
            lock.release()


class EventLocks:
    """Per-customer locks and dedupe markers: through Redis when given a client, else in-process."""

    def __init__(
        self,
        redis: Redis | None = None,
        *,
        lock_ttl: float = 30.0,
        dedupe_ttl: int = 604800,
        breaker: RedisBreaker | None = None,
    ) -> None:
        self._local = LocalLocks()
        self.breaker = breaker or RedisBreaker()
        self._lock_ttl = max(0.001, lock_ttl)
        self._dedupe_ttl = dedupe_ttl
        self._redis = redis

    @property
    def uses_redis(self) -> bool:
        """True when Redis is configured and the breaker lets commands through."""
        return self._redis is not None and not self.breaker.is_open

    def _client(self, purpose: str) -> Redis | None:
        """The Redis client when configured and the breaker is closed, else None."""
        if self._redis is None or not self.breaker.allows(purpose):
            return None
        return self._redis

    def _failed(self, purpose: str, exc: BaseException) -> None:
        log.warning("redis %s failed (%s); using the database only", purpose, exc)
        self.breaker.failed(purpose, exc)

    async def seen(self, event_id: str) -> bool:
        """True when Redis remembers ``event_id`` as processed (False without or on error)."""
        client = self._client("dedupe_check")
        if client is None:
            return False
        try:
            found = bool(await client.exists(_SEEN_PREFIX + event_id))
        except (RedisError, OSError) as exc:
            self._failed("dedupe_check", exc)
            return False
        self.breaker.succeeded()
        return found

    async def mark_seen(self, event_id: str) -> None:
        """Remember ``event_id`` as processed; call only after its transaction committed."""
        client = self._client("dedupe_mark")
        if client is None:
            return
        try:
            await client.set(_SEEN_PREFIX + event_id, b"1", ex=self._dedupe_ttl)
        except (RedisError, OSError) as exc:
            self._failed("dedupe_mark", exc)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, wait: float) -> AsyncIterator[None]:
        """Serialize work on ``key`` in this process and, with Redis, across replicas.

        Unavailable when the lock is not obtained within ``wait`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with self._local.hold(key, wait):
            lock = await self._acquire_redis(key, deadline - loop.time())
            try:
                yield
            finally:
                if lock is not None:
                    await self._release_redis(key, lock)

    async def _acquire_redis(self, key: str, wait: float) -> Lock | None:
        """The held Redis lock; None without Redis or when Redis fails."""
        client = self._client("lock")
        if client is None:
            return None
        lock = client.lock(
            _LOCK_PREFIX + key,
            timeout=self._lock_ttl,
            sleep=_RETRY_SECONDS,
            blocking_timeout=max(0.0, wait),
            thread_local=False,
        )
        try:
            acquired = await lock.acquire()
        except (RedisError, OSError) as exc:
            self._failed(f"lock for {key}", exc)
            return None
        if not acquired:
            raise Unavailable(f"lock for {key} not obtained in time; retry")
        self.breaker.succeeded()
        return lock

    async def _release_redis(self, key: str, lock: Lock) -> None:
        # Released even while the breaker is open: a lock we hold blocks other replicas.
        try:
            await lock.release()
        except LockNotOwnedError:
            # Its lease ran out first (and another replica may hold it now): not ours to free.
            log.debug("redis lock for %s had expired before its release", key)
        except (RedisError, OSError) as exc:
            # It expires on its own after the TTL.
            log.warning("redis lock for %s not released (%s)", key, exc)
            self.breaker.failed("unlock", exc)
