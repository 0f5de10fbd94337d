"""Checks an event's content before anything is written: what can never succeed is refused.

A signed event whose content could never be applied (an id no database
column holds, a timestamp no datetime holds, a string where we read a number,
a NUL that PostgreSQL refuses) must be refused as INVALID_ARGUMENT, so the
gateway dead-letters it and Stripe stops retrying, instead of failing on
every retry for three days. Only the fields this service reads are judged:

* ids are Stripe-shaped: their prefix (``sub_``, ``cus_``), then letters,
  digits, ``_`` and ``-``, at most 255 characters in all (the width of our
  columns); ``-`` is not in Stripe's own ids but harmless, and refusing a
  real event costs a customer their access, so the rule stays loose there;
  price and legacy plan ids may be chosen by the account, so they only need
  to be 1-255 printable characters;
* timestamps are integers with ``0 <= t < 2**32`` (up to the year 2106:
  every datetime and BIGINT column holds them); the envelope's ``created``
  must be at least 1;
* no string anywhere in a handled event's object holds a NUL character;
* a field we read has the JSON type Stripe documents (or is null/absent);
* numbers we store fit their columns: amounts within a signed 63-bit range,
  seats and attempt counts within 32 bits; an invoice's currency is at most
  8 characters and its status at most 32, an interval at most 8 (Stripe's
  are shorter still).

Unhandled event types are only parsed for their envelope: their object is
never read, so it is not judged either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from billing_service.errors import InvalidArgument

MAX_ID_LENGTH = 255
MAX_TIMESTAMP = 1 << 32
_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")
_OBJECT_TIMESTAMPS = ("created", "current_period_start", "current_period_end")
_SUBSCRIPTION_TIMESTAMPS = (*_OBJECT_TIMESTAMPS, "cancel_at", "canceled_at", "trial_end")
_INVOICE_TIMESTAMPS = ("created", "period_start", "period_end", "next_payment_attempt")
MAX_AMOUNT = 1 << 62
MAX_COUNT = 1 << 31


def _bad(where: str, problem: str) -> InvalidArgument:
    return InvalidArgument("payload", f"{where} {problem}")


def timestamp(value: Any, where: str, *, minimum: int = 0) -> None:
    """Accept null/absent or an integer unix time in [minimum, 2**32)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(where, "is not an integer unix timestamp")
    if not minimum <= value < MAX_TIMESTAMP:
        raise _bad(where, f"is out of range ({minimum} <= t < 2^32)")


def stripe_id(value: str, prefix: str, where: str) -> None:
    """Refuse an id that is not ``prefix`` + letters/digits/_/- within 255 characters."""
    if len(value) > MAX_ID_LENGTH:
        raise _bad(where, f"is longer than {MAX_ID_LENGTH} characters")
    rest = value.removeprefix(prefix)
    if rest == value or not _ID_CHARS.fullmatch(rest):
        raise _bad(where, f"is not a Stripe id ({prefix}...)")


def _reference(value: Any, prefix: str, where: str) -> None:
    """A reference: null, a bare id, or an expanded object with that id."""
    if value is None:
        return
    if isinstance(value, Mapping):
        value = value.get("id")
        where = f"{where}.id"
    if not isinstance(value, str):
        raise _bad(where, "is not an id string or object")
    stripe_id(value, prefix, where)


def _free_id(value: Any, where: str) -> None:
    """Price/plan ids are chosen by the account: 1-255 printable characters."""
    if value is None:
        return
    if isinstance(value, Mapping):
        value = value.get("id")
        where = f"{where}.id"
    if value is None:
        return
    if not isinstance(value, str) or not _PRINTABLE.fullmatch(value) or len(value) > 255:
        raise _bad(where, "is not a price id (1-255 printable characters)")


def _typed(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> None:
    value = obj.get(name)
    if value is not None and not isinstance(value, kind):
        raise _bad(f"{where}.{name}", "has the wrong JSON type")


def _integer(value: Any, where: str, low: int, high: int) -> None:
    """Accept null/absent or an integer in [low, high)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(where, "is not an integer")
    if not low <= value < high:
        raise _bad(where, f"is out of range ({low} <= n < {high})")


def _short_text(value: Any, where: str, longest: int) -> None:
    """Accept null/absent or a string of at most ``longest`` characters."""
    if value is None:
        return
    if not isinstance(value, str):
        raise _bad(where, "is not a string")
    if len(value) > longest:
        raise _bad(where, f"is longer than {longest} characters")


def _price(price: Any, where: str) -> None:
    """An expanded price (or legacy plan): amount, currency and interval fit their columns."""
    if not isinstance(price, Mapping):
        return
    for name in ("unit_amount", "amount"):
        _integer(price.get(name), f"{where}.{name}", -MAX_AMOUNT, MAX_AMOUNT)
    _short_text(price.get("interval"), f"{where}.interval", 8)
    _typed(price, "recurring", Mapping, where)
    recurring = price.get("recurring")
    if isinstance(recurring, Mapping):
        _short_text(recurring.get("interval"), f"{where}.recurring.interval", 8)


def _discount(discount: Any, where: str) -> None:
    """A discount: its end and its coupon's amounts are numbers."""
    if not isinstance(discount, Mapping):
        return
    timestamp(discount.get("end"), f"{where}.end")
    coupons = [discount.get("coupon")]
    source = discount.get("source")
    if isinstance(source, Mapping):
        coupons.append(source.get("coupon"))
    for coupon in coupons:
        if not isinstance(coupon, Mapping):
            continue
        percent = coupon.get("percent_off")
        if percent is not None and (
            isinstance(percent, bool) or not isinstance(percent, int | float) or percent != percent
        ):
            raise _bad(f"{where}.coupon.percent_off", "is not a number")
        _integer(coupon.get("amount_off"), f"{where}.coupon.amount_off", 0, MAX_AMOUNT)


def no_nul(value: Any, where: str) -> None:
    """Refuse a NUL character in any string (key or value) inside ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _bad(where, "contains a NUL character")
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _subscription(sub: Mapping[str, Any], where: str) -> None:
    if sub.get("id") is not None:
        if not isinstance(sub["id"], str):
            raise _bad(f"{where}.id", "is not a string")
        stripe_id(sub["id"], "sub_", f"{where}.id")
    _reference(sub.get("customer"), "cus_", f"{where}.customer")
    for name in _SUBSCRIPTION_TIMESTAMPS:
        timestamp(sub.get(name), f"{where}.{name}")
    _typed(sub, "status", str, where)
    _typed(sub, "cancel_at_period_end", bool, where)
    _integer(sub.get("quantity"), f"{where}.quantity", 0, MAX_COUNT)
    _typed(sub, "currency", str, where)
    _price(sub.get("plan"), f"{where}.plan")
    _discount(sub.get("discount"), f"{where}.discount")
    listed = sub.get("discounts")
    if isinstance(listed, list):
        for index, discount in enumerate(listed):
            _discount(discount, f"{where}.discounts[{index}]")
    _typed(sub, "metadata", Mapping, where)
    _typed(sub, "items", Mapping, where)
    items = sub.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    if data is None:
        return
    if not isinstance(data, list):
        raise _bad(f"{where}.items.data", "is not a list")
    for index, item in enumerate(data):
        at = f"{where}.items.data[{index}]"
        if not isinstance(item, Mapping):
            raise _bad(at, "is not an object")
        for name in _OBJECT_TIMESTAMPS:
            timestamp(item.get(name), f"{at}.{name}")
        _free_id(item.get("price"), f"{at}.price")
        _free_id(item.get("plan"), f"{at}.plan")
        _integer(item.get("quantity"), f"{at}.quantity", 0, MAX_COUNT)
        _price(item.get("price"), f"{at}.price")
        _price(item.get("plan"), f"{at}.plan")


def _invoice(invoice: Mapping[str, Any], where: str) -> None:
    if isinstance(invoice.get("id"), str):
        stripe_id(invoice["id"], "in_", f"{where}.id")
    for name in _INVOICE_TIMESTAMPS:
        timestamp(invoice.get(name), f"{where}.{name}")
    for name in ("amount_due", "amount_paid"):
        _integer(invoice.get(name), f"{where}.{name}", -MAX_AMOUNT, MAX_AMOUNT)
    _integer(invoice.get("attempt_count"), f"{where}.attempt_count", 0, MAX_COUNT)
    _short_text(invoice.get("status"), f"{where}.status", 32)
    _short_text(invoice.get("currency"), f"{where}.currency", 8)
    _typed(invoice, "hosted_invoice_url", str, where)
    _typed(invoice, "invoice_pdf", str, where)
    _reference(invoice.get("customer"), "cus_", f"{where}.customer")
    _reference(invoice.get("subscription"), "sub_", f"{where}.subscription")
    _typed(invoice, "parent", Mapping, where)
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    if details is None:
        return
    if not isinstance(details, Mapping):
        raise _bad(f"{where}.parent.subscription_details", "is not an object")
    _reference(details.get("subscription"), "sub_", f"{where}.parent.subscription_details")


def _checkout(session: Mapping[str, Any], where: str) -> None:
    _reference(session.get("customer"), "cus_", f"{where}.customer")
    _reference(session.get("subscription"), "sub_", f"{where}.subscription")
    _typed(session, "mode", str, where)
    _typed(session, "client_reference_id", str, where)
    _typed(session, "metadata", Mapping, where)


def envelope_created(value: Any) -> int:
    """The envelope's ``created``: an integer unix time in [1, 2**32)."""
    timestamp(value, "created", minimum=1)
    if value is None:
        raise _bad("created", "is not an integer unix timestamp")
    assert isinstance(value, int)
    return value


def event_object(kind: str, obj: Mapping[str, Any], *, check_nul: bool = True) -> None:
    """Refuse the object of a handled event whose fields we read can never be applied.

    ``kind`` is "subscription", "invoice" or "checkout"; ``check_nul=False``
    when the caller knows no string in ``obj`` holds a NUL.
    """
    where = "data.object"
    if check_nul:
        no_nul(obj, where)
    if kind == "subscription":
        # Another object type under a subscription event is ignored, not refused.
        if obj.get("object") in (None, "subscription"):
            _subscription(obj, where)
    elif kind == "invoice":
        _invoice(obj, where)
    elif kind == "checkout":
        _checkout(obj, where)
