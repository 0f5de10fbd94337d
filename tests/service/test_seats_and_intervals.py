"""Issue 13: UpdateSeats / PreviewSeatChange, and ChangePlan from monthly to annual.

Over gRPC against the emulator (real processes), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import stripe

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import CALLER, apply_all_events, expect_code, stripe_client

ALWAYS = pb.PRORATION_BEHAVIOR_ALWAYS_INVOICE


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk


async def subscribe(
    stub: pb_grpc.BillingServiceStub,
    emulator: Any,
    client: stripe.StripeClient,
    user_id: str,
    plan: str,
    **fields: Any,
) -> pb.Subscription:
    session = await stub.CreateCheckout(
        pb.CreateCheckoutRequest(
            user_id=user_id,
            email=f"{user_id}@example.com",
            plan=plan,
            success_url="https://app.example.com/ok",
            cancel_url="https://app.example.com/back",
            **fields,
        ),
        metadata=CALLER,
        timeout=10,
    )
    emulator.complete_checkout(session.session_id)
    await apply_all_events(stub, client)
    got = await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=5)
    return got.subscription


async def active_team(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> pb.Subscription:
    """An active (not trialing) team subscription with 2 seats: the trial went to a pro one."""
    await subscribe(stub, emulator, client, user_id, "pro")
    await stub.CancelSubscription(
        pb.CancelSubscriptionRequest(user_id=user_id), metadata=CALLER, timeout=10
    )
    await apply_all_events(stub, client)
    sub = await subscribe(stub, emulator, client, user_id, "team", quantity=2)
    assert (sub.status, sub.quantity) == (pb.SUBSCRIPTION_STATUS_ACTIVE, 2)
    return sub


async def test_seats_updated_with_a_preview_that_matches_the_invoice(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    sub = await active_team(stub, emulator, client, user_id)
    preview = await stub.PreviewSeatChange(
        pb.PreviewSeatChangeRequest(user_id=user_id, quantity=5, proration=ALWAYS), timeout=10
    )
    assert 0 < preview.amount_due <= 3 * 1200 and preview.currency == "usd"
    unchanged = await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))
    assert unchanged.subscription.quantity == 2  # a preview changes nothing
    updated = await stub.UpdateSeats(
        pb.UpdateSeatsRequest(
            user_id=user_id,
            quantity=5,
            proration=ALWAYS,
            proration_date=preview.proration_date,
            request_id=f"seats-{user_id}",
        ),
        metadata=CALLER,
        timeout=10,
    )
    assert updated.subscription.quantity == 5
    invoices = await client.v1.invoices.list_async({"subscription": sub.stripe_subscription_id})
    assert invoices.data[0].billing_reason == "subscription_update"
    assert invoices.data[0].amount_due == preview.amount_due
    await apply_all_events(stub, client)
    entitlements = await stub.GetEntitlements(pb.GetEntitlementsRequest(user_id=user_id))
    assert entitlements.seats == 5
    records = await stub.ListAuditEvents(pb.ListAuditEventsRequest(user_id=user_id))
    assert any(r.rpc == "UpdateSeats" and "seats 2 -> 5" in r.detail for r in records.events), (
        records
    )


async def test_seat_errors(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    await expect_code(
        stub.UpdateSeats(pb.UpdateSeatsRequest(user_id=user_id, quantity=3), metadata=CALLER),
        grpc.StatusCode.NOT_FOUND,
    )
    await active_team(stub, emulator, client, user_id)
    for quantity, code, named in (
        (0, invalid, "quantity"),
        (51, invalid, "quantity"),
        (2, grpc.StatusCode.FAILED_PRECONDITION, "already has 2 seats"),
    ):
        for call in (
            stub.UpdateSeats(pb.UpdateSeatsRequest(user_id=user_id, quantity=quantity)),
            stub.PreviewSeatChange(pb.PreviewSeatChangeRequest(user_id=user_id, quantity=quantity)),
        ):
            assert named in await expect_code(call, code)
    pro_user = f"{user_id}-pro"
    await subscribe(stub, emulator, client, pro_user, "pro")
    details = await expect_code(
        stub.UpdateSeats(pb.UpdateSeatsRequest(user_id=pro_user, quantity=2), metadata=CALLER),
        invalid,
    )
    assert details.startswith("quantity:") and "per seat" in details


async def test_change_plan_from_monthly_to_annual_with_a_preview(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    sub = await subscribe(stub, emulator, client, user_id, "pro")
    assert sub.interval == pb.BILLING_INTERVAL_MONTH
    await expect_code(
        stub.PreviewPlanChange(pb.PreviewPlanChangeRequest(user_id=user_id, plan="pro")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    details = await expect_code(
        stub.PreviewPlanChange(
            pb.PreviewPlanChangeRequest(
                user_id=user_id, plan="studio", interval=pb.BILLING_INTERVAL_YEAR
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("interval:")
    preview = await stub.PreviewPlanChange(
        pb.PreviewPlanChangeRequest(
            user_id=user_id, plan="pro", interval=pb.BILLING_INTERVAL_YEAR, proration=ALWAYS
        )
    )
    assert preview.amount_due > 0
    changed = await stub.ChangePlan(
        pb.ChangePlanRequest(
            user_id=user_id,
            plan="pro",
            interval=pb.BILLING_INTERVAL_YEAR,
            proration=ALWAYS,
            proration_date=preview.proration_date,
        ),
        metadata=CALLER,
        timeout=10,
    )
    assert (changed.subscription.stripe_price_id, changed.subscription.interval) == (
        "price_pro_yearly",
        pb.BILLING_INTERVAL_YEAR,
    )
    assert changed.subscription.tier == "pro"
    invoices = await client.v1.invoices.list_async({"subscription": sub.stripe_subscription_id})
    assert invoices.data[0].amount_due == preview.amount_due
    # Unset interval keeps the subscription's: moving to studio looks for a yearly studio price.
    details = await expect_code(
        stub.ChangePlan(pb.ChangePlanRequest(user_id=user_id, plan="studio"), metadata=CALLER),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("interval:")
