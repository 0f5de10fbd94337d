"""Two service processes sharing PostgreSQL and a Redis this module starts itself."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing_service.health import REDIS_HEALTH_NAME
from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.entitlements.conftest import service_env
from tests.entitlements.support import Billing, RedisServer
from tests.events import factory
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def replicas(
    shared_postgres: str, redis_server: RedisServer, stripe_standin: StripeStandIn
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Replicas A and B over the same database and Redis."""
    env = service_env(shared_postgres, stripe_standin, redis_server.url)
    with ServiceProcess(env) as a, ServiceProcess(env) as b:
        yield a, b


@pytest.fixture
async def ab(
    replicas: tuple[ServiceProcess, ServiceProcess],
) -> AsyncIterator[tuple[Billing, Billing]]:
    """Calls on replica A and replica B."""
    a, b = replicas
    async with grpc.aio.insecure_channel(a.target) as ca, grpc.aio.insecure_channel(b.target) as cb:
        billing_a = Billing(pb_grpc.BillingServiceStub(ca))
        billing_b = Billing(pb_grpc.BillingServiceStub(cb))
        # Both replicas hold a lease (their in-process caches are in use) before a test starts.
        for billing in (billing_a, billing_b):
            await billing.tier("warm-up")
        yield billing_a, billing_b


async def test_an_event_applied_on_a_is_reflected_by_b_immediately(
    ab: tuple[Billing, Billing], user_id: str
) -> None:
    a, b = ab
    sub_id = factory.new_id("sub")
    steps = [
        ("active", "price_pro_monthly", "pro"),
        ("active", "price_studio_monthly", "studio"),
        ("unpaid", "price_studio_monthly", "free"),
        ("active", "price_pro_monthly", "pro"),
        ("canceled", "price_pro_monthly", "free"),
    ]
    for status, price, tier in steps:
        # B answers (and caches) the state before the change...
        before = await b.tier(user_id)
        assert await b.tier(user_id) == before
        await a.subscribe(user_id, sub_id, status, price=price)
        # ...and never the old one once ApplyStripeEvent returned on A.
        assert await b.tier(user_id) == tier
        assert (await b.get(user_id)).tier == tier


async def test_many_users_changed_on_b_are_seen_on_a(
    ab: tuple[Billing, Billing], user_id: str
) -> None:
    a, b = ab
    for i in range(20):
        user = f"{user_id}-{i}"
        assert await a.tier(user) == "free"
        await b.subscribe(user, factory.new_id("sub"), "active")
        assert await a.tier(user) == "pro"


async def redis_health(target: str) -> int:
    """The replica's ``redis`` health status (SERVING once it uses Redis again)."""
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=REDIS_HEALTH_NAME))
        return int(answer.status)


async def test_answers_stay_correct_while_redis_is_down_and_after_it_returns(
    replicas: tuple[ServiceProcess, ServiceProcess],
    ab: tuple[Billing, Billing],
    redis_server: RedisServer,
    user_id: str,
) -> None:
    a, b = ab
    sub_id = factory.new_id("sub")
    await a.subscribe(user_id, sub_id, "active")
    assert await b.tier(user_id) == "pro"

    redis_server.stop()
    try:
        await b.tier(user_id)  # whatever B answers while it notices, it answers
        await a.subscribe(user_id, sub_id, "unpaid")
        assert await b.tier(user_id) == "free"
        assert await a.tier(user_id) == "free"
        await b.subscribe(user_id, sub_id, "active", price="price_studio_monthly")
        assert await a.tier(user_id) == "studio"
        assert await b.tier(user_id) == "studio"
    finally:
        redis_server.start()

    # Once both replicas are back in the replica set, changes propagate as before.
    for replica in replicas:
        await wait_until_async(
            f"replica {replica.target} to see Redis again",
            functools.partial(redis_health, replica.target),
            lambda status: status == health_pb2.HealthCheckResponse.SERVING,
        )
    assert (await a.tier(user_id), await b.tier(user_id)) == ("studio", "studio")
    await a.subscribe(user_id, sub_id, "canceled", price="price_studio_monthly")
    assert await b.tier(user_id) == "free"
    assert await a.tier(user_id) == "free"
