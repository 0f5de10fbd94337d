"""Per-customer locks and dedupe markers across replicas through Redis (locks.EventLocks)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from billing_service.errors import Unavailable
from billing_service.locks import EventLocks, LocalLocks
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


async def test_a_queued_claim_lets_the_next_claim_of_its_key_in_under_the_same_redis_lock(
    clients: tuple[Redis, Redis],
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    here, other = EventLocks(clients[0]), EventLocks(clients[1])
    lock = f"billing:lock:{key}"
    async with here.claim(key, f"evt_{uuid.uuid4().hex}", wait=1.0) as first:
        assert not await first.seen()
        async with here.claim(key, f"evt_{uuid.uuid4().hex}", wait=1.0) as second:
            entering = asyncio.create_task(second.seen())
            await asyncio.sleep(0.05)
            assert not entering.done()  # the first has not queued its write yet
            first.queued()
            assert not await asyncio.wait_for(entering, 1.0)  # joined, no marker
            token = await clients[0].get(lock)
            await first.release()
            assert await clients[0].get(lock) == token  # the second still holds the lease
            with pytest.raises(Unavailable):  # another replica waits for both
                async with other.claim(key, "", wait=0.1) as outsider:
                    await outsider.hold()
        assert await clients[0].exists(lock) == 0  # the last one out released it


async def test_the_last_claim_out_writes_the_marker_of_every_applied_claim_of_its_lease(
    clients: tuple[Redis, Redis],
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    events = [f"evt_{uuid.uuid4().hex}" for _ in range(3)]
    locks = EventLocks(clients[0])
    claims = [locks.claim(key, event_id, wait=1.0) for event_id in events]
    entered = []
    for manager in claims:
        claim = await manager.__aenter__()
        assert not await claim.seen()
        claim.queued()
        entered.append((manager, claim))
    for index, (manager, claim) in enumerate(entered):
        claim.applied()
        await manager.__aexit__(None, None, None)
        if index < len(entered) - 1:  # the lease is still held: its release writes them all
            assert await clients[1].exists(f"billing:event:{events[index]}") == 0
    for event_id in events:
        assert await clients[1].exists(f"billing:event:{event_id}") == 1
    assert await clients[1].exists(f"billing:lock:{key}") == 0
    async with locks.claim(key, events[1], wait=1.0) as again:
        assert await again.seen()  # remembered: no lock taken
    assert await clients[1].exists(f"billing:lock:{key}") == 0


async def test_a_lease_joined_max_joins_times_drains_before_the_next_claim_enters(
    clients: tuple[Redis, Redis],
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    locks = EventLocks(clients[0], max_joins=2)
    lock = f"billing:lock:{key}"
    async with locks.claim(key, "", wait=1.0) as first:
        await first.hold()
        first.queued()
        async with locks.claim(key, "", wait=1.0) as second:
            await second.hold()
            second.queued()
            token = await clients[0].get(lock)
            async with locks.claim(key, "", wait=2.0) as third:
                entering = asyncio.create_task(third.hold())
                await asyncio.sleep(0.05)
                assert not entering.done()  # the lease is full: it must drain first
                await first.release()
                await asyncio.sleep(0.05)
                assert not entering.done()
                await second.release()
                await asyncio.wait_for(entering, 1.0)
                new_token = await clients[0].get(lock)
                assert new_token is not None and new_token != token  # a new lease
    assert await clients[0].exists(lock) == 0


async def test_without_redis_a_queued_claim_lets_the_next_one_in() -> None:
    locks = EventLocks()
    async with locks.claim("cus_1", "evt_1", wait=1.0) as first:
        assert await first.seen()  # no Redis: ask the database
        await first.hold()
        async with locks.claim("cus_1", "evt_2", wait=0.05) as blocked:
            with pytest.raises(Unavailable):
                await blocked.hold()
        first.queued()
        async with locks.claim("cus_1", "evt_3", wait=0.05) as next_one:
            await next_one.hold()


async def test_a_claim_joining_while_the_lease_empties_keeps_the_redis_lock(
    clients: tuple[Redis, Redis],
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    locks = EventLocks(clients[0])
    lock = f"billing:lock:{key}"
    async with locks.claim(key, f"evt_{uuid.uuid4().hex}", wait=1.0) as first:
        assert not await first.seen()
        first.queued()
        async with locks.claim(key, f"evt_{uuid.uuid4().hex}", wait=1.0) as second:
            entering = asyncio.create_task(second.seen())
            await asyncio.sleep(0)  # the second has joined and asks Redis for its marker
            await first.release()  # the first leaves meanwhile: not the last one out
            assert not await asyncio.wait_for(entering, 1.0)
            assert await clients[0].exists(lock) == 1  # still held, for the second
    assert await clients[0].exists(lock) == 0


async def test_a_lease_older_than_half_the_lock_expiry_takes_no_more_joins(
    clients: tuple[Redis, Redis],
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    locks = EventLocks(clients[0], lock_ttl=0.4)
    lock = f"billing:lock:{key}"
    async with locks.claim(key, "", wait=2.0) as first:
        await first.hold()
        first.queued()
        token = await clients[0].get(lock)
        await asyncio.sleep(0.25)  # past half of the 0.4 s expiry
        async with locks.claim(key, "", wait=2.0) as late:
            entering = asyncio.create_task(late.hold())
            await asyncio.sleep(0.02)
            assert not entering.done()  # no join: it waits for the old lease to drain
            await first.release()
            await asyncio.wait_for(entering, 1.0)
            new_token = await clients[0].get(lock)
            assert new_token is not None and new_token != token
    assert await clients[0].exists(lock) == 0


def _lock_wait() -> tuple[float, float]:
    """(observations, seconds) of billing_event_lock_wait_seconds so far."""
    count = REGISTRY.get_sample_value("billing_event_lock_wait_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("billing_event_lock_wait_seconds_sum") or 0.0
    return count, total


async def test_the_wait_for_a_customer_lock_is_measured(clients: tuple[Redis, Redis]) -> None:
    key = f"test:{uuid.uuid4().hex}"
    locks = EventLocks(clients[0])
    count, total = _lock_wait()
    async with locks.claim(key, f"evt_{uuid.uuid4().hex}", wait=1.0) as first:
        assert not await first.seen()
        async with locks.claim(key, f"evt_{uuid.uuid4().hex}", wait=1.0) as second:
            entering = asyncio.create_task(second.seen())
            await asyncio.sleep(0.1)  # the second waits this long for the first to queue
            first.queued()
            assert not await asyncio.wait_for(entering, 1.0)
    after_count, after_total = _lock_wait()
    assert after_count - count == 2
    assert after_total - total >= 0.1


async def test_claims_of_one_turn_take_and_release_their_locks_in_one_call_each(
    clients: tuple[Redis, Redis],
) -> None:
    keys = [f"test:{uuid.uuid4().hex}" for _ in range(3)]
    held, remembered, fresh = keys
    applied_before, applied_now = f"evt_{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    await clients[0].set(f"billing:event:{applied_before}", b"1")
    here, other = EventLocks(clients[0]), EventLocks(clients[1])
    async with other.hold(held, wait=1.0):  # another replica holds the first key

        async def claim(key: str, event_id: str) -> bool:
            # No time to wait: a lock held elsewhere is answered from the first call.
            async with here.claim(key, event_id, wait=0.0) as one:
                seen = await one.seen()
                if not seen:
                    one.applied()
                return seen

        outcomes = await asyncio.gather(
            claim(held, f"evt_{uuid.uuid4().hex}"),
            claim(remembered, applied_before),
            claim(fresh, applied_now),
            return_exceptions=True,
        )
    assert isinstance(outcomes[0], Unavailable)  # held by the other replica
    assert list(outcomes[1:]) == [True, False]  # the marker answered; the lock was taken
    assert here.take is not None and here.release is not None
    assert (here.take.sends, here.release.sends) == (1, 1)  # three answers from one call
    assert await clients[1].exists(f"billing:event:{applied_now}") == 1
    assert await clients[1].exists(*(f"billing:lock:{key}" for key in keys)) == 0


async def test_three_claims_entered_together_cost_one_take_and_one_release(
    clients: tuple[Redis, Redis],
) -> None:
    keys = [f"test:{uuid.uuid4().hex}" for _ in range(3)]
    events = [f"evt_{uuid.uuid4().hex}" for _ in keys]
    locks = EventLocks(clients[0])

    async def claim(key: str, event_id: str) -> None:
        async with locks.claim(key, event_id, wait=1.0) as one:
            assert not await one.seen()  # the lock is ours
            one.applied()

    await asyncio.gather(
        *(claim(key, event_id) for key, event_id in zip(keys, events, strict=True))
    )
    assert locks.take is not None and locks.release is not None
    assert (locks.take.sends, locks.release.sends) == (1, 1)
    assert await clients[1].exists(*(f"billing:lock:{key}" for key in keys)) == 0
    assert await clients[1].exists(*(f"billing:event:{event_id}" for event_id in events)) == 3


async def test_a_lock_taken_for_a_claim_cancelled_meanwhile_is_released_at_once(
    clients: tuple[Redis, Redis],
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    locks = EventLocks(clients[0], lock_ttl=30)

    async def claim() -> None:
        async with locks.claim(key, f"evt_{uuid.uuid4().hex}", wait=1.0) as one:
            await one.seen()

    task = asyncio.create_task(claim())
    while locks.take is not None and locks.take.sends == 0:
        await asyncio.sleep(0)
    task.cancel()  # while the take is on its way to Redis
    with pytest.raises(asyncio.CancelledError):
        await task
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while await clients[1].exists(f"billing:lock:{key}"):
        if loop.time() > deadline:
            raise AssertionError("the abandoned lock was left to its 30 s expiry")
        await asyncio.sleep(0.01)
    async with EventLocks(clients[1]).hold(key, wait=0.2):
        pass  # another replica gets it at once


async def test_a_key_handed_to_a_waiter_is_not_taken_by_a_newcomer_whose_wait_stays_bounded() -> (
    None
):
    locks = LocalLocks()
    first = await locks.acquire("cus_1", 1.0)
    waiter = asyncio.create_task(locks.acquire("cus_1", 1.0))
    await asyncio.sleep(0)  # the waiter queues
    first.release()  # the key now belongs to the waiter, which has not run yet
    with pytest.raises(Unavailable):
        # Bounded by its own wait, not by the waiter's hold (which ends after this);
        # the outer bound, which runs no task of its own, only keeps a failure from hanging.
        async with asyncio.timeout(2.0):
            await locks.acquire("cus_1", 0.05)
    held = await waiter
    held.release()
    (await locks.acquire("cus_1", 0.0)).release()  # free and unqueued: taken at once
