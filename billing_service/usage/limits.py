"""Meter limits of one plan, parsed from the catalog's ``[plans.X.limits]`` table.

A meter's value is a monthly quantity (``api_calls = 100``), ``"unlimited"``,
or a table allowing overage billed through Stripe Billing Meters::

    [plans.pro.limits]
    api_calls = 100
    exports = "unlimited"
    tokens = { included = 1000, overage = "bill", event_name = "tokens", price_id = "price_tok" }

``monthly_limit`` stays the limit of the default meter (``DEFAULT_METER``)
unless the limits table names that meter itself. This module imports nothing
from the rest of the service so ``plans`` can use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_METER = "units"
UNLIMITED = "unlimited"
METER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class LimitError(ValueError):
    """A limits entry is invalid; the message names it."""


@dataclass(frozen=True)
class MeterLimit:
    """How much of one meter a plan includes per period, and what happens past it."""

    included: int
    unlimited: bool = False
    # Overage billed to Stripe: the meter event name and the metered price behind it.
    event_name: str = ""
    overage_price_id: str = ""

    @property
    def bills_overage(self) -> bool:
        """True when consumption past ``included`` is allowed and reported to Stripe."""
        return bool(self.event_name)

    def admits(self, used: int, quantity: int) -> bool:
        """True when ``quantity`` more units may be consumed on top of ``used``."""
        return self.unlimited or self.bills_overage or used + quantity <= self.included

    def overage_of(self, used: int, quantity: int) -> int:
        """Units of ``quantity`` past the included amount (0 for hard or unlimited meters)."""
        if self.unlimited or not self.bills_overage:
            return 0
        return max(0, used + quantity - max(self.included, used))


NOT_INCLUDED = MeterLimit(included=0)


def _meter(entry: str, raw: Any, *, allow_overage: bool) -> MeterLimit:
    if raw == UNLIMITED:
        return MeterLimit(included=0, unlimited=True)
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0:
            raise LimitError(f"{entry} must be a non-negative integer or 'unlimited'")
        return MeterLimit(included=raw)
    if not isinstance(raw, dict):
        raise LimitError(f"{entry} must be a non-negative integer, 'unlimited' or a table")
    included = raw.get("included")
    if not isinstance(included, int) or isinstance(included, bool) or included < 0:
        raise LimitError(f"{entry}.included must be a non-negative integer")
    overage = raw.get("overage", "refuse")
    if overage == "refuse":
        return MeterLimit(included=included)
    if overage != "bill":
        raise LimitError(f"{entry}.overage must be 'refuse' or 'bill'")
    if not allow_overage:
        raise LimitError(f"{entry}.overage: the free tier has no Stripe customer to bill")
    event_name = raw.get("event_name")
    if not isinstance(event_name, str) or not _EVENT_NAME.match(event_name):
        raise LimitError(f"{entry}.event_name must be the Stripe meter's event name")
    price_id = raw.get("price_id")
    if not isinstance(price_id, str) or not price_id.startswith("price_"):
        raise LimitError(f"{entry}.price_id must be the metered Stripe price id (price_...)")
    return MeterLimit(included=included, event_name=event_name, overage_price_id=price_id)


def parse_limits(
    entry: str, raw: Any, monthly_limit: int, *, allow_overage: bool = True
) -> Mapping[str, MeterLimit]:
    """The meters of the plan at ``entry`` (``plans.pro``); LimitError names a bad one."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise LimitError(f"{entry}.limits must be a table of meter = quantity")
    meters: dict[str, MeterLimit] = {DEFAULT_METER: MeterLimit(included=monthly_limit)}
    for name, value in raw.items():
        if not METER_NAME.match(name):
            raise LimitError(f"{entry}.limits.{name}: meter names are lowercase identifiers")
        meters[name] = _meter(f"{entry}.limits.{name}", value, allow_overage=allow_overage)
    return meters
