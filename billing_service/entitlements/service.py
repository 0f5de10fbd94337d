"""The entitlement service of one process: validation, and the parts that answer, wired together.

Reads::

    check_cached(user, feature)  -> response | None   # the hot path: no await, no I/O
    await check(user, feature)   -> response           # everything else
    await entry(user)            -> Entry
    watch(users, ready)          -> async iterator of WatchEntitlementsResponse

The parts, one job each: ``cache`` (entries, complete mode, the lease test),
``loader`` (batched misses, Redis copy then database), ``warmer`` (complete
mode), ``coherence`` (replicas through Redis, when configured), ``watch``
(stream fan-out) and ``wire`` (the billing.v1 messages, the edge). A cache
entry is dropped the moment a change is announced (``user_changed``, hooked
to ``ChangeNotifier``) or arrives from another replica, and it is never
served past ``access_until``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from billing_service import validation
from billing_service.entitlements.cache import EntryCache
from billing_service.entitlements.coherence import RedisCoherence
from billing_service.entitlements.lease import Lease
from billing_service.entitlements.loader import EntryLoader
from billing_service.entitlements.metrics import PROCESS_METRICS, EntitlementMetrics
from billing_service.entitlements.model import Entry, EntryBook
from billing_service.entitlements.warmer import Warmer, WarmGate
from billing_service.entitlements.watch import DEFAULT_MAX_PENDING, WatchHub
from billing_service.entitlements.wire import (
    CheckAnswer,
    ResponseBook,
    WatchFeed,
    entitlements_message,
)
from billing_service.errors import InvalidArgument
from billing_service.plans import Catalog
from billing_service.redis_client import Redis
from billing_service.storage.database import Database
from billing_service.storage.models import utcnow
from generated.billing.v1 import billing_pb2 as pb

MAX_WATCHED_USERS = 10_000
_MAX_FEATURE = 64
DEFAULT_MAX_ENTRIES = 5_000_000


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
        metrics: EntitlementMetrics = PROCESS_METRICS,
    ) -> None:
        self._catalog = catalog
        self.metrics = metrics
        self._book = ResponseBook(catalog)
        self._entry_book: EntryBook[CheckAnswer] = EntryBook(self._book)
        self.coherence: RedisCoherence | None = None
        lease = Lease.forever()
        if redis is not None:
            self.coherence = RedisCoherence(
                redis,
                on_remote_change=self._remote_change,
                on_lease_change=self._lease_changed,
                metrics=metrics,
                lease_seconds=lease_seconds,
            )
            lease = self.coherence.lease
        self._cache = EntryCache(self._entry_book, lease, metrics, max_entries)
        copy = self.coherence.copy if self.coherence is not None else None
        self._loader = EntryLoader(db, self._cache, self._entry_book, copy, metrics)
        self._warmer = Warmer(db, self._cache, self._entry_book, metrics, warm_gate)
        self._hub = WatchHub(watch_max_pending, metrics)
        self._feed = WatchFeed(catalog, self._hub, self._loader)
        self._tasks: set[asyncio.Task[None]] = set()
        # Called with True when complete mode starts, False when it ends (health, readiness).
        self.complete_listeners = self._cache.complete_listeners
        # The hot path, bound straight to the cache: no call through this facade.
        self.check_cached: Callable[[str, str], CheckAnswer | None] = self._cache.check_cached
        """The answer from memory, or None when it needs anything else (validation, a load)."""
        self.entry: Callable[[str], Awaitable[Entry[CheckAnswer]]] = self._loader.entry
        """The user's current entry: from memory when valid, else loaded (batched)."""

    async def start(self) -> None:
        """Join the replica set (when Redis is configured); start filling the cache."""
        if self.coherence is not None:
            await self.coherence.start()
        task = asyncio.create_task(self._warmer.keep_warm())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End every watch stream; then leave the replica set."""
        self._hub.close()
        for task in list(self._tasks):
            task.cancel()
        self._loader.close()
        if self.coherence is not None:
            await self.coherence.close()
        self._warmer.close()

    def end_streams(self) -> None:
        """End every watch stream with UNAVAILABLE (first step of shutdown)."""
        self._hub.close()

    @property
    def complete(self) -> bool:
        """True while every subscription is in memory (complete mode)."""
        return self._cache.complete

    # -- changes -------------------------------------------------------------------------

    async def user_changed(self, user_id: str) -> None:
        """ChangeNotifier listener: drop the user here, tell watchers and every replica.

        Returns once no replica can answer from the state before the change.
        """
        changed_at = time.time()
        self._cache.invalidate(user_id, "local")
        self._hub.publish(user_id, changed_at)
        if self.coherence is not None:
            await self.coherence.announce(user_id, changed_at)

    def usage_changed(self, user_id: str, usage: pb.MeterUsage) -> None:
        """A meter of the user reached its limit or went back under it: tell this process's
        watchers (usage changes are not announced to other replicas; docs/usage.md)."""
        self._hub.publish(user_id, time.time(), usage)

    def _remote_change(self, user_id: str, changed_at: float) -> None:
        self._cache.invalidate(user_id, "remote")
        self._hub.publish(user_id, changed_at)

    def _lease_changed(self) -> None:
        self._cache.reset()

    # -- reads ---------------------------------------------------------------------------

    async def check(self, user_id: str, feature: str) -> CheckAnswer:
        """Whether ``user_id`` may use ``feature`` now."""
        validation.user_id(user_id)
        if not feature:
            raise InvalidArgument("feature", "is required")
        if len(feature) > _MAX_FEATURE or not feature.isprintable():
            raise InvalidArgument("feature", "must be at most 64 printable characters")
        entry = await self._loader.entry(user_id)
        return entry.checks.get(feature) or self._book.unknown_feature(entry.tier, feature)

    async def entitlements(self, user_id: str) -> pb.GetEntitlementsResponse:
        """Everything ``user_id`` is entitled to now, with the per-user detail (rows, read now)."""
        validation.user_id(user_id)
        rows = await self._loader.rows([user_id])
        return entitlements_message(user_id, rows.get(user_id, []), self._catalog, utcnow())

    def watch(
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
        return self._feed.stream(list(user_ids), ready)
