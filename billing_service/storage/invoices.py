"""The invoice rows kept from invoice events: ordered upsert and the newest-first pages.

Invoices are ordered like subscriptions: the event's ``created`` decides,
and an older event never overwrites a newer one. Within one second (Stripe's
clock has whole seconds) an invoice only moves forward -- draft, open, then
paid/void/uncollectible, with more attempts and more paid -- so the
further-along state wins without asking Stripe.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum

from billing_service.errors import InvalidArgument
from billing_service.storage.models import Invoice, utcnow
from billing_service.stripe_shapes import InvoiceSnapshot

_STATUS_RANK = {"draft": 0, "open": 1, "paid": 2, "void": 2, "uncollectible": 2}
_CURSOR_PREFIX = "invoice:"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


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


def upsert_invoice(
    invoice: InvoiceSnapshot, user_id: str, *, event_created: int, event_id: str
) -> InvoiceWrite:
    """Store ``invoice`` for ``user_id`` unless a newer event already did; call in a transaction.

    The caller holds the subscription's lock, so the read and the write see each other.
    """
    row = Invoice.get_or_none(Invoice.stripe_invoice_id == invoice.id)
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
    values = {
        # A tie never moves: the first user stays the invoice's user.
        Invoice.user_id: str(row.user_id) if row is not None else user_id,
        Invoice.stripe_customer_id: invoice.customer_id,
        Invoice.stripe_subscription_id: invoice.subscription_id,
        Invoice.status: invoice.status,
        Invoice.amount_due: invoice.amount_due,
        Invoice.amount_paid: invoice.amount_paid,
        Invoice.currency: invoice.currency,
        Invoice.hosted_invoice_url: invoice.hosted_invoice_url,
        Invoice.invoice_pdf: invoice.invoice_pdf,
        Invoice.period_start: invoice.period_start,
        Invoice.period_end: invoice.period_end,
        Invoice.attempt_count: invoice.attempt_count,
        Invoice.next_payment_attempt: invoice.next_payment_attempt,
        Invoice.stripe_created: invoice.created,
        Invoice.last_event_created: event_created,
        Invoice.last_event_id: event_id,
        Invoice.updated_at: utcnow(),
    }
    Invoice.insert({**values, Invoice.stripe_invoice_id: invoice.id}).on_conflict(
        conflict_target=[Invoice.stripe_invoice_id], update=values
    ).execute()
    return decision


def user_of_invoice(stripe_invoice_id: str) -> str:
    """The user a stored invoice belongs to ("" when we hold no such invoice)."""
    row = Invoice.get_or_none(Invoice.stripe_invoice_id == stripe_invoice_id)
    return str(row.user_id) if row is not None else ""


def page_size(requested: int) -> int:
    """The page size for ``requested`` (0 means the default)."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    return requested


def encode_page_token(row: Invoice) -> str:
    """An opaque token for the page after ``row``."""
    raw = f"{_CURSOR_PREFIX}{int(row.stripe_created)}:{int(row.id)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[int, int] | None:
    """(created, id) of the last invoice of the previous page; None for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        created, last_id = (int(part) for part in raw.removeprefix(_CURSOR_PREFIX).split(":"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidArgument("page_token", "is not a token from a previous response") from None
    if created < 0 or last_id <= 0:
        raise InvalidArgument("page_token", "is not a token from a previous response")
    return created, last_id


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
