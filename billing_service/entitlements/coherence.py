"""Keeping every replica's entitlement cache coherent through Redis.

The guarantee: once a writer's ``announce(user)`` returns, no replica answers
``user`` from state older than the writer's commit. It rests on three parts.

* Generations. ``announce`` atomically (one Lua script) increments the
  user's generation key, publishes the change and reads the set of live
  replicas; the announces of one event-loop turn (a group commit's
  changes) share one script call. The shared Redis copy of an answer (L2)
  is tagged with the generation (and a global epoch) read *before* the
  database read it came from, so an L2 record is only used while its tag
  is current.
* Acknowledgements. Every replica applies a published change (drops the
  user from its in-process cache) and acknowledges it on the writer's ack
  channel. The writer waits until every live replica acknowledged.
* Leases. A replica may answer from its in-process cache only while it holds
  a lease: it publishes a ping to itself every ``heartbeat`` seconds and a
  ping that comes back renews the lease until ``sent + lease``. Pub/sub
  delivers to one connection in order, so a ping that comes back proves every
  change published before it was applied. A replica that does not acknowledge
  in time therefore loses its lease at most ``lease`` seconds after the
  change was published, and the writer waits exactly that long (bounded) in
  that case. Losing the pub/sub connection drops the lease at once and clears
  the in-process cache; it is only re-acquired from a ping sent after the new
  subscription is confirmed.

When Redis is unreachable pings stop, leases lapse, every replica answers
from the database, and a writer that cannot publish waits one lease period
before returning. Once Redis has been unreachable for longer than a lease
(and this replica's own lease has lapsed), every lease renewed through it has
lapsed too, so a writer returns at once without trying: events that change
entitlements run at database speed through an outage instead of paying a
publish timeout and a lease wait each. A replica that saw Redis fail bumps the global epoch when
it returns, which invalidates every L2 record written before the outage.
Not covered: a partition in which the writer cannot reach Redis while other
replicas can (see docs/entitlements.md).

The parts live in their own modules: ``lease.py`` (the lease and its
generation), ``redis_copy.py`` (L2 records and their tags) and
``redis_health.py`` (outage detection, the epoch bump). This module keeps the
announce side and the subscriber side together: a writer's acknowledgements
arrive on its own pub/sub connection, the same one whose pings renew its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import RedisError

from billing_service.entitlements.lease import Lease, LeaseChange
from billing_service.entitlements.metrics import EntitlementMetrics
from billing_service.entitlements.redis_copy import RedisCopy
from billing_service.entitlements.redis_health import LEASE_MARGIN_SECONDS, RedisHealth
from billing_service.redis_client import Redis
from billing_service.turn_batch import TurnBatch

log = logging.getLogger(__name__)

# One call per event-loop turn for all the turn's changes (turn_batch.TurnBatch).
# KEYS: the changes channel, the live-replica set, then each change's generation key.
# ARGV: the live window in s, then each change's message. Returns the live replicas.
_ANNOUNCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 3, #KEYS do
  redis.call('INCR', KEYS[i])
  redis.call('PUBLISH', KEYS[1], ARGV[i - 1])
end
return redis.call('ZRANGEBYSCORE', KEYS[2], now - tonumber(ARGV[1]), '+inf')
"""

_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600)
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
"""

RemoteChange = Callable[[str, float], None]


class _AckWaiter:
    """Acknowledgements of one change; acks may arrive before the live set is known."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self._acked: set[str] = set()
        self._expected: set[str] | None = None

    def acked(self, replica: str) -> None:
        self._acked.add(replica)
        self._check()

    def expect(self, replicas: set[str]) -> None:
        self._expected = replicas
        self._check()

    def missing(self) -> set[str]:
        return (self._expected or set()) - self._acked

    def _check(self) -> None:
        if self._expected is not None and self._expected <= self._acked:
            self.done.set()


class RedisCoherence:
    """One replica's membership in the coherence protocol (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        on_remote_change: RemoteChange,
        on_lease_change: LeaseChange,
        metrics: EntitlementMetrics,
        lease_seconds: float = 1.5,
        heartbeat_seconds: float = 0.25,
        l2_ttl_seconds: int = 3600,
        prefix: str = "billing:ent:",
    ) -> None:
        self.replica_id = uuid.uuid4().hex
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.lease = Lease(on_lease_change)
        self._on_remote_change = on_remote_change
        self._metrics = metrics
        self._prefix = prefix
        self._changes = f"{prefix}changes"
        self._replicas = f"{prefix}replicas"
        self._ping_channel = f"{prefix}ping:{self.replica_id}"
        self._ack_channel = f"{prefix}ack:{self.replica_id}"
        # The process's client (redis_client.py): str replies, BILLING_REDIS_TIMEOUT_SECONDS.
        self._redis = redis
        self.health = RedisHealth(self._redis, f"{prefix}epoch", metrics)
        self.copy = RedisCopy(self._redis, self.health, prefix=prefix, ttl_seconds=l2_ttl_seconds)
        self._announce_script = self._redis.register_script(_ANNOUNCE)
        # (generation key, message) -> the live replicas; a turn's changes in one call.
        self._announce: TurnBatch[tuple[str, str], list[str]] = TurnBatch(self._announce_all)
        self._heartbeat = self._redis.register_script(_HEARTBEAT)
        self._subscribed_at = math.inf
        self._waiters: dict[str, _AckWaiter] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False

    @property
    def up(self) -> bool:
        """True while Redis answers this replica."""
        return self.health.up

    async def start(self) -> None:
        """Start listening and heart-beating; returns without waiting for Redis."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="entitlements-redis-listen"),
            asyncio.create_task(self._beat(), name="entitlements-redis-heartbeat"),
        ]

    async def close(self) -> None:
        """Leave the replica set and stop listening (the client is the process's to close)."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(RedisError, OSError):
            await self._redis.zrem(self._replicas, self.replica_id)

    # -- writer side -----------------------------------------------------------------

    async def announce(self, user_id: str, changed_at: float) -> None:
        """Publish that ``user_id`` changed and wait until no replica can answer the old state."""
        nonce = uuid.uuid4().hex
        waiter = _AckWaiter()
        self._waiters[nonce] = waiter
        message = f"{self.replica_id} {nonce} {changed_at!r} {user_id}"
        started = time.monotonic()
        if self.health.leases_lapsed(started, self.lease_seconds, self.lease.until):
            self._metrics.announces_skipped.inc()
            return
        try:
            live = await self._publish_until(started + self.lease_seconds, user_id, message)
            if live is None:
                # Nobody could be told; every lease, renewed only through Redis, lapses by then.
                await asyncio.sleep(
                    max(0.0, started + self.lease_seconds + LEASE_MARGIN_SECONDS - time.monotonic())
                )
                return
            deadline = time.monotonic() + self.lease_seconds + LEASE_MARGIN_SECONDS
            waiter.expect({r for r in live if r != self.replica_id})
            if waiter.done.is_set():  # no other replica, or all acknowledged already
                return
            try:
                await asyncio.wait_for(waiter.done.wait(), timeout=deadline - time.monotonic())
            except TimeoutError:
                self._metrics.ack_timeouts.inc()
                log.warning(
                    "replicas %s did not acknowledge a change of %s; waited for their leases",
                    sorted(waiter.missing()),
                    user_id,
                )
        finally:
            self._waiters.pop(nonce, None)

    async def _publish_until(
        self, deadline: float, user_id: str, message: str
    ) -> Sequence[str] | None:
        while True:
            try:
                return await self._announce((self.copy.gen_key(user_id), message))
            except (RedisError, OSError) as exc:
                self.health.mark_down(exc)
                if time.monotonic() + 0.05 >= deadline:
                    log.error("could not publish a change of %s to Redis: %s", user_id, exc)
                    return None
                await asyncio.sleep(0.05)

    async def _announce_all(self, changes: list[tuple[str, str]]) -> list[list[str]]:
        """Publish a turn's changes in one round trip; the live replicas, once per change."""
        live = await self._announce_script(
            keys=[self._changes, self._replicas, *(gen_key for gen_key, _ in changes)],
            args=[self.lease_seconds + 0.5, *(message for _, message in changes)],
        )
        replicas = [str(r) for r in live]
        return [replicas] * len(changes)

    # -- heartbeat -----------------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            try:
                if self._subscribed_at < math.inf:
                    sent = time.monotonic()
                    await self._heartbeat(
                        keys=[self._replicas, self._ping_channel],
                        args=[self.replica_id, repr(sent)],
                    )
                else:
                    await self._redis.ping()
                await self.health.mark_up()
            except (RedisError, OSError) as exc:
                self.health.mark_down(exc)
            await asyncio.sleep(self.heartbeat_seconds)

    # -- subscriber side -----------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            # The subscription holds its own connection from the process's pool.
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._changes, self._ping_channel, self._ack_channel)
                confirmed = 0
                quiet_since = time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=self.lease_seconds)
                    now = time.monotonic()
                    if message is None:
                        if now - quiet_since > 4 * self.lease_seconds:
                            raise ConnectionError("no pub/sub traffic; reconnecting")
                        continue
                    quiet_since = now
                    if message["type"] == "subscribe":
                        confirmed += 1
                        if confirmed == 3:
                            self._subscribed_at = time.monotonic()
                        continue
                    if message["type"] == "message":
                        self._dispatch(str(message["channel"]), str(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.health.mark_down(exc)
            except Exception:
                log.exception("entitlement pub/sub listener failed; reconnecting")
            finally:
                self._subscribed_at = math.inf
                self.lease.lose()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            if self._closing:
                return
            await asyncio.sleep(self.heartbeat_seconds)

    def _dispatch(self, channel: str, data: str) -> None:
        if channel == self._changes:
            origin, nonce, changed_at, user_id = data.split(" ", 3)
            if origin == self.replica_id:
                return
            self._on_remote_change(user_id, float(changed_at))
            task = asyncio.create_task(self._ack(origin, nonce))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif channel == self._ping_channel:
            self.lease.renew(float(data), self._subscribed_at, self.lease_seconds)
        elif channel == self._ack_channel:
            nonce, replica = data.split(" ", 1)
            waiter = self._waiters.get(nonce)
            if waiter is not None:
                waiter.acked(replica)

    async def _ack(self, origin: str, nonce: str) -> None:
        try:
            await self._redis.publish(f"{self._prefix}ack:{origin}", f"{nonce} {self.replica_id}")
        except (RedisError, OSError) as exc:
            self.health.mark_down(exc)
