"""Property: an event created before an RPC's stored answer never overwrites it, in any order.

A subscription's history is delivered as events in any order; one step of it
is also an RPC's answer (Cancel/Resume/ChangePlan), stored through the one
writer with Stripe's clock at the answer (its ``Date``) at any point of the
deliveries. Every event created before that answer and delivered after it is
STALE, and the final state is the newest step. Module API on a SQLite file,
like ``test_property``; the gRPC path is covered by the operations tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_service import audit
from billing_service.audit import verify_chain
from billing_service.events.apply import Outcome
from billing_service.events.service import EventService
from billing_service.events.writer import SubscriptionWriter
from billing_service.locks import EventLocks
from billing_service.plans import load_catalog
from billing_service.storage.database import Database, migrate
from billing_service.stripe_shapes import subscription_snapshot
from tests.events import factory
from tests.events.test_property import (
    StripeAuthority,
    assert_holds_newest,
    build_events,
    histories,
)
from tests.support.processes import PLANS_FILE

Case = tuple[list[tuple[str, int, bool]], int, list[int], int]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A history, the step an RPC answered with, the event order, and where the answer lands."""
    history = draw(histories())
    answered = draw(st.integers(0, len(history) - 1))
    order = list(draw(st.permutations(range(len(history)))))
    answer_at = draw(st.integers(0, len(order)))
    return history, answered, order, answer_at


@pytest.fixture(scope="module")
def writer_core(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EventService, SubscriptionWriter, StripeAuthority, Database]]:
    """The event engine and the one writer over one SQLite file, with an in-memory Stripe."""
    path: Path = tmp_path_factory.mktemp("writer") / "billing.db"
    db = Database(f"sqlite:///{path}", workers=2)
    migrate(db.db)
    catalog = load_catalog(PLANS_FILE)
    authority = StripeAuthority()
    events = EventService(db, catalog, authority, EventLocks())
    yield events, SubscriptionWriter(db, catalog, authority), authority, db
    db.close()


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases())
def test_an_event_older_than_a_stored_answer_never_overwrites_it(
    writer_core: tuple[EventService, SubscriptionWriter, StripeAuthority, Database], case: Case
) -> None:
    service, writer, authority, db = writer_core
    history, answered, order, answer_at = case
    user_id = f"user-{factory.new_id('w')}"
    events, newest = build_events(history, user_id)
    authority.subscriptions[newest["id"]] = newest
    answer = subscription_snapshot(events[answered]["data"]["object"])
    answer_time = int(events[answered]["created"])  # Stripe's clock when it answered

    async def deliver() -> list[tuple[int, Outcome]]:
        after_answer: list[tuple[int, Outcome]] = []
        for position, index in enumerate([*order, None]):
            if position == answer_at:
                await writer.store_answer(
                    answer, user_id, audit.Cause.call("prop", "CancelSubscription"),
                    answer_time, "answer",
                )  # fmt: skip
            if index is None:
                break
            result = (await service.apply(factory.payload(events[index]))).result
            if position >= answer_at:
                after_answer.append((int(events[index]["created"]), result.outcome))
        return after_answer

    after_answer = asyncio.run(deliver())
    for created, outcome in after_answer:
        if created < answer_time:
            assert outcome is Outcome.STALE, (created, answer_time, outcome)
    assert_holds_newest(db, newest)


def test_the_chain_is_intact_after_the_writer_property_run(
    writer_core: tuple[EventService, SubscriptionWriter, StripeAuthority, Database],
) -> None:
    report = writer_core[3].call(verify_chain)
    assert report.ok, report
