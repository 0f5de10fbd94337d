"""RPC answers go through the one writer: an event created before a Cancel's answer never undoes it.

Over gRPC against a real service and the emulator (SQLite and PostgreSQL).
The emulator's ``Date`` header is its own clock, the clock of its events'
``created``, as Stripe's is.
"""

from __future__ import annotations

import json
from typing import Any

import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory
from tests.operations.support import audit, emulator_now, subscribe_now
from tests.support.flows import CALLER, apply_all_events


async def subscription_events(
    client: stripe.StripeClient, since: int, sub_id: str
) -> list[dict[str, Any]]:
    """The raw customer.subscription.* events of ``sub_id`` since ``since``, oldest first."""
    page = await client.v1.events.list_async({"limit": 100, "created": {"gte": since}})
    assert page.last_response is not None
    raw = json.loads(page.last_response.body)["data"]
    return [
        e
        for e in reversed(raw)
        if e["type"].startswith("customer.subscription.") and e["data"]["object"]["id"] == sub_id
    ]


async def test_an_event_created_before_a_cancel_is_stale(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    since = emulator_now(emulator)
    sub = await subscribe_now(stub, emulator, client, user_id)
    assert sub.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    before_cancel = (await subscription_events(client, since, sub.stripe_subscription_id))[-1]
    # A delivery of the state Stripe held before the cancel, arriving after it
    # (another event of that moment, delayed by Stripe's retries).
    late_event = dict(before_cancel, id=factory.new_id("evt"))
    emulator.advance_clock(60)  # the cancel happens a minute later by Stripe's clock

    canceled = await stub.CancelSubscription(
        pb.CancelSubscriptionRequest(user_id=user_id, at_period_end=True),
        metadata=CALLER,
        timeout=10,
    )
    assert canceled.subscription.cancel_at_period_end
    late = await stub.ApplyStripeEvent(
        pb.ApplyStripeEventRequest(payload=json.dumps(late_event).encode()), timeout=10
    )
    assert late.outcome == pb.EVENT_OUTCOME_STALE, late.reason
    assert "an RPC" in late.reason
    assert late.subscription.cancel_at_period_end

    # The cancel's own webhook carries the answer's second and state: it confirms.
    await apply_all_events(stub, client, since)
    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert (got.status, got.cancel_at_period_end, got.tier) == (
        pb.SUBSCRIPTION_STATUS_ACTIVE,
        True,
        "pro",
    )
    records = await audit(stub, user_id)
    cancel = next(r for r in records if r.rpc == "CancelSubscription")
    assert cancel.caller == "test-suite"
    assert all(r.stripe_event_id != late_event["id"] for r in records)  # STALE: no record
