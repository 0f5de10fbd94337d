"""Stripe calls on the event path: none on the steady path, budgeted where payloads cannot decide.

A real service over the Stripe stand-in with a budget of one call
(BILLING_STRIPE_EVENT_FETCH_RATE far below one per second), its metrics
scraped over HTTP.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory
from tests.events.conftest import EventsClient, service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess

T = factory.BASE_TIME


@pytest.fixture(scope="module")
def budgeted(
    tmp_path_factory: pytest.TempPathFactory, stripe_standin: StripeStandIn
) -> Iterator[ServiceProcess]:
    """A service whose event path may make one Stripe call (no refill during the test)."""
    path: Path = tmp_path_factory.mktemp("budget") / "billing.db"
    env = service_env(
        f"sqlite:///{path}",
        stripe_standin,
        BILLING_STRIPE_EVENT_FETCH_RATE="0.001",
        BILLING_METRICS_ADDR="127.0.0.1:0",
    )
    with ServiceProcess(env) as process:
        yield process


@pytest.fixture
async def budget_client(budgeted: ServiceProcess) -> AsyncIterator[EventsClient]:
    """An EventsClient on the budgeted service."""
    async with grpc.aio.insecure_channel(budgeted.target) as channel:
        yield EventsClient(pb_grpc.BillingServiceStub(channel))


async def fetch_counts(service: ServiceProcess) -> dict[tuple[str, str], float]:
    """billing_stripe_event_fetches_total by (cause, outcome), scraped over HTTP."""

    def get() -> str:
        url = f"http://{service.metrics_target}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return str(answer.read().decode())

    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(await asyncio.to_thread(get)):
        for sample in family.samples:
            if sample.name == "billing_stripe_event_fetches_total":
                counts[(sample.labels["cause"], sample.labels["outcome"])] = sample.value
    return counts


async def conflict(
    client: EventsClient, standin: StripeStandIn, user_id: str
) -> tuple[str, dict[str, object]]:
    """Store one state, then return an event of the same second that disagrees."""
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    active = factory.subscription(sub_id, cus, "active", user_id=user_id)
    standin.subscriptions[sub_id] = factory.subscription(sub_id, cus, "past_due", user_id=user_id)
    first = await client.send(factory.event("customer.subscription.updated", active, created=T))
    assert first.outcome == pb.EVENT_OUTCOME_APPLIED
    unpaid = active | {"status": "unpaid"}
    return sub_id, factory.event("customer.subscription.updated", unpaid, created=T)


async def test_only_a_conflict_asks_stripe_and_only_within_the_budget(
    budgeted: ServiceProcess, budget_client: EventsClient, stripe_standin: StripeStandIn
) -> None:
    user_id = f"user-{factory.new_id('b')}"
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    steady = [
        factory.event(
            "checkout.session.completed",
            factory.checkout_session(cus, sub_id, client_reference_id=user_id),
        ),
        factory.event(
            "customer.subscription.created",
            factory.subscription(sub_id, cus, "active", user_id=user_id),
        ),
        factory.event("invoice.paid", factory.invoice(cus, sub_id)),
        factory.event("invoice.payment_failed", factory.invoice(cus, sub_id, legacy=True)),
    ]
    for ev in steady:
        assert (await budget_client.send(ev)).outcome == pb.EVENT_OUTCOME_APPLIED
    assert stripe_standin.fetches == []
    assert await fetch_counts(budgeted) == {}

    asked, first = await conflict(budget_client, stripe_standin, user_id + "-1")
    answer = await budget_client.send(first)
    assert answer.outcome == pb.EVENT_OUTCOME_APPLIED
    assert answer.subscription.status == pb.SUBSCRIPTION_STATUS_PAST_DUE  # Stripe's answer
    assert stripe_standin.fetches == [asked]

    refused_sub, second = await conflict(budget_client, stripe_standin, user_id + "-2")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await budget_client.send(second)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "BILLING_STRIPE_EVENT_FETCH_RATE" in (caught.value.details() or "")
    assert refused_sub not in stripe_standin.fetches  # refused before calling Stripe
    # Not recorded (only the first state's audit record): Stripe's retry applies it later.
    assert len(await budget_client.audit(user_id + "-2")) == 1

    counts = await fetch_counts(budgeted)
    assert counts[("same_second_conflict", "ok")] == 1
    assert counts[("same_second_conflict", "over_budget")] == 1


@pytest.fixture(scope="module")
def short_fetches(
    tmp_path_factory: pytest.TempPathFactory, stripe_standin: StripeStandIn
) -> Iterator[ServiceProcess]:
    """A service whose event-path fetches give up after half a second (Stripe's: 10 s)."""
    path: Path = tmp_path_factory.mktemp("timeout") / "billing.db"
    env = service_env(
        f"sqlite:///{path}",
        stripe_standin,
        BILLING_STRIPE_EVENT_FETCH_TIMEOUT_SECONDS="0.5",
        STRIPE_TIMEOUT_SECONDS="10",
    )
    with ServiceProcess(env) as process:
        yield process


async def test_a_hanging_stripe_is_one_short_attempt_then_unavailable(
    short_fetches: ServiceProcess, stripe_standin: StripeStandIn
) -> None:
    async with grpc.aio.insecure_channel(short_fetches.target) as channel:
        client = EventsClient(pb_grpc.BillingServiceStub(channel))
        user_id = f"user-{factory.new_id('h')}"
        sub_id, ev = await conflict(client, stripe_standin, user_id)
        stripe_standin.delay = 6.0
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                # Longer than the fetch timeout, shorter than Stripe's own timeout or
                # two attempts: only a single short attempt answers within it.
                await client.stub.ApplyStripeEvent(
                    pb.ApplyStripeEventRequest(payload=factory.payload(ev)), timeout=4
                )
        finally:
            stripe_standin.delay = 0.0
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
        assert stripe_standin.fetches.count(sub_id) == 1  # no SDK retry
        answer = await client.send(ev)  # Stripe's retry, once Stripe answers again
        assert answer.outcome == pb.EVENT_OUTCOME_APPLIED
        assert answer.subscription.status == pb.SUBSCRIPTION_STATUS_PAST_DUE
