"""Pure logic: answers per tier, the current-subscription rule, L2 encoding, the watch hub."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

import pytest

from billing_service.best_subscription import relevant
from billing_service.entitlements.model import (
    EntryBook,
    build_entry,
    decode_rows,
    encode_rows,
    pick_current,
)
from billing_service.entitlements.watch import ShuttingDown, TooSlow, WatchHub
from billing_service.entitlements.wire import ResponseBook, entitlements_message
from billing_service.lifecycle import Status
from billing_service.plans import load_catalog
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.storage.models import Subscription, utcnow
from tests.entitlements.entries import same_answer
from tests.support.processes import PLANS_FILE

BOOK = ResponseBook(load_catalog(PLANS_FILE))


def row(**fields: object) -> Subscription:
    values: dict[str, object] = {
        "user_id": "u1",
        "status": "active",
        "plan": "pro",
        "current_period_end": utcnow() + timedelta(days=3),
        "cancel_at_period_end": False,
    }
    values.update(fields)
    return Subscription(**values)


def test_every_tier_answers_every_known_feature() -> None:
    for tier, answers in BOOK.by_tier.items():
        assert set(answers) == BOOK.features
        for feature, answer in answers.items():
            assert answer.tier == tier
            assert answer.allowed == (feature in BOOK.catalog.plan(tier).features)


def test_a_cancelling_subscription_expires_at_period_end_then_is_free() -> None:
    now = utcnow()
    end = now + timedelta(seconds=5)
    entry = build_entry("u1", row(current_period_end=end, cancel_at_period_end=True), BOOK, now)
    assert entry.tier == "pro"
    assert entry.grant.access_until == end
    assert entry.checks["priority_support"].allowed
    later = build_entry("u1", row(current_period_end=end, cancel_at_period_end=True), BOOK, end)
    assert later.tier == "free"
    assert same_answer(EntryBook(BOOK).expired(entry, end), later)
    assert later.expires_at == float("inf")
    assert not later.checks["priority_support"].allowed


def test_an_active_subscription_never_expires_by_itself() -> None:
    entry = build_entry("u1", row(), BOOK, utcnow())
    assert (entry.tier, entry.expires_at) == ("pro", float("inf"))


def test_no_subscription_is_free() -> None:
    entry = build_entry("u1", None, BOOK, utcnow())
    assert (entry.tier, entry.status, entry.expires_at) == ("free", Status.NONE, float("inf"))
    full = entitlements_message("u1", [], BOOK.catalog, utcnow())
    assert (full.tier, full.monthly_limit, list(full.features)) == ("free", 10, [])


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"current_period_end": None},
        {"status": "past_due", "cancel_at_period_end": True, "plan": "studio"},
        {"plan": "retired_plan"},
    ],
)
def test_l2_records_round_trip_to_the_same_answer(fields: dict[str, object]) -> None:
    original = row(stripe_subscription_id="sub_1", stripe_created=5, **fields)
    second = row(stripe_subscription_id="sub_2", plan="studio", cancel_at_period_end=True)
    for rows in ([original], [original, second]):
        copy = decode_rows("u1", encode_rows(rows))
        now = utcnow()
        assert same_answer(build_entry("u1", copy, BOOK, now), build_entry("u1", rows, BOOK, now))
        assert [c.current_period_end for c in copy] == [r.current_period_end for r in rows]
        assert copy[0].stripe_subscription_id == "sub_1"
    assert decode_rows("u1", encode_rows([])) == []


def test_pick_current_agrees_with_the_repository(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'b.db'}", workers=1)
    from billing_service.storage.database import migrate

    migrate(db.db)
    rng = random.Random(7)
    statuses = ["active", "canceled", "incomplete_expired", "past_due", "trialing", "unpaid"]
    with db.db.connection_context():
        for i in range(300):
            Subscription.create(
                stripe_subscription_id=f"sub_{i}",
                user_id=f"u{rng.randrange(40)}",
                stripe_customer_id="cus",
                status=rng.choice(statuses),
                stripe_created=rng.randrange(5),
            )
        users = [f"u{i}" for i in range(45)]
        picked = pick_current(Subscription.select().where(Subscription.user_id.in_(users)))
        for user in users:
            expected = {r.id for r in relevant(repository.subscriptions_of_user(user))}
            assert {r.id for r in picked.get(user, [])} == expected
    db.close()


async def test_the_hub_delivers_only_watched_users_in_order() -> None:
    hub = WatchHub(max_pending=10)
    mine = hub.subscribe(["a", "b"])
    everyone = hub.subscribe(None)
    for user in ("a", "c", "b"):
        hub.publish(user, 1.0)
    assert [(await mine.next())[0] for _ in range(2)] == ["a", "b"]
    assert [(await everyone.next())[0] for _ in range(3)] == ["a", "c", "b"]


async def test_a_consumer_that_falls_behind_is_cut_off() -> None:
    hub = WatchHub(max_pending=3)
    sub = hub.subscribe(None)
    for i in range(10):
        hub.publish(f"u{i}", 1.0)
    with pytest.raises(TooSlow):
        for _ in range(10):
            await sub.next()


async def test_closing_the_hub_ends_waiting_streams() -> None:
    hub = WatchHub()
    sub = hub.subscribe(None)
    waiting = asyncio.create_task(sub.next())
    await asyncio.sleep(0)  # one loop turn: the task starts waiting on the hub
    hub.close()
    with pytest.raises(ShuttingDown):
        await waiting
    with pytest.raises(ShuttingDown):
        hub.subscribe(None)
