"""What a plan sells beyond its tier: prices by interval, trial, seats; and the checkout settings.

Parsed from the plans TOML file by ``billing_service.plans``::

    [plans.pro]
    price_id = "price_pro_monthly"        # the monthly price (prices.month)
    trial_days = 14
    trial_end_behavior = "cancel"         # or "pause"; unset: Stripe's default
    per_seat = true
    min_seats = 1
    max_seats = 50
    limits_per_seat = true

    [plans.pro.prices]
    year = "price_pro_yearly"

    [checkout]
    trial_once_per_user = true
    allow_promotion_codes = true
    automatic_tax = false
    tax_id_collection = false
    billing_address_collection = "required"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

_E = TypeVar("_E", bound=StrEnum)


class OptionError(ValueError):
    """An invalid plan option; the message names the entry."""


class Interval(StrEnum):
    """A price's billing interval (Stripe's ``recurring.interval``)."""

    MONTH = "month"
    YEAR = "year"


class TrialEndBehavior(StrEnum):
    """``trial_settings.end_behavior.missing_payment_method`` when a trial ends without a card."""

    CANCEL = "cancel"
    PAUSE = "pause"


class AddressCollection(StrEnum):
    """Checkout's ``billing_address_collection``."""

    AUTO = "auto"
    REQUIRED = "required"


@dataclass(frozen=True)
class Seats:
    """Seat rules of a plan; a plan that is not per seat always has exactly one."""

    per_seat: bool = False
    min_seats: int = 1
    max_seats: int | None = None
    limits_per_seat: bool = False

    def check(self, quantity: int) -> str:
        """Why ``quantity`` seats cannot be bought ("" when they can)."""
        if not self.per_seat:
            return "" if quantity == 1 else "the plan is not sold per seat; quantity must be 1"
        if quantity < self.min_seats:
            return f"must be at least {self.min_seats} for this plan"
        if self.max_seats is not None and quantity > self.max_seats:
            return f"must be at most {self.max_seats} for this plan"
        return ""


@dataclass(frozen=True)
class CheckoutSettings:
    """``[checkout]``: how Checkout sessions are created (on_duplicate lives on Catalog)."""

    trial_once_per_user: bool = True
    # The two defaults keep what the service always did before these settings existed.
    allow_promotion_codes: bool = True
    automatic_tax: bool = False
    tax_id_collection: bool = False
    billing_address_collection: AddressCollection = AddressCollection.REQUIRED


def _int(entry: str, raw: Any, *, minimum: int) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < minimum:
        raise OptionError(f"{entry} must be an integer of at least {minimum}")
    return raw


def _bool(entry: str, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise OptionError(f"{entry} must be true or false")
    return raw


def _choice(entry: str, raw: Any, kind: type[_E]) -> _E:
    try:
        return kind(raw)
    except ValueError:
        choices = " or ".join(repr(item.value) for item in kind)
        raise OptionError(f"{entry} must be {choices}") from None


def _price_id(entry: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.startswith("price_"):
        raise OptionError(f"{entry} must be a Stripe price id (price_...)")
    return raw


def parse_prices(entry: str, raw: Mapping[str, Any]) -> dict[Interval, str]:
    """``price_id`` (monthly) and ``[prices]`` month/year; the monthly price is required."""
    table = raw.get("prices", {})
    if not isinstance(table, dict):
        raise OptionError(f"{entry}.prices must be a table (month = ..., year = ...)")
    prices: dict[Interval, str] = {}
    for key, value in table.items():
        interval = _choice(f"{entry}.prices.{key}", key, Interval)
        prices[interval] = _price_id(f"{entry}.prices.{key}", value)
    if "price_id" in raw:
        monthly = _price_id(f"{entry}.price_id", raw["price_id"])
        if prices.setdefault(Interval.MONTH, monthly) != monthly:
            raise OptionError(f"{entry}.price_id and {entry}.prices.month differ")
    if Interval.MONTH not in prices:
        raise OptionError(f"{entry}.price_id must be a Stripe price id (price_...)")
    return prices


def parse_unit_amounts(entry: str, raw: Mapping[str, Any]) -> dict[Interval, int]:
    """Emulator-only amounts (cents): ``unit_amount`` (month) and ``[unit_amounts]`` year."""
    amounts = {Interval.MONTH: _int(f"{entry}.unit_amount", raw.get("unit_amount", 0), minimum=0)}
    table = raw.get("unit_amounts", {})
    if not isinstance(table, dict):
        raise OptionError(f"{entry}.unit_amounts must be a table (year = ...)")
    for key, value in table.items():
        interval = _choice(f"{entry}.unit_amounts.{key}", key, Interval)
        amounts[interval] = _int(f"{entry}.unit_amounts.{key}", value, minimum=0)
    return amounts


def parse_trial(entry: str, raw: Mapping[str, Any]) -> tuple[int, TrialEndBehavior | None]:
    """``trial_days`` (0 = none, at most Stripe's 730) and ``trial_end_behavior``."""
    days = _int(f"{entry}.trial_days", raw.get("trial_days", 0), minimum=0)
    if days > 730:
        raise OptionError(f"{entry}.trial_days must be at most 730 (Stripe's limit)")
    behavior = raw.get("trial_end_behavior")
    if behavior is None:
        return days, None
    return days, _choice(f"{entry}.trial_end_behavior", behavior, TrialEndBehavior)


def parse_seats(entry: str, raw: Mapping[str, Any]) -> Seats:
    """``per_seat``, ``min_seats``, ``max_seats``, ``limits_per_seat``."""
    per_seat = _bool(f"{entry}.per_seat", raw.get("per_seat", False))
    named = [key for key in ("min_seats", "max_seats", "limits_per_seat") if key in raw]
    if not per_seat:
        if named:
            raise OptionError(f"{entry}.{named[0]} needs {entry}.per_seat = true")
        return Seats()
    low = _int(f"{entry}.min_seats", raw.get("min_seats", 1), minimum=1)
    high = raw.get("max_seats")
    if high is not None:
        high = _int(f"{entry}.max_seats", high, minimum=low)
    return Seats(
        per_seat=True,
        min_seats=low,
        max_seats=high,
        limits_per_seat=_bool(f"{entry}.limits_per_seat", raw.get("limits_per_seat", False)),
    )


def parse_checkout(raw: Mapping[str, Any]) -> CheckoutSettings:
    """The ``[checkout]`` table's Checkout settings (``on_duplicate`` is parsed elsewhere)."""
    defaults = CheckoutSettings()

    def flag(key: str) -> bool:
        return _bool(f"checkout.{key}", raw.get(key, getattr(defaults, key)))

    return CheckoutSettings(
        trial_once_per_user=flag("trial_once_per_user"),
        allow_promotion_codes=flag("allow_promotion_codes"),
        automatic_tax=flag("automatic_tax"),
        tax_id_collection=flag("tax_id_collection"),
        billing_address_collection=_choice(
            "checkout.billing_address_collection",
            raw.get("billing_address_collection", defaults.billing_address_collection.value),
            AddressCollection,
        ),
    )
