"""Validation of usage requests: every check raises InvalidArgument naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta

from billing_service.errors import InvalidArgument
from billing_service.usage.limits import DEFAULT_METER

MAX_QUANTITY = 1_000_000_000
# Stripe accepts meter events up to 35 days old and 5 minutes ahead.
MAX_AGE = timedelta(days=35)
MAX_AHEAD = timedelta(minutes=5)
_MAX_KEY = 255


def meter(known_meters: frozenset[str], value: str) -> str:
    """A meter some tier of the catalog names (``Catalog.all_meters``); empty: the default."""
    name = value or DEFAULT_METER
    if name not in known_meters:
        known = ", ".join(sorted(known_meters))
        raise InvalidArgument("meter", f"unknown meter {name[:64]!r} (the catalog has: {known})")
    return name


def quantity(value: int, field: str = "quantity") -> int:
    """A positive quantity of at most MAX_QUANTITY units."""
    if value <= 0:
        raise InvalidArgument(field, "must be at least 1")
    if value > MAX_QUANTITY:
        raise InvalidArgument(field, f"must be at most {MAX_QUANTITY}")
    return value


def idempotency_key(value: str) -> str:
    """A required key of at most 255 printable characters."""
    if not value:
        raise InvalidArgument("idempotency_key", "is required")
    if len(value) > _MAX_KEY or not value.isprintable():
        raise InvalidArgument("idempotency_key", "must be at most 255 printable characters")
    return value


def occurred_at(value: datetime | None, now: datetime) -> datetime:
    """When the usage happened (naive UTC): inside Stripe's window around ``now``."""
    if value is None:
        return now
    if value < now - MAX_AGE:
        raise InvalidArgument("occurred_at", "is more than 35 days in the past")
    if value > now + MAX_AHEAD:
        raise InvalidArgument("occurred_at", "is more than 5 minutes in the future")
    return value
