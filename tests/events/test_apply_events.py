"""ApplyStripeEvent over gRPC against a real server: types, shapes, outcomes, ordering."""

from __future__ import annotations

import grpc
import pytest

from generated.billing.v1 import billing_pb2 as pb
from tests.events import factory
from tests.events.conftest import EventsClient
from tests.events.stripe_standin import StripeStandIn

APPLIED = pb.EVENT_OUTCOME_APPLIED
DUPLICATE = pb.EVENT_OUTCOME_DUPLICATE
IGNORED = pb.EVENT_OUTCOME_IGNORED
STALE = pb.EVENT_OUTCOME_STALE

SUBSCRIPTION_TYPES = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.deleted",
]
STATUS_FOR_TYPE = {
    "customer.subscription.created": ("active", pb.SUBSCRIPTION_STATUS_ACTIVE, "pro"),
    "customer.subscription.updated": ("past_due", pb.SUBSCRIPTION_STATUS_PAST_DUE, "pro"),
    "customer.subscription.paused": ("paused", pb.SUBSCRIPTION_STATUS_PAUSED, "free"),
    "customer.subscription.resumed": ("active", pb.SUBSCRIPTION_STATUS_ACTIVE, "pro"),
    "customer.subscription.trial_will_end": ("trialing", pb.SUBSCRIPTION_STATUS_TRIALING, "pro"),
    "customer.subscription.deleted": ("canceled", pb.SUBSCRIPTION_STATUS_CANCELED, "free"),
}


def ids() -> tuple[str, str]:
    """A fresh (subscription id, customer id)."""
    return factory.new_id("sub"), factory.new_id("cus")


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
@pytest.mark.parametrize("event_type", SUBSCRIPTION_TYPES)
async def test_subscription_event_types_in_both_shapes(
    client: EventsClient, user_id: str, event_type: str, legacy: bool
) -> None:
    sub_id, cus = ids()
    raw_status, status, tier = STATUS_FOR_TYPE[event_type]
    start = factory.BASE_TIME
    obj = factory.subscription(sub_id, cus, raw_status, user_id=user_id, legacy=legacy)
    answer = await client.send(factory.event(event_type, obj, legacy=legacy, created=start))
    assert answer.outcome == APPLIED, answer.reason
    assert answer.subscription.status == status
    assert answer.subscription.tier == tier
    assert answer.subscription.user_id == user_id
    assert answer.subscription.stripe_subscription_id == sub_id
    assert answer.subscription.stripe_customer_id == cus
    period_start = (
        obj.get("current_period_start") or obj["items"]["data"][0]["current_period_start"]
    )
    assert answer.subscription.current_period_start.seconds == period_start
    current = await client.subscription(user_id)
    assert current.status == status
    assert current.tier == tier


STATE_TABLE = [
    ("incomplete", pb.SUBSCRIPTION_STATUS_INCOMPLETE, "free"),
    ("incomplete_expired", pb.SUBSCRIPTION_STATUS_INCOMPLETE_EXPIRED, "free"),
    ("trialing", pb.SUBSCRIPTION_STATUS_TRIALING, "pro"),
    ("active", pb.SUBSCRIPTION_STATUS_ACTIVE, "pro"),
    ("past_due", pb.SUBSCRIPTION_STATUS_PAST_DUE, "pro"),
    ("unpaid", pb.SUBSCRIPTION_STATUS_UNPAID, "free"),
    ("canceled", pb.SUBSCRIPTION_STATUS_CANCELED, "free"),
    ("paused", pb.SUBSCRIPTION_STATUS_PAUSED, "free"),
]


@pytest.mark.parametrize(("raw_status", "status", "tier"), STATE_TABLE)
async def test_every_status_grants_what_the_state_table_says(
    client: EventsClient, user_id: str, raw_status: str, status: int, tier: str
) -> None:
    sub_id, cus = ids()
    obj = factory.subscription(sub_id, cus, raw_status, user_id=user_id)
    answer = await client.send(factory.event("customer.subscription.created", obj))
    assert answer.outcome == APPLIED, answer.reason
    current = await client.subscription(user_id)
    assert (current.status, current.tier, current.plan) == (status, tier, "pro")


async def test_cancel_at_period_end_keeps_access_until_the_period_ends(
    client: EventsClient, user_id: str
) -> None:
    sub_id, cus = ids()
    obj = factory.subscription(sub_id, cus, "active", user_id=user_id, cancel_at_period_end=True)
    answer = await client.send(factory.event("customer.subscription.updated", obj))
    assert answer.outcome == APPLIED
    assert answer.subscription.cancel_at_period_end
    assert answer.subscription.tier == "pro"
    period_end = obj["items"]["data"][0]["current_period_end"]
    assert answer.subscription.access_until.seconds == period_end


async def test_cancel_at_period_end_after_the_period_ended_grants_free(
    client: EventsClient, user_id: str
) -> None:
    sub_id, cus = ids()
    ended = factory.BASE_TIME - factory.PERIOD  # a period that ended long ago
    obj = factory.subscription(
        sub_id, cus, "active", user_id=user_id, cancel_at_period_end=True, period_start=ended
    )
    answer = await client.send(factory.event("customer.subscription.updated", obj))
    assert answer.outcome == APPLIED
    assert answer.subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert answer.subscription.tier == "free"


async def test_past_due_keeps_the_tier_until_the_period_ends_by_default(
    client: EventsClient, user_id: str
) -> None:
    sub_id, cus = ids()
    ended = factory.BASE_TIME - factory.PERIOD
    obj = factory.subscription(sub_id, cus, "past_due", user_id=user_id, period_start=ended)
    answer = await client.send(factory.event("customer.subscription.updated", obj))
    assert answer.outcome == APPLIED
    assert answer.subscription.tier == "free"  # period over, default grace is zero
    live = factory.subscription(sub_id, cus, "past_due", user_id=user_id)
    answer = await client.send(factory.event("customer.subscription.updated", live))
    assert answer.subscription.tier == "pro"
    period_end = live["items"]["data"][0]["current_period_end"]
    assert answer.subscription.access_until.seconds == period_end


async def test_a_redelivered_event_is_a_duplicate_with_one_audit_record(
    client: EventsClient, user_id: str
) -> None:
    sub_id, cus = ids()
    ev = factory.event(
        "customer.subscription.created",
        factory.subscription(sub_id, cus, "active", user_id=user_id),
    )
    first = await client.send(ev)
    second = await client.send(ev)
    assert (first.outcome, second.outcome) == (APPLIED, DUPLICATE)
    assert second.event_id == ev["id"]
    assert second.subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    records = await client.audit(user_id)
    assert [r.stripe_event_id for r in records] == [ev["id"]]
    assert records[0].stripe_event_type == "customer.subscription.created"
    assert records[0].status_before == pb.SUBSCRIPTION_STATUS_NONE
    assert records[0].status_after == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert (records[0].tier_before, records[0].tier_after) == ("free", "pro")


async def test_an_older_event_is_stale_and_changes_nothing(
    client: EventsClient, user_id: str
) -> None:
    sub_id, cus = ids()
    t = factory.BASE_TIME
    newer = factory.subscription(sub_id, cus, "active", user_id=user_id)
    older = factory.subscription(sub_id, cus, "incomplete", user_id=user_id)
    assert (
        await client.send(factory.event("customer.subscription.updated", newer, created=t + 5))
    ).outcome == APPLIED
    late = await client.send(factory.event("customer.subscription.created", older, created=t))
    assert late.outcome == STALE
    assert "older" in late.reason
    assert late.subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert (await client.subscription(user_id)).status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert len(await client.audit(user_id)) == 1
    again = await client.send(factory.event("customer.subscription.created", older, created=t))
    assert again.outcome == STALE  # another older event: judged afresh, still older


async def test_two_events_in_the_same_second_that_disagree_ask_stripe(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    sub_id, cus = ids()
    t = factory.BASE_TIME
    active = factory.subscription(sub_id, cus, "active", user_id=user_id)
    past_due = factory.subscription(sub_id, cus, "past_due", user_id=user_id)
    stripe_standin.subscriptions[sub_id] = past_due
    first = await client.send(factory.event("customer.subscription.updated", active, created=t))
    second = await client.send(factory.event("customer.subscription.created", active, created=t))
    assert (first.outcome, second.outcome) == (APPLIED, APPLIED)
    assert sub_id not in stripe_standin.fetches  # same second, same state: no question
    third = await client.send(
        factory.event("customer.subscription.updated", active | {"status": "unpaid"}, created=t)
    )
    assert third.outcome == APPLIED
    assert third.subscription.status == pb.SUBSCRIPTION_STATUS_PAST_DUE  # Stripe's answer
    assert sub_id in stripe_standin.fetches
    newest = (await client.audit(user_id))[0]
    assert "same-second conflict" in newest.detail
    assert newest.status_after == pb.SUBSCRIPTION_STATUS_PAST_DUE


async def test_a_same_second_event_that_says_its_place_needs_no_stripe(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    sub_id, cus = ids()
    t = factory.BASE_TIME
    incomplete = factory.subscription(sub_id, cus, "incomplete", user_id=user_id)
    active = factory.subscription(sub_id, cus, "active", user_id=user_id)
    period_end = active["items"]["data"][0]["current_period_end"]
    cancelling = dict(active, cancel_at_period_end=True, cancel_at=period_end)
    created = factory.event("customer.subscription.created", incomplete, created=t)
    paid = factory.event("customer.subscription.updated", active, created=t)
    paid["data"]["previous_attributes"] = {"status": "incomplete"}
    cancel = factory.event("customer.subscription.updated", cancelling, created=t)
    cancel["data"]["previous_attributes"] = {"cancel_at_period_end": False, "cancel_at": None}
    # All in one second, delivered newest first but for the cancel.
    answers = [await client.send(ev) for ev in (paid, cancel, created)]
    assert [a.outcome for a in answers] == [APPLIED, APPLIED, STALE]
    assert "older of the two" in answers[2].reason
    assert sub_id not in stripe_standin.fetches
    current = await client.subscription(user_id)
    assert (current.status, current.cancel_at_period_end) == (pb.SUBSCRIPTION_STATUS_ACTIVE, True)


async def test_canceled_back_to_active_is_refused_audited_and_ignored(
    client: EventsClient, user_id: str
) -> None:
    sub_id, cus = ids()
    t = factory.BASE_TIME
    canceled = factory.subscription(sub_id, cus, "canceled", user_id=user_id)
    active = factory.subscription(sub_id, cus, "active", user_id=user_id)
    await client.send(factory.event("customer.subscription.deleted", canceled, created=t))
    answer = await client.send(
        factory.event("customer.subscription.updated", active, created=t + 1)
    )
    assert answer.outcome == IGNORED
    assert "refused transition canceled -> active" in answer.reason
    assert answer.subscription.status == pb.SUBSCRIPTION_STATUS_CANCELED
    assert (await client.subscription(user_id)).status == pb.SUBSCRIPTION_STATUS_CANCELED
    refused = (await client.audit(user_id))[0]
    assert refused.stripe_event_id == answer.event_id
    assert refused.status_before == refused.status_after == pb.SUBSCRIPTION_STATUS_CANCELED
    assert "refused" in refused.detail


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"", "required"),
        (b"not json", "not JSON"),
        (b'{"id": "\xff"}', "not JSON (str is not valid UTF-8"),
        (b"[" * 2000 + b"]" * 2000, "not JSON (depth limit exceeded)"),
        (b'{"object": "event"} trailing', "not JSON (unexpected content after document)"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"object": "customer", "id": "cus_1"}', "not a Stripe event"),
        (
            b'{"object": "event", "id": "x", "type": "a.b", "created": 1, "data": {"object": {}}}',
            "evt_",
        ),
        (b'{"object": "event", "id": "evt_1", "created": 1, "data": {"object": {}}}', "type"),
        (
            b'{"object": "event", "id": "evt_1", "type": "a.b", "created": "1", '
            b'"data": {"object": {}}}',
            "created",
        ),
        (
            b'{"object": "event", "id": "evt_1", "type": "a.b", "created": 1, "data": {}}',
            "data.object",
        ),
    ],
)
async def test_a_payload_that_is_not_a_stripe_event_is_invalid(
    client: EventsClient, payload: bytes, problem: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.stub.ApplyStripeEvent(pb.ApplyStripeEventRequest(payload=payload))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert details.startswith("payload:")
    assert problem in details


async def test_an_event_type_we_do_not_act_on_is_ignored_and_recorded(
    client: EventsClient,
) -> None:
    ev = factory.event("customer.created", factory.template("customer"))
    first = await client.send(ev)
    assert first.outcome == IGNORED
    assert "customer.created is not acted on" in first.reason
    assert not first.HasField("subscription")
    second = await client.send(ev)
    assert second.outcome == DUPLICATE
    assert "ignored" in second.reason


async def test_an_event_that_cannot_be_tied_to_a_user_is_ignored(client: EventsClient) -> None:
    sub_id, cus = ids()
    obj = factory.subscription(sub_id, cus, "active")  # no metadata, unknown customer
    answer = await client.send(factory.event("customer.subscription.updated", obj))
    assert answer.outcome == IGNORED
    assert "cannot tie" in answer.reason


async def test_checkout_completed_links_the_customer_without_asking_stripe(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    sub_id, cus = ids()
    session = factory.checkout_session(cus, sub_id, client_reference_id=user_id)
    answer = await client.send(factory.event("checkout.session.completed", session))
    assert answer.outcome == APPLIED, answer.reason
    assert "linked" in answer.reason
    assert sub_id not in stripe_standin.fetches
    # The subscription events carry the state; without metadata they find the
    # user through the customer the checkout linked.
    created = factory.subscription(sub_id, cus, "active")
    update = await client.send(factory.event("customer.subscription.created", created))
    assert update.outcome == APPLIED, update.reason
    assert (update.subscription.user_id, update.subscription.tier) == (user_id, "pro")
    later = factory.subscription(sub_id, cus, "past_due")
    update = await client.send(factory.event("customer.subscription.updated", later))
    assert update.outcome == APPLIED
    assert (await client.subscription(user_id)).status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    assert sub_id not in stripe_standin.fetches


async def test_checkout_ties_the_user_through_session_metadata(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    sub_id, cus = ids()
    session = factory.checkout_session(cus, sub_id, metadata_user_id=user_id)
    answer = await client.send(factory.event("checkout.session.completed", session))
    assert answer.outcome == APPLIED, answer.reason
    trialing = factory.subscription(sub_id, cus, "trialing")
    update = await client.send(factory.event("customer.subscription.created", trialing))
    assert update.subscription.status == pb.SUBSCRIPTION_STATUS_TRIALING
    assert update.subscription.user_id == user_id
    assert sub_id not in stripe_standin.fetches


async def test_a_payment_mode_checkout_is_ignored(client: EventsClient, user_id: str) -> None:
    session = factory.checkout_session(
        factory.new_id("cus"), "", client_reference_id=user_id, mode="payment"
    )
    answer = await client.send(factory.event("checkout.session.completed", session))
    assert answer.outcome == IGNORED
    assert "subscription mode" in answer.reason


async def test_updates_that_arrive_before_the_checkout_event(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    sub_id, cus = ids()
    t = factory.BASE_TIME
    created = factory.subscription(sub_id, cus, "incomplete", user_id=user_id)
    updated = factory.subscription(sub_id, cus, "active", user_id=user_id)
    stripe_standin.subscriptions[sub_id] = updated
    session = factory.checkout_session(cus, sub_id, client_reference_id=user_id)
    answers = [
        await client.send(factory.event("customer.subscription.updated", updated, created=t + 2)),
        await client.send(factory.event("checkout.session.completed", session, created=t + 1)),
        await client.send(factory.event("customer.subscription.created", created, created=t)),
    ]
    # The checkout only links (first link wins); the older state stays STALE.
    assert [a.outcome for a in answers] == [APPLIED, APPLIED, STALE]
    assert sub_id not in stripe_standin.fetches
    current = await client.subscription(user_id)
    assert (current.status, current.tier, current.stripe_customer_id) == (
        pb.SUBSCRIPTION_STATUS_ACTIVE,
        "pro",
        cus,
    )


async def test_an_untied_update_before_checkout_is_recovered_by_the_checkout(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    sub_id, cus = ids()
    t = factory.BASE_TIME
    updated = factory.subscription(sub_id, cus, "active")  # no user_id metadata
    stripe_standin.subscriptions[sub_id] = updated
    early = await client.send(
        factory.event("customer.subscription.updated", updated, created=t + 2)
    )
    assert early.outcome == IGNORED
    session = factory.checkout_session(cus, sub_id, client_reference_id=user_id)
    late = await client.send(factory.event("checkout.session.completed", session, created=t + 1))
    assert late.outcome == APPLIED
    # Its state was never stored, so this is when Stripe is asked.
    assert sub_id in stripe_standin.fetches
    current = await client.subscription(user_id)
    assert (current.status, current.tier) == (pb.SUBSCRIPTION_STATUS_ACTIVE, "pro")
    assert "fetched from Stripe" in (await client.audit(user_id))[0].detail


INVOICE_TYPES = ["invoice.paid", "invoice.payment_failed", "invoice.payment_action_required"]


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
@pytest.mark.parametrize("event_type", INVOICE_TYPES)
async def test_invoice_events_keep_the_invoice_and_leave_the_state_to_subscription_events(
    client: EventsClient,
    stripe_standin: StripeStandIn,
    user_id: str,
    event_type: str,
    legacy: bool,
) -> None:
    sub_id, cus = ids()
    obj = factory.subscription(sub_id, cus, "active", user_id=user_id, legacy=legacy)
    await client.send(factory.event("customer.subscription.created", obj, legacy=legacy))
    status = "paid" if event_type == "invoice.paid" else "open"
    inv = factory.invoice(cus, sub_id, legacy=legacy, status=status)
    answer = await client.send(factory.event(event_type, inv, legacy=legacy))
    assert answer.outcome == APPLIED, answer.reason
    assert answer.subscription.stripe_subscription_id == sub_id
    assert answer.subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE  # from the subscription
    assert sub_id not in stripe_standin.fetches
    [kept] = await client.invoices(user_id)
    assert (kept.stripe_invoice_id, kept.status, kept.stripe_subscription_id) == (
        inv["id"],
        status,
        sub_id,
    )
    # Invoices are not subscription changes: the subscription event's record only.
    assert [r.stripe_event_type for r in await client.audit(user_id)] == [
        "customer.subscription.created"
    ]


async def test_an_invoice_without_a_subscription_is_ignored(client: EventsClient) -> None:
    answer = await client.send(
        factory.event("invoice.paid", factory.invoice(factory.new_id("cus"), None))
    )
    assert answer.outcome == IGNORED
    assert "does not bill a subscription" in answer.reason


async def test_invoice_and_checkout_events_apply_while_stripe_is_down(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    sub_id, cus = ids()
    session = factory.checkout_session(cus, sub_id, client_reference_id=user_id)
    inv = factory.invoice(cus, sub_id, user_id=user_id)
    stripe_standin.down = True
    try:
        checkout = await client.send(factory.event("checkout.session.completed", session))
        paid = await client.send(factory.event("invoice.paid", inv))
    finally:
        stripe_standin.down = False
    assert (checkout.outcome, paid.outcome) == (APPLIED, APPLIED)
    assert sub_id not in stripe_standin.fetches
    assert [i.stripe_invoice_id for i in await client.invoices(user_id)] == [inv["id"]]


async def test_an_invoice_nothing_ties_asks_stripe_and_is_retried_when_stripe_was_unreachable(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    sub_id, cus = ids()
    stripe_standin.subscriptions[sub_id] = factory.subscription(
        sub_id, cus, "active", user_id=user_id
    )
    # Unknown subscription and customer, no metadata: only Stripe knows the user.
    ev = factory.event("invoice.paid", factory.invoice(cus, sub_id))
    stripe_standin.down = True
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.send(ev)
    finally:
        stripe_standin.down = False
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await client.invoices(user_id) == []
    retry = await client.send(ev)
    assert retry.outcome == APPLIED, retry.reason
    assert sub_id in stripe_standin.fetches
    assert [i.stripe_invoice_id for i in await client.invoices(user_id)] == [
        ev["data"]["object"]["id"]
    ]


async def test_list_audit_events_pages_newest_first(client: EventsClient, user_id: str) -> None:
    sub_id, cus = ids()
    t = factory.BASE_TIME
    sent = []
    for i, status in enumerate(["incomplete", "active", "past_due", "active", "canceled"]):
        obj = factory.subscription(sub_id, cus, status, user_id=user_id)
        ev = factory.event("customer.subscription.updated", obj, created=t + i)
        assert (await client.send(ev)).outcome == APPLIED
        sent.append(ev["id"])
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        request = pb.ListAuditEventsRequest(user_id=user_id, page_size=2, page_token=token)
        response = await client.stub.ListAuditEvents(request)
        assert len(response.events) <= 2
        seen.extend(r.stripe_event_id for r in response.events)
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert seen == sent[::-1]
    assert pages == 3
    records = await client.audit(user_id)
    assert [r.id for r in records] == sorted((r.id for r in records), reverse=True)
    assert all(len(r.hash) == 64 and r.created_at.seconds > 0 for r in records)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u", "page_size": -1}, "page_size"),
        ({"user_id": "u", "page_size": 501}, "page_size"),
        ({"user_id": "u", "page_token": "garbage!"}, "page_token"),
        ({"user_id": "u", "page_token": "YXVkaXQ6MA"}, "page_token"),  # "audit:0"
    ],
)
async def test_list_audit_events_rejects_bad_requests(
    client: EventsClient, request_fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.stub.ListAuditEvents(pb.ListAuditEventsRequest(**request_fields))  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(f"{field}:")


async def test_list_audit_events_defaults_to_fifty(client: EventsClient, user_id: str) -> None:
    response = await client.stub.ListAuditEvents(pb.ListAuditEventsRequest(user_id=user_id))
    assert list(response.events) == []
    assert response.next_page_token == ""
