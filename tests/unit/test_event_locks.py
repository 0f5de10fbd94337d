"""Per-customer locks across replicas through Redis (redis-py's asyncio Lock)."""

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
