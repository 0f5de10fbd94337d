"""Pure logic of kept invoices: reading both shapes, ordering, page tokens."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from billing_service.events.invoices import InvoiceWrite, decide_invoice, progress
from billing_service.stripe_shapes import invoice_snapshot
from tests.events import factory


def test_both_shapes_give_the_same_invoice() -> None:
    current = factory.invoice("cus_1", "sub_1", user_id="u1")
    legacy = factory.invoice("cus_1", "sub_1", legacy=True, user_id="u1")
    legacy["id"] = current["id"]
    assert invoice_snapshot(current) == invoice_snapshot(legacy)
    read = invoice_snapshot(current)
    assert (read.subscription_id, read.customer_id, read.currency) == ("sub_1", "cus_1", "usd")
    assert read.period_start is not None and read.next_payment_attempt is not None


def test_an_invoice_with_nulls_reads_as_empty() -> None:
    raw = factory.invoice("cus_1", "sub_1")
    raw.update(hosted_invoice_url=None, invoice_pdf=None, next_payment_attempt=None)
    read = invoice_snapshot(raw)
    assert (read.hosted_invoice_url, read.invoice_pdf, read.next_payment_attempt) == ("", "", None)


STATUSES = ["draft", "open", "paid", "void", "uncollectible"]


@given(
    stored=st.tuples(st.integers(0, 5), st.sampled_from(STATUSES), st.integers(0, 4)),
    incoming=st.tuples(st.integers(0, 5), st.sampled_from(STATUSES), st.integers(0, 4)),
)
def test_an_older_or_less_advanced_invoice_event_never_wins(
    stored: tuple[int, str, int], incoming: tuple[int, str, int]
) -> None:
    decision = decide_invoice(
        stored_created=stored[0],
        stored_progress=progress(stored[1], stored[2], 0),
        event_created=incoming[0],
        event_progress=progress(incoming[1], incoming[2], 0),
    )
    if incoming[0] < stored[0]:
        assert decision is InvoiceWrite.STALE
    elif incoming[0] > stored[0]:
        assert decision is InvoiceWrite.STORED
    else:
        expected = progress(incoming[1], incoming[2], 0) >= progress(stored[1], stored[2], 0)
        assert (decision is InvoiceWrite.STORED) == expected


def test_no_row_is_always_stored() -> None:
    assert (
        decide_invoice(
            stored_created=None,
            stored_progress=(0, 0, 0),
            event_created=1,
            event_progress=(0, 0, 0),
        )
        is InvoiceWrite.STORED
    )
