"""Pure logic: the lease and its generation, and the cache's merge of a complete snapshot."""

from __future__ import annotations

import math
import time

from prometheus_client import CollectorRegistry

from billing_service.entitlements.cache import EntryCache
from billing_service.entitlements.lease import Lease
from billing_service.entitlements.metrics import EntitlementMetrics
from billing_service.entitlements.model import EntryBook
from billing_service.entitlements.wire import CheckAnswer, ResponseBook
from billing_service.lifecycle import Status
from billing_service.plans import load_catalog
from tests.support.processes import PLANS_FILE

BOOK = EntryBook(ResponseBook(load_catalog(PLANS_FILE)))


def counting_lease() -> tuple[Lease, list[int]]:
    changes: list[int] = []
    lease = Lease(lambda: changes.append(lease.gen))
    return lease, changes


def test_a_ping_sent_before_the_subscription_proves_nothing() -> None:
    lease, changes = counting_lease()
    subscribed_at = time.monotonic()
    lease.renew(subscribed_at - 0.1, subscribed_at, lease_seconds=60)
    assert not lease.leased
    assert (lease.gen, changes) == (0, [])


def test_acquiring_moves_the_generation_once_and_renewals_extend_it() -> None:
    lease, changes = counting_lease()
    subscribed_at = time.monotonic() - 1
    lease.renew(subscribed_at + 0.5, subscribed_at, lease_seconds=60)
    assert lease.leased
    until = lease.until
    lease.renew(subscribed_at + 0.7, subscribed_at, lease_seconds=60)
    assert lease.until > until
    assert (lease.gen, changes) == (1, [1])


def test_losing_the_lease_moves_the_generation_once() -> None:
    lease, changes = counting_lease()
    subscribed_at = time.monotonic() - 1
    lease.renew(subscribed_at + 0.5, subscribed_at, lease_seconds=60)
    lease.lose()
    lease.lose()
    assert not lease.leased
    assert (lease.gen, changes) == (2, [1, 2])


def test_a_late_ping_reacquires_under_a_new_generation() -> None:
    lease, changes = counting_lease()
    subscribed_at = time.monotonic() - 10
    lease.renew(subscribed_at + 0.1, subscribed_at, lease_seconds=1)  # lapsed at once
    assert not lease.leased
    lease.renew(time.monotonic(), subscribed_at, lease_seconds=60)
    assert lease.leased
    assert (lease.gen, changes) == (2, [1, 2])


def test_the_lease_of_the_only_replica_never_lapses() -> None:
    lease = Lease.forever()
    assert lease.leased and lease.until == math.inf and lease.gen == 0


def test_a_complete_snapshot_drops_users_changed_meanwhile_and_keeps_newer_loads() -> None:
    cache: EntryCache[CheckAnswer] = EntryCache(
        BOOK, Lease.forever(), EntitlementMetrics(CollectorRegistry()), max_entries=100
    )
    pro = BOOK.entry("pro", Status.ACTIVE, math.inf)
    free = BOOK.entry("free", Status.CANCELED, math.inf)
    cache.dirty = set()
    cache.store("loaded", free)
    cache.invalidate("changed", "local")
    cache.merge_snapshot({"loaded": pro, "changed": pro, "kept": pro}, gen=0)
    assert cache.entries == {"loaded": free, "kept": pro}
    assert cache.complete
    assert cache.known_free("stranger")
    assert not cache.known_free("changed")
    answer = cache.check_cached("stranger", "priority_support")
    assert answer is not None and answer.tier == "free" and not answer.allowed
