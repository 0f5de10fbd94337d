"""Invoices kept from invoice events and served by ListInvoices (gRPC, SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from generated.billing.v1 import billing_pb2 as pb
from tests.events import factory
from tests.events.conftest import EventsClient
from tests.events.stripe_standin import StripeStandIn

APPLIED = pb.EVENT_OUTCOME_APPLIED
DUPLICATE = pb.EVENT_OUTCOME_DUPLICATE
STALE = pb.EVENT_OUTCOME_STALE
T = factory.BASE_TIME


def paid_invoice(cus: str, sub_id: str, user_id: str, *, legacy: bool = False) -> dict[str, Any]:
    """A finalized, paid invoice with every kept field set to a distinct value."""
    inv = factory.invoice(cus, sub_id, legacy=legacy, user_id=user_id, status="paid")
    inv.update(
        amount_due=2500,
        amount_paid=2500,
        currency="eur",
        hosted_invoice_url=f"https://invoice.stripe.com/i/{inv['id']}",
        invoice_pdf=f"https://pay.stripe.com/invoice/{inv['id']}/pdf",
        period_start=T - 30 * 86400,
        period_end=T,
        attempt_count=1,
        next_payment_attempt=None,
        created=T - 5,
    )
    return inv


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
async def test_an_invoice_event_keeps_every_field(
    client: EventsClient, stripe_standin: StripeStandIn, user_id: str, legacy: bool
) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    inv = paid_invoice(cus, sub_id, user_id, legacy=legacy)
    answer = await client.send(factory.event("invoice.paid", inv, legacy=legacy))
    assert answer.outcome == APPLIED, answer.reason
    assert sub_id not in stripe_standin.fetches  # the invoice's metadata ties the user
    [kept] = await client.invoices(user_id)
    assert kept.stripe_invoice_id == inv["id"]
    assert (kept.user_id, kept.stripe_customer_id, kept.stripe_subscription_id) == (
        user_id,
        cus,
        sub_id,
    )
    assert (kept.status, kept.amount_due, kept.amount_paid, kept.currency) == (
        "paid",
        2500,
        2500,
        "eur",
    )
    assert kept.hosted_invoice_url == inv["hosted_invoice_url"]
    assert kept.invoice_pdf == inv["invoice_pdf"]
    assert (kept.period_start.seconds, kept.period_end.seconds) == (T - 30 * 86400, T)
    assert kept.attempt_count == 1
    assert not kept.HasField("next_payment_attempt")
    assert kept.created.seconds == T - 5


async def test_an_older_invoice_event_never_overwrites_a_newer_one(
    client: EventsClient, user_id: str
) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    paid = paid_invoice(cus, sub_id, user_id)
    failed = dict(paid, status="open", amount_paid=0, next_payment_attempt=T + 86400)
    newer = await client.send(factory.event("invoice.paid", paid, created=T + 10))
    older = await client.send(factory.event("invoice.payment_failed", failed, created=T + 5))
    assert (newer.outcome, older.outcome) == (APPLIED, STALE)
    assert "newer event" in older.reason
    [kept] = await client.invoices(user_id)
    assert (kept.status, kept.amount_paid) == ("paid", 2500)


@pytest.mark.parametrize("paid_first", [True, False])
async def test_in_the_same_second_the_further_along_invoice_wins(
    client: EventsClient, user_id: str, paid_first: bool
) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    paid = paid_invoice(cus, sub_id, user_id)
    finalized = dict(paid, status="open", amount_paid=0, attempt_count=0)
    events = [
        factory.event("invoice.paid", paid, created=T),
        factory.event("invoice.finalized", finalized, created=T),
    ]
    for ev in events if paid_first else events[::-1]:
        await client.send(ev)
    [kept] = await client.invoices(user_id)
    assert (kept.status, kept.amount_paid) == ("paid", 2500)


async def test_a_redelivered_invoice_event_is_a_duplicate(
    client: EventsClient, user_id: str
) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    ev = factory.event("invoice.paid", paid_invoice(cus, sub_id, user_id))
    assert (await client.send(ev)).outcome == APPLIED
    again = await client.send(ev)
    assert again.outcome == DUPLICATE
    assert len(await client.invoices(user_id)) == 1


async def test_list_invoices_pages_newest_first(client: EventsClient, user_id: str) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    sent = []
    # Two invoices share a creation second: the id breaks the tie, pages stay stable.
    for created in (T - 300, T - 200, T - 200, T - 100, T):
        inv = paid_invoice(cus, sub_id, user_id)
        inv["created"] = created
        assert (await client.send(factory.event("invoice.paid", inv))).outcome == APPLIED
        sent.append(inv["id"])
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        request = pb.ListInvoicesRequest(user_id=user_id, page_size=2, page_token=token)
        response = await client.stub.ListInvoices(request)
        assert len(response.invoices) <= 2
        seen.extend(i.stripe_invoice_id for i in response.invoices)
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == [sent[4], sent[3], sent[2], sent[1], sent[0]]
    other = await client.stub.ListInvoices(pb.ListInvoicesRequest(user_id=user_id + "-other"))
    assert list(other.invoices) == []
    assert other.next_page_token == ""


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u", "page_size": -1}, "page_size"),
        ({"user_id": "u", "page_size": 501}, "page_size"),
        ({"user_id": "u", "page_token": "garbage!"}, "page_token"),
        ({"user_id": "u", "page_token": "YXVkaXQ6MQ"}, "page_token"),  # "audit:1"
        ({"user_id": "u", "page_token": "aW52b2ljZTox"}, "page_token"),  # "invoice:1"
    ],
)
async def test_list_invoices_rejects_bad_requests(
    client: EventsClient, request_fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.stub.ListInvoices(pb.ListInvoicesRequest(**request_fields))  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(f"{field}:")
