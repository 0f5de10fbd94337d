"""Tying checkout and invoice events inside the apply (resolve.tie_payload_in_apply)."""

from __future__ import annotations

import pytest

from billing_service.events.known import Known
from billing_service.events.resolve import (
    UNTIED_CHECKOUT,
    NeedsStripeTieError,
    Resolution,
    tie_payload_in_apply,
)
from billing_service.stripe_shapes import InvoiceSnapshot

INVOICE = InvoiceSnapshot(
    id="in_1",
    customer_id="cus_1",
    subscription_id="sub_1",
    status="paid",
    amount_due=1000,
    amount_paid=1000,
    currency="usd",
    hosted_invoice_url="",
    invoice_pdf="",
    period_start=None,
    period_end=None,
    attempt_count=1,
    next_payment_attempt=None,
    created=1,
)


def _invoice_event(hint: str = "") -> Resolution:
    return Resolution(
        customer_id="cus_1",
        subscription_id="sub_1",
        invoice=INVOICE,
        tie_in_apply=True,
        user_hint=hint,
    )


def _checkout_event(hint: str = "") -> Resolution:
    return Resolution(
        customer_id="cus_1", subscription_id="sub_1", tie_in_apply=True, user_hint=hint
    )


@pytest.mark.parametrize(
    ("known", "hint", "user"),
    [
        (Known("row-user", "customer-user", "invoice-user"), "hint-user", "invoice-user"),
        (Known("row-user", "customer-user"), "hint-user", "row-user"),
        (Known("", "customer-user"), "hint-user", "hint-user"),
        (Known("", "customer-user"), "", "customer-user"),
        (Known("", "customer-user"), "not a user id!", "customer-user"),
    ],
)
def test_an_invoice_is_tied_by_what_is_known_first_then_its_payload(
    known: Known, hint: str, user: str
) -> None:
    tied = tie_payload_in_apply(_invoice_event(hint), known)
    assert (tied.user_id, tied.tied, tied.tie_in_apply) == (user, True, False)
    assert tied.customer_linked == bool(known.customer_user)
    assert tied.invoice == INVOICE


def test_an_invoice_nothing_ties_needs_stripe() -> None:
    with pytest.raises(NeedsStripeTieError):
        tie_payload_in_apply(_invoice_event(), Known("", ""))


@pytest.mark.parametrize(
    ("known", "hint", "user"),
    [
        (Known("row-user", "customer-user"), "hint-user", "row-user"),
        (Known("", "customer-user"), "hint-user", "hint-user"),
        (Known("", "customer-user"), "", "customer-user"),
    ],
)
def test_a_checkout_is_tied_by_its_row_then_its_payload_then_its_customer(
    known: Known, hint: str, user: str
) -> None:
    tied = tie_payload_in_apply(_checkout_event(hint), known)
    assert (tied.user_id, tied.tied, tied.snapshot) == (user, True, None)


def test_a_checkout_nothing_ties_is_ignored_with_the_reason() -> None:
    untied = tie_payload_in_apply(_checkout_event(), Known("", ""))
    assert not untied.tied
    assert untied.reason == UNTIED_CHECKOUT


def test_a_checkout_of_a_subscription_whose_events_were_ignored_needs_stripe() -> None:
    # Its state was never stored: only Stripe has it, even when the payload names the user.
    with pytest.raises(NeedsStripeTieError):
        tie_payload_in_apply(_checkout_event("hint-user"), Known("", "", ignored_before=True))
