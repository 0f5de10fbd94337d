"""Keeps the standard gRPC health service true to the service's dependencies.

* ``""`` and ``billing.v1.BillingService``: SERVING while the database answers
  (nothing works without it), NOT_SERVING otherwise. Load balancers and the
  gateway's ``/readyz`` probe these.
* ``redis`` (only with REDIS_URL): SERVING while Redis answers. The service
  keeps working without Redis (on the database's guarantees), so a Redis
  outage must not take every replica out of rotation; it is reported under
  its own name, and in ``billing_redis_up``. The probe also drives the Redis
  breaker (redis_breaker.py): a failed ping keeps events off Redis, an
  answer lets them use it again.
* ``entitlement-cache``: SERVING while every subscription is in memory
  (complete mode), NOT_SERVING while the cache warms up (or lost its lease).
  Answers are correct either way (misses read the database), so this is for
  a load balancer that prefers warm replicas, not a liveness signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from grpc_health.v1 import health_pb2
from redis.exceptions import RedisError

from billing_service.redis_breaker import RedisBreaker
from billing_service.redis_client import Redis
from billing_service.storage.database import Database, StorageUnavailable

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
REDIS_HEALTH_NAME = "redis"
CACHE_HEALTH_NAME = "entitlement-cache"


class _CompleteSource(Protocol):
    @property
    def complete(self) -> bool: ...

    complete_listeners: list[Callable[[bool], None]]


async def track_cache_readiness(entitlements: _CompleteSource, health: Any) -> None:
    """Keep the ``entitlement-cache`` health status equal to the cache's complete mode."""
    tasks: set[asyncio.Task[None]] = set()

    def changed(complete: bool) -> None:
        task = asyncio.ensure_future(
            health.set(CACHE_HEALTH_NAME, SERVING if complete else NOT_SERVING)
        )
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        log.info("entitlement cache %s", "complete" if complete else "warming (reads go through)")

    entitlements.complete_listeners.append(changed)
    await health.set(CACHE_HEALTH_NAME, SERVING if entitlements.complete else NOT_SERVING)


class DependencyHealth:
    """Probes the database (and Redis) every ``interval`` seconds and sets health statuses."""

    def __init__(
        self,
        health: Any,
        db: Database,
        service_names: tuple[str, ...],
        redis: Redis | None = None,
        interval: float = 2.0,
        timeout: float = 1.0,
        breaker: RedisBreaker | None = None,
    ) -> None:
        self._health = health
        self._db = db
        self._names = service_names
        self._interval = interval
        self._timeout = timeout
        self._redis = redis
        self._breaker = breaker
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, bool] = {}

    async def start(self) -> None:
        """Probe once now, then keep probing in the background."""
        await self.probe()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.probe()

    async def probe(self) -> None:
        """Check every dependency once and publish the result."""
        database_ok = await self._database_ok()
        for name in self._names:
            await self._set(name, database_ok, "database")
        if self._redis is not None:
            await self._set(REDIS_HEALTH_NAME, await self._redis_ok(), "redis")

    async def _database_ok(self) -> bool:
        try:
            await asyncio.wait_for(self._db.run(self._db.ping), self._timeout * 5)
        except (StorageUnavailable, TimeoutError):
            return False
        return True

    async def _redis_ok(self) -> bool:
        assert self._redis is not None
        try:
            await self._redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            # Keeps the breaker open while Redis stays silent, so events skip it.
            if self._breaker is not None:
                self._breaker.failed("health probe", exc)
            return False
        if self._breaker is not None:
            self._breaker.succeeded()
        return True

    async def _set(self, name: str, ok: bool, what: str) -> None:
        if self._last.get(name) != ok:
            if name == self._names[0] or name == REDIS_HEALTH_NAME:
                if ok:
                    log.info("%s reachable: health %r SERVING", what, name)
                else:
                    log.warning("%s unreachable: health %r NOT_SERVING", what, name)
            self._last[name] = ok
        await self._health.set(name, SERVING if ok else NOT_SERVING)

    async def close(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
