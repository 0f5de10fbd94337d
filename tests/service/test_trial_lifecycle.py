"""Issue 13: a trial over time, with the emulator clock: trial_will_end (audited and
watched), trial to active with a card, trial to paused without one.

Over gRPC against the emulator (real processes), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import EMULATOR_KEY
from tests.support.flows import CALLER, apply_all_events, stripe_client
from tests.support.processes import PLANS_FILE, ServiceProcess

DAY = 86_400


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """This module's own emulator: its clock moves by weeks (or a year), which would
    push other modules' real-time objects (meter events) out of a shared one's window."""
    with EmulatorProcess(PLANS_FILE) as process:
        yield process


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def pausing_service(
    database_url: str, emulator: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A second replica whose catalog pauses trials that end without a card."""
    text = PLANS_FILE.read_text(encoding="utf-8")
    assert 'trial_end_behavior = "cancel"' in text
    plans: Path = tmp_path_factory.mktemp("plans") / "plans.toml"
    plans.write_text(text.replace('trial_end_behavior = "cancel"', 'trial_end_behavior = "pause"'))
    env = {
        "DATABASE_URL": database_url,
        "STRIPE_API_BASE": emulator.base_url,
        "STRIPE_SECRET_KEY": EMULATOR_KEY,
        "BILLING_PLANS_FILE": str(plans),
    }
    with ServiceProcess(env) as process:
        yield process


async def start_trial(
    stub: pb_grpc.BillingServiceStub,
    emulator: Any,
    client: stripe.StripeClient,
    user_id: str,
    *,
    card: bool,
) -> pb.Subscription:
    session = await stub.CreateCheckout(
        pb.CreateCheckoutRequest(
            user_id=user_id,
            email=f"{user_id}@example.com",
            plan="team",
            success_url="https://app.example.com/ok",
            cancel_url="https://app.example.com/back",
        ),
        metadata=CALLER,
        timeout=10,
    )
    assert session.trial_granted
    emulator.complete_checkout(session.session_id, without_payment_method=not card)
    await apply_all_events(stub, client)
    got = await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=5)
    assert got.subscription.status == pb.SUBSCRIPTION_STATUS_TRIALING
    return got.subscription


async def next_change(call: Any) -> pb.WatchEntitlementsResponse:
    """The next live change on the stream (raises on timeout)."""
    while True:
        message: pb.WatchEntitlementsResponse = await asyncio.wait_for(call.read(), 30)
        if not message.snapshot:
            return message


async def test_trial_will_end_is_audited_and_watched_then_the_card_makes_it_active(
    stub: pb_grpc.BillingServiceStub, emulator: Any, client: stripe.StripeClient, user_id: str
) -> None:
    sub = await start_trial(stub, emulator, client, user_id, card=True)
    call = stub.WatchEntitlements(pb.WatchEntitlementsRequest(user_ids=[user_id]))
    first = await asyncio.wait_for(call.read(), 30)
    assert first.snapshot and first.entitlements.trial_end.seconds == sub.trial_end.seconds
    emulator.advance_clock(12 * DAY)  # trial_will_end: 3 days before the 14-day trial ends
    await apply_all_events(stub, client)
    change = await next_change(call)
    assert change.entitlements.tier == "team"
    assert change.entitlements.trial_end.seconds == sub.trial_end.seconds
    records = await stub.ListAuditEvents(pb.ListAuditEventsRequest(user_id=user_id))
    assert any(
        r.stripe_event_type == "customer.subscription.trial_will_end" for r in records.events
    )

    emulator.advance_clock(3 * DAY)
    await apply_all_events(stub, client)
    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert (got.status, got.tier) == (pb.SUBSCRIPTION_STATUS_ACTIVE, "team")
    entitlements = await stub.GetEntitlements(pb.GetEntitlementsRequest(user_id=user_id))
    assert entitlements.tier == "team" and not entitlements.HasField("trial_end")
    call.cancel()


async def test_trial_end_without_a_card_pauses_and_access_drops(
    pausing_service: ServiceProcess,
    emulator: Any,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    async with grpc.aio.insecure_channel(pausing_service.target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        await start_trial(stub, emulator, client, user_id, card=False)
        stripe_sub = (await client.v1.subscriptions.list_async({"status": "trialing"})).data
        assert any(
            s.trial_settings.end_behavior.missing_payment_method == "pause"  # type: ignore[union-attr]
            for s in stripe_sub
        )
        emulator.advance_clock(15 * DAY)
        await apply_all_events(stub, client)
        got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
        assert (got.status, got.tier) == (pb.SUBSCRIPTION_STATUS_PAUSED, "free")
        entitlements = await stub.GetEntitlements(pb.GetEntitlementsRequest(user_id=user_id))
        assert entitlements.tier == "free"
