"""Exactly once under concurrency: one server, and two servers sharing PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import redis

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory
from tests.events.conftest import EventsClient, service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess
from tests.support.services import redis_url


async def test_twenty_concurrent_deliveries_apply_once(client: EventsClient, user_id: str) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    ev = factory.event(
        "customer.subscription.created",
        factory.subscription(sub_id, cus, "active", user_id=user_id),
    )
    answers = await asyncio.gather(*(client.send(ev) for _ in range(20)))
    outcomes = Counter(a.outcome for a in answers)
    assert outcomes == {pb.EVENT_OUTCOME_APPLIED: 1, pb.EVENT_OUTCOME_DUPLICATE: 19}
    records = await client.audit(user_id)
    assert [r.stripe_event_id for r in records] == [ev["id"]]


@pytest.fixture(scope="module")
def replicas(
    shared_postgres: str, stripe_standin: StripeStandIn
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Two service processes sharing PostgreSQL and Redis."""
    env = service_env(shared_postgres, stripe_standin, REDIS_URL=redis_url())
    with ServiceProcess(env) as first, ServiceProcess(env) as second:
        yield first, second


async def test_twenty_concurrent_deliveries_to_two_replicas_apply_once(
    replicas: tuple[ServiceProcess, ServiceProcess], user_id: str
) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    ev = factory.event(
        "customer.subscription.created",
        factory.subscription(sub_id, cus, "active", user_id=user_id),
    )
    async with (
        grpc.aio.insecure_channel(replicas[0].target) as one,
        grpc.aio.insecure_channel(replicas[1].target) as two,
    ):
        clients = [EventsClient(pb_grpc.BillingServiceStub(c)) for c in (one, two)]
        answers = await asyncio.gather(*(clients[i % 2].send(ev) for i in range(20)))
        outcomes = Counter(a.outcome for a in answers)
        assert outcomes == {pb.EVENT_OUTCOME_APPLIED: 1, pb.EVENT_OUTCOME_DUPLICATE: 19}
        for client in clients:
            records = await client.audit(user_id)
            assert [r.stripe_event_id for r in records] == [ev["id"]]
    # Every lock was released by its owner; only dedupe markers remain.
    keys = redis.Redis.from_url(redis_url()).keys("billing:lock:*")
    assert keys == []


@pytest.fixture(scope="module")
def replicas_without_redis(
    shared_postgres: str, stripe_standin: StripeStandIn
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Two service processes sharing PostgreSQL only: no lock keeps them apart."""
    env = service_env(shared_postgres, stripe_standin)
    with ServiceProcess(env) as first, ServiceProcess(env) as second:
        yield first, second


async def test_without_redis_the_database_alone_applies_concurrent_deliveries_once(
    replicas_without_redis: tuple[ServiceProcess, ServiceProcess],
    stripe_standin: StripeStandIn,
    user_id: str,
) -> None:
    # Both replicas may pass the duplicate read and apply the same event at once; the
    # processed row's unique id, written last in each group commit, lets one commit and
    # rolls the other back (its batch runs again with savepoints and answers DUPLICATE).
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    created = factory.event(
        "customer.subscription.created",
        factory.subscription(sub_id, cus, "active", user_id=user_id),
    )
    paid = factory.event("invoice.paid", factory.invoice(cus, sub_id, user_id=user_id))
    targets = [r.target for r in replicas_without_redis]
    async with (
        grpc.aio.insecure_channel(targets[0]) as one,
        grpc.aio.insecure_channel(targets[1]) as two,
    ):
        clients = [EventsClient(pb_grpc.BillingServiceStub(c)) for c in (one, two)]
        answers = await asyncio.gather(
            *(clients[i % 2].send(ev) for i in range(12) for ev in (created, paid))
        )
        for ev in (created, paid):
            outcomes = Counter(a.outcome for a in answers if a.event_id == ev["id"])
            assert outcomes == {pb.EVENT_OUTCOME_APPLIED: 1, pb.EVENT_OUTCOME_DUPLICATE: 11}
        records = await clients[0].audit(user_id)
        assert [r.stripe_event_id for r in records] == [created["id"]]
        assert [i.stripe_invoice_id for i in await clients[1].invoices(user_id)] == [
            paid["data"]["object"]["id"]
        ]
        assert (await clients[0].subscription(user_id)).status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert sub_id not in stripe_standin.fetches


def _updates(user_id: str, statuses: list[str]) -> list[dict[str, Any]]:
    """customer.subscription.updated events of one new subscription, a second apart."""
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    return [
        factory.event(
            "customer.subscription.updated",
            factory.subscription(sub_id, cus, status, user_id=user_id),
            created=factory.BASE_TIME + i,
        )
        for i, status in enumerate(statuses)
    ]


async def test_a_history_spread_over_two_replicas_ends_in_the_newest_state(
    replicas: tuple[ServiceProcess, ServiceProcess], user_id: str
) -> None:
    statuses = ["incomplete", "active", "past_due", "active", "past_due", "unpaid", "canceled"]
    history = _updates(user_id, statuses)
    deliveries = [*history[::-1], *history]  # newest first, then everything again
    async with (
        grpc.aio.insecure_channel(replicas[0].target) as one,
        grpc.aio.insecure_channel(replicas[1].target) as two,
    ):
        clients = [EventsClient(pb_grpc.BillingServiceStub(c)) for c in (one, two)]
        answers = await asyncio.gather(
            *(clients[i % 2].send(ev) for i, ev in enumerate(deliveries))
        )
        assert all(a.outcome != pb.EVENT_OUTCOME_UNSPECIFIED for a in answers)
        current = await clients[0].subscription(user_id)
        assert current.status == pb.SUBSCRIPTION_STATUS_CANCELED
        records = await clients[1].audit(user_id)
        per_event = Counter(r.stripe_event_id for r in records)
        applied = {a.event_id for a in answers if a.outcome == pb.EVENT_OUTCOME_APPLIED}
        assert set(per_event) == applied
        assert all(count == 1 for count in per_event.values())


def _commit_sizes(service: ServiceProcess) -> tuple[float, float]:
    """(group commits, events they committed) from the service's /metrics page."""
    return (
        service.metric("billing_event_group_commit_size_count"),
        service.metric("billing_event_group_commit_size_sum"),
    )


def _patient_env(shared_postgres: str, standin: StripeStandIn, **extra: str) -> dict[str, str]:
    """A replica whose group commits wait up to 300 ms for company, with metrics on."""
    return service_env(
        shared_postgres,
        standin,
        BILLING_EVENT_BATCH_WAIT_MS="300",
        BILLING_METRICS_ADDR="127.0.0.1:0",
        **extra,
    )


@pytest.fixture(scope="module")
def patient_service(
    shared_postgres: str, stripe_standin: StripeStandIn
) -> Iterator[ServiceProcess]:
    """One patient replica with Redis and the default four writers."""
    with ServiceProcess(
        _patient_env(shared_postgres, stripe_standin, REDIS_URL=redis_url())
    ) as process:
        yield process


async def test_a_customers_events_in_flight_together_share_one_commit(
    patient_service: ServiceProcess, user_id: str
) -> None:
    # Each waits only for the one before it to be queued, not committed: all four
    # land in the batch the first one opened, applied in the order they queued.
    history = _updates(user_id, ["incomplete", "active", "past_due", "active"])
    cus = history[0]["data"]["object"]["customer"]
    before = _commit_sizes(patient_service)
    async with grpc.aio.insecure_channel(patient_service.target) as channel:
        client = EventsClient(pb_grpc.BillingServiceStub(channel))
        answers = await asyncio.gather(*(client.send(ev) for ev in history[::-1]))
        after = _commit_sizes(patient_service)
        assert (after[0] - before[0], after[1] - before[1]) == (1, 4)
        assert {a.outcome for a in answers} <= {
            pb.EVENT_OUTCOME_APPLIED,
            pb.EVENT_OUTCOME_STALE,
        }
        assert (await client.subscription(user_id)).status == pb.SUBSCRIPTION_STATUS_ACTIVE
        records = await client.audit(user_id)
        assert history[-1]["id"] in {r.stripe_event_id for r in records}
    assert redis.Redis.from_url(redis_url()).keys(f"billing:lock:customer:{cus}") == []


@pytest.mark.parametrize("checkout_first", [False, True], ids=["update-first", "checkout-first"])
async def test_an_untied_update_and_its_checkout_in_flight_together_end_tied_and_current(
    patient_service: ServiceProcess,
    stripe_standin: StripeStandIn,
    user_id: str,
    checkout_first: bool,
) -> None:
    # The hazard that once kept the customer lock until the commit: the checkout
    # must see the update's IGNORED (and ask Stripe for the state it never stored)
    # or run before it (and the update then ties through the link it made).
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    updated = factory.subscription(sub_id, cus, "active")  # no user_id metadata
    stripe_standin.subscriptions[sub_id] = updated
    update = factory.event("customer.subscription.updated", updated, created=factory.BASE_TIME + 2)
    session = factory.checkout_session(cus, sub_id, client_reference_id=user_id)
    checkout = factory.event("checkout.session.completed", session, created=factory.BASE_TIME + 1)
    deliveries = [checkout, update] if checkout_first else [update, checkout]
    async with grpc.aio.insecure_channel(patient_service.target) as channel:
        client = EventsClient(pb_grpc.BillingServiceStub(channel))
        first = asyncio.create_task(client.send(deliveries[0]))
        # A head start for the first, well inside the 300 ms its batch waits for company.
        await asyncio.sleep(0.05)
        answers = [await client.send(deliveries[1]), await first]
        outcomes = {a.event_id: a.outcome for a in answers}
        assert outcomes[checkout["id"]] == pb.EVENT_OUTCOME_APPLIED
        if outcomes[update["id"]] == pb.EVENT_OUTCOME_IGNORED:  # it ran first: Stripe was asked
            assert sub_id in stripe_standin.fetches
        else:  # it ran after the checkout and was tied by its link
            assert outcomes[update["id"]] == pb.EVENT_OUTCOME_APPLIED
        current = await client.subscription(user_id)
        assert (current.status, current.tier, current.stripe_customer_id) == (
            pb.SUBSCRIPTION_STATUS_ACTIVE,
            "pro",
            cus,
        )


@pytest.fixture(scope="module")
def one_writer_service(
    shared_postgres: str, stripe_standin: StripeStandIn
) -> Iterator[ServiceProcess]:
    """One patient replica with one group-commit writer."""
    with ServiceProcess(
        _patient_env(shared_postgres, stripe_standin, BILLING_EVENT_WRITERS="1")
    ) as process:
        yield process


@pytest.mark.parametrize("writers", [1, 4])
async def test_events_of_several_customers_spread_over_the_writers(
    one_writer_service: ServiceProcess, patient_service: ServiceProcess, writers: int
) -> None:
    # Eight customers' events at once: one writer commits them together; four
    # (the default, patient_service) split them by customer over several commits.
    service = one_writer_service if writers == 1 else patient_service
    events = [
        factory.event(
            "customer.subscription.created",
            factory.subscription(
                factory.new_id("sub"), factory.new_id("cus"), "active", user_id=factory.new_id("u")
            ),
        )
        for _ in range(8)
    ]
    before = _commit_sizes(service)
    async with grpc.aio.insecure_channel(service.target) as channel:
        client = EventsClient(pb_grpc.BillingServiceStub(channel))
        answers = await asyncio.gather(*(client.send(ev) for ev in events))
    after = _commit_sizes(service)
    assert {a.outcome for a in answers} == {pb.EVENT_OUTCOME_APPLIED}
    commits = after[0] - before[0]
    assert after[1] - before[1] == 8
    if writers == 1:
        assert commits == 1
    else:
        assert commits > 1  # all eight on one of four writers: p = 4^-7


async def test_a_redelivery_that_joins_its_customers_open_lease_is_answered_duplicate(
    patient_service: ServiceProcess, user_id: str
) -> None:
    # It asks Redis nothing (it joins the lease that the customer's next event
    # opened); the processed record's unique id answers it, and it writes nothing.
    first, second = _updates(user_id, ["active", "past_due"])
    async with grpc.aio.insecure_channel(patient_service.target) as channel:
        client = EventsClient(pb_grpc.BillingServiceStub(channel))
        assert (await client.send(first)).outcome == pb.EVENT_OUTCOME_APPLIED
        later = asyncio.create_task(client.send(second))
        await asyncio.sleep(0.05)  # the second holds its lease, in a batch that waits 300 ms
        again = await client.send(first)
        assert again.outcome == pb.EVENT_OUTCOME_DUPLICATE
        assert (await later).outcome == pb.EVENT_OUTCOME_APPLIED
        records = await client.audit(user_id)
        assert Counter(r.stripe_event_id for r in records) == {first["id"]: 1, second["id"]: 1}
