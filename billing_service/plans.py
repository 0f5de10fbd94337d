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
from pathlib import Path
from typing import Any

from billing_service.usage.limits import NOT_INCLUDED, LimitError, MeterLimit, parse_limits

FREE_TIER = "free"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class CatalogError(ValueError):
    """The plans catalog is invalid; the message names the bad entry."""


@dataclass(frozen=True)
class Plan:
    """A tier: its Stripe price (none for free), monthly limit and features."""

    name: str
    price_id: str
    monthly_limit: int
    features: frozenset[str]
    unit_amount: int = 0
    # Usage meters (``[plans.X.limits]``); always holds the default meter (monthly_limit).
    limits: Mapping[str, MeterLimit] = field(default_factory=dict)

    def limit(self, meter: str) -> MeterLimit:
        """The plan's limit of ``meter``: a meter the plan does not list is not included (0)."""
        return self.limits.get(meter, NOT_INCLUDED)


@dataclass(frozen=True)
class AccessPolicy:
    """Configurable parts of the status -> access mapping."""

    # None: a past_due subscription keeps its tier until the current period ends.
    past_due_grace: timedelta | None = None


@dataclass(frozen=True)
class Catalog:
    """Every paid plan plus the free tier, indexed by name and by price id."""

    free: Plan
    plans: dict[str, Plan]
    access: AccessPolicy

    def plan(self, name: str) -> Plan:
        """The plan (or the free tier) called ``name``; KeyError when unknown."""
        if name == FREE_TIER:
            return self.free
        return self.plans[name]

    def tier(self, name: str) -> Plan:
        """The plan called ``name``, or free when the name is unknown or empty."""
        return self.plans.get(name, self.free)

    def plan_for_price(self, price_id: str) -> Plan | None:
        """The paid plan sold at ``price_id``, if any."""
        return self._by_price.get(price_id)

    @property
    def all_features(self) -> frozenset[str]:
        """Every feature any tier grants."""
        return frozenset().union(self.free.features, *(p.features for p in self.plans.values()))

    @property
    def all_meters(self) -> frozenset[str]:
        """Every meter any tier names (the default meter included)."""
        return frozenset().union(self.free.limits, *(p.limits for p in self.plans.values()))

    @property
    def _by_price(self) -> dict[str, Plan]:
        return {plan.price_id: plan for plan in self.plans.values()}


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
    price_id = raw.get("price_id")
    if not isinstance(price_id, str) or not price_id.startswith("price_"):
        raise CatalogError(f"{entry}.price_id must be a Stripe price id (price_...)")
    amount = raw.get("unit_amount", 0)
    if not isinstance(amount, int) or amount < 0:
        raise CatalogError(f"{entry}.unit_amount must be a non-negative integer")
    monthly_limit = _limit(entry, raw.get("monthly_limit"))
    return Plan(
        name=name,
        price_id=price_id,
        monthly_limit=monthly_limit,
        features=_features(entry, raw.get("features", [])),
        unit_amount=amount,
        limits=_limits(entry, raw, monthly_limit, allow_overage=True),
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
        if plan.price_id in seen:
            raise CatalogError(
                f"plans.{plan.name}.price_id duplicates plans.{seen[plan.price_id]}.price_id"
            )
        seen[plan.price_id] = plan.name
    access_raw = data.get("access", {})
    grace_hours = access_raw.get("past_due_grace_hours", 0) if isinstance(access_raw, dict) else -1
    if not isinstance(grace_hours, int | float) or grace_hours < 0:
        raise CatalogError("access.past_due_grace_hours must be a non-negative number")
    grace = timedelta(hours=grace_hours) if grace_hours else None
    return Catalog(free=free, plans=plans, access=AccessPolicy(past_due_grace=grace))


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog at ``path``; CatalogError names what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"plans file {path} does not exist (BILLING_PLANS_FILE)") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"plans file {path} is not valid TOML: {exc}") from None
    return parse_catalog(data)
