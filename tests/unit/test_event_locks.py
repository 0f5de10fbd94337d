"""Per-customer locks and dedupe markers across replicas through Redis (locks.EventLocks)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from billing_service.errors import Unavailable
from billing_service.locks import EventLocks
from billing_service.redis_client import Redis, connect
from tests.support.services import redis_url


@pytest.fixture
async def clients() -> AsyncIterator[tuple[Redis, Redis]]:
    """Two clients, as two replicas hold."""
    first, second = connect(redis_url(), 1.0), connect(redis_url(), 1.0)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_a_lock_held_by_one_replica_keeps_the_other_out_until_released(
    clients: tuple[Redis, Redis],
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    a, b = EventLocks(clients[0]), EventLocks(clients[1])
    async with a.hold(key, wait=1.0):
        with pytest.raises(Unavailable):
            async with b.hold(key, wait=0.1):
                pass
    async with b.hold(key, wait=1.0):
        assert await clients[0].exists(f"billing:lock:{key}") == 1
    assert await clients[0].exists(f"billing:lock:{key}") == 0


async def test_an_expired_holder_does_not_release_the_next_holders_lock(
    clients: tuple[Redis, Redis],
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    a, b = EventLocks(clients[0], lock_ttl=0.2), EventLocks(clients[1], lock_ttl=30)
    b_holds = asyncio.Event()
    a_done = asyncio.Event()

    async def replica_b() -> None:
        async with b.hold(key, wait=5.0):  # obtained once a's lease expired
            b_holds.set()
            await a_done.wait()
            assert await clients[1].exists(f"billing:lock:{key}") == 1  # a freed nothing

    async with a.hold(key, wait=1.0):
        task = asyncio.create_task(replica_b())
        await asyncio.wait_for(b_holds.wait(), 5.0)
    a_done.set()
    await asyncio.wait_for(task, 5.0)
    assert not a.breaker.is_open  # an expired lease is not a Redis failure


async def test_without_a_reachable_redis_the_local_lock_still_serializes() -> None:
    client = connect("redis://127.0.0.1:1/0", 0.2)  # nothing listens there
    locks = EventLocks(client)
    try:
        async with locks.hold("cus_1", wait=1.0):
            assert locks.breaker.is_open  # the failure opened the breaker
            with pytest.raises(Unavailable):
                async with locks.hold("cus_1", wait=0.05):
                    pass
    finally:
        await client.aclose()


async def test_an_applied_claim_leaves_a_marker_and_the_next_claim_takes_no_lock(
    clients: tuple[Redis, Redis],
) -> None:
    key, event_id = f"test:{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    a, b = EventLocks(clients[0]), EventLocks(clients[1])
    async with a.claim(key, event_id, wait=1.0) as first:
        assert not await first.seen()  # new: the lock is held
        assert await clients[0].exists(f"billing:lock:{key}") == 1
        first.applied()
    assert await clients[0].exists(f"billing:lock:{key}") == 0
    assert await clients[0].exists(f"billing:event:{event_id}") == 1
    async with b.claim(key, event_id, wait=1.0) as again:
        assert await again.seen()
        assert await clients[1].exists(f"billing:lock:{key}") == 0  # no lock for a redelivery


async def test_a_claim_that_failed_leaves_no_marker(clients: tuple[Redis, Redis]) -> None:
    key, event_id = f"test:{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    locks = EventLocks(clients[0])
    with pytest.raises(RuntimeError):
        async with locks.claim(key, event_id, wait=1.0) as claim:
            assert not await claim.seen()
            raise RuntimeError("the apply failed before its commit")
    assert await clients[0].exists(f"billing:event:{event_id}") == 0
    assert await clients[0].exists(f"billing:lock:{key}") == 0
    async with locks.claim(key, event_id, wait=1.0) as retry:
        assert not await retry.seen()  # the retry applies it


async def test_a_redelivery_waiting_on_the_lock_sees_the_marker_once_the_first_commits(
    clients: tuple[Redis, Redis],
) -> None:
    key, event_id = f"test:{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    a, b = EventLocks(clients[0]), EventLocks(clients[1])
    async with a.claim(key, event_id, wait=1.0) as first:
        assert not await first.seen()
        async with b.claim(key, event_id, wait=5.0) as second:
            waiting = asyncio.create_task(second.seen())
            await asyncio.sleep(0)
            assert not waiting.done()  # b waits on a's lock
            first.applied()
            await first.release()
            assert await asyncio.wait_for(waiting, 5.0)  # the marker, not the lock
        assert await clients[1].exists(f"billing:lock:{key}") == 0


async def test_after_a_marker_without_a_record_hold_takes_the_lock(
    clients: tuple[Redis, Redis],
) -> None:
    # A marker whose processed record the database lacks (restored from a backup, say).
    key, event_id = f"test:{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    await clients[0].set(f"billing:event:{event_id}", b"1")
    locks = EventLocks(clients[0])
    async with locks.claim(key, event_id, wait=1.0) as claim:
        assert await claim.seen()
        await claim.hold()
        assert await clients[0].exists(f"billing:lock:{key}") == 1
    assert await clients[0].exists(f"billing:lock:{key}") == 0
