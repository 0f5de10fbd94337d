"""ChangePlan and PreviewPlanChange against the emulator's proration and invoice preview."""

from __future__ import annotations

import grpc
import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.operations.support import audit, subscribe_now
from tests.support.flows import CALLER, expect_code

PRO, STUDIO = 1900, 4900  # plans.example.toml unit amounts (USD cents)


async def change(
    stub: pb_grpc.BillingServiceStub,
    user_id: str,
    plan: str,
    proration: pb.ProrationBehavior = pb.PRORATION_BEHAVIOR_UNSPECIFIED,
    request_id: str = "",
) -> pb.Subscription:
    """ChangePlan as an internal caller."""
    answer = await stub.ChangePlan(
        pb.ChangePlanRequest(
            user_id=user_id, plan=plan, proration=proration, request_id=request_id
        ),
        metadata=CALLER,
        timeout=10,
    )
    return answer.subscription


async def preview(
    stub: pb_grpc.BillingServiceStub,
    user_id: str,
    plan: str,
    proration: pb.ProrationBehavior,
) -> pb.PreviewPlanChangeResponse:
    """PreviewPlanChange."""
    return await stub.PreviewPlanChange(
        pb.PreviewPlanChangeRequest(user_id=user_id, plan=plan, proration=proration),
        metadata=CALLER,
        timeout=10,
    )


async def test_upgrade_then_downgrade_with_proration_behaviours(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    sub = await subscribe_now(stub, emulator, client, user_id, "pro")
    assert (sub.plan, sub.tier) == ("pro", "pro")
    before = len(await audit(stub, user_id))

    up = await change(stub, user_id, "studio", pb.PRORATION_BEHAVIOR_CREATE_PRORATIONS, "up-1")
    assert (up.plan, up.tier, up.stripe_price_id) == ("studio", "studio", "price_studio_monthly")
    assert up.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    in_stripe = await client.v1.subscriptions.retrieve_async(sub.stripe_subscription_id)
    assert in_stripe["items"]["data"][0]["price"]["id"] == "price_studio_monthly"
    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert got.tier == "studio"

    down = await change(stub, user_id, "pro", pb.PRORATION_BEHAVIOR_NONE)
    assert (down.plan, down.tier, down.stripe_price_id) == ("pro", "pro", "price_pro_monthly")

    records = await audit(stub, user_id)
    assert len(records) == before + 2
    newest, older = records[0], records[1]
    assert (older.rpc, older.caller) == ("ChangePlan", "test-suite")
    assert (older.tier_before, older.tier_after) == ("pro", "studio")
    assert older.detail.startswith("plan pro -> studio; proration_behavior=create_prorations")
    assert (newest.tier_before, newest.tier_after) == ("studio", "pro")
    # An answer may carry the same second of Stripe's clock as the state it
    # replaces: then the writer asked Stripe which is last, and the detail says so.
    assert newest.detail.startswith("plan studio -> pro; proration_behavior=none")


async def test_always_invoice_bills_the_difference_now(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    sub = await subscribe_now(stub, emulator, client, user_id, "pro")
    invoices_before = await client.v1.invoices.list_async(
        {"subscription": sub.stripe_subscription_id}
    )
    up = await change(stub, user_id, "studio", pb.PRORATION_BEHAVIOR_ALWAYS_INVOICE)
    assert up.plan == "studio"
    invoices = await client.v1.invoices.list_async({"subscription": sub.stripe_subscription_id})
    assert len(invoices.data) == len(invoices_before.data) + 1
    newest = invoices.data[0]
    assert newest.billing_reason == "subscription_update"
    assert 0 < newest.amount_due <= STUDIO - PRO


async def test_preview_returns_stripe_amounts_and_changes_nothing(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    await subscribe_now(stub, emulator, client, user_id, "pro")
    records = await audit(stub, user_id)

    none = await preview(stub, user_id, "studio", pb.PRORATION_BEHAVIOR_NONE)
    assert (none.amount_due, none.currency) == (STUDIO, "usd")  # next renewal at the new price
    now_due = await preview(stub, user_id, "studio", pb.PRORATION_BEHAVIOR_ALWAYS_INVOICE)
    assert 0 < now_due.amount_due <= STUDIO - PRO
    assert now_due.currency == "usd"
    assert now_due.proration_date.seconds > 0
    prorated = await preview(stub, user_id, "studio", pb.PRORATION_BEHAVIOR_UNSPECIFIED)
    assert prorated.amount_due == STUDIO + now_due.amount_due  # next invoice plus prorations
    down = await preview(stub, user_id, "studio", pb.PRORATION_BEHAVIOR_CREATE_PRORATIONS)
    assert down.amount_due == prorated.amount_due

    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert got.plan == "pro"
    assert await audit(stub, user_id) == records

    # ChangePlan at the previewed proration date bills exactly the previewed amount.
    await stub.ChangePlan(
        pb.ChangePlanRequest(
            user_id=user_id,
            plan="studio",
            proration=pb.PRORATION_BEHAVIOR_ALWAYS_INVOICE,
            proration_date=now_due.proration_date,
        ),
        metadata=CALLER,
    )
    invoices = await client.v1.invoices.list_async({"subscription": got.stripe_subscription_id})
    assert invoices.data[0].amount_due == now_due.amount_due


async def test_plan_change_errors(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    for call in (stub.ChangePlan, stub.PreviewPlanChange):
        request_type = (
            pb.ChangePlanRequest if call is stub.ChangePlan else pb.PreviewPlanChangeRequest
        )
        assert (await expect_code(call(request_type(plan="pro")), invalid)).startswith("user_id:")
        assert (await expect_code(call(request_type(user_id=user_id)), invalid)).startswith("plan:")
        details = await expect_code(call(request_type(user_id=user_id, plan="gold")), invalid)
        assert details.startswith("plan:")
        details = await expect_code(
            call(request_type(user_id=user_id, plan="pro", proration=42)),  # type: ignore[arg-type]
            invalid,
        )
        assert details.startswith("proration:")
        await expect_code(
            call(request_type(user_id=user_id, plan="studio")), grpc.StatusCode.NOT_FOUND
        )

    sub = await subscribe_now(stub, emulator, client, user_id, "pro")
    precondition = grpc.StatusCode.FAILED_PRECONDITION
    details = await expect_code(
        stub.ChangePlan(pb.ChangePlanRequest(user_id=user_id, plan="pro"), metadata=CALLER),
        precondition,
    )
    assert "already on plan" in details
    await expect_code(
        stub.PreviewPlanChange(pb.PreviewPlanChangeRequest(user_id=user_id, plan="pro")),
        precondition,
    )
    await stub.CancelSubscription(pb.CancelSubscriptionRequest(user_id=user_id), metadata=CALLER)
    details = await expect_code(
        stub.ChangePlan(pb.ChangePlanRequest(user_id=user_id, plan="studio"), metadata=CALLER),
        precondition,
    )
    assert "canceled" in details
    in_stripe = await client.v1.subscriptions.retrieve_async(sub.stripe_subscription_id)
    assert in_stripe["items"]["data"][0]["price"]["id"] == "price_pro_monthly"
