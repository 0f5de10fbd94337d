"""Per-customer locks and the "event already processed" fast path.

With Redis, a lock is a key set with ``NX`` to a random owner token and an
expiry, so only the holder can release it and the expiry
(``BILLING_EVENT_LOCK_TTL_SECONDS``) frees it when a replica dies holding
it: redis-py's ``Lock`` protocol. A replica holds it as a lease for all its
events of one customer in flight (``Claim``): the next event enters once the
one before it has queued its write, and the last one out releases it.

An event's ``Claim`` runs the lock as two small scripts so that each costs
one round trip together with the dedupe markers: taking the lock first
checks whether Redis remembers the event as applied (then no lock is taken
and the caller answers from the database), and the release writes the
markers of the events applied under the lease once their transactions
committed. Two round trips per lease, whatever number of events share it;
an event that joins one costs none. The takes of one event-loop turn (the
events of one ``ApplyStripeEvents`` call) go as one script call for all
their customers, and so do the releases of one turn (turn_batch.py;
measured in docs/performance.md). A marker is written only after its
event's commit, so it never claims an event that was not applied.

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
import uuid
import weakref
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from billing_service import metrics
from billing_service.errors import Unavailable
from billing_service.processed_marker import marker_key
from billing_service.redis_breaker import RedisBreaker
from billing_service.redis_client import Redis
from billing_service.turn_batch import TurnBatch

log = logging.getLogger(__name__)

_LOCK_PREFIX = "billing:lock:"
_RETRY_SECONDS = 0.02

_Take = tuple[str, str, str]  # lock key, marker key ("": no check), token
_Release = tuple[str, str, list[str]]  # lock key, token, markers to write

# One call per event-loop turn for all the turn's locks (turn_batch.TurnBatch).
# KEYS: per lock, the lock then its marker ("" skips the marker check). ARGV: expiry in ms,
# then one token per lock. Per lock: -1: the marker is there (no lock taken);
# 1: the lock is ours; 0: another holder has it.
_TAKE = """
local results = {}
for i = 1, #KEYS, 2 do
  local got = 0
  if KEYS[i + 1] ~= '' and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    got = -1
  elseif redis.call('SET', KEYS[i], ARGV[(i + 1) / 2 + 1], 'NX', 'PX', ARGV[1]) then
    got = 1
  end
  results[#results + 1] = got
end
return results
"""
# KEYS: per lock, the lock then the markers to write (none or several). ARGV: marker
# expiry in s, then per lock its token and its number of markers. Per lock: 1: released;
# 0: the lease had run out (another holder may have it): left alone.
_RELEASE = """
local results = {}
local k = 1
for j = 2, #ARGV, 2 do
  local markers = tonumber(ARGV[j + 1])
  for m = 1, markers do redis.call('SET', KEYS[k + m], '1', 'EX', ARGV[1]) end
  local freed = 0
  if redis.call('GET', KEYS[k]) == ARGV[j] then freed = redis.call('DEL', KEYS[k]) end
  results[#results + 1] = freed
  k = k + markers + 1
end
return results
"""


class LocalLocks:
    """asyncio locks per key for one process, with a bounded wait."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._waiting: dict[str, int] = {}  # key -> acquires waiting on its lock

    async def acquire(self, key: str, wait: float) -> asyncio.Lock:
        """The held lock for ``key`` (release it); Unavailable when not free within ``wait`` s."""
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        if not lock.locked() and key not in self._waiting:
            # Free and nobody queued (every waiter is counted here until its acquire
            # returns): asyncio.Lock takes it without suspending, so no timeout to arm.
            await lock.acquire()
            return lock
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            # asyncio.timeout, not wait_for: no task per acquire.
            async with asyncio.timeout(max(0.0, wait)):
                await lock.acquire()
        except TimeoutError:
            raise Unavailable(f"lock for {key} not obtained in {wait:g}s; retry") from None
        finally:
            if self._waiting[key] == 1:
                del self._waiting[key]
            else:
                self._waiting[key] -= 1
        return lock


class _Lease:
    """This process's turn on one key: one Redis lock shared by its claims in flight."""

    __slots__ = ("closed", "joined", "markers", "opened_at", "token", "users")

    def __init__(self, token: str | None, opened_at: float) -> None:
        self.token = token  # None: taken without Redis (none configured, or it failed)
        self.opened_at = opened_at  # event-loop time
        self.users = 0
        self.joined = 0
        # Dedupe markers of the events applied under it, written with the lock's release.
        self.markers: list[str] = []
        self.closed: asyncio.Future[None] | None = None  # set while the last user releases

    def stop_joins(self) -> asyncio.Future[None]:
        """Take no more claims; the future is done once the last user released the lease."""
        if self.closed is None:
            self.closed = asyncio.get_running_loop().create_future()
        return self.closed

    def open_to(self, locks: EventLocks, now: float) -> bool:
        """True while another claim may join: not closing, not joined too often, not too old.

        Joins stop at half the lock's expiry: the lease's lock was taken once
        and is not extended, so it must not outlive its expiry by much.
        """
        return (
            self.closed is None
            and self.joined < locks.max_joins
            and now - self.opened_at < locks.lock_ttl_ms / 2000
        )


class Claim:
    """One event's turn under its customer's lock (``EventLocks.claim``).

    ``await claim.seen()`` asks Redis, in the round trip that takes the lock,
    whether the event was applied already (a claim that joins a lease already
    open asks nothing); ``await claim.hold()`` takes the lock when ``seen``
    did not; ``claim.queued()`` lets the next claim of the
    same key in this process in; ``claim.applied()`` after the commit has the
    release write the dedupe marker.

    The lock has two parts. In this process, one claim at a time holds the
    key until it calls ``queued()`` (or is released): the events of one
    customer resolve one after the other and queue their writes in that
    order. Across replicas, the Redis lock is this process's lease on the
    key: taken by the first claim, shared by every claim that enters while
    it is held (up to ``max_joins``, and for half the lock's expiry), and
    released by the last one to leave. So a customer's next event need not
    wait for the previous one's commit, only for its place in the queue,
    while another replica still waits for all of them.
    """

    def __init__(self, locks: EventLocks, key: str, event_id: str, deadline: float) -> None:
        self._locks = locks
        self._key = key
        self._event_id = event_id
        self._deadline = deadline
        self._local: asyncio.Lock | None = None
        self._lease: _Lease | None = None
        self._applied = False

    def _left(self) -> float:
        return self._deadline - asyncio.get_running_loop().time()

    async def seen(self) -> bool:
        """True when the database should be asked first: Redis remembers the event, or no Redis.

        Otherwise the lock is held on return (across replicas when Redis answers).
        """
        if not self._locks.uses_redis:
            return True
        return await self._enter(check_seen=True)

    async def hold(self) -> None:
        """Take the lock, if ``seen`` did not already; Unavailable when not free in time."""
        if self._lease is None:
            await self._enter(check_seen=False)

    def queued(self) -> None:
        """This claim's write is queued: the next claim of the key in this process may enter.

        The lease (the Redis lock) stays held until this claim is released.
        """
        self._release_local()

    def applied(self) -> None:
        """The event's transaction committed: the release remembers it in Redis."""
        self._applied = True

    async def _enter(self, *, check_seen: bool) -> bool:
        """Join or open this process's lease; True when Redis remembers the event instead."""
        started = asyncio.get_running_loop().time()
        self._local = await self._locks.local.acquire(self._key, self._left())
        try:
            lease = await self._open_lease()
            if lease is None:
                lease = await self._new_lease(check_seen=check_seen)
                if lease is None:
                    self._release_local()
                    return True
        except BaseException:
            self._release_local()
            raise
        # A claim that joins does not ask Redis for its marker: a redelivery that
        # finds its customer's lease open is rare (gateways answer most from the
        # marker), and the apply's unique processed record answers it DUPLICATE.
        lease.users += 1
        lease.joined += 1
        self._lease = lease
        metrics.EVENT_LOCK_WAIT.observe(asyncio.get_running_loop().time() - started)
        return False

    async def _open_lease(self) -> _Lease | None:
        """The lease this claim may join, or None once none is (left) open."""
        leases = self._locks.leases
        loop = asyncio.get_running_loop()
        while (lease := leases.get(self._key)) is not None:
            if lease.open_to(self._locks, loop.time()):
                return lease
            # Closing, or joined often or long enough: let it drain (another
            # replica may get its turn), then take a lock of our own.
            drained = lease.stop_joins()
            try:
                async with asyncio.timeout(max(0.0, self._left())):
                    await asyncio.shield(drained)
            except TimeoutError:
                raise Unavailable(f"lock for {self._key} not obtained in time; retry") from None
        return None

    async def _new_lease(self, *, check_seen: bool) -> _Lease | None:
        """Take the Redis lock for a new lease; None when Redis remembers the event instead."""
        token: str | None = None
        if self._locks.client("lock") is not None:
            take = self._locks.take
            assert take is not None  # a client means a batch
            candidate = uuid.uuid4().hex
            marker = marker_key(self._event_id) if check_seen else ""
            try:
                while True:
                    got = await take((_LOCK_PREFIX + self._key, marker, candidate))
                    if got == -1:
                        return None
                    if got == 1:
                        token = candidate
                        self._locks.breaker.succeeded()
                        break
                    if self._left() <= 0:
                        raise Unavailable(f"lock for {self._key} not obtained in time; retry")
                    await asyncio.sleep(min(_RETRY_SECONDS, self._left()))
            except (RedisError, OSError) as exc:
                self._locks.failed(f"lock for {self._key}", exc)
        lease = _Lease(token, asyncio.get_running_loop().time())
        self._locks.leases[self._key] = lease
        return lease

    def _release_local(self) -> None:
        if self._local is not None:
            self._local.release()
            self._local = None

    async def release(self) -> None:
        """Leave the lease; with ``applied``, have the event's dedupe marker written.

        The last claim to leave releases the Redis lock and, in the same round
        trip, writes the markers of every event applied under it. Without a
        Redis lock the marker is written at once (when Redis is there at all).
        """
        lease, self._lease = self._lease, None
        applied, self._applied = self._applied, False
        try:
            await self._leave(lease, applied)
        finally:
            self._release_local()

    async def _leave(self, lease: _Lease | None, applied: bool) -> None:
        if lease is not None:
            lease.users -= 1
            last = lease.users == 0
            if last:
                lease.stop_joins()  # before any await: no claim may join a lease being released
            if applied and lease.token is not None:
                lease.markers.append(marker_key(self._event_id))
                applied = False
            if last:
                await self._close(lease)
        if applied:
            await self._locks.mark_seen(self._event_id)

    async def _close(self, lease: _Lease) -> None:
        drained = lease.stop_joins()
        try:
            if lease.token is not None:
                await self._release_redis(lease.token, lease.markers)
        finally:
            if self._locks.leases.get(self._key) is lease:
                del self._locks.leases[self._key]
            if not drained.done():
                drained.set_result(None)

    async def _release_redis(self, token: str, markers: list[str]) -> None:
        # Released even while the breaker is open: a lock we hold blocks other replicas.
        release = self._locks.release
        assert release is not None
        try:
            freed = await release((_LOCK_PREFIX + self._key, token, markers))
        except (RedisError, OSError) as exc:
            # The lock expires on its own after the TTL; a missing marker costs one read.
            log.warning("redis lock for %s not released (%s)", self._key, exc)
            self._locks.breaker.failed("unlock", exc)
            return
        if not freed:
            # Its lease ran out first (and another replica may hold it now): not ours to free.
            log.debug("redis lock for %s had expired before its release", self._key)


class EventLocks:
    """Per-customer locks and dedupe markers: through Redis when given a client, else in-process."""

    def __init__(
        self,
        redis: Redis | None = None,
        *,
        lock_ttl: float = 30.0,
        dedupe_ttl: int = 604800,
        breaker: RedisBreaker | None = None,
        max_joins: int = 16,
    ) -> None:
        self.local = LocalLocks()
        self.leases: dict[str, _Lease] = {}
        self.max_joins = max(1, max_joins)
        self.breaker = breaker or RedisBreaker()
        self.lock_ttl_ms = max(1, round(lock_ttl * 1000))
        self.dedupe_ttl = dedupe_ttl
        self.redis = redis
        self.take: TurnBatch[_Take, int] | None = None
        self.release: TurnBatch[_Release, int] | None = None
        self._abandoned: set[asyncio.Task[None]] = set()
        if redis is not None:
            self._take_script = redis.register_script(_TAKE)
            self._release_script = redis.register_script(_RELEASE)
            self.take = TurnBatch(self._take_all, abandoned=self._release_abandoned)
            self.release = TurnBatch(self._release_all)

    async def _take_all(self, takes: list[_Take]) -> list[int]:
        """Take a turn's locks in one round trip: -1 (marker there), 1 (ours) or 0 per lock."""
        keys = [key for lock, marker, _ in takes for key in (lock, marker)]
        tokens = [token for _, _, token in takes]
        got = await self._take_script(
            keys=keys, args=[self.lock_ttl_ms, *tokens], client=self.redis
        )
        return [int(one) for one in got]

    async def _release_all(self, releases: list[_Release]) -> list[int]:
        """Release a turn's locks, writing their markers, in one round trip: 1 freed, 0 not ours."""
        keys = [key for lock, _, markers in releases for key in (lock, *markers)]
        args: list[str | int] = [self.dedupe_ttl]
        for _, token, markers in releases:
            args += [token, len(markers)]
        freed = await self._release_script(keys=keys, args=args, client=self.redis)
        return [int(one) for one in freed]

    def _release_abandoned(self, take: _Take, got: int) -> None:
        """A lock taken for a claim that was cancelled meanwhile: released, not left to expire."""
        if got != 1 or self.release is None:
            return
        task = asyncio.get_running_loop().create_task(self._free(take))
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def _free(self, take: _Take) -> None:
        lock, _, token = take
        assert self.release is not None
        try:
            await self.release((lock, token, []))
        except (RedisError, OSError) as exc:
            # It expires on its own after the lock's TTL.
            log.warning("redis lock %s of a cancelled claim not released (%s)", lock, exc)

    @property
    def uses_redis(self) -> bool:
        """True when Redis is configured and the breaker lets commands through."""
        return self.redis is not None and not self.breaker.is_open

    def client(self, purpose: str) -> Redis | None:
        """The Redis client when configured and the breaker is closed, else None."""
        if self.redis is None or not self.breaker.allows(purpose):
            return None
        return self.redis

    def failed(self, purpose: str, exc: BaseException) -> None:
        """Note a Redis failure: logged, and the breaker keeps Redis out for a while."""
        log.warning("redis %s failed (%s); using the database only", purpose, exc)
        self.breaker.failed(purpose, exc)

    async def seen(self, event_id: str) -> bool:
        """True when Redis remembers ``event_id`` as processed (False without or on error)."""
        client = self.client("dedupe_check")
        if client is None:
            return False
        try:
            found = bool(await client.exists(marker_key(event_id)))
        except (RedisError, OSError) as exc:
            self.failed("dedupe_check", exc)
            return False
        self.breaker.succeeded()
        return found

    async def mark_seen(self, event_id: str) -> None:
        """Remember ``event_id`` as processed; call only after its transaction committed."""
        client = self.client("dedupe_mark")
        if client is None:
            return
        try:
            await client.set(marker_key(event_id), b"1", ex=self.dedupe_ttl)
        except (RedisError, OSError) as exc:
            self.failed("dedupe_mark", exc)

    @contextlib.asynccontextmanager
    async def claim(self, key: str, event_id: str, wait: float) -> AsyncIterator[Claim]:
        """An event's turn on ``key``: see ``Claim``; released (and maybe marked) on exit.

        Unavailable when the lock is not obtained within ``wait`` seconds.
        """
        claim = Claim(self, key, event_id, asyncio.get_running_loop().time() + wait)
        try:
            yield claim
        finally:
            await claim.release()

    @contextlib.asynccontextmanager
    async def hold(self, key: str, wait: float) -> AsyncIterator[None]:
        """Serialize work on ``key`` in this process and, with Redis, across replicas.

        Unavailable when the lock is not obtained within ``wait`` seconds.
        """
        async with self.claim(key, "", wait) as claim:
            await claim.hold()
            yield
