"""The invoice rows kept from invoice events: read one, write one, a user's newest first.

Which event may write over a stored invoice is the event path's rule
(``events/invoices.py``); this module only reads and writes rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from billing_service.storage import fixed_invoice_sql
from billing_service.storage.models import Invoice, utcnow


@dataclass(frozen=True)
class InvoiceValues:
    """The column values of one invoice row, as the event path decided them."""

    stripe_invoice_id: str
    user_id: str
    stripe_customer_id: str
    stripe_subscription_id: str
    status: str
    amount_due: int
    amount_paid: int
    currency: str
    hosted_invoice_url: str
    invoice_pdf: str
    period_start: datetime | None
    period_end: datetime | None
    attempt_count: int
    next_payment_attempt: datetime | None
    stripe_created: int


_ROW_COLUMNS = tuple(field.name for field in dataclasses.fields(InvoiceValues))


def invoice_by_stripe_id(stripe_invoice_id: str) -> Invoice | None:
    """The stored row for a Stripe invoice id, if any."""
    return fixed_invoice_sql.invoice_by_stripe_id(stripe_invoice_id)


def write_invoice(row: InvoiceValues, *, event_created: int, event_id: str) -> None:
    """Insert or update the row of ``row.stripe_invoice_id``, recording the event that set it."""
    values = {name: getattr(row, name) for name in _ROW_COLUMNS}
    values.update(last_event_created=event_created, last_event_id=event_id, updated_at=utcnow())
    fixed_invoice_sql.upsert_invoice(values)


def user_of_invoice(stripe_invoice_id: str) -> str:
    """The user a stored invoice belongs to ("" when we hold no such invoice)."""
    row = invoice_by_stripe_id(stripe_invoice_id)
    return str(row.user_id) if row is not None else ""


def invoices_for_user(user_id: str, after: tuple[int, int] | None, limit: int) -> list[Invoice]:
    """Up to ``limit`` of the user's invoices after the cursor ``after``, newest first."""
    query = Invoice.select().where(Invoice.user_id == user_id)
    if after is not None:
        created, last_id = after
        query = query.where(
            (Invoice.stripe_created < created)
            | ((Invoice.stripe_created == created) & (Invoice.id < last_id))
        )
    return list(query.order_by(Invoice.stripe_created.desc(), Invoice.id.desc()).limit(limit))
