"""The in-process cache of entries: one per user, dropped on change, valid only under a lease.

``check_cached`` is the CheckEntitlement hot path: no await, no I/O, no
allocation. An entry is answered from only while the replica holds its
lease (``Lease.leased``) and before the entry's ``expires_at``.

Complete mode: once every subscription row is cached (``Warmer``), a user
absent from ``entries`` has no subscription and is free, with no database
read, unless an invalidation since marked them ``dirty``. It holds for the
lease generation it was reached under (``complete_gen``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from billing_service.entitlements.lease import Lease
from billing_service.entitlements.metrics import EntitlementMetrics
from billing_service.entitlements.model import Entry, EntryBook

A = TypeVar("A")

_MAX_USER_ID = 255


@dataclass(eq=False)
class Fill(Generic[A]):
    """One user's pending load; ``stale`` once a change for the user arrived meanwhile."""

    lease_gen: int
    future: asyncio.Future[Entry[A]]
    stale: bool = False


class EntryCache(Generic[A]):
    """Entries per user, the loads in flight, and whether the cache is complete."""

    def __init__(
        self,
        entry_book: EntryBook[A],
        lease: Lease,
        metrics: EntitlementMetrics,
        max_entries: int,
    ) -> None:
        self.lease = lease
        self.entries: dict[str, Entry[A]] = {}
        self.fills: dict[str, Fill[A]] = {}
        # Users changed since the last complete snapshot started (see the module docstring).
        self.dirty: set[str] = set()
        self.complete_gen: int | None = None
        # Called with True when complete mode starts, False when it ends (health, readiness).
        self.complete_listeners: list[Callable[[bool], None]] = []
        self.max_entries = max_entries
        self._free_checks = entry_book.book.by_tier[entry_book.book.catalog.free.name]
        self._hits = metrics.cache_hits
        self._invalidations = metrics.invalidations
        self._complete_gauge = metrics.cache_complete

    # -- reads ---------------------------------------------------------------------------

    def known_free(self, user_id: str) -> bool:
        """True when complete mode proves ``user_id`` has no subscription."""
        lease = self.lease
        return self.complete_gen == lease.gen and lease.leased and user_id not in self.dirty

    def check_cached(self, user_id: str, feature: str) -> A | None:
        """The answer from memory, or None when it needs anything else (validation, a load)."""
        entry = self.entries.get(user_id)
        if entry is None:
            if 0 < len(user_id) <= _MAX_USER_ID and self.known_free(user_id):
                response = self._free_checks.get(feature)
                if response is not None and user_id.isprintable() and " " not in user_id:
                    self._hits.value += 1
                    return response
            return None
        if not self.lease.leased:
            return None
        if time.time() >= entry.expires_at:
            return None
        response = entry.checks.get(feature)
        if response is not None:
            self._hits.value += 1
        return response

    def count_hit(self) -> None:
        """An answer came from memory by another way than ``check_cached``."""
        self._hits.value += 1

    # -- writes --------------------------------------------------------------------------

    def store(self, user_id: str, entry: Entry[A]) -> None:
        """Hold ``entry`` for ``user_id``; past ``max_entries`` the oldest tenth goes first."""
        self.dirty.discard(user_id)
        if len(self.entries) >= self.max_entries:
            self.set_complete(None)
            # Drop the oldest tenth; a rare, bounded pause instead of per-hit LRU bookkeeping.
            for key in list(self.entries)[: max(1, self.max_entries // 10)]:
                del self.entries[key]
        self.entries[user_id] = entry

    def may_store(self, fill: Fill[A]) -> bool:
        """True when a load started as ``fill`` may still be stored (no change, same lease)."""
        return not fill.stale and fill.lease_gen == self.lease.gen and self.lease.leased

    def invalidate(self, user_id: str, source: str) -> None:
        """Drop ``user_id`` (and any load of it in flight); ``source`` labels the metric."""
        self.entries.pop(user_id, None)
        self.dirty.add(user_id)
        fill = self.fills.pop(user_id, None)
        if fill is not None:
            fill.stale = True
        self._invalidations.labels(source).inc()

    def reset(self) -> None:
        """The lease changed hands: nothing cached or in flight may be served any more."""
        self.entries.clear()
        self.set_complete(None)
        for fill in self.fills.values():
            fill.stale = True
        self.fills.clear()
        self._invalidations.labels("lease").inc()

    # -- complete mode -------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """True while every subscription is in memory (complete mode)."""
        return self.complete_gen is not None and self.complete_gen == self.lease.gen

    def set_complete(self, gen: int | None) -> None:
        """Enter complete mode under lease generation ``gen``, or leave it (None)."""
        was = self.complete_gen is not None
        self.complete_gen = gen
        self._complete_gauge.set(0 if gen is None else 1)
        if was != (gen is not None):
            for listener in self.complete_listeners:
                listener(gen is not None)

    def merge_snapshot(self, built: dict[str, Entry[A]], gen: int) -> None:
        """Swap in a complete snapshot read under generation ``gen``, in one step.

        Users invalidated since the snapshot started are dropped from it (their
        entry may predate the change), entries loaded meanwhile win (they are
        at least as new).
        """
        for user in self.dirty:
            built.pop(user, None)
        built.update(self.entries)
        self.entries = built
        self.set_complete(gen)
