"""Loading entries on a miss: batched, from the Redis copy first, then the database.

Every miss of one event-loop turn joins one batch; a batch becomes one Redis
MGET (``RedisCopy.get``) and at most one database query for the users the
copy did not answer, on a reader thread of its own so that reads never queue
behind writes. At most ``MAX_LOADS_IN_FLIGHT`` batches run at once; misses
meanwhile accumulate into the next batch, so batches grow with the load. What
the database answered is written back to the Redis copy, tagged with what was
read before the database read.

A loaded entry is stored only if nothing changed for the user meanwhile and
the lease it started under is still held (``EntryCache.may_store``); the
caller gets it either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from billing_service.entitlements.cache import EntryCache, Fill
from billing_service.entitlements.metrics import EntitlementMetrics
from billing_service.entitlements.model import (
    Entry,
    EntryBook,
    decode_rows,
    encode_rows,
    pick_current,
)
from billing_service.entitlements.redis_copy import L2Tag, RedisCopy
from billing_service.storage.database import Database
from billing_service.storage.models import Subscription, utcnow

A = TypeVar("A")
T = TypeVar("T")

MAX_BATCH = 500
MAX_LOADS_IN_FLIGHT = 2


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


class Reader:
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


@dataclass
class _Batch(Generic[A]):
    users: list[tuple[str, Fill[A]]] = field(default_factory=list)


class EntryLoader(Generic[A]):
    """Entries from the cache when valid, else loaded in batches (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        cache: EntryCache[A],
        entry_book: EntryBook[A],
        copy: RedisCopy | None,
        metrics: EntitlementMetrics,
    ) -> None:
        self._reader = Reader(db)
        self._cache = cache
        self._entry_book = entry_book
        self._copy = copy
        self._metrics = metrics
        self._no_subscription = entry_book.from_rows((), utcnow())
        self._batch: _Batch[A] | None = None
        self._loads_in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Cancel the loads in flight and stop the reader thread."""
        for task in list(self._tasks):
            task.cancel()
        self._reader.close()

    async def entry(self, user_id: str) -> Entry[A]:
        """The user's current entry: from memory when valid, else loaded (batched)."""
        cache = self._cache
        lease = cache.lease
        leased = lease.leased
        entry = cache.entries.get(user_id) if leased else None
        if entry is not None:
            if time.time() < entry.expires_at:
                cache.count_hit()
                return entry
            # Past access_until: the grant has ended (free, or the user's other subscription).
            entry = self._entry_book.expired(entry, utcnow())
            cache.store(user_id, entry)
            return entry
        if cache.known_free(user_id):
            cache.count_hit()
            return self._no_subscription
        self._metrics.cache_misses.inc()
        fill = cache.fills.get(user_id) if leased else None
        if fill is None or fill.lease_gen != lease.gen:
            fill = Fill(lease.gen, asyncio.get_running_loop().create_future())
            if leased:
                cache.fills[user_id] = fill
            self._enqueue(user_id, fill)
        entry = await asyncio.shield(fill.future)
        if time.time() >= entry.expires_at:
            entry = self._entry_book.expired(entry, utcnow())
        return entry

    async def rows(self, users: list[str]) -> dict[str, list[Subscription]]:
        """The rows that answer for ``users``: the Redis copy, else the database."""
        rows, l2_writes, tag = await self._fetch(users)
        if self._copy is not None and tag is not None and l2_writes:
            await self._copy.put(tag, l2_writes)
        return rows

    async def database_rows(self, users: list[str]) -> dict[str, list[Subscription]]:
        """The rows that answer for ``users``, read from the database (no Redis copy)."""
        return await self._reader.run(load_current, users)

    async def subscribed_users_after(self, after: str, limit: int) -> list[str]:
        """Up to ``limit`` subscribed user ids after ``after``, ascending (from the database)."""
        return await self._reader.run(subscribed_users_after, after, limit)

    # -- batching ------------------------------------------------------------------------

    def _enqueue(self, user_id: str, fill: Fill[A]) -> None:
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

    async def _load(self, fills: list[tuple[str, Fill[A]]]) -> None:
        cache = self._cache
        users = list(dict.fromkeys(user for user, _ in fills))
        try:
            rows, l2_writes, tag = await self._fetch(users)
        except Exception as exc:
            for user, fill in fills:
                if cache.fills.get(user) is fill:
                    del cache.fills[user]
                if not fill.future.done():
                    fill.future.set_exception(exc)
            return
        now = utcnow()
        built: dict[str, Entry[A]] = {}
        for user, fill in fills:
            entry = built.get(user)
            if entry is None:
                entry = built[user] = self._entry_book.from_rows(rows.get(user, ()), now)
            if cache.fills.get(user) is fill:
                del cache.fills[user]
            if cache.may_store(fill):
                cache.store(user, entry)
            if not fill.future.done():
                fill.future.set_result(entry)
        if self._copy is not None and tag is not None and l2_writes:
            await self._copy.put(tag, l2_writes)

    async def _fetch(
        self, users: list[str]
    ) -> tuple[dict[str, list[Subscription]], dict[str, str], L2Tag | None]:
        rows: dict[str, list[Subscription]] = {}
        tag: L2Tag | None = None
        missing = users
        if self._copy is not None:
            found = await self._copy.get(users)
            if found is not None:
                tag, records = found
                for user, body in records.items():
                    try:
                        rows[user] = decode_rows(user, body)
                    except ValueError:
                        continue
                self._metrics.l2_hits.inc(len(rows))
                missing = [u for u in users if u not in rows]
        l2_writes: dict[str, str] = {}
        if missing:
            loaded = await self._reader.run(load_current, missing)
            self._metrics.db_loads.inc(len(missing))
            for user in missing:
                user_rows = loaded.get(user, [])
                rows[user] = user_rows
                l2_writes[user] = encode_rows(user_rows)
        return rows, l2_writes, tag
