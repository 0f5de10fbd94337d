"""Property: any delivery order of a subscription's history, with any duplicates, ends right.

The final stored state equals the state after the newest event, and each
distinct applied event has exactly one audit record. The core runs through
the module API on a SQLite file (fast, many examples); a smaller variant
goes over gRPC against a real server on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_service.audit import verify_chain
from billing_service.events.apply import Outcome
from billing_service.events.group_commit import GroupCommitter
from billing_service.events.ordering import state_digest
from billing_service.events.service import EventService
from billing_service.lifecycle import NEXT, Status
from billing_service.locks import EventLocks
from billing_service.plans import load_catalog
from billing_service.storage import repository
from billing_service.storage.database import Database, migrate
from billing_service.storage.models import AuditRecord, Subscription
from billing_service.stripe_shapes import subscription_snapshot
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import PLANS_FILE, ServiceProcess

EVENT_TYPES = ["customer.subscription.created", "customer.subscription.updated"]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, int, bool]]:
    """(status, created offset, cancel_at_period_end) steps Stripe could make, oldest first.

    Consecutive steps may share a second (Stripe's clock has whole seconds).
    """
    status = draw(st.sampled_from([Status.INCOMPLETE, Status.TRIALING, Status.ACTIVE]))
    created = 0
    steps = [(status.value, created, False)]
    for _ in range(draw(st.integers(0, 6))):
        status = draw(st.sampled_from(sorted(NEXT[status] - {Status.NONE})))
        created += draw(st.sampled_from([0, 1, 1, 2, 60]))
        steps.append((status.value, created, draw(st.booleans())))
    return steps


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[str, int, bool]], list[int]]:
    """A history and a delivery order: a permutation of it plus any duplicates."""
    history = draw(histories())
    order = draw(st.permutations(range(len(history))))
    extra = draw(st.lists(st.integers(0, len(history) - 1), max_size=4))
    positions = [draw(st.integers(0, len(order) + i)) for i in range(len(extra))]
    order = list(order)
    for index, position in zip(extra, positions, strict=True):
        order.insert(position, index)
    return history, order


class StripeAuthority:
    """What Stripe answers: the subscription as the newest event of its history has it."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The current subscription."""
        return self.subscriptions[subscription_id]

    async def retrieve_subscription_discounts(self, subscription_id: str) -> dict[str, Any]:
        """The current subscription (these histories carry no discounts)."""
        return self.subscriptions[subscription_id]


def build_events(
    history: list[tuple[str, int, bool]], user_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Events for ``history`` of one new subscription, and the newest subscription object."""
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    events = []
    obj: dict[str, Any] = {}
    for i, (status, offset, cancelling) in enumerate(history):
        cancelling = cancelling and status not in ("canceled", "incomplete_expired")
        obj = factory.subscription(
            sub_id,
            cus,
            status,
            user_id=user_id,
            cancel_at_period_end=cancelling,
            period_start=1_700_000_000 + i,  # every step's state differs from the one before
            legacy=i % 2 == 1,
        )
        events.append(
            factory.event(EVENT_TYPES[min(i, 1)], obj, created=factory.BASE_TIME + offset)
        )
    return events, obj


@pytest.fixture(scope="module")
def core(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EventService, StripeAuthority, Database]]:
    """An EventService over a SQLite file, with an in-memory Stripe authority.

    Shared by the examples of one property for speed: each example builds its
    own subscription and asserts only on what it delivered.
    """
    path: Path = tmp_path_factory.mktemp("prop") / "billing.db"
    db = Database(f"sqlite:///{path}", workers=2)
    migrate(db.db)
    authority = StripeAuthority()
    service = EventService(db, load_catalog(PLANS_FILE), authority, EventLocks())
    yield service, authority, db
    db.close()


def deliver_in_order(
    core: tuple[EventService, StripeAuthority, Database],
    history: list[tuple[str, int, bool]],
    order: list[int],
    user_id: str,
) -> tuple[dict[str, Any], list[tuple[str, Outcome]]]:
    """Deliver ``history``'s events in ``order``; the newest subscription and each outcome."""
    service, authority, _ = core
    events, newest = build_events(history, user_id)
    authority.subscriptions[newest["id"]] = newest

    async def deliver() -> list[tuple[str, Outcome]]:
        outcomes = []
        for index in order:
            answer = await service.apply(factory.payload(events[index]))
            outcomes.append((events[index]["id"], answer.result.outcome))
        return outcomes

    return newest, asyncio.run(deliver())


def assert_holds_newest(db: Database, newest: dict[str, Any]) -> Subscription:
    """The stored row of ``newest``'s subscription, asserted to hold its state."""
    row = db.call(repository.subscription_by_stripe_id, newest["id"])
    assert row is not None
    assert row.status == newest["status"]
    assert row.last_state_digest == state_digest(subscription_snapshot(newest))
    return row


def audited_events(db: Database, subscription_id: str) -> Counter[str]:
    """Audit records of one subscription, by Stripe event id."""
    return Counter(
        db.call(
            lambda: [
                r.stripe_event_id
                for r in AuditRecord.select().where(
                    AuditRecord.stripe_subscription_id == subscription_id
                )
            ]
        )
    )


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=deliveries())
def test_any_delivery_order_ends_in_the_newest_state(
    core: tuple[EventService, StripeAuthority, Database],
    case: tuple[list[tuple[str, int, bool]], list[int]],
) -> None:
    _, _, db = core
    history, order = case
    newest, outcomes = deliver_in_order(core, history, order, f"user-{factory.new_id('p')}")
    row = assert_holds_newest(db, newest)
    assert row.cancel_at_period_end == subscription_snapshot(newest).cancel_at_period_end
    applied = {event_id for event_id, outcome in outcomes if outcome is Outcome.APPLIED}
    seen: set[str] = set()
    for event_id, outcome in outcomes:
        if event_id in seen:
            assert outcome is Outcome.DUPLICATE
        seen.add(event_id)
    audited = audited_events(db, newest["id"])
    assert set(audited) >= applied
    assert all(count == 1 for count in audited.values())


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cases=st.lists(deliveries(), min_size=1, max_size=4))
def test_the_audit_chain_stays_intact_across_out_of_order_deliveries(
    tmp_path_factory: pytest.TempPathFactory,
    cases: list[tuple[list[tuple[str, int, bool]], list[int]]],
) -> None:
    # Its own database: the chain checked is exactly the one these deliveries wrote.
    path: Path = tmp_path_factory.mktemp("chain") / "billing.db"
    db = Database(f"sqlite:///{path}", workers=2)
    try:
        migrate(db.db)
        authority = StripeAuthority()
        service = EventService(db, load_catalog(PLANS_FILE), authority, EventLocks())
        core = (service, authority, db)
        written = 0
        for index, (history, order) in enumerate(cases):
            newest, _ = deliver_in_order(core, history, order, f"user-chain-{index}")
            written += sum(audited_events(db, newest["id"]).values())
        assert written > 0  # every history applies at least its newest state
        report = db.call(verify_chain)
        assert report.ok, report
        assert report.checked == db.call(AuditRecord.select().count)
        assert report.checked >= written
    finally:
        db.close()


@pytest.fixture(scope="module")
def concurrent_core(
    database_url: str,
) -> Iterator[tuple[EventService, StripeAuthority, Database]]:
    """An EventService on SQLite and on PostgreSQL whose group commits wait 10 ms for company."""
    db = Database(database_url, workers=4)
    authority = StripeAuthority()
    committer = GroupCommitter(db, max_wait=0.01)
    service = EventService(
        db, load_catalog(PLANS_FILE), authority, EventLocks(), committer=committer
    )
    yield service, authority, db
    db.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=deliveries())
def test_a_history_delivered_all_at_once_ends_in_the_newest_state(
    concurrent_core: tuple[EventService, StripeAuthority, Database],
    case: tuple[list[tuple[str, int, bool]], list[int]],
) -> None:
    # Every delivery in flight at once: a customer's events queue behind each
    # other and share batches (locks.Claim.queued), which must decide exactly
    # what one transaction per event in some order would have.
    service, authority, db = concurrent_core
    history, order = case
    events, newest = build_events(history, f"user-{factory.new_id('c')}")
    authority.subscriptions[newest["id"]] = newest

    async def deliver_all() -> list[Outcome]:
        answers = await asyncio.gather(
            *(service.apply(factory.payload(events[index])) for index in order)
        )
        return [answer.result.outcome for answer in answers]

    outcomes = asyncio.run(deliver_all())
    assert_holds_newest(db, newest)
    for event in events:
        delivered = [o for i, o in zip(order, outcomes, strict=True) if events[i] is event]
        firsts = [o for o in delivered if o is not Outcome.DUPLICATE]
        assert len(firsts) == 1, (event["id"], delivered)
    audited = audited_events(db, newest["id"])
    assert all(count == 1 for count in audited.values())
    report = db.call(verify_chain)
    assert report.ok, report


@pytest.fixture(scope="module")
def grpc_target(database_url: str, stripe_standin: StripeStandIn) -> Iterator[str]:
    """A real server for the gRPC variant."""
    from tests.events.conftest import service_env

    with ServiceProcess(service_env(database_url, stripe_standin)) as process:
        yield process.target


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=deliveries())
def test_any_delivery_order_over_grpc(
    grpc_target: str,
    stripe_standin: StripeStandIn,
    case: tuple[list[tuple[str, int, bool]], list[int]],
) -> None:
    history, order = case
    user_id = f"user-{factory.new_id('g')}"
    events, newest = build_events(history, user_id)
    stripe_standin.subscriptions[newest["id"]] = newest
    with grpc.insecure_channel(grpc_target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        answers = [
            stub.ApplyStripeEvent(pb.ApplyStripeEventRequest(payload=factory.payload(events[i])))
            for i in order
        ]
        current = stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id)).subscription
        records = stub.ListAuditEvents(
            pb.ListAuditEventsRequest(user_id=user_id, page_size=500)
        ).events
    assert (
        pb.SubscriptionStatus.Name(current.status)
        == f"SUBSCRIPTION_STATUS_{newest['status'].upper()}"
    )
    assert current.cancel_at_period_end == subscription_snapshot(newest).cancel_at_period_end
    applied = {a.event_id for a in answers if a.outcome == pb.EVENT_OUTCOME_APPLIED}
    audited = Counter(r.stripe_event_id for r in records)
    assert set(audited) >= applied
    assert all(count == 1 for count in audited.values())
