"""ApplyStripeEvents over gRPC against a real server: each event as ApplyStripeEvent would."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from billing_client.names import MAX_EVENTS_PER_APPLY
from generated.billing.v1 import billing_pb2 as pb
from tests.events import factory
from tests.events.conftest import EventsClient
from tests.events.stripe_standin import StripeStandIn


def _request(*payloads: bytes) -> pb.ApplyStripeEventsRequest:
    return pb.ApplyStripeEventsRequest(
        events=[pb.ApplyStripeEventRequest(payload=payload) for payload in payloads]
    )


def _subscription_event(user_id: str, status: str, created: int, **kw: Any) -> dict[str, Any]:
    sub_id, cus = kw.pop("ids", None) or (factory.new_id("sub"), factory.new_id("cus"))
    obj = factory.subscription(sub_id, cus, status, user_id=user_id)
    kind = kw.pop("kind", "customer.subscription.updated")
    return factory.event(kind, obj, created=created)


async def test_each_event_gets_its_own_result_in_request_order(
    client: EventsClient, user_id: str
) -> None:
    first = _subscription_event(user_id, "active", factory.BASE_TIME)
    other_user = factory.new_id("user")
    other = _subscription_event(other_user, "past_due", factory.BASE_TIME)
    answer = await client.stub.ApplyStripeEvents(
        _request(
            factory.payload(first),
            b"{not json",
            factory.payload(other),
            factory.payload(first),  # the same event again, in the same call
        )
    )
    once, refused, applied, again = answer.results
    # The bad payload fails alone, with ApplyStripeEvent's status and its field named.
    assert refused.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert refused.error_message.startswith("payload")
    assert not refused.HasField("response")
    assert applied.error_code == 0
    assert applied.response.outcome == pb.EVENT_OUTCOME_APPLIED
    assert applied.response.event_id == other["id"]
    assert applied.response.subscription.user_id == other_user
    # The two copies run concurrently: either may be the one applied, never both.
    assert {once.response.outcome, again.response.outcome} == {
        pb.EVENT_OUTCOME_APPLIED,
        pb.EVENT_OUTCOME_DUPLICATE,
    }
    assert once.response.event_id == again.response.event_id == first["id"]
    assert (await client.subscription(user_id)).status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert (await client.subscription(other_user)).status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    causes = [record.stripe_event_id for record in await client.audit(user_id)]
    assert causes == [first["id"]]  # one record: applied once


async def test_a_batch_answers_as_the_single_calls_would(client: EventsClient) -> None:
    users = [factory.new_id("user") for _ in range(6)]
    events = [
        _subscription_event(user, "active", factory.BASE_TIME, kind="customer.subscription.created")
        for user in users
    ]
    answer = await client.stub.ApplyStripeEvents(_request(*(factory.payload(ev) for ev in events)))
    assert [r.response.event_id for r in answer.results] == [ev["id"] for ev in events]
    assert {r.response.outcome for r in answer.results} == {pb.EVENT_OUTCOME_APPLIED}
    for ev in events:  # the single call now answers each as done
        single = await client.send(ev)
        assert single.outcome == pb.EVENT_OUTCOME_DUPLICATE


@pytest.mark.parametrize(
    "view",
    [pb.EVENT_RESULT_VIEW_UNSPECIFIED, pb.EVENT_RESULT_VIEW_FULL, pb.EVENT_RESULT_VIEW_BASIC],
    ids=["unspecified", "full", "basic"],
)
async def test_the_basic_view_answers_without_the_subscription(
    client: EventsClient, user_id: str, view: pb.EventResultView
) -> None:
    applied = _subscription_event(user_id, "active", factory.BASE_TIME)
    request = _request(factory.payload(applied), factory.payload(applied))
    request.view = view
    answer = await client.stub.ApplyStripeEvents(request)
    outcomes = {r.response.outcome for r in answer.results}
    assert outcomes == {pb.EVENT_OUTCOME_APPLIED, pb.EVENT_OUTCOME_DUPLICATE}
    for result in answer.results:
        assert result.response.event_id == applied["id"]
        # Every other view answers whole, as before the view existed.
        assert result.response.HasField("subscription") is (view != pb.EVENT_RESULT_VIEW_BASIC)
    assert (await client.subscription(user_id)).status == pb.SUBSCRIPTION_STATUS_ACTIVE


async def test_an_empty_call_answers_no_results(client: EventsClient) -> None:
    answer = await client.stub.ApplyStripeEvents(pb.ApplyStripeEventsRequest())
    assert list(answer.results) == []


async def test_more_events_than_allowed_is_refused_whole(
    client: EventsClient, user_id: str
) -> None:
    ev = _subscription_event(user_id, "active", factory.BASE_TIME)
    too_many = [factory.payload(ev)] * (MAX_EVENTS_PER_APPLY + 1)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.stub.ApplyStripeEvents(_request(*too_many))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith("events: at most 64")
    # Nothing of the refused call was applied.
    assert (await client.send(ev)).outcome == pb.EVENT_OUTCOME_APPLIED


async def test_a_slow_event_does_not_cost_the_others_their_answers(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str
) -> None:
    # A same-second conflict asks Stripe, which hangs; the other event is answered.
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    active = factory.subscription(sub_id, cus, "active", user_id=user_id)
    stripe_standin.subscriptions[sub_id] = active | {"status": "past_due"}
    first = await client.send(
        factory.event("customer.subscription.updated", active, created=factory.BASE_TIME)
    )
    assert first.outcome == pb.EVENT_OUTCOME_APPLIED
    conflict = factory.event(
        "customer.subscription.updated", active | {"status": "unpaid"}, created=factory.BASE_TIME
    )
    other = _subscription_event(factory.new_id("user"), "active", factory.BASE_TIME)
    stripe_standin.delay = 5.0
    try:
        answer = await client.stub.ApplyStripeEvents(
            _request(factory.payload(conflict), factory.payload(other)), timeout=2
        )
    finally:
        stripe_standin.delay = 0.0
    slow, done = answer.results
    assert slow.error_code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0], slow.error_message
    assert done.response.outcome == pb.EVENT_OUTCOME_APPLIED
    assert done.response.event_id == other["id"]
    # Stripe's retry of the slow one, once Stripe answers again.
    retried = await client.send(conflict)
    assert retried.outcome == pb.EVENT_OUTCOME_APPLIED
    assert retried.subscription.status == pb.SUBSCRIPTION_STATUS_PAST_DUE
