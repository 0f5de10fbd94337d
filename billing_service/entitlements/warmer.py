"""Keeping the cache complete: read every subscription, swap it in, again after each lease change.

``warmup.read_current_entries`` reads the snapshot (fast, on a thread of its
own); this module decides when to take one and merges it into the live cache
(``EntryCache.merge_snapshot``), which keeps serving meanwhile (misses read
through). A snapshot taken under a lease generation that has since moved on
is thrown away.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from billing_service.entitlements.cache import EntryCache
from billing_service.entitlements.loader import Reader
from billing_service.entitlements.metrics import EntitlementMetrics
from billing_service.entitlements.model import EntryBook
from billing_service.entitlements.warmup import WarmStopped, read_current_entries
from billing_service.storage.database import Database, StorageUnavailable
from billing_service.storage.models import utcnow

log = logging.getLogger(__name__)

A = TypeVar("A")

WARM_RETRY_SECONDS = 1.0

WarmGate = Callable[[str], Awaitable[None]]
"""Awaited by the warm-up at "read" (before its snapshot) and "merge" (before it is swapped in)."""


async def _no_gate(stage: str) -> None:
    return None


class Warmer(Generic[A]):
    """Fills ``cache`` with every subscription whenever it is not complete under the lease."""

    def __init__(
        self,
        db: Database,
        cache: EntryCache[A],
        entry_book: EntryBook[A],
        metrics: EntitlementMetrics,
        gate: WarmGate | None = None,
    ) -> None:
        self._db = db
        # Warm-up reads run on their own thread, so misses keep reading through meanwhile.
        self._reader = Reader(db, "entitlements-warm")
        self._cache = cache
        self._entry_book = entry_book
        self._metrics = metrics
        self._gate = gate or _no_gate

    def close(self) -> None:
        """Stop the reader thread (cancel ``keep_warm`` first)."""
        self._reader.close()

    async def keep_warm(self) -> None:
        """Fill the cache with every subscription, again whenever a lease change emptied it."""
        lease = self._cache.lease
        while True:
            if lease.leased and self._cache.complete_gen != lease.gen:
                self._metrics.cache_warming.set(1)
                try:
                    await self._warm(lease.gen)
                except StorageUnavailable as exc:
                    log.warning("entitlement cache not filled (%s); will retry", exc)
                except Exception:
                    log.exception("entitlement cache not filled (a bug); will retry")
                finally:
                    self._metrics.cache_warming.set(0)
            await asyncio.sleep(WARM_RETRY_SECONDS)

    async def _warm(self, gen: int) -> None:
        """Read every user's current subscription; on success, enter complete mode.

        The snapshot is built on its own thread into a new dict while the
        live cache keeps serving (misses read through). Then, on the loop and
        in one step, it is merged into the live cache (``merge_snapshot``).
        """
        cache = self._cache
        started = time.monotonic()
        cache.dirty = set()
        await self._gate("read")
        lease = cache.lease

        def stale() -> bool:
            return lease.gen != gen

        try:
            snapshot = await self._reader.run(
                read_current_entries, self._db, self._entry_book, utcnow(), stale
            )
        except WarmStopped:
            return
        await self._gate("merge")
        if lease.gen != gen or not lease.leased:
            return
        built = snapshot.entries
        if len(built) > cache.max_entries:
            log.warning(
                "%d subscribed users, more than the cache holds (%d); complete mode off",
                len(built),
                cache.max_entries,
            )
            return
        cache.merge_snapshot(built, gen)
        # The cache lives as long as the process: keep the cyclic GC from walking it again
        # and again (a full collection would visit every entry; docs/performance.md).
        gc.freeze()
        elapsed = time.monotonic() - started
        self._metrics.warm_seconds.set(elapsed)
        self._metrics.warm_cpu_seconds.set(snapshot.cpu_seconds)
        self._metrics.cache_entries.set(len(built))
        log.info(
            "entitlement cache complete: %d subscribed users (%d rows) in %.1fs (%.1fs CPU)",
            len(built),
            snapshot.rows,
            elapsed,
            snapshot.cpu_seconds,
        )
