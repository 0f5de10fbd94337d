"""Issue 13 at Checkout: annual prices, seats, trials by policy, promotion codes.

Over gRPC against the emulator (real processes), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import CALLER, apply_all_events, expect_code, stripe_client
from tests.support.processes import PLANS_FILE

DAY = 86_400


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """This module's own emulator: its clock moves by weeks (or a year), which would
    push other modules' real-time objects (meter events) out of a shared one's window."""
    with EmulatorProcess(PLANS_FILE) as process:
        yield process


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator, to look at what the service created there."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk


async def create(
    stub: pb_grpc.BillingServiceStub, user_id: str, plan: str = "team", **fields: Any
) -> pb.CreateCheckoutResponse:
    request = pb.CreateCheckoutRequest(
        user_id=user_id,
        email=f"{user_id}@example.com",
        plan=plan,
        success_url="https://app.example.com/ok",
        cancel_url="https://app.example.com/back",
        **fields,
    )
    return await stub.CreateCheckout(request, metadata=CALLER, timeout=10)


async def current(stub: pb_grpc.BillingServiceStub, user_id: str) -> pb.Subscription:
    got = await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=5)
    return got.subscription


async def test_trial_is_granted_once_then_refused(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    first = await create(stub, user_id, quantity=3)
    assert (first.trial_granted, first.trial_days) == (True, 14)
    session = await client.v1.checkout.sessions.retrieve_async(first.session_id)
    assert session.payment_method_collection == "if_required"  # trial_end_behavior is set
    emulator.complete_checkout(first.session_id)
    await apply_all_events(stub, client)
    sub = await current(stub, user_id)
    assert (sub.status, sub.tier) == (pb.SUBSCRIPTION_STATUS_TRIALING, "team")
    stripe_sub = await client.v1.subscriptions.retrieve_async(sub.stripe_subscription_id)
    # What a product page needs, without calling Stripe.
    assert (sub.interval, sub.quantity, sub.unit_amount, sub.currency) == (
        pb.BILLING_INTERVAL_MONTH,
        3,
        1200,
        "usd",
    )
    assert sub.trial_end.seconds == stripe_sub.trial_end
    entitlements = await stub.GetEntitlements(pb.GetEntitlementsRequest(user_id=user_id), timeout=5)
    assert (entitlements.tier, entitlements.seats) == ("team", 3)
    usage = await stub.GetUsage(pb.GetUsageRequest(user_id=user_id, meter="units"), timeout=5)
    assert [m.limit for m in usage.meters] == [3 * 200]  # limits_per_seat: 200 per seat
    assert entitlements.trial_end.seconds == stripe_sub.trial_end
    assert not sub.HasField("discount")
    assert stripe_sub.trial_settings is not None
    assert stripe_sub.trial_settings.end_behavior.missing_payment_method == "cancel"
    assert stripe_sub["items"].data[0].quantity == 3
    await stub.CancelSubscription(
        pb.CancelSubscriptionRequest(user_id=user_id, at_period_end=False),
        metadata=CALLER,
        timeout=10,
    )
    await apply_all_events(stub, client)
    again = await create(stub, user_id, quantity=3)
    assert (again.trial_granted, again.trial_days) == (False, 0)


async def test_trial_is_refused_from_stripe_before_our_events_arrive(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    first = await create(stub, user_id)
    assert first.trial_granted
    emulator.complete_checkout(first.session_id)  # no event applied: we know nothing yet
    again = await create(stub, user_id)
    assert not again.trial_granted


async def test_trial_end_without_a_card_cancels_and_access_drops(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    session = await create(stub, user_id)
    emulator.complete_checkout(session.session_id, without_payment_method=True)
    await apply_all_events(stub, client)
    sub = await current(stub, user_id)
    assert (sub.status, sub.tier) == (pb.SUBSCRIPTION_STATUS_TRIALING, "team")
    emulator.advance_clock(15 * DAY)
    await apply_all_events(stub, client)
    sub = await current(stub, user_id)
    assert (sub.status, sub.tier) == (pb.SUBSCRIPTION_STATUS_CANCELED, "free")
    entitlements = await stub.GetEntitlements(pb.GetEntitlementsRequest(user_id=user_id), timeout=5)
    assert entitlements.tier == "free"


async def test_yearly_interval_sells_the_yearly_price_and_grants_the_plan(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    session = await create(stub, user_id, plan="pro", interval=pb.BILLING_INTERVAL_YEAR)
    assert not session.trial_granted  # pro has no trial
    emulator.complete_checkout(session.session_id)
    await apply_all_events(stub, client)
    sub = await current(stub, user_id)
    assert (sub.plan, sub.tier, sub.stripe_price_id) == ("pro", "pro", "price_pro_yearly")
    assert (sub.interval, sub.unit_amount, sub.quantity) == (pb.BILLING_INTERVAL_YEAR, 19000, 1)
    assert not sub.HasField("trial_end")
    assert sub.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    period = sub.current_period_end.seconds - sub.current_period_start.seconds
    assert 365 * DAY <= period <= 366 * DAY


@pytest.mark.parametrize(
    ("plan", "fields", "named"),
    [
        ("team", {"quantity": 51}, "quantity"),
        ("team", {"quantity": -1}, "quantity"),
        ("pro", {"quantity": 2}, "quantity"),
        ("studio", {"interval": pb.BILLING_INTERVAL_YEAR}, "interval"),
        ("pro", {"interval": 7}, "interval"),
        ("pro", {"promotion_code": "NO-SUCH-CODE"}, "promotion_code"),
        ("pro", {"promotion_code": "bad\ncode"}, "promotion_code"),
    ],
)
async def test_bad_plan_options_are_refused_naming_the_field(
    stub: pb_grpc.BillingServiceStub, user_id: str, plan: str, fields: dict[str, Any], named: str
) -> None:
    details = await expect_code(
        create(stub, user_id, plan, **fields), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert named in details


async def test_promotion_code_is_applied_to_the_session_and_subscription(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    coupon = await client.v1.coupons.create_async(
        {"percent_off": 20, "duration": "repeating", "duration_in_months": 3, "name": "Launch"}
    )
    code = f"LAUNCH-{user_id[-8:]}".upper()
    promo = await client.v1.promotion_codes.create_async(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": code}
    )
    session = await create(stub, user_id, plan="pro", promotion_code=code)
    stripe_session = await client.v1.checkout.sessions.retrieve_async(session.session_id)
    assert stripe_session.allow_promotion_codes is None  # Stripe refuses both at once
    assert [d.promotion_code for d in stripe_session.discounts or []] == [promo.id]
    emulator.complete_checkout(session.session_id)
    await apply_all_events(stub, client)
    sub = await current(stub, user_id)
    stripe_sub = await client.v1.subscriptions.retrieve_async(
        sub.stripe_subscription_id, {"expand": ["discounts"]}
    )
    assert [d.promotion_code for d in stripe_sub.discounts] == [promo.id]  # type: ignore[union-attr]
    discount = sub.discount
    assert (discount.name, discount.percent_off, discount.amount_off) == ("Launch", 20.0, 0)
    assert (discount.promotion_code, discount.coupon_id) == (code, coupon.id)
    assert discount.end.seconds == stripe_sub.discounts[0].end  # type: ignore[union-attr]


async def test_request_id_repeat_answers_the_same_trial_and_compares_new_fields(
    stub: pb_grpc.BillingServiceStub, user_id: str
) -> None:
    first = await create(stub, user_id, quantity=2, request_id=f"r-{user_id}")
    again = await create(stub, user_id, quantity=2, request_id=f"r-{user_id}")
    assert (again.session_id, again.trial_granted) == (first.session_id, True)
    details = await expect_code(
        create(stub, user_id, quantity=4, request_id=f"r-{user_id}"),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "quantity" in details
