"""Billing periods: how long a price's period lasts and where a subscription keeps its own.

In the current API shape the period lives on each subscription item
(``current_period_start``/``current_period_end``), all items sharing one.
"""

from __future__ import annotations

from ..objects import JSON


def months_of(price: JSON) -> int:
    """How many months one period of a recurring price lasts (a year is 12)."""
    recurring = price.get("recurring") or {}
    per = 12 if recurring.get("interval") == "year" else 1
    return per * int(recurring.get("interval_count") or 1)


def subscription_months(sub: JSON) -> int:
    """The period length of a subscription in months, from its first item's price."""
    return months_of(sub["items"]["data"][0]["price"])


def current_period(sub: JSON) -> tuple[int, int]:
    """The subscription's current period (start, end), from its first item."""
    item = sub["items"]["data"][0]
    return int(item["current_period_start"]), int(item["current_period_end"])


def set_period(sub: JSON, start: int, end: int) -> None:
    """Move every item of the subscription to the period [start, end)."""
    for item in sub["items"]["data"]:
        item["current_period_start"] = start
        item["current_period_end"] = end
