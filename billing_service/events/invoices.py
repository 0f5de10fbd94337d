"""Invoice events -> the kept invoice rows: the ordering rule and the ordered write.

Invoices are ordered like subscriptions: the event's ``created`` decides,
and an older event never overwrites a newer one. Within one second (Stripe's
clock has whole seconds) an invoice only moves forward -- draft, open, then
paid/void/uncollectible, with more attempts and more paid -- so the
further-along state wins without asking Stripe.
"""

from __future__ import annotations

from enum import StrEnum

from billing_service.storage import invoices
from billing_service.stripe_shapes import InvoiceSnapshot

_STATUS_RANK = {"draft": 0, "open": 1, "paid": 2, "void": 2, "uncollectible": 2}


class InvoiceWrite(StrEnum):
    """What an invoice event did to the stored invoice."""

    STORED = "stored"
    STALE = "stale"


def progress(status: str, attempt_count: int, amount_paid: int) -> tuple[int, int, int]:
    """How far along an invoice is; within one second the larger one is the later state."""
    return (_STATUS_RANK.get(status, 0), attempt_count, amount_paid)


def decide_invoice(
    *,
    stored_created: int | None,
    stored_progress: tuple[int, int, int],
    event_created: int,
    event_progress: tuple[int, int, int],
) -> InvoiceWrite:
    """STORED when the event may write over the stored invoice (None: no row), else STALE."""
    if stored_created is None or event_created > stored_created:
        return InvoiceWrite.STORED
    if event_created < stored_created or event_progress < stored_progress:
        return InvoiceWrite.STALE
    return InvoiceWrite.STORED


def store_invoice(
    invoice: InvoiceSnapshot, user_id: str, *, event_created: int, event_id: str
) -> InvoiceWrite:
    """Store ``invoice`` for ``user_id`` unless a newer event already did; call in a transaction.

    The caller holds the subscription's lock, so the read and the write see each other.
    """
    row = invoices.invoice_by_stripe_id(invoice.id)
    decision = decide_invoice(
        stored_created=int(row.last_event_created) if row is not None else None,
        stored_progress=(
            progress(str(row.status), int(row.attempt_count), int(row.amount_paid))
            if row is not None
            else (0, 0, 0)
        ),
        event_created=event_created,
        event_progress=progress(invoice.status, invoice.attempt_count, invoice.amount_paid),
    )
    if decision is InvoiceWrite.STALE:
        return decision
    invoices.write_invoice(
        invoices.InvoiceValues(
            stripe_invoice_id=invoice.id,
            # A tie never moves: the first user stays the invoice's user.
            user_id=str(row.user_id) if row is not None else user_id,
            stripe_customer_id=invoice.customer_id,
            stripe_subscription_id=invoice.subscription_id,
            status=invoice.status,
            amount_due=invoice.amount_due,
            amount_paid=invoice.amount_paid,
            currency=invoice.currency,
            hosted_invoice_url=invoice.hosted_invoice_url,
            invoice_pdf=invoice.invoice_pdf,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            attempt_count=invoice.attempt_count,
            next_payment_attempt=invoice.next_payment_attempt,
            stripe_created=invoice.created,
        ),
        event_created=event_created,
        event_id=event_id,
    )
    return decision
