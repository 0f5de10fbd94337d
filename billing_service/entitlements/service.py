"""Entitlements served from an in-process cache, filled from Redis and then the database.

Reads::

    check_cached(user, feature)  -> response | None   # the hot path: no await, no I/O
    await check(user, feature)   -> response           # everything else
    await entry(user)            -> Entry
    watch(users)                 -> async iterator of WatchEntitlementsResponse

Misses are batched: every miss of one event-loop turn becomes one Redis MGET
and at most one database query. A cache entry is dropped the moment a
change is announced (``user_changed``, hooked to ``ChangeNotifier``) or
arrives from another replica, and it is never served past ``access_until``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from billing_service import validation
from billing_service.entitlements.coherence import L2Tag, RedisCoherence
from billing_service.entitlements.metrics import (
    CACHE_COMPLETE,
    CACHE_ENTRIES,
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_WARMING,
    DB_LOADS,
    INVALIDATIONS,
    L2_HITS,
    WARM_CPU_SECONDS,
    WARM_SECONDS,
)
from billing_service.entitlements.model import (
    Entry,
    EntryBook,
    ResponseBook,
    decode_rows,
    encode_rows,
    entitlements_message,
    pick_current,
)
from billing_service.entitlements.warmup import WarmStopped, read_current_entries
from billing_service.entitlements.watch import DEFAULT_MAX_PENDING, WatchHub
from billing_service.errors import InvalidArgument
from billing_service.plans import Catalog
from billing_service.redis_client import Redis
from billing_service.storage.database import Database, StorageUnavailable
from billing_service.storage.models import Subscription, utcnow
from generated.billing.v1 import billing_pb2 as pb

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 500
MAX_LOADS_IN_FLIGHT = 2
MAX_WATCHED_USERS = 10_000
SNAPSHOT_PAGE = 500
_CHANGE_MESSAGES_KEPT = 64
_MAX_FEATURE = 64
_MAX_USER_ID = 255
WARM_RETRY_SECONDS = 1.0
DEFAULT_MAX_ENTRIES = 5_000_000

WarmGate = Callable[[str], Awaitable[None]]
"""Awaited by the warm-up at "read" (before its snapshot) and "merge" (before it is swapped in)."""


async def _no_gate(stage: str) -> None:
    return None


def load_current(user_ids: Sequence[str]) -> dict[str, list[Subscription]]:
    """The rows that can answer for each user that has one (needs a connection)."""
    rows = Subscription.select().where(Subscription.user_id.in_(list(user_ids)))
    return pick_current(rows)


def subscribed_users_after(after: str, limit: int) -> list[str]:
    """Up to ``limit`` user ids with a subscription, ascending, greater than ``after``."""
    query = (
        Subscription.select(Subscription.user_id)
        .where(Subscription.user_id > after)
        .distinct()
        .order_by(Subscription.user_id)
        .limit(limit)
        .tuples()
    )
    return [str(row[0]) for row in query]  # type: ignore[index]


class _Reader:
    """Runs entitlement reads on a thread of their own, so they never queue behind writes."""

    def __init__(self, db: Database, name: str = "entitlements-db") -> None:
        self._db = db
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._db.call(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn, *args)

    def close(self) -> None:
        """Stop the thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(eq=False)
class _Fill:
    """One user's pending load; ``stale`` once a change for the user arrived meanwhile."""

    lease_gen: int
    future: asyncio.Future[Entry]
    stale: bool = False


@dataclass
class _Batch:
    users: list[tuple[str, _Fill]] = field(default_factory=list)


class _LocalLease:
    """Without Redis one process is the only replica: its cache is always coherent."""

    lease_until = math.inf
    lease_gen = 0
    up = False


class EntitlementService:
    """Entitlement reads for one process, and the cache behind them."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        *,
        redis: Redis | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        watch_max_pending: int = DEFAULT_MAX_PENDING,
        lease_seconds: float = 1.5,
        warm_gate: WarmGate | None = None,
    ) -> None:
        self._db = db
        self._reader = _Reader(db)
        # Warm-up reads run on their own thread, so misses keep reading through meanwhile.
        self._warm_reader = _Reader(db, "entitlements-warm")
        self._warm_gate = warm_gate or _no_gate
        self._catalog = catalog
        self.book = ResponseBook(catalog)
        self.entry_book = EntryBook(self.book)
        self._entries: dict[str, Entry] = {}
        self._fills: dict[str, _Fill] = {}
        self._batch: _Batch | None = None
        self._loads_in_flight = 0
        self._max_entries = max_entries
        self.hub = WatchHub(watch_max_pending)
        # Complete mode: once every subscription row is cached (``_warm``), a user
        # absent from ``_entries`` has no subscription and is free, with no
        # database read, unless an invalidation since marked them ``_dirty``.
        self._complete_gen: int | None = None
        self._dirty: set[str] = set()
        self._free_checks = self.book.by_tier[catalog.free.name]
        self._no_subscription = self.entry_book.from_rows((), utcnow())
        # Called with True when complete mode starts, False when it ends (health, readiness).
        self.complete_listeners: list[Callable[[bool], None]] = []
        # One message per change, shared by every stream watching the user (built once).
        self._change_messages: dict[
            tuple[str, float], asyncio.Future[pb.WatchEntitlementsResponse]
        ] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.coherence: RedisCoherence | None = None
        self._lease: RedisCoherence | _LocalLease = _LocalLease()
        if redis is not None:
            self.coherence = RedisCoherence(
                redis,
                on_remote_change=self._remote_change,
                on_lease_change=self._reset,
                lease_seconds=lease_seconds,
            )
            self._lease = self.coherence

    async def start(self) -> None:
        """Join the replica set (when Redis is configured); start filling the cache."""
        if self.coherence is not None:
            await self.coherence.start()
        task = asyncio.create_task(self._keep_warm())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End every watch stream; then leave the replica set."""
        self.hub.close()
        for task in list(self._tasks):
            task.cancel()
        if self.coherence is not None:
            await self.coherence.close()
        self._reader.close()
        self._warm_reader.close()

    def end_streams(self) -> None:
        """End every watch stream with UNAVAILABLE (first step of shutdown)."""
        self.hub.close()

    # -- invalidation --------------------------------------------------------------------

    def _invalidate(self, user_id: str, source: str) -> None:
        self._entries.pop(user_id, None)
        self._dirty.add(user_id)
        fill = self._fills.pop(user_id, None)
        if fill is not None:
            fill.stale = True
        INVALIDATIONS.labels(source).inc()

    async def user_changed(self, user_id: str) -> None:
        """ChangeNotifier listener: drop the user here, tell watchers and every replica.

        Returns once no replica can answer from the state before the change.
        """
        changed_at = time.time()
        self._invalidate(user_id, "local")
        self.hub.publish(user_id, changed_at)
        if self.coherence is not None:
            await self.coherence.announce(user_id, changed_at)

    def usage_changed(self, user_id: str, usage: pb.MeterUsage) -> None:
        """A meter of the user reached its limit or went back under it: tell this process's
        watchers (usage changes are not announced to other replicas; docs/usage.md)."""
        self.hub.publish(user_id, time.time(), usage)

    def _remote_change(self, user_id: str, changed_at: float) -> None:
        self._invalidate(user_id, "remote")
        self.hub.publish(user_id, changed_at)

    def _reset(self) -> None:
        """The lease changed hands: nothing cached or in flight may be served any more."""
        self._entries.clear()
        self._set_complete(None)
        for fill in self._fills.values():
            fill.stale = True
        self._fills.clear()
        INVALIDATIONS.labels("lease").inc()

    # -- reads ---------------------------------------------------------------------------

    def _known_free(self, user_id: str) -> bool:
        """True when complete mode proves ``user_id`` has no subscription."""
        lease = self._lease
        return (
            self._complete_gen == lease.lease_gen
            and time.monotonic() < lease.lease_until
            and user_id not in self._dirty
        )

    def check_cached(self, user_id: str, feature: str) -> pb.CheckEntitlementResponse | None:
        """The answer from memory, or None when it needs anything else (validation, a load)."""
        entry = self._entries.get(user_id)
        if entry is None:
            if 0 < len(user_id) <= _MAX_USER_ID and self._known_free(user_id):
                response = self._free_checks.get(feature)
                if response is not None and user_id.isprintable() and " " not in user_id:
                    CACHE_HITS.value += 1
                    return response
            return None
        if time.monotonic() >= self._lease.lease_until:
            return None
        if time.time() >= entry.expires_at:
            return None
        response = entry.checks.get(feature)
        if response is not None:
            CACHE_HITS.value += 1
        return response

    async def check(self, user_id: str, feature: str) -> pb.CheckEntitlementResponse:
        """Whether ``user_id`` may use ``feature`` now."""
        validation.user_id(user_id)
        if not feature:
            raise InvalidArgument("feature", "is required")
        if len(feature) > _MAX_FEATURE or not feature.isprintable():
            raise InvalidArgument("feature", "must be at most 64 printable characters")
        entry = await self.entry(user_id)
        return entry.checks.get(feature) or self.book.unknown_feature(entry.tier, feature)

    async def entitlements(self, user_id: str) -> pb.GetEntitlementsResponse:
        """Everything ``user_id`` is entitled to now, with the per-user detail (rows, read now)."""
        validation.user_id(user_id)
        rows = await self._rows([user_id])
        return entitlements_message(user_id, rows.get(user_id, []), self._catalog, utcnow())

    async def _rows(self, users: list[str]) -> dict[str, list[Subscription]]:
        """The rows that answer for ``users``: the Redis copy, else the database."""
        rows, l2_writes, tag = await self._fetch(users)
        if self.coherence is not None and tag is not None and l2_writes:
            await self.coherence.l2_put(tag, l2_writes)
        return rows

    async def entry(self, user_id: str) -> Entry:
        """The user's current entry: from memory when valid, else loaded (batched)."""
        lease = self._lease
        leased = time.monotonic() < lease.lease_until
        entry = self._entries.get(user_id) if leased else None
        if entry is not None:
            if time.time() < entry.expires_at:
                CACHE_HITS.value += 1
                return entry
            # Past access_until: the grant has ended (free, or the user's other subscription).
            entry = self.entry_book.expired(entry, utcnow())
            self._store(user_id, entry)
            return entry
        if self._known_free(user_id):
            CACHE_HITS.value += 1
            return self._no_subscription
        CACHE_MISSES.inc()
        fill = self._fills.get(user_id) if leased else None
        if fill is None or fill.lease_gen != lease.lease_gen:
            fill = _Fill(lease.lease_gen, asyncio.get_running_loop().create_future())
            if leased:
                self._fills[user_id] = fill
            self._enqueue(user_id, fill)
        entry = await asyncio.shield(fill.future)
        if time.time() >= entry.expires_at:
            entry = self.entry_book.expired(entry, utcnow())
        return entry

    def _store(self, user_id: str, entry: Entry) -> None:
        self._dirty.discard(user_id)
        if len(self._entries) >= self._max_entries:
            self._set_complete(None)
            # Drop the oldest tenth; a rare, bounded pause instead of per-hit LRU bookkeeping.
            for key in list(self._entries)[: max(1, self._max_entries // 10)]:
                del self._entries[key]
        self._entries[user_id] = entry

    # -- complete mode -------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """True while every subscription is in memory (complete mode)."""
        return self._complete_gen is not None and self._complete_gen == self._lease.lease_gen

    def _set_complete(self, gen: int | None) -> None:
        was = self._complete_gen is not None
        self._complete_gen = gen
        CACHE_COMPLETE.set(0 if gen is None else 1)
        if was != (gen is not None):
            for listener in self.complete_listeners:
                listener(gen is not None)

    async def _keep_warm(self) -> None:
        """Fill the cache with every subscription, again whenever a lease change emptied it."""
        while True:
            lease = self._lease
            leased = time.monotonic() < lease.lease_until
            if leased and self._complete_gen != lease.lease_gen:
                CACHE_WARMING.set(1)
                try:
                    await self._warm(lease.lease_gen)
                except StorageUnavailable as exc:
                    log.warning("entitlement cache not filled (%s); will retry", exc)
                except Exception:
                    log.exception("entitlement cache not filled (a bug); will retry")
                finally:
                    CACHE_WARMING.set(0)
            await asyncio.sleep(WARM_RETRY_SECONDS)

    async def _warm(self, gen: int) -> None:
        """Read every user's current subscription; on success, enter complete mode.

        The snapshot is built on its own thread into a new dict while the
        live cache keeps serving (misses read through). Then, on the loop and
        in one step: users invalidated since the snapshot started are dropped
        from it (their entry may predate the change), entries the live cache
        loaded meanwhile win (they are at least as new), and the result
        replaces the live cache.
        """
        started = time.monotonic()
        self._dirty = set()
        await self._warm_gate("read")
        lease = self._lease

        def stale() -> bool:
            return lease.lease_gen != gen

        try:
            snapshot = await self._warm_reader.run(
                read_current_entries, self._db, self.entry_book, utcnow(), stale
            )
        except WarmStopped:
            return
        await self._warm_gate("merge")
        if lease.lease_gen != gen or time.monotonic() >= lease.lease_until:
            return
        built = snapshot.entries
        if len(built) > self._max_entries:
            log.warning(
                "%d subscribed users, more than the cache holds (%d); complete mode off",
                len(built),
                self._max_entries,
            )
            return
        for user in self._dirty:
            built.pop(user, None)
        built.update(self._entries)
        self._entries = built
        self._set_complete(gen)
        # The cache lives as long as the process: keep the cyclic GC from walking it again
        # and again (a full collection would visit every entry; docs/performance.md).
        gc.freeze()
        elapsed = time.monotonic() - started
        WARM_SECONDS.set(elapsed)
        WARM_CPU_SECONDS.set(snapshot.cpu_seconds)
        CACHE_ENTRIES.set(len(built))
        log.info(
            "entitlement cache complete: %d subscribed users (%d rows) in %.1fs (%.1fs CPU)",
            len(built),
            snapshot.rows,
            elapsed,
            snapshot.cpu_seconds,
        )

    # -- batched loads -------------------------------------------------------------------

    def _enqueue(self, user_id: str, fill: _Fill) -> None:
        if self._batch is None:
            self._batch = _Batch()
            if self._loads_in_flight < MAX_LOADS_IN_FLIGHT:
                asyncio.get_running_loop().call_soon(self._launch)
        self._batch.users.append((user_id, fill))

    def _launch(self) -> None:
        # While MAX_LOADS_IN_FLIGHT loads run, misses accumulate into the next
        # batch, which starts when one finishes: batches grow with the load.
        if self._loads_in_flight >= MAX_LOADS_IN_FLIGHT:
            return
        batch, self._batch = self._batch, None
        if batch is None or not batch.users:
            return
        if len(batch.users) > MAX_BATCH:
            self._batch = _Batch(batch.users[MAX_BATCH:])
            batch.users = batch.users[:MAX_BATCH]
        self._loads_in_flight += 1
        task = asyncio.create_task(self._load(batch.users))
        self._tasks.add(task)
        task.add_done_callback(self._loaded)

    def _loaded(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._loads_in_flight -= 1
        if self._batch is not None:
            self._launch()

    async def _load(self, fills: list[tuple[str, _Fill]]) -> None:
        users = list(dict.fromkeys(user for user, _ in fills))
        try:
            rows, l2_writes, tag = await self._fetch(users)
        except Exception as exc:
            for user, fill in fills:
                if self._fills.get(user) is fill:
                    del self._fills[user]
                if not fill.future.done():
                    fill.future.set_exception(exc)
            return
        now = utcnow()
        built: dict[str, Entry] = {}
        for user, fill in fills:
            entry = built.get(user)
            if entry is None:
                entry = built[user] = self.entry_book.from_rows(rows.get(user, ()), now)
            if self._fills.get(user) is fill:
                del self._fills[user]
            lease = self._lease
            if (
                not fill.stale
                and fill.lease_gen == lease.lease_gen
                and time.monotonic() < lease.lease_until
            ):
                self._store(user, entry)
            if not fill.future.done():
                fill.future.set_result(entry)
        if self.coherence is not None and tag is not None and l2_writes:
            await self.coherence.l2_put(tag, l2_writes)

    async def _fetch(
        self, users: list[str]
    ) -> tuple[dict[str, list[Subscription]], dict[str, str], L2Tag | None]:
        rows: dict[str, list[Subscription]] = {}
        tag: L2Tag | None = None
        missing = users
        if self.coherence is not None:
            found = await self.coherence.l2_get(users)
            if found is not None:
                tag, records = found
                for user, body in records.items():
                    try:
                        rows[user] = decode_rows(user, body)
                    except ValueError:
                        continue
                L2_HITS.inc(len(rows))
                missing = [u for u in users if u not in rows]
        l2_writes: dict[str, str] = {}
        if missing:
            loaded = await self._reader.run(load_current, missing)
            DB_LOADS.inc(len(missing))
            for user in missing:
                user_rows = loaded.get(user, [])
                rows[user] = user_rows
                l2_writes[user] = encode_rows(user_rows)
        return rows, l2_writes, tag

    # -- watch ---------------------------------------------------------------------------

    async def watch(
        self,
        user_ids: Sequence[str],
        ready: Callable[[], Awaitable[None]],
    ) -> AsyncIterator[pb.WatchEntitlementsResponse]:
        """The snapshot of ``user_ids`` (all users when empty), then every change.

        ``ready`` is awaited once the stream is registered for changes and
        before the snapshot is read (the servicer sends initial metadata), so
        a caller that saw it misses no change made afterwards.
        """
        for user in user_ids:
            validation.user_id(user, "user_ids")
        if len(user_ids) > MAX_WATCHED_USERS:
            raise InvalidArgument("user_ids", f"at most {MAX_WATCHED_USERS} users per stream")
        sub = self.hub.subscribe(list(user_ids) or None)
        try:
            await ready()
            async for message in self._snapshot(list(dict.fromkeys(user_ids))):
                yield message
            while True:
                user, changed_at, usage = await sub.next()
                message = await self._change_message(user, changed_at)
                if usage is not None:
                    # Usage is this stream's own: add it to a copy, never to the shared message.
                    own = pb.WatchEntitlementsResponse()
                    own.CopyFrom(message)
                    own.usage.CopyFrom(usage)
                    message = own
                yield message
        finally:
            self.hub.unsubscribe(sub)

    async def _change_message(self, user: str, changed_at: float) -> pb.WatchEntitlementsResponse:
        # A thousand streams watching one user: the first reads the rows, the rest share it.
        key = (user, changed_at)
        pending = self._change_messages.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._change_messages[key] = pending
            while len(self._change_messages) > _CHANGE_MESSAGES_KEPT:
                del self._change_messages[next(iter(self._change_messages))]
            try:
                rows = await self._rows([user])
                pending.set_result(
                    self._message(user, rows.get(user, []), snapshot=False, at=changed_at)
                )
            except Exception as exc:
                self._change_messages.pop(key, None)
                pending.set_exception(exc)
                pending.exception()  # retrieved here; streams sharing it get it too
                raise
        return await asyncio.shield(pending)

    def _message(
        self, user: str, rows: list[Subscription], *, snapshot: bool, at: float
    ) -> pb.WatchEntitlementsResponse:
        message = pb.WatchEntitlementsResponse(snapshot=snapshot)
        message.entitlements.CopyFrom(entitlements_message(user, rows, self._catalog, utcnow()))
        ts = Timestamp()
        ts.FromNanoseconds(int(at * 1e9))
        message.changed_at.CopyFrom(ts)
        return message

    async def _snapshot(self, users: list[str]) -> AsyncIterator[pb.WatchEntitlementsResponse]:
        if users:
            for start in range(0, len(users), SNAPSHOT_PAGE):
                page = users[start : start + SNAPSHOT_PAGE]
                rows = await self._rows(page)
                at = time.time()
                for user in page:
                    yield self._message(user, rows.get(user, []), snapshot=True, at=at)
            return
        # Every user with a subscription, a page at a time: memory stays one page.
        after = ""
        while True:
            page = await self._reader.run(subscribed_users_after, after, SNAPSHOT_PAGE)
            if not page:
                return
            rows = await self._reader.run(load_current, page)
            at = time.time()
            for user in page:
                yield self._message(user, rows.get(user, []), snapshot=True, at=at)
            after = page[-1]
