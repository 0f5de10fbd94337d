"""CheckEntitlement, GetEntitlements and WatchEntitlements over gRPC against a real server."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.entitlements.conftest import service_env
from tests.entitlements.support import Billing
from tests.events import factory
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess


async def test_an_unknown_user_gets_the_free_tier(billing: Billing, user_id: str) -> None:
    answer = await billing.check(user_id, "priority_support")
    assert (answer.allowed, answer.tier) == (False, "free")
    assert "does not include" in answer.reason
    full = await billing.get(user_id)
    assert (full.user_id, full.tier, full.status) == (user_id, "free", pb.SUBSCRIPTION_STATUS_NONE)
    assert list(full.features) == []
    assert full.monthly_limit == 10
    assert not full.HasField("access_until")


async def test_an_unknown_feature_is_not_allowed_and_says_why(
    billing: Billing, user_id: str
) -> None:
    await billing.subscribe(user_id, factory.new_id("sub"), "active")
    answer = await billing.check(user_id, "teleportation")
    assert (answer.allowed, answer.tier) == (False, "pro")
    assert "unknown feature 'teleportation'" in answer.reason


@pytest.mark.parametrize(
    ("user", "feature", "field"),
    [
        ("", "priority_support", "user_id"),
        ("u 1", "priority_support", "user_id"),
        ("u1", "", "feature"),
    ],
)
async def test_invalid_requests_are_invalid_argument(
    billing: Billing, user: str, feature: str, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await billing.check(user, feature)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith(field)


async def test_get_entitlements_with_an_empty_user_id_is_invalid(billing: Billing) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await billing.get("")
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_answers_follow_the_subscription_through_changes(
    billing: Billing, user_id: str
) -> None:
    sub_id = factory.new_id("sub")
    assert await billing.tier(user_id) == "free"  # cached as free
    await billing.subscribe(user_id, sub_id, "active", price="price_studio_monthly")
    answer = await billing.check(user_id, "api_access")
    assert (answer.allowed, answer.tier) == (True, "studio")
    full = await billing.get(user_id)
    assert full.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert set(full.features) == {
        "priority_support",
        "advanced_analytics",
        "api_access",
        "white_label",
    }
    assert full.monthly_limit == 500
    await billing.subscribe(user_id, sub_id, "unpaid", price="price_studio_monthly")
    answer = await billing.check(user_id, "api_access")
    assert (answer.allowed, answer.tier) == (False, "free")
    assert (await billing.get(user_id)).status == pb.SUBSCRIPTION_STATUS_UNPAID


async def test_access_ends_at_period_end_with_no_event(billing: Billing, user_id: str) -> None:
    period_end = int(time.time()) + 3
    await billing.subscribe(
        user_id, factory.new_id("sub"), "active", cancel_at_period_end=True, period_end=period_end
    )
    first = await billing.get(user_id)
    assert first.tier == "pro"
    assert first.access_until.seconds == period_end
    assert (await billing.check(user_id, "priority_support")).allowed  # now cached
    after = await wait_until_async(
        "access to end at period end",
        lambda: billing.check(user_id, "priority_support"),
        lambda a: not a.allowed,
    )
    assert (after.allowed, after.tier) == (False, "free")
    assert time.time() >= period_end  # never answered free early
    full = await billing.get(user_id)
    assert (full.tier, full.status) == ("free", pb.SUBSCRIPTION_STATUS_ACTIVE)


async def test_watch_sends_the_snapshot_then_each_change_in_order(
    billing: Billing, user_id: str
) -> None:
    sub_id = factory.new_id("sub")
    await billing.subscribe(user_id, sub_id, "active")
    other = f"{user_id}-other"
    call = billing.stub.WatchEntitlements(pb.WatchEntitlementsRequest(user_ids=[user_id, other]))
    await call.initial_metadata()
    snapshot = {}
    for _ in range(2):
        message = await call.read()
        assert message.snapshot
        snapshot[message.entitlements.user_id] = message.entitlements.tier
    assert snapshot == {user_id: "pro", other: "free"}

    steps = [
        ("past_due", "price_pro_monthly", "pro", pb.SUBSCRIPTION_STATUS_PAST_DUE),
        ("active", "price_studio_monthly", "studio", pb.SUBSCRIPTION_STATUS_ACTIVE),
        ("canceled", "price_studio_monthly", "free", pb.SUBSCRIPTION_STATUS_CANCELED),
    ]
    for status, price, tier, proto_status in steps:
        await billing.subscribe(user_id, sub_id, status, price=price)
        message = await asyncio.wait_for(call.read(), 30)
        assert not message.snapshot
        assert message.entitlements.user_id == user_id
        assert (message.entitlements.tier, message.entitlements.status) == (tier, proto_status)
        assert message.changed_at.seconds > 0
    call.cancel()


async def test_watch_all_users_pages_through_every_subscribed_user(
    billing: Billing, user_id: str
) -> None:
    users = [f"{user_id}-{i}" for i in range(3)]
    for user in users:
        await billing.subscribe(user, factory.new_id("sub"), "active")
    call = billing.stub.WatchEntitlements(pb.WatchEntitlementsRequest())
    seen: dict[str, str] = {}
    while not set(users) <= set(seen):
        message = await asyncio.wait_for(call.read(), 30)
        assert message.snapshot
        seen[message.entitlements.user_id] = message.entitlements.tier
    assert all(seen[u] == "pro" for u in users)
    call.cancel()


async def test_watch_rejects_invalid_user_ids(billing: Billing) -> None:
    call = billing.stub.WatchEntitlements(pb.WatchEntitlementsRequest(user_ids=["ok", ""]))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_streams_end_cleanly_on_shutdown(
    database_url: str, stripe_standin: StripeStandIn, user_id: str
) -> None:
    env = {**service_env(database_url, stripe_standin), "BILLING_SHUTDOWN_GRACE_SECONDS": "30"}
    with ServiceProcess(env) as process:
        async with grpc.aio.insecure_channel(process.target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            call = stub.WatchEntitlements(pb.WatchEntitlementsRequest(user_ids=[user_id]))
            assert (await call.read()).snapshot
            process.stop(timeout=60)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call.read()
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (info.value.details() or "")
            assert process.proc is not None and process.proc.returncode == 0
