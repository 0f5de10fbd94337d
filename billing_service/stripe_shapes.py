"""Reads Stripe objects in every shape that still arrives.

Webhook payloads are rendered in the endpoint's API version, so both shapes
reach us: before 2025-03-31 a subscription carried ``current_period_start``
and ``current_period_end`` itself and an invoice named its ``subscription``
at the top level; since then the periods live on the subscription's items
and the invoice's subscription is under ``parent.subscription_details``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from billing_service.discounts import Discount, subscription_discount


def as_dict(obj: Any) -> dict[str, Any]:
    """A plain dict from a StripeObject (no longer a dict since stripe 8) or a mapping."""
    if isinstance(obj, Mapping):
        return dict(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, dict):
            return result
    raise TypeError(f"not a Stripe object: {type(obj).__name__}")


def object_id(value: Any) -> str:
    """The id of a reference that may be a bare id string or an expanded object."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("id")
        return inner if isinstance(inner, str) else ""
    return ""


def from_timestamp(value: Any) -> datetime | None:
    """A naive UTC datetime from Stripe's unix seconds (None for null)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)


def _metadata(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): str(v) for k, v in raw.items() if v is not None}


def _items(sub: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = sub.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    return [i for i in data if isinstance(i, Mapping)] if isinstance(data, list) else []


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """The parts of a Stripe subscription this service stores, shape-independent."""

    id: str
    customer_id: str
    status: str
    price_id: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    created: int
    metadata: dict[str, str] = field(default_factory=dict)
    # Issue 13: what a product page shows ("" / 0 / None when Stripe did not say).
    interval: str = ""
    quantity: int = 1
    unit_amount: int = 0
    currency: str = ""
    trial_end: datetime | None = None
    discount: Discount | None = None
    # True when the discount arrived as ids only (fetch with them expanded).
    discount_pending: bool = False


def subscription_snapshot(raw: Any) -> SubscriptionSnapshot:
    """Read a subscription in the current or the pre-2025-03-31 shape."""
    sub = as_dict(raw)
    items = _items(sub)
    first = items[0] if items else {}
    price = first.get("price") or first.get("plan") or {}
    # Current shape: periods per item; legacy shape: on the subscription itself.
    start = first.get("current_period_start", sub.get("current_period_start"))
    end = first.get("current_period_end", sub.get("current_period_end"))
    period_end = from_timestamp(end)
    cancel_at = sub.get("cancel_at")
    cancels_at_end = bool(sub.get("cancel_at_period_end")) or (
        cancel_at is not None and cancel_at == end and sub.get("status") != "canceled"
    )
    return SubscriptionSnapshot(
        id=str(sub.get("id", "")),
        customer_id=object_id(sub.get("customer")),
        status=str(sub.get("status", "")),
        price_id=object_id(price),
        current_period_start=from_timestamp(start),
        current_period_end=period_end,
        cancel_at_period_end=cancels_at_end,
        canceled_at=from_timestamp(sub.get("canceled_at")),
        created=int(sub.get("created") or 0),
        metadata=_metadata(sub.get("metadata")),
        **_offer(sub, first, price),
    )


def _offer(sub: Mapping[str, Any], item: Mapping[str, Any], price: Any) -> dict[str, Any]:
    """Interval, seats, amount, currency, trial end and discount, in either shape."""
    price = price if isinstance(price, Mapping) else {}
    recurring = price.get("recurring")
    # Current shape: price.recurring.interval; legacy plan objects: plan.interval.
    interval = recurring.get("interval") if isinstance(recurring, Mapping) else None
    amount = price.get("unit_amount", price.get("amount"))
    discount, pending = subscription_discount(sub)
    return {
        "interval": str(interval or price.get("interval") or ""),
        "quantity": int(item.get("quantity") or sub.get("quantity") or 1),
        "unit_amount": int(amount or 0),
        "currency": _currency(sub.get("currency"), price.get("currency")),
        "trial_end": from_timestamp(sub.get("trial_end")),
        "discount": discount,
        "discount_pending": pending,
    }


def _currency(*candidates: Any) -> str:
    """The first ISO currency code (three letters) among ``candidates``; "" when none is."""
    for value in candidates:
        if isinstance(value, str) and len(value) == 3 and value.isalpha():
            return value.lower()
    return ""


def invoice_subscription_id(raw: Any) -> str:
    """The subscription an invoice bills, in either shape ("" when none)."""
    invoice = as_dict(raw)
    parent = invoice.get("parent")
    if isinstance(parent, Mapping):
        details = parent.get("subscription_details")
        if isinstance(details, Mapping):
            found = object_id(details.get("subscription"))
            if found:
                return found
    return object_id(invoice.get("subscription"))


def invoice_subscription_metadata(raw: Any) -> dict[str, str]:
    """Metadata of the invoice's subscription as copied onto the invoice, if any."""
    invoice = as_dict(raw)
    parent = invoice.get("parent")
    if isinstance(parent, Mapping):
        details = parent.get("subscription_details")
        if isinstance(details, Mapping):
            return _metadata(details.get("metadata"))
    details = invoice.get("subscription_details")
    if isinstance(details, Mapping):
        return _metadata(details.get("metadata"))
    return {}


@dataclass(frozen=True)
class InvoiceSnapshot:
    """The parts of a Stripe invoice this service keeps, shape-independent."""

    id: str
    customer_id: str
    subscription_id: str
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
    created: int


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def invoice_snapshot(raw: Any) -> InvoiceSnapshot:
    """Read an invoice in the current or the pre-2025-03-31 shape."""
    invoice = as_dict(raw)
    return InvoiceSnapshot(
        id=_str(invoice.get("id")),
        customer_id=object_id(invoice.get("customer")),
        subscription_id=invoice_subscription_id(invoice),
        status=_str(invoice.get("status")),
        amount_due=_int(invoice.get("amount_due")),
        amount_paid=_int(invoice.get("amount_paid")),
        currency=_str(invoice.get("currency")),
        hosted_invoice_url=_str(invoice.get("hosted_invoice_url")),
        invoice_pdf=_str(invoice.get("invoice_pdf")),
        period_start=from_timestamp(invoice.get("period_start")),
        period_end=from_timestamp(invoice.get("period_end")),
        attempt_count=_int(invoice.get("attempt_count")),
        next_payment_attempt=from_timestamp(invoice.get("next_payment_attempt")),
        created=_int(invoice.get("created")),
    )
