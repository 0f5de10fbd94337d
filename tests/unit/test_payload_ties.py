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
from billing_service.stripe_shapes import invoice_snapshot

INVOICE = invoice_snapshot(
    {"id": "in_1", "customer": "cus_1", "subscription": "sub_1", "status": "paid"}
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
    ("kind", "known", "hint", "user"),
    [
        # An invoice: its stored row's user, the subscription's, the payload's, the customer's.
        (
            "invoice",
            Known("row-user", "customer-user", "invoice-user"),
            "hint-user",
            "invoice-user",
        ),
        ("invoice", Known("row-user", "customer-user"), "hint-user", "row-user"),
        ("invoice", Known("", "customer-user"), "hint-user", "hint-user"),
        ("invoice", Known("", "customer-user"), "", "customer-user"),
        ("invoice", Known("", "customer-user"), "not a user id!", "customer-user"),
        # A checkout: its subscription's user, the payload's, the customer's.
        ("checkout", Known("row-user", "customer-user"), "hint-user", "row-user"),
        ("checkout", Known("", "customer-user"), "hint-user", "hint-user"),
        ("checkout", Known("", "customer-user"), "", "customer-user"),
    ],
)
def test_an_event_is_tied_by_what_is_known_first_then_its_payload(
    kind: str, known: Known, hint: str, user: str
) -> None:
    event = _invoice_event(hint) if kind == "invoice" else _checkout_event(hint)
    tied = tie_payload_in_apply(event, known)
    assert (tied.user_id, tied.tied, tied.tie_in_apply) == (user, True, False)
    assert tied.customer_linked == bool(known.customer_user)
    assert tied.invoice == (INVOICE if kind == "invoice" else None)
    assert tied.snapshot is None


def test_an_invoice_nothing_ties_needs_stripe() -> None:
    with pytest.raises(NeedsStripeTieError):
        tie_payload_in_apply(_invoice_event(), Known("", ""))


def test_a_checkout_nothing_ties_is_ignored_with_the_reason() -> None:
    untied = tie_payload_in_apply(_checkout_event(), Known("", ""))
    assert not untied.tied
    assert untied.reason == UNTIED_CHECKOUT


def test_a_checkout_of_a_subscription_whose_events_were_ignored_needs_stripe() -> None:
    # Its state was never stored: only Stripe has it, even when the payload names the user.
    with pytest.raises(NeedsStripeTieError):
        tie_payload_in_apply(_checkout_event("hint-user"), Known("", "", ignored_before=True))
