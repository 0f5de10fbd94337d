"""SyncCheckoutSession: access at once on return from Checkout, converging with the webhook."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import grpc
import pytest
import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.operations.support import audit, emulator_now, pay_without_webhooks
from tests.support.flows import CALLER, checkout, expect_code


async def events_since(
    client: stripe.StripeClient, since: int, session_id: str
) -> list[dict[str, Any]]:
    """The raw events of ``session_id``'s checkout since ``since``, oldest first (as webhooks
    would carry them); other tests' events of the same second are left out."""
    page = await client.v1.events.list_async({"limit": 100, "created": {"gte": since}})
    assert not page.has_more
    assert page.last_response is not None
    events = list(reversed(json.loads(page.last_response.body)["data"]))
    completed = next(e for e in events if e["data"]["object"]["id"] == session_id)
    customer = completed["data"]["object"]["customer"]
    return [
        e
        for e in events
        if customer in (e["data"]["object"].get("customer"), e["data"]["object"]["id"])
    ]


async def deliver(
    stub: pb_grpc.BillingServiceStub, events: list[dict[str, Any]]
) -> dict[str, pb.ApplyStripeEventResponse]:
    """ApplyStripeEvent for each event in order, as the gateway would."""
    answers = {}
    for event in events:
        answers[event["type"]] = await stub.ApplyStripeEvent(
            pb.ApplyStripeEventRequest(payload=json.dumps(event).encode()), timeout=10
        )
    return answers


async def sync(stub: pb_grpc.BillingServiceStub, session_id: str) -> pb.Subscription:
    """SyncCheckoutSession as the success page's backend calls it."""
    answer = await stub.SyncCheckoutSession(
        pb.SyncCheckoutSessionRequest(session_id=session_id), metadata=CALLER, timeout=10
    )
    return answer.subscription


def assert_one_activation(records: list[pb.AuditEvent]) -> None:
    """Exactly one record grants the plan, and no event was audited twice."""
    activations = [r for r in records if r.tier_before == "free" and r.tier_after == "pro"]
    assert len(activations) == 1, records
    per_event = Counter(r.stripe_event_id for r in records)
    assert all(event_id and count == 1 for event_id, count in per_event.items()), per_event


async def test_sync_grants_access_at_once_and_the_webhook_is_a_duplicate(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    since = emulator_now(emulator)
    session_id = await pay_without_webhooks(stub, emulator, user_id)
    got = await sync(stub, session_id)
    assert (got.user_id, got.status, got.tier) == (user_id, pb.SUBSCRIPTION_STATUS_ACTIVE, "pro")
    after_sync = await audit(stub, user_id)
    assert len(after_sync) == 1
    # The checkout event links; the subscription's own event carries the state.
    assert after_sync[0].stripe_event_type == "customer.subscription.created"

    again = await sync(stub, session_id)  # the page reloaded: nothing new
    assert again.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert len(await audit(stub, user_id)) == 1

    answers = await deliver(stub, await events_since(client, since, session_id))
    assert answers["checkout.session.completed"].outcome == pb.EVENT_OUTCOME_DUPLICATE
    assert_one_activation(await audit(stub, user_id))


async def test_the_webhook_first_then_sync_adds_nothing(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    since = emulator_now(emulator)
    session_id = await pay_without_webhooks(stub, emulator, user_id)
    answers = await deliver(stub, await events_since(client, since, session_id))
    assert answers["checkout.session.completed"].outcome == pb.EVENT_OUTCOME_APPLIED
    before = await audit(stub, user_id)
    got = await sync(stub, session_id)
    assert (got.status, got.tier) == (pb.SUBSCRIPTION_STATUS_ACTIVE, "pro")
    assert await audit(stub, user_id) == before
    assert_one_activation(before)


@pytest.mark.parametrize("sync_delay", [0.0, 0.005, 0.02])
async def test_sync_racing_the_webhooks_applies_one_change(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
    sync_delay: float,
) -> None:
    since = emulator_now(emulator)
    session_id = await pay_without_webhooks(stub, emulator, user_id)
    events = await events_since(client, since, session_id)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")

    async def late_sync() -> pb.Subscription:
        await asyncio.sleep(sync_delay)  # offsets the race's start, asserts nothing
        return await sync(stub, session_id)

    async def webhook(event: dict[str, Any]) -> pb.ApplyStripeEventResponse:
        return await stub.ApplyStripeEvent(
            pb.ApplyStripeEventRequest(payload=json.dumps(event).encode()), timeout=10
        )

    synced, *answers = await asyncio.gather(late_sync(), webhook(completed), *map(webhook, events))
    assert isinstance(synced, pb.Subscription)
    assert synced.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    outcomes = [
        a.outcome
        for a in answers
        if isinstance(a, pb.ApplyStripeEventResponse) and a.event_id == completed["id"]
    ]
    assert len(outcomes) == 2
    # Sync took one of the applies or none; either way the event applied exactly once overall.
    assert outcomes.count(pb.EVENT_OUTCOME_APPLIED) <= 1
    records = await audit(stub, user_id)
    assert_one_activation(records)
    created = next(e for e in events if e["type"] == "customer.subscription.created")
    assert [r.stripe_event_id for r in records].count(created["id"]) == 1
    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert (got.status, got.tier, got.plan) == (pb.SUBSCRIPTION_STATUS_ACTIVE, "pro", "pro")


async def test_sync_checkout_session_errors(stub: pb_grpc.BillingServiceStub, user_id: str) -> None:
    details = await expect_code(
        stub.SyncCheckoutSession(pb.SyncCheckoutSessionRequest()),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("session_id:")
    await expect_code(
        stub.SyncCheckoutSession(pb.SyncCheckoutSessionRequest(session_id="sub_123 x")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await expect_code(
        stub.SyncCheckoutSession(pb.SyncCheckoutSessionRequest(session_id="cs_test_unknown1")),
        grpc.StatusCode.NOT_FOUND,
    )
    open_session = await checkout(stub, user_id)
    details = await expect_code(
        stub.SyncCheckoutSession(pb.SyncCheckoutSessionRequest(session_id=open_session.session_id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "not complete" in details
    assert await audit(stub, user_id) == []
