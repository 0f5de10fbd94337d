"""Keeping every replica's entitlement cache coherent through Redis.

The guarantee: once a writer's ``announce(user)`` returns, no replica answers
``user`` from state older than the writer's commit. It rests on three parts.

* Generations. ``announce`` atomically (one Lua script) increments the
  user's generation key, publishes the change and reads the set of live
  replicas. The shared Redis copy of an answer (L2) is tagged with the
  generation (and a global epoch) read *before* the database read it came
  from, so an L2 record is only used while its tag is current.
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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from billing_service.entitlements.metrics import ACK_TIMEOUTS, ANNOUNCES_SKIPPED, REDIS_UP
from billing_service.redis_client import Redis

log = logging.getLogger(__name__)

_ANNOUNCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[3], now - tonumber(ARGV[2]), '+inf')
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
LeaseChange = Callable[[], None]


@dataclass(frozen=True)
class L2Tag:
    """The epoch and per-user generations read before a database read."""

    epoch: str
    generations: dict[str, str] = field(default_factory=dict)


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
        lease_seconds: float = 1.5,
        heartbeat_seconds: float = 0.25,
        l2_ttl_seconds: int = 3600,
        prefix: str = "billing:ent:",
    ) -> None:
        self.replica_id = uuid.uuid4().hex
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_until = -math.inf
        # Bumped whenever the lease is acquired or lost; a cache fill may store
        # its result only if the generation it started under is still current.
        self.lease_gen = 0
        self.up = False
        # When this replica first saw Redis fail (monotonic); None while it answers.
        self._down_since: float | None = None
        self._on_remote_change = on_remote_change
        self._on_lease_change = on_lease_change
        self._l2_ttl = l2_ttl_seconds
        self._prefix = prefix
        self._changes = f"{prefix}changes"
        self._replicas = f"{prefix}replicas"
        self._epoch_key = f"{prefix}epoch"
        self._ping_channel = f"{prefix}ping:{self.replica_id}"
        self._ack_channel = f"{prefix}ack:{self.replica_id}"
        # The process's client (redis_client.py): str replies, BILLING_REDIS_TIMEOUT_SECONDS.
        self._redis = redis
        self._announce = self._redis.register_script(_ANNOUNCE)
        self._heartbeat = self._redis.register_script(_HEARTBEAT)
        self._subscribed_at = math.inf
        self._seen_failure = False
        self._waiters: dict[str, _AckWaiter] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False

    @property
    def leased(self) -> bool:
        """True while this replica may answer from its in-process cache."""
        return time.monotonic() < self.lease_until

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
        if self._leases_lapsed(started):
            ANNOUNCES_SKIPPED.inc()
            return
        try:
            live = await self._publish_until(started + self.lease_seconds, user_id, message)
            if live is None:
                # Nobody could be told; every lease, renewed only through Redis, lapses by then.
                await asyncio.sleep(
                    max(0.0, started + self.lease_seconds + 0.05 - time.monotonic())
                )
                return
            deadline = time.monotonic() + self.lease_seconds + 0.05
            waiter.expect({r for r in live if r != self.replica_id})
            try:
                await asyncio.wait_for(waiter.done.wait(), timeout=deadline - time.monotonic())
            except TimeoutError:
                ACK_TIMEOUTS.inc()
                log.warning(
                    "replicas %s did not acknowledge a change of %s; waited for their leases",
                    sorted(waiter.missing()),
                    user_id,
                )
        finally:
            self._waiters.pop(nonce, None)

    def _leases_lapsed(self, now: float) -> bool:
        """True when Redis has been down longer than a lease: no replica can answer from memory."""
        return (
            not self.up
            and self._down_since is not None
            and now - self._down_since > self.lease_seconds + 0.05
            and now > self.lease_until
        )

    async def _publish_until(
        self, deadline: float, user_id: str, message: str
    ) -> Sequence[str] | None:
        while True:
            try:
                live = await self._announce(
                    keys=[self._gen_key(user_id), self._changes, self._replicas],
                    args=[message, self.lease_seconds + 0.5],
                )
                return [str(r) for r in live]
            except (RedisError, OSError) as exc:
                self._mark_down(exc)
                if time.monotonic() + 0.05 >= deadline:
                    log.error("could not publish a change of %s to Redis: %s", user_id, exc)
                    return None
                await asyncio.sleep(0.05)

    # -- shared L2 copy ------------------------------------------------------------------

    def _gen_key(self, user_id: str) -> str:
        return f"{self._prefix}gen:{user_id}"

    def _l2_key(self, user_id: str) -> str:
        # val2: records hold every row that can answer (several with a duplicate).
        return f"{self._prefix}val2:{user_id}"

    async def l2_get(self, users: Sequence[str]) -> tuple[L2Tag, dict[str, str]] | None:
        """Current tags of ``users`` and the L2 records valid under them (None: Redis down)."""
        if not self.up:
            return None
        keys = [self._epoch_key, *map(self._gen_key, users), *map(self._l2_key, users)]
        try:
            raw_values = await self._redis.mget(keys)
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            return None
        values = [v if v is None else str(v) for v in raw_values]
        epoch = values[0] or "0"
        n = len(users)
        gens = {u: (values[1 + i] or "0") for i, u in enumerate(users)}
        found: dict[str, str] = {}
        for i, user in enumerate(users):
            raw = values[1 + n + i]
            if raw:
                rec_epoch, rec_gen, body = raw.split(":", 2)
                if rec_epoch == epoch and rec_gen == gens[user]:
                    found[user] = body
        return L2Tag(epoch, gens), found

    async def l2_put(self, tag: L2Tag, records: dict[str, str]) -> None:
        """Store ``records`` tagged with what was read before the database read."""
        if not records or not self.up:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user, body in records.items():
                    value = f"{tag.epoch}:{tag.generations.get(user, '0')}:{body}"
                    pipe.set(self._l2_key(user), value, ex=self._l2_ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._mark_down(exc)

    # -- health --------------------------------------------------------------------------

    def _mark_down(self, exc: BaseException) -> None:
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
        REDIS_UP.set(0)

    async def _mark_up(self) -> None:
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
        REDIS_UP.set(1)

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
                await self._mark_up()
            except (RedisError, OSError) as exc:
                self._mark_down(exc)
            await asyncio.sleep(self.heartbeat_seconds)

    # -- subscriber side -----------------------------------------------------------------

    def _lose_lease(self) -> None:
        if self.lease_until > -math.inf:
            self.lease_until = -math.inf
            self.lease_gen += 1
            self._on_lease_change()

    def _renew(self, sent: float) -> None:
        if sent <= self._subscribed_at:
            return  # sent before this subscription existed: proves nothing
        if time.monotonic() >= self.lease_until:
            # (Re)acquiring: nothing cached or being filled before now may be trusted.
            if self.lease_until > -math.inf:
                log.warning("entitlement cache lease lapsed (ping came back late); cache cleared")
            self.lease_until = -math.inf
            self.lease_gen += 1
            self._on_lease_change()
        self.lease_until = max(self.lease_until, sent + self.lease_seconds)

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
                self._mark_down(exc)
            except Exception:
                log.exception("entitlement pub/sub listener failed; reconnecting")
            finally:
                self._subscribed_at = math.inf
                self._lose_lease()
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
            self._renew(float(data))
        elif channel == self._ack_channel:
            nonce, replica = data.split(" ", 1)
            waiter = self._waiters.get(nonce)
            if waiter is not None:
                waiter.acked(replica)

    async def _ack(self, origin: str, nonce: str) -> None:
        try:
            await self._redis.publish(f"{self._prefix}ack:{origin}", f"{nonce} {self.replica_id}")
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
