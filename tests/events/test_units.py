"""Pure logic: the lifecycle table, ordering decisions, payload parsing, tokens, the chain."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from billing_service import audit
from billing_service.errors import InvalidArgument
from billing_service.events.ordering import Verdict, decide, previous_state_digest, state_digest
from billing_service.events.parse import HANDLED_TYPES, event_from_dict, parse_event
from billing_service.lifecycle import ACCESS, NEXT, TERMINAL, Access, Status, grant
from billing_service.plans import FREE_TIER, AccessPolicy
from billing_service.storage.models import AuditRecord
from billing_service.stripe_shapes import subscription_snapshot
from tests.events import factory

NOW = datetime(2025, 6, 1, 12, 0)
LATER = NOW + timedelta(days=10)
EARLIER = NOW - timedelta(days=1)
DEFAULT = AccessPolicy()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.NONE, FREE_TIER),
        (Status.INCOMPLETE, FREE_TIER),
        (Status.INCOMPLETE_EXPIRED, FREE_TIER),
        (Status.TRIALING, "pro"),
        (Status.ACTIVE, "pro"),
        (Status.PAST_DUE, "pro"),
        (Status.UNPAID, FREE_TIER),
        (Status.CANCELED, FREE_TIER),
        (Status.PAUSED, FREE_TIER),
    ],
)
def test_each_row_of_the_access_table(status: Status, expected: str) -> None:
    assert grant(status, "pro", LATER, False, NOW, DEFAULT).tier == expected


def test_every_status_has_a_row() -> None:
    assert set(ACCESS) == set(NEXT) == set(Status)


def test_the_transition_table_is_closed_under_chaining() -> None:
    # Events can be skipped (older ones go STALE), so "may become" must be reachability.
    for before, afters in NEXT.items():
        for middle in afters:
            assert NEXT[middle] <= afters, (before, middle)


def test_terminal_statuses_only_stay_put() -> None:
    for status in TERMINAL:
        assert NEXT[status] == {status}
    assert Status.ACTIVE not in NEXT[Status.CANCELED]


def test_active_keeps_its_tier_after_the_period_ends_without_a_cancel() -> None:
    assert grant(Status.ACTIVE, "pro", EARLIER, False, NOW, DEFAULT) == grant(
        Status.ACTIVE, "pro", None, False, NOW, DEFAULT
    )


def test_cancel_at_period_end_keeps_the_tier_until_the_period_ends() -> None:
    assert grant(Status.ACTIVE, "pro", LATER, True, NOW, DEFAULT).access_until == LATER
    assert grant(Status.ACTIVE, "pro", EARLIER, True, NOW, DEFAULT).tier == FREE_TIER


def test_past_due_grace_window_is_configurable() -> None:
    assert grant(Status.PAST_DUE, "pro", EARLIER, False, NOW, DEFAULT).tier == FREE_TIER
    two_days = AccessPolicy(past_due_grace=timedelta(days=2))
    kept = grant(Status.PAST_DUE, "pro", EARLIER, False, NOW, two_days)
    assert (kept.tier, kept.access_until) == ("pro", EARLIER + timedelta(days=2))
    assert ACCESS[Status.PAST_DUE] is Access.PLAN_DURING_GRACE


@pytest.mark.parametrize(
    ("stored", "stored_digest", "created", "digest", "authoritative", "expected"),
    [
        (None, "", 10, "a", False, Verdict.APPLY),
        (10, "a", 11, "b", False, Verdict.APPLY),
        (10, "a", 9, "a", False, Verdict.STALE),
        (10, "a", 9, "b", True, Verdict.STALE),
        (10, "a", 10, "a", False, Verdict.APPLY),
        (10, "a", 10, "b", False, Verdict.ASK_STRIPE),
        (10, "a", 10, "b", True, Verdict.APPLY),
        (0, "", 0, "b", False, Verdict.APPLY),
    ],
)
def test_ordering_decisions(
    stored: int | None,
    stored_digest: str,
    created: int,
    digest: str,
    authoritative: bool,
    expected: Verdict,
) -> None:
    decision = decide(
        stored_created=stored,
        stored_digest=stored_digest,
        event_created=created,
        event_digest=digest,
        authoritative=authoritative,
    )
    assert decision is expected


@pytest.mark.parametrize(
    ("stored", "incoming", "expected"),
    [
        ("incomplete", "active", Verdict.APPLY),  # checkout: created, then paid
        ("active", "incomplete", Verdict.STALE),  # active never becomes incomplete
        ("active", "canceled", Verdict.APPLY),
        ("canceled", "active", Verdict.STALE),
        ("active", "past_due", Verdict.ASK_STRIPE),  # either order is possible
        ("active", "active", Verdict.ASK_STRIPE),  # same status, other fields differ
        ("", "active", Verdict.ASK_STRIPE),
    ],
)
def test_a_same_second_disagreement_is_settled_by_the_lifecycle_when_it_can(
    stored: str, incoming: str, expected: Verdict
) -> None:
    decision = decide(
        stored_created=10,
        stored_digest="a",
        event_created=10,
        event_digest="b",
        authoritative=False,
        stored_status=stored,
        event_status=incoming,
    )
    assert decision is expected


def test_both_shapes_give_the_same_snapshot_and_digest() -> None:
    args = ("sub_1", "cus_1", "active")
    current = subscription_snapshot(factory.subscription(*args, period_start=1_700_000_000))
    legacy = subscription_snapshot(
        factory.subscription(*args, period_start=1_700_000_000, legacy=True)
    )
    assert current == legacy
    assert current.current_period_end is not None
    assert state_digest(current) == state_digest(legacy)
    changed = subscription_snapshot(factory.subscription("sub_1", "cus_1", "past_due"))
    assert state_digest(changed) != state_digest(current)


def test_parse_reads_the_envelope() -> None:
    ev = factory.event("invoice.paid", factory.invoice("cus_1", "sub_1"), created=1234)
    parsed = parse_event(factory.payload(ev))
    assert (parsed.id, parsed.type, parsed.created) == (ev["id"], "invoice.paid", 1234)
    assert parsed.handled
    assert len(HANDLED_TYPES) == 16  # 6 subscription, 9 invoice, checkout completed


def test_parse_accepts_an_old_created_timestamp() -> None:
    # Stripe retries for three days: freshness is the gateway's signature check.
    ev = factory.event("customer.subscription.updated", {"id": "sub_1"}, created=1)
    assert parse_event(json.dumps(ev).encode()).created == 1


def test_an_event_handed_over_parsed_reads_as_its_payload() -> None:
    # SyncCheckoutSession applies the events Stripe's Events API lists without re-encoding them.
    ev = factory.event(
        "customer.subscription.updated", factory.subscription("sub_1", "cus_1", "active")
    )
    assert event_from_dict(ev) == parse_event(factory.payload(ev))
    with pytest.raises(InvalidArgument) as caught:
        event_from_dict({**ev, "object": "subscription"})
    assert caught.value.field == "payload"


@pytest.mark.parametrize(
    "place",
    ["value", "key", "nested list"],
)
def test_a_nul_anywhere_in_the_object_is_refused(place: str) -> None:
    sub = factory.subscription("sub_1", "cus_1", "active")
    if place == "value":
        sub["metadata"] = {"note": "a\x00b"}
    elif place == "key":
        sub["metadata"] = {"a\x00": "b"}
    else:
        sub["items"]["data"][0]["metadata"] = {"tags": ["ok", "x\x00"]}
    payload = json.dumps(factory.event("customer.subscription.updated", sub)).encode()
    with pytest.raises(InvalidArgument) as caught:
        parse_event(payload)
    assert "NUL" in str(caught.value)


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul() -> None:
    # The bytes hold "\\u0000" (a backslash, then "u0000"): the walk runs and finds no NUL.
    sub = factory.subscription("sub_1", "cus_1", "active")
    sub["metadata"] = {"note": "\\u0000"}
    payload = json.dumps(factory.event("customer.subscription.updated", sub)).encode()
    assert b"\\u0000" in payload
    assert parse_event(payload).object["metadata"]["note"] == "\\u0000"


def _chain(n: int) -> list[AuditRecord]:
    records, prev = [], audit.GENESIS_HASH
    for i in range(1, n + 1):
        record = AuditRecord(
            id=i,
            user_id="u",
            stripe_subscription_id="sub_1",
            stripe_event_id=f"evt_{i}",
            stripe_event_type="customer.subscription.updated",
            caller="",
            rpc="",
            status_before="active",
            status_after="past_due",
            tier_before="pro",
            tier_after="pro",
            detail="",
            created_at=NOW + timedelta(seconds=i),
            prev_hash=prev,
        )
        record.hash = audit.record_hash(audit._hashed_view(record), prev)
        prev = record.hash
        records.append(record)
    return records


def test_the_chain_detects_edits_deletions_and_truncation() -> None:
    records = _chain(4)
    head = records[-1].hash
    assert audit.verify_records(records, head, 4).ok
    records[1].tier_after = "studio"
    assert audit.verify_records(records, head, 4).first_bad_id == 2
    records = _chain(4)
    assert audit.verify_records([records[0], *records[2:]], head, 4).first_bad_id == 3
    assert audit.verify_records(records[:3], head, 4).first_bad_id == 4


def test_a_same_second_event_says_its_own_place() -> None:
    common = {
        "stored_created": 10,
        "stored_digest": "a",
        "event_created": 10,
        "event_digest": "b",
        "authoritative": False,
        "stored_status": "active",
        "event_status": "active",
    }
    assert decide(**common) is Verdict.ASK_STRIPE  # type: ignore[arg-type]
    assert decide(**common, previous_digest="a") is Verdict.APPLY  # type: ignore[arg-type]
    assert decide(**common, previous_digest="c") is Verdict.ASK_STRIPE  # type: ignore[arg-type]
    assert decide(**common, event_is_creation=True) is Verdict.STALE  # type: ignore[arg-type]


def test_the_previous_state_of_an_update_reads_its_previous_attributes() -> None:
    before = factory.subscription("sub_1", "cus_1", "active", period_start=1_700_000_000)
    after = dict(
        before,
        cancel_at_period_end=True,
        cancel_at=before["items"]["data"][0]["current_period_end"],
    )
    previous = {"cancel_at_period_end": False, "cancel_at": None}
    digest = previous_state_digest(after, previous)
    assert digest == state_digest(subscription_snapshot(before))
    assert previous_state_digest(after, None) == ""
