"""Get, Cancel and Resume over gRPC against the emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import stripe

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import CALLER, expect_code, stripe_client, subscribe


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk


async def test_user_without_subscription_is_free_not_an_error(
    stub: pb_grpc.BillingServiceStub, user_id: str
) -> None:
    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert got.user_id == user_id
    assert got.tier == "free"
    assert got.status == pb.SUBSCRIPTION_STATUS_NONE
    assert not got.stripe_subscription_id


async def test_get_requires_user_id(stub: pb_grpc.BillingServiceStub) -> None:
    details = await expect_code(
        stub.GetSubscription(pb.GetSubscriptionRequest()), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert details.startswith("user_id:")


async def test_cancel_and_resume_need_a_subscription(
    stub: pb_grpc.BillingServiceStub, user_id: str
) -> None:
    await expect_code(
        stub.CancelSubscription(pb.CancelSubscriptionRequest(user_id=user_id)),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_code(
        stub.ResumeSubscription(pb.ResumeSubscriptionRequest(user_id=user_id)),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_code(
        stub.CancelSubscription(pb.CancelSubscriptionRequest()), grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_cancel_at_period_end_resume_then_cancel_now(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, emulator: Any, user_id: str
) -> None:
    active = await subscribe(stub, emulator, client, user_id, "pro")
    assert (active.status, active.tier, active.plan) == (
        pb.SUBSCRIPTION_STATUS_ACTIVE,
        "pro",
        "pro",
    )
    assert active.current_period_end.seconds > active.current_period_start.seconds > 0

    await expect_code(
        stub.ResumeSubscription(pb.ResumeSubscriptionRequest(user_id=user_id), metadata=CALLER),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    cancelling = (
        await stub.CancelSubscription(
            pb.CancelSubscriptionRequest(user_id=user_id, at_period_end=True), metadata=CALLER
        )
    ).subscription
    assert cancelling.cancel_at_period_end
    assert cancelling.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert cancelling.tier == "pro"
    assert cancelling.access_until == active.current_period_end
    remote = await client.v1.subscriptions.retrieve_async(active.stripe_subscription_id)
    assert remote.cancel_at_period_end is True

    resumed = (
        await stub.ResumeSubscription(
            pb.ResumeSubscriptionRequest(user_id=user_id), metadata=CALLER
        )
    ).subscription
    assert not resumed.cancel_at_period_end
    assert resumed.tier == "pro"

    canceled = (
        await stub.CancelSubscription(
            pb.CancelSubscriptionRequest(user_id=user_id, at_period_end=False), metadata=CALLER
        )
    ).subscription
    assert canceled.status == pb.SUBSCRIPTION_STATUS_CANCELED
    assert canceled.tier == "free"
    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert got.status == pb.SUBSCRIPTION_STATUS_CANCELED

    await expect_code(
        stub.CancelSubscription(pb.CancelSubscriptionRequest(user_id=user_id), metadata=CALLER),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    audit = (await stub.ListAuditEvents(pb.ListAuditEventsRequest(user_id=user_id))).events
    by_rpc = [(e.rpc, e.caller) for e in audit if e.rpc]
    assert by_rpc == [
        ("CancelSubscription", "test-suite"),
        ("ResumeSubscription", "test-suite"),
        ("CancelSubscription", "test-suite"),
    ]
    newest = audit[0]
    assert newest.status_before == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert newest.status_after == pb.SUBSCRIPTION_STATUS_CANCELED
    assert (newest.tier_before, newest.tier_after) == ("pro", "free")
