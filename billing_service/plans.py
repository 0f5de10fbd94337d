"""The plans catalog: tiers, the Stripe prices that buy them, and what they grant.

Loaded once at start from a TOML file (see ``plans.example.toml``)::

    catalog = load_catalog(Path("plans.example.toml"))
    catalog.plan("pro").features  # frozenset({"priority_support", ...})
    catalog.plan_for_price("price_pro_monthly").name  # "pro"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from billing_service.errors import InvalidArgument
from billing_service.plan_options import (
    CheckoutSettings,
    Interval,
    OptionError,
    Seats,
    TrialEndBehavior,
    parse_checkout,
    parse_prices,
    parse_seats,
    parse_trial,
    parse_unit_amounts,
)
from billing_service.usage.limits import NOT_INCLUDED, LimitError, MeterLimit, parse_limits

FREE_TIER = "free"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class CatalogError(ValueError):
    """The plans catalog is invalid; the message names the bad entry."""


@dataclass(frozen=True)
class Plan:
    """A tier: its Stripe prices (none for free), monthly limit, features, trial and seats."""

    name: str
    price_id: str
    monthly_limit: int
    features: frozenset[str]
    unit_amount: int = 0
    # Usage meters (``[plans.X.limits]``); always holds the default meter (monthly_limit).
    limits: Mapping[str, MeterLimit] = field(default_factory=dict)
    # Every price that sells the plan, by interval; prices[MONTH] == price_id.
    prices: Mapping[Interval, str] = field(default_factory=dict)
    # Emulator-only amounts per interval (cents); unit_amount is the monthly one.
    unit_amounts: Mapping[Interval, int] = field(default_factory=dict)
    trial_days: int = 0
    # None: Stripe's default (an invoice is created; the subscription goes past_due).
    trial_end_behavior: TrialEndBehavior | None = None
    seats: Seats = field(default_factory=Seats)

    def price_for(self, interval: Interval) -> str | None:
        """The plan's price id for ``interval``, None when it is not sold that way."""
        return self.prices.get(interval)

    def limit(self, meter: str) -> MeterLimit:
        """The plan's limit of ``meter``: a meter the plan does not list is not included (0)."""
        return self.limits.get(meter, NOT_INCLUDED)


@dataclass(frozen=True)
class AccessPolicy:
    """Configurable parts of the status -> access mapping."""

    # None: a past_due subscription keeps its tier until the current period ends.
    past_due_grace: timedelta | None = None


class OnDuplicate(StrEnum):
    """``[checkout] on_duplicate``: what to do when a user has two live subscriptions."""

    FLAG = "flag"
    CANCEL_NEWEST = "cancel_newest"


@dataclass(frozen=True)
class Catalog:
    """Every paid plan plus the free tier, indexed by name and by price id."""

    free: Plan
    plans: dict[str, Plan]
    access: AccessPolicy
    on_duplicate: OnDuplicate = OnDuplicate.FLAG
    checkout: CheckoutSettings = field(default_factory=CheckoutSettings)

    def plan(self, name: str) -> Plan:
        """The plan (or the free tier) called ``name``; KeyError when unknown."""
        if name == FREE_TIER:
            return self.free
        return self.plans[name]

    def requested(self, name: str) -> Plan:
        """The paid plan a caller asked for by ``name``; InvalidArgument on ``plan`` otherwise."""
        if not name:
            raise InvalidArgument("plan", "is required")
        if name not in self.plans:
            known = ", ".join(sorted(self.plans))
            raise InvalidArgument("plan", f"unknown plan {name!r} (known: {known})")
        return self.plans[name]

    def tier(self, name: str) -> Plan:
        """The plan called ``name``, or free when the name is unknown or empty."""
        return self.plans.get(name, self.free)

    def plan_for_price(self, price_id: str) -> Plan | None:
        """The paid plan sold at ``price_id`` (any of its intervals), if any."""
        found = self._by_price.get(price_id)
        return found[0] if found else None

    def interval_for_price(self, price_id: str) -> Interval | None:
        """The interval ``price_id`` bills at, when it is one of the catalog's prices."""
        found = self._by_price.get(price_id)
        return found[1] if found else None

    @property
    def all_features(self) -> frozenset[str]:
        """Every feature any tier grants."""
        return frozenset().union(self.free.features, *(p.features for p in self.plans.values()))

    @property
    def all_meters(self) -> frozenset[str]:
        """Every meter any tier names (the default meter included)."""
        return frozenset().union(self.free.limits, *(p.limits for p in self.plans.values()))

    @property
    def _by_price(self) -> dict[str, tuple[Plan, Interval]]:
        return {
            price: (plan, interval)
            for plan in self.plans.values()
            for interval, price in plan.prices.items()
        }


def _features(entry: str, raw: Any) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(f, str) and _NAME.match(f) for f in raw):
        raise CatalogError(f"{entry}.features must be a list of lowercase feature names")
    return frozenset(raw)


def _limit(entry: str, raw: Any) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
        raise CatalogError(f"{entry}.monthly_limit must be a non-negative integer")
    return raw


def _paid_plan(name: str, raw: Any) -> Plan:
    entry = f"plans.{name}"
    if not _NAME.match(name) or name == FREE_TIER:
        raise CatalogError(f"{entry}: plan names are lowercase identifiers other than 'free'")
    if not isinstance(raw, dict):
        raise CatalogError(f"{entry} must be a table")
    monthly_limit = _limit(entry, raw.get("monthly_limit"))
    try:
        prices = parse_prices(entry, raw)
        amounts = parse_unit_amounts(entry, raw)
        trial_days, trial_end_behavior = parse_trial(entry, raw)
        seats = parse_seats(entry, raw)
    except OptionError as exc:
        raise CatalogError(str(exc)) from None
    return Plan(
        name=name,
        price_id=prices[Interval.MONTH],
        monthly_limit=monthly_limit,
        features=_features(entry, raw.get("features", [])),
        unit_amount=amounts[Interval.MONTH],
        limits=_limits(entry, raw, monthly_limit, allow_overage=True),
        prices=prices,
        unit_amounts=amounts,
        trial_days=trial_days,
        trial_end_behavior=trial_end_behavior,
        seats=seats,
    )


def _limits(
    entry: str, raw: dict[str, Any], monthly_limit: int, *, allow_overage: bool
) -> Mapping[str, MeterLimit]:
    try:
        return parse_limits(entry, raw.get("limits"), monthly_limit, allow_overage=allow_overage)
    except LimitError as exc:
        raise CatalogError(str(exc)) from None


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """Validate a parsed TOML document into a Catalog."""
    free_raw = data.get("free", {})
    if not isinstance(free_raw, dict):
        raise CatalogError("free must be a table")
    free_limit = _limit("free", free_raw.get("monthly_limit", 0))
    free = Plan(
        name=FREE_TIER,
        price_id="",
        monthly_limit=free_limit,
        features=_features("free", free_raw.get("features", [])),
        limits=_limits("free", free_raw, free_limit, allow_overage=False),
    )
    plans_raw = data.get("plans")
    if not isinstance(plans_raw, dict) or not plans_raw:
        raise CatalogError("plans must be a table with at least one plan")
    plans = {name: _paid_plan(name, raw) for name, raw in plans_raw.items()}
    seen: dict[str, str] = {}
    for plan in plans.values():
        for interval, price in plan.prices.items():
            where = "price_id" if interval is Interval.MONTH else f"prices.{interval.value}"
            if price in seen:
                raise CatalogError(f"plans.{plan.name}.{where} duplicates {seen[price]}")
            seen[price] = f"plans.{plan.name}.{where}"
    access_raw = data.get("access", {})
    grace_hours = access_raw.get("past_due_grace_hours", 0) if isinstance(access_raw, dict) else -1
    if not isinstance(grace_hours, int | float) or grace_hours < 0:
        raise CatalogError("access.past_due_grace_hours must be a non-negative number")
    grace = timedelta(hours=grace_hours) if grace_hours else None
    checkout_raw = data.get("checkout", {})
    try:
        checkout = parse_checkout(checkout_raw if isinstance(checkout_raw, dict) else {})
    except OptionError as exc:
        raise CatalogError(str(exc)) from None
    return Catalog(
        free=free,
        plans=plans,
        access=AccessPolicy(past_due_grace=grace),
        on_duplicate=_on_duplicate(checkout_raw),
        checkout=checkout,
    )


def _on_duplicate(raw: Any) -> OnDuplicate:
    if not isinstance(raw, dict):
        raise CatalogError("checkout must be a table")
    value = raw.get("on_duplicate", OnDuplicate.FLAG.value)
    try:
        return OnDuplicate(value)
    except ValueError:
        choices = " or ".join(repr(p.value) for p in OnDuplicate)
        raise CatalogError(f"checkout.on_duplicate must be {choices}") from None


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog at ``path``; CatalogError names what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"plans file {path} does not exist (BILLING_PLANS_FILE)") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"plans file {path} is not valid TOML: {exc}") from None
    return parse_catalog(data)
