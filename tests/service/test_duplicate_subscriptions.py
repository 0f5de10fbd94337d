"""A second live subscription is never hidden (issue 9 class 1), on SQLite and PostgreSQL.

The duplicate is made the way it happens in production: the user subscribes
through Checkout, then a second subscription appears on the same customer
(created in the Dashboard: here straight through the SDK on the emulator).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import EMULATOR_KEY
from tests.events import factory
from tests.support.flows import (
    CALLER,
    apply_all_events,
    checkout,
    expect_code,
    stripe_client,
    subscribe,
)
from tests.support.processes import PLANS_FILE, ServiceProcess

PRICES = {"pro": "price_pro_monthly", "studio": "price_studio_monthly"}
DUPLICATE = "duplicate subscription"


def _metric(target: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def _service_env(database_url: str, emulator: Any, plans: Path = PLANS_FILE) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "STRIPE_API_BASE": emulator.base_url,
        "STRIPE_SECRET_KEY": EMULATOR_KEY,
        "BILLING_PLANS_FILE": str(plans),
        "BILLING_METRICS_ADDR": "127.0.0.1:0",
        "BILLING_LOG_FORMAT": "json",
    }


@pytest.fixture(scope="module")
def service(database_url: str, emulator: Any) -> Iterator[ServiceProcess]:
    """The default policy (flag), with /metrics."""
    with ServiceProcess(_service_env(database_url, emulator)) as process:
        yield process


@pytest.fixture(scope="module")
def cancelling_service(
    database_url: str, emulator: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A second process on the same database with ``on_duplicate = "cancel_newest"``."""
    plans = tmp_path_factory.mktemp("plans") / "plans.toml"
    text = PLANS_FILE.read_text(encoding="utf-8")
    plans.write_text(text.replace('on_duplicate = "flag"', 'on_duplicate = "cancel_newest"'))
    assert 'on_duplicate = "cancel_newest"' in plans.read_text()
    with ServiceProcess(_service_env(database_url, emulator, plans)) as process:
        yield process


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator (the 'Dashboard')."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk


async def apply_customer_events(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, customer: str
) -> None:
    """Apply the emulator's events about ``customer`` (oldest first) through ApplyStripeEvent."""
    events: list[dict[str, Any]] = []
    params: Any = {"limit": 100}
    while True:
        page = await client.v1.events.list_async(params)
        assert page.last_response is not None
        events.extend(json.loads(page.last_response.body)["data"])
        if not page.has_more:
            break
        params["starting_after"] = page.data[-1].id
    events.sort(key=lambda e: (e["created"], e["id"]))
    for event in events:
        obj = event["data"]["object"]
        if customer in (obj.get("customer"), obj.get("id")):
            await stub.ApplyStripeEvent(
                pb.ApplyStripeEventRequest(payload=json.dumps(event).encode()), timeout=10
            )


async def duplicate(
    stub: pb_grpc.BillingServiceStub,
    emulator: Any,
    client: stripe.StripeClient,
    user_id: str,
    first: str,
    second: str,
    before_second: Callable[[], None] = lambda: None,
) -> tuple[str, str]:
    """Subscribe through Checkout to ``first``, then add ``second`` on the same customer.

    Only this customer's events are applied: other tests' users are not ours to touch.
    """
    session = await checkout(stub, user_id, first)
    emulator.complete_checkout(session.session_id)
    paid = await client.v1.checkout.sessions.retrieve_async(session.session_id)
    await apply_customer_events(stub, client, str(paid.customer))
    sub = (await get(stub, user_id)).subscription
    assert sub.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    before_second()
    extra = await client.v1.subscriptions.create_async(
        {
            "customer": sub.stripe_customer_id,
            "items": [{"price": PRICES[second]}],
            "metadata": {"user_id": user_id, "plan": second},
        }
    )
    await apply_customer_events(stub, client, sub.stripe_customer_id)
    return sub.stripe_subscription_id, extra.id


async def get(stub: pb_grpc.BillingServiceStub, user_id: str) -> pb.GetSubscriptionResponse:
    return await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=5)


async def audit_details(stub: pb_grpc.BillingServiceStub, user_id: str) -> list[pb.AuditEvent]:
    answer = await stub.ListAuditEvents(
        pb.ListAuditEventsRequest(user_id=user_id, page_size=500), timeout=5
    )
    return list(answer.events)


@pytest.mark.parametrize(("first", "second"), [("pro", "studio"), ("studio", "pro")])
async def test_a_second_live_subscription_is_shown_audited_counted_and_logged(
    stub: pb_grpc.BillingServiceStub,
    service: ServiceProcess,
    emulator: Any,
    client: stripe.StripeClient,
    user_id: str,
    first: str,
    second: str,
) -> None:
    flagged: list[float] = []

    def count() -> None:
        flagged.append(
            _metric(
                service.metrics_target, "billing_duplicate_subscriptions_total", action="flagged"
            )
        )

    first_id, second_id = await duplicate(stub, emulator, client, user_id, first, second, count)
    studio_id, pro_id = (second_id, first_id) if second == "studio" else (first_id, second_id)

    # The best live subscription answers (highest tier), the other is exposed.
    got = await get(stub, user_id)
    assert (got.subscription.stripe_subscription_id, got.subscription.tier) == (studio_id, "studio")
    assert list(got.subscription.other_live_subscription_ids) == [pro_id]
    assert [s.stripe_subscription_id for s in got.other_live_subscriptions] == [pro_id]
    assert got.other_live_subscriptions[0].plan == "pro"
    assert got.other_live_subscriptions[0].status == pb.SUBSCRIPTION_STATUS_ACTIVE

    ent = await stub.GetEntitlements(pb.GetEntitlementsRequest(user_id=user_id), timeout=5)
    assert (ent.tier, ent.stripe_subscription_id) == ("studio", studio_id)
    assert list(ent.other_live_subscription_ids) == [pro_id]
    check = pb.CheckEntitlementRequest(user_id=user_id, feature="api_access")
    assert (await stub.CheckEntitlement(check, timeout=5)).allowed

    records = [r for r in await audit_details(stub, user_id) if DUPLICATE in r.detail]
    assert len(records) == 1
    assert first_id in records[0].detail and second_id in records[0].detail
    assert records[0].stripe_event_id.startswith("evt_")

    assert (
        _metric(service.metrics_target, "billing_duplicate_subscriptions_total", action="flagged")
        == flagged[0] + 1
    )
    warnings = [
        json.loads(line)
        for line in service.log_text().splitlines()
        if line.startswith("{") and second_id in line and "more than one live" in line
    ]
    assert warnings and warnings[0]["level"] == "WARNING"


async def test_acting_without_subscription_id_is_refused_naming_every_live_id(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    first_id, second_id = await duplicate(stub, emulator, client, user_id, "pro", "studio")
    calls = [
        stub.CancelSubscription(pb.CancelSubscriptionRequest(user_id=user_id), metadata=CALLER),
        stub.CancelSubscription(
            pb.CancelSubscriptionRequest(user_id=user_id, at_period_end=True), metadata=CALLER
        ),
        stub.ResumeSubscription(pb.ResumeSubscriptionRequest(user_id=user_id), metadata=CALLER),
        stub.ChangePlan(pb.ChangePlanRequest(user_id=user_id, plan="pro"), metadata=CALLER),
        stub.PreviewPlanChange(pb.PreviewPlanChangeRequest(user_id=user_id, plan="pro")),
    ]
    for call in calls:
        details = await expect_code(call, grpc.StatusCode.FAILED_PRECONDITION)
        assert first_id in details and second_id in details and "subscription_id" in details
    # Nothing was canceled at Stripe.
    for sub_id in (first_id, second_id):
        assert (await client.v1.subscriptions.retrieve_async(sub_id)).status == "active"
    # Naming one works: the pro subscription previews a move to studio.
    preview = await stub.PreviewPlanChange(
        pb.PreviewPlanChangeRequest(user_id=user_id, plan="studio", subscription_id=first_id),
        timeout=10,
    )
    assert preview.amount_due > 0
    same_plan = stub.PreviewPlanChange(
        pb.PreviewPlanChangeRequest(user_id=user_id, plan="studio", subscription_id=second_id)
    )
    assert "already on plan" in await expect_code(same_plan, grpc.StatusCode.FAILED_PRECONDITION)


async def test_canceling_one_of_two_keeps_access_from_the_other(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    pro_id, studio_id = await duplicate(stub, emulator, client, user_id, "pro", "studio")
    answer = await stub.CancelSubscription(
        pb.CancelSubscriptionRequest(user_id=user_id, subscription_id=studio_id),
        metadata=CALLER,
        timeout=10,
    )
    assert answer.subscription.stripe_subscription_id == studio_id
    assert answer.subscription.status == pb.SUBSCRIPTION_STATUS_CANCELED
    assert list(answer.subscription.other_live_subscription_ids) == [pro_id]
    # At once (before any webhook) and after the webhooks: pro from the other subscription.
    for _ in range(2):
        ent = await stub.GetEntitlements(pb.GetEntitlementsRequest(user_id=user_id), timeout=5)
        assert (ent.tier, ent.stripe_subscription_id) == ("pro", pro_id)
        assert list(ent.other_live_subscription_ids) == []
        priority = pb.CheckEntitlementRequest(user_id=user_id, feature="priority_support")
        assert (await stub.CheckEntitlement(priority, timeout=5)).allowed
        api = pb.CheckEntitlementRequest(user_id=user_id, feature="api_access")
        assert not (await stub.CheckEntitlement(api, timeout=5)).allowed
        await apply_all_events(stub, client)
    got = await get(stub, user_id)
    assert got.subscription.stripe_subscription_id == pro_id
    assert list(got.other_live_subscriptions) == []
    # One live subscription again: the id is no longer needed.
    resumed = stub.ResumeSubscription(
        pb.ResumeSubscriptionRequest(user_id=user_id), metadata=CALLER
    )
    assert "not set to cancel" in await expect_code(resumed, grpc.StatusCode.FAILED_PRECONDITION)


@pytest.mark.parametrize(
    ("subscription_id", "code"),
    [
        ("not-a-sub", grpc.StatusCode.INVALID_ARGUMENT),
        ("sub_x y", grpc.StatusCode.INVALID_ARGUMENT),
        ("sub_nobodyhasthis", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_a_subscription_id_must_be_one_of_the_users(
    stub: pb_grpc.BillingServiceStub, subscription_id: str, code: grpc.StatusCode, user_id: str
) -> None:
    details = await expect_code(
        stub.CancelSubscription(
            pb.CancelSubscriptionRequest(user_id=user_id, subscription_id=subscription_id),
            metadata=CALLER,
        ),
        code,
    )
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        assert details.startswith("subscription_id:")


async def test_another_users_subscription_id_is_not_found(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    theirs = await subscribe(stub, emulator, client, f"{user_id}-b")
    await expect_code(
        stub.CancelSubscription(
            pb.CancelSubscriptionRequest(
                user_id=user_id, subscription_id=theirs.stripe_subscription_id
            ),
            metadata=CALLER,
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert (
        await client.v1.subscriptions.retrieve_async(theirs.stripe_subscription_id)
    ).status == "active"


async def test_cancel_newest_policy_cancels_the_newer_subscription_with_proration(
    cancelling_service: ServiceProcess,
    emulator: Any,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    async with grpc.aio.insecure_channel(cancelling_service.target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        canceled: list[float] = []

        def count() -> None:
            canceled.append(
                _metric(
                    cancelling_service.metrics_target,
                    "billing_duplicate_subscriptions_total",
                    action="canceled",
                )
            )

        old_id, new_id = await duplicate(stub, emulator, client, user_id, "pro", "studio", count)
        assert (await client.v1.subscriptions.retrieve_async(new_id)).status == "canceled"
        assert (await client.v1.subscriptions.retrieve_async(old_id)).status == "active"
        customer = (await client.v1.subscriptions.retrieve_async(old_id)).customer
        await apply_customer_events(stub, client, str(customer))
        got = await get(stub, user_id)
        assert (got.subscription.stripe_subscription_id, got.subscription.tier) == (old_id, "pro")
        assert list(got.other_live_subscriptions) == []
        records = await audit_details(stub, user_id)
        by_policy = [r for r in records if r.rpc == "on_duplicate=cancel_newest"]
        assert len(by_policy) == 1
        assert by_policy[0].stripe_subscription_id == new_id
        assert by_policy[0].caller == "billing-service"
        assert by_policy[0].status_after == pb.SUBSCRIPTION_STATUS_CANCELED
        assert "prorate=true" in by_policy[0].detail
        assert sum(DUPLICATE in r.detail for r in records) == 1
    assert (
        _metric(
            cancelling_service.metrics_target,
            "billing_duplicate_subscriptions_total",
            action="canceled",
        )
        == canceled[0] + 1
    )


# -- the order events arrive in does not matter ---------------------------------------------


@pytest.fixture(scope="module")
def sync_stub(service: ServiceProcess) -> Iterator[pb_grpc.BillingServiceStub]:
    """A blocking stub, for the hypothesis test."""
    with grpc.insecure_channel(service.target) as channel:
        yield pb_grpc.BillingServiceStub(channel)


def _two_subscriptions(user_id: str) -> tuple[list[dict[str, Any]], str, str]:
    """Events of a pro subscription (active, then past_due) and a studio one (incomplete,
    then active) on one customer: each becomes live exactly once."""
    customer = factory.new_id("cus")
    pro_id, studio_id = factory.new_id("sub"), factory.new_id("sub")
    events = []
    steps = [
        (pro_id, "price_pro_monthly", "active", 0),
        (pro_id, "price_pro_monthly", "past_due", 20),
        (studio_id, "price_studio_monthly", "incomplete", 5),
        (studio_id, "price_studio_monthly", "active", 10),
    ]
    for sub_id, price, status, offset in steps:
        obj = factory.subscription(sub_id, customer, status, price=price, user_id=user_id)
        kind = "updated" if status in ("past_due", "active") and offset else "created"
        events.append(
            factory.event(f"customer.subscription.{kind}", obj, created=factory.BASE_TIME + offset)
        )
    return events, pro_id, studio_id


@st.composite
def deliveries(draw: st.DrawFn) -> list[int]:
    """A delivery order of the four events, with redeliveries anywhere."""
    order = list(draw(st.permutations(range(4))))
    for index in draw(st.lists(st.integers(0, 3), max_size=3)):
        order.insert(draw(st.integers(0, len(order))), index)
    return order


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=deliveries())
def test_a_duplicate_is_found_once_whatever_the_event_order(
    sync_stub: pb_grpc.BillingServiceStub, order: list[int]
) -> None:
    user_id = factory.new_id("user")
    events, pro_id, studio_id = _two_subscriptions(user_id)
    for index in order:
        sync_stub.ApplyStripeEvent(
            pb.ApplyStripeEventRequest(payload=factory.payload(events[index])), timeout=10
        )
    got = sync_stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=5)
    assert (got.subscription.stripe_subscription_id, got.subscription.tier) == (studio_id, "studio")
    assert [s.stripe_subscription_id for s in got.other_live_subscriptions] == [pro_id]
    assert got.other_live_subscriptions[0].status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    audit = sync_stub.ListAuditEvents(
        pb.ListAuditEventsRequest(user_id=user_id, page_size=500), timeout=5
    )
    assert sum(DUPLICATE in r.detail for r in audit.events) == 1


def test_the_policy_defaults_to_flag_and_rejects_unknown_values() -> None:
    from billing_service.plans import CatalogError, OnDuplicate, parse_catalog

    base: dict[str, Any] = {"plans": {"pro": {"price_id": "price_x", "monthly_limit": 1}}}
    assert parse_catalog(base).on_duplicate is OnDuplicate.FLAG
    policy = {**base, "checkout": {"on_duplicate": "cancel_newest"}}
    assert parse_catalog(policy).on_duplicate is OnDuplicate.CANCEL_NEWEST
    with pytest.raises(CatalogError, match=r"checkout\.on_duplicate"):
        parse_catalog({**base, "checkout": {"on_duplicate": "refund_all"}})
