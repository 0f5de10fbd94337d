"""The Redis coherence protocol, with two replicas in one process for inspection.

Each replica counts into a registry of its own, so a test reads one replica's metrics.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from billing_service.entitlements import EntitlementService
from billing_service.entitlements.metrics import EntitlementMetrics
from billing_service.plans import load_catalog
from billing_service.redis_client import Redis, connect
from billing_service.storage.database import Database, migrate
from billing_service.storage.models import Subscription
from devtools.waiting import wait_until_async
from tests.entitlements.support import RedisServer
from tests.support.processes import PLANS_FILE


def replica(db: Database, redis: Redis) -> EntitlementService:
    metrics = EntitlementMetrics(CollectorRegistry())
    catalog = load_catalog(PLANS_FILE)
    return EntitlementService(db, catalog, redis=redis, lease_seconds=1.0, metrics=metrics)


def metric(svc: EntitlementService, name: str) -> float:
    """The value of ``name`` in ``svc``'s own registry."""
    return svc.metrics.registry.get_sample_value(name) or 0.0


@pytest.fixture
async def pair(
    tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[tuple[Database, EntitlementService, EntitlementService]]:
    db = Database(f"sqlite:///{tmp_path / 'b.db'}", workers=2)
    migrate(db.db)
    # Each replica holds its own client and its own metrics registry, as each process does.
    clients = [connect(redis_server.url, 0.5) for _ in range(2)]
    a = replica(db, clients[0])
    b = replica(db, clients[1])
    await a.start()
    await b.start()
    for svc in (a, b):
        await wait_until_async("a lease", functools.partial(_leased, svc), within=10)
    yield db, a, b
    await a.close()
    await b.close()
    for client in clients:
        await client.aclose()
    db.close()


async def _value(x: bool) -> bool:
    return x


async def _leased(svc: EntitlementService) -> bool:
    return svc.coherence is not None and svc.coherence.lease.leased


def write(db: Database, user: str, status: str) -> None:
    def run() -> None:
        Subscription.insert(
            stripe_subscription_id=f"sub_{user}",
            user_id=user,
            stripe_customer_id="cus",
            status=status,
            plan="pro",
        ).on_conflict(
            conflict_target=[Subscription.stripe_subscription_id],
            update={Subscription.status: status},
        ).execute()

    db.call(run)


async def test_a_change_on_one_replica_clears_the_other_before_it_returns(
    pair: tuple[Database, EntitlementService, EntitlementService],
) -> None:
    db, a, b = pair
    write(db, "u1", "active")
    assert (await b.entry("u1")).tier == "pro"
    assert b.check_cached("u1", "priority_support") is not None  # B holds it in memory
    write(db, "u1", "canceled")
    await a.user_changed("u1")
    assert b.check_cached("u1", "priority_support") is None
    assert (await b.entry("u1")).tier == "free"


async def test_changes_announced_in_one_turn_share_one_call_and_each_clears_the_other(
    pair: tuple[Database, EntitlementService, EntitlementService],
) -> None:
    db, a, b = pair
    assert a.coherence is not None
    users = ["t1", "t2", "t3"]
    for user in users:
        write(db, user, "active")
        assert (await b.entry(user)).tier == "pro"
        assert b.check_cached(user, "priority_support") is not None
        write(db, user, "canceled")
    sends = a.coherence._announce.sends
    await asyncio.gather(*(a.user_changed(user) for user in users))
    assert a.coherence._announce.sends == sends + 1
    for user in users:
        assert b.check_cached(user, "priority_support") is None
        assert (await b.entry(user)).tier == "free"


async def test_the_redis_copy_is_used_until_the_generation_moves(
    pair: tuple[Database, EntitlementService, EntitlementService],
) -> None:
    db, a, b = pair
    write(db, "u2", "active")
    assert (await a.entry("u2")).tier == "pro"  # A loaded it from the database into Redis
    before = metric(b, "billing_entitlement_redis_hits_total")
    assert (await b.entry("u2")).tier == "pro"
    assert metric(b, "billing_entitlement_redis_hits_total") == before + 1
    write(db, "u2", "unpaid")
    await a.user_changed("u2")
    loads = metric(b, "billing_entitlement_db_loads_total")
    assert (await b.entry("u2")).tier == "free"
    assert metric(b, "billing_entitlement_db_loads_total") == loads + 1


async def test_a_replica_that_does_not_acknowledge_is_waited_out(
    pair: tuple[Database, EntitlementService, EntitlementService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, a, b = pair
    assert b.coherence is not None

    async def silent(origin: str, nonce: str) -> None:
        return None

    monkeypatch.setattr(b.coherence, "_ack", silent)
    before = metric(a, "billing_entitlement_ack_timeouts_total")
    await a.user_changed("u3")
    assert metric(a, "billing_entitlement_ack_timeouts_total") == before + 1


async def test_without_redis_the_cache_is_off_and_answers_come_from_the_database(
    pair: tuple[Database, EntitlementService, EntitlementService], redis_server: RedisServer
) -> None:
    db, a, b = pair
    assert b.coherence is not None
    write(db, "u4", "active")
    assert (await b.entry("u4")).tier == "pro"
    redis_server.stop()
    try:
        coherence = b.coherence
        await wait_until_async(
            "the lease to be lost",
            lambda: _value(not coherence.lease.leased and not coherence.up),
        )
        assert metric(b, "billing_redis_up") == 0
        assert b.check_cached("u4", "priority_support") is None
        write(db, "u4", "canceled")
        await a.user_changed("u4")  # cannot publish: waits a lease, then returns
        assert (await b.entry("u4")).tier == "free"
        assert b.check_cached("u4", "priority_support") is None  # nothing cached while down
    finally:
        redis_server.start()
    await wait_until_async(
        "the lease back", lambda: _value(coherence.lease.leased and coherence.up)
    )
    assert metric(b, "billing_redis_up") == 1
    assert (await b.entry("u4")).tier == "free"
