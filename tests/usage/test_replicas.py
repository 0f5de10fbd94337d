"""Property: any interleaving of consume, refund and retry across two replicas is exact.

Two service processes share one PostgreSQL and one Redis, so they count on
the Redis fast path (usage/fast.py). Hypothesis draws batches of operations;
the operations of a batch run concurrently, split over both replicas, and
batches run one after another; before some batches Redis is flushed (its
counters are then rebuilt from the ledger). Whatever the interleaving, the
hard limit is never passed, each key is counted at most once, a refund gives
its units back at most once, and the counter equals what the answers add up to.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterator

import grpc
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_service.usage.counters import counter_key
from devtools.redis_server import RedisServer
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.entitlements.conftest import service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess
from tests.usage.support import Usage

LIMIT = 20  # free api_calls in plans.example.toml
KEYS = 8

Op = tuple[int, str, int]  # (replica, "consume" | "refund", key index)


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    """The Redis both replicas count in."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def replicas(
    shared_postgres: str, stripe_standin: StripeStandIn, shared_redis: RedisServer
) -> Iterator[tuple[str, str]]:
    """Targets of replicas A and B over the same database and Redis."""
    env = service_env(shared_postgres, stripe_standin, shared_redis.url)
    with ServiceProcess(env) as a, ServiceProcess(env) as b:
        yield a.target, b.target


operations = st.tuples(
    st.integers(0, 1), st.sampled_from(["consume", "consume", "refund"]), st.integers(0, KEYS - 1)
)
# Each batch: whether Redis is flushed just before it, and its operations.
batches = st.tuples(st.booleans(), st.lists(operations, min_size=1, max_size=8))
plans = st.tuples(
    st.lists(st.integers(1, 8), min_size=KEYS, max_size=KEYS),
    st.lists(batches, min_size=1, max_size=5),
)


async def _run(
    targets: tuple[str, str],
    redis_url: str,
    quantities: list[int],
    batches: list[tuple[bool, list[Op]]],
) -> tuple[list[tuple[int, object]], int, str]:
    user = f"user-{uuid.uuid4().hex[:10]}"
    prefix = uuid.uuid4().hex
    results: list[tuple[int, object]] = []
    async with (
        grpc.aio.insecure_channel(targets[0]) as ca,
        grpc.aio.insecure_channel(targets[1]) as cb,
    ):
        sides = (Usage(pb_grpc.BillingServiceStub(ca)), Usage(pb_grpc.BillingServiceStub(cb)))

        async def one(op: Op) -> tuple[int, object]:
            replica, kind, index = op
            key = f"{prefix}-{index}"
            try:
                if kind == "consume":
                    return index, await sides[replica].consume(user, quantities[index], key=key)
                return index, await sides[replica].refund(user, key)
            except grpc.aio.AioRpcError as exc:
                return index, exc.code()

        for flush, batch in batches:
            if flush:
                with redis.Redis.from_url(redis_url) as client:
                    client.flushall()
            results.extend(await asyncio.gather(*(one(op) for op in batch)))
        meter = (await sides[0].get(user, "api_calls")).meters[0]
    with redis.Redis.from_url(redis_url) as client:
        counter = client.get(counter_key(user, "api_calls", meter.period_start.seconds))
    # Redis, when it holds the counter, agrees with the database's.
    assert counter is None or int(counter) == meter.used
    return results, meter.used, user


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=plans)
def test_interleavings_across_replicas_never_pass_the_limit_or_count_twice(
    replicas: tuple[str, str],
    shared_redis: RedisServer,
    plan: tuple[list[int], list[tuple[bool, list[Op]]]],
) -> None:
    quantities, batches = plan
    results, used, _ = asyncio.run(_run(replicas, shared_redis.url, quantities, batches))
    consumed: dict[int, list[object]] = defaultdict(list)
    refunded: dict[int, int] = defaultdict(int)
    for index, answer in results:
        if isinstance(answer, grpc.StatusCode):
            # Only a refund racing ahead of its consumption may fail.
            assert answer == grpc.StatusCode.NOT_FOUND
        elif hasattr(answer, "replayed"):
            consumed[index].append(answer)
        else:
            refunded[index] += answer.refunded  # type: ignore[attr-defined]
    expected = 0
    for index, answers in consumed.items():
        firsts = [a for a in answers if not a.replayed]  # type: ignore[attr-defined]
        assert len(firsts) == 1, "a key was counted more than once"
        allowed = firsts[0].allowed  # type: ignore[attr-defined]
        assert all(a.allowed == allowed for a in answers)  # type: ignore[attr-defined]
        assert refunded[index] in ((0, quantities[index]) if allowed else (0,))
        if allowed and not refunded[index]:
            expected += quantities[index]
    assert all(index in consumed for index, total in refunded.items() if total)
    assert used == expected
    assert 0 <= used <= LIMIT


async def test_one_key_raced_for_two_users_on_two_replicas_counts_once(
    replicas: tuple[str, str],
) -> None:
    async with (
        grpc.aio.insecure_channel(replicas[0]) as ca,
        grpc.aio.insecure_channel(replicas[1]) as cb,
    ):
        a, b = Usage(pb_grpc.BillingServiceStub(ca)), Usage(pb_grpc.BillingServiceStub(cb))
        users = (f"user-{uuid.uuid4().hex[:10]}", f"user-{uuid.uuid4().hex[:10]}")
        for _ in range(15):
            key = uuid.uuid4().hex

            async def attempt(side: Usage, user: str, key: str = key) -> object:
                try:
                    return await side.consume(user, 1, key=key)
                except grpc.aio.AioRpcError as exc:
                    return exc.code()

            answers = await asyncio.gather(attempt(a, users[0]), attempt(b, users[1]))
            assert sorted(map(type, answers), key=str) == sorted(
                [
                    grpc.StatusCode,
                    type(answers[0] if hasattr(answers[0], "allowed") else answers[1]),
                ],
                key=str,
            )
            assert grpc.StatusCode.FAILED_PRECONDITION in answers
        assert await a.used(users[0]) + await a.used(users[1]) == 15


async def test_a_meter_reaching_its_limit_on_a_reaches_watchers_on_b(
    replicas: tuple[str, str],
) -> None:
    from generated.billing.v1 import billing_pb2 as pb

    user = f"user-{uuid.uuid4().hex[:10]}"
    async with (
        grpc.aio.insecure_channel(replicas[0]) as ca,
        grpc.aio.insecure_channel(replicas[1]) as cb,
    ):
        a, b = Usage(pb_grpc.BillingServiceStub(ca)), Usage(pb_grpc.BillingServiceStub(cb))
        stream = b.stub.WatchEntitlements(pb.WatchEntitlementsRequest(user_ids=[user]))
        assert (await asyncio.wait_for(stream.read(), 15)).snapshot
        # The listener on B may still be subscribing: announce until one arrives.
        for _ in range(10):
            key = uuid.uuid4().hex
            await a.consume(user, LIMIT, key=key)
            try:
                message = await asyncio.wait_for(stream.read(), 2)
                break
            except TimeoutError:
                await a.refund(user, key)
        else:
            raise AssertionError("no usage change reached replica B")
        # A late "back under the limit" from a refund above may come first; skip it.
        while message.usage.used != LIMIT:
            message = await asyncio.wait_for(stream.read(), 15)
        assert message.usage.meter == "api_calls" and message.usage.remaining == 0
        stream.cancel()
