"""The usage period of a user at a given time: pure, no I/O, ``now`` passed in.

- A user whose subscription grants a paid tier counts against that
  subscription's current billing period (Stripe's ``current_period_start/end``,
  read from either API shape when the row was stored).
- Everyone else (free, lapsed, cancelled) counts against the calendar month in UTC.
- A stored period that has already ended while the subscription still grants
  the plan (the renewal webhook is late) rolls forward by whole months, so usage
  resets at the boundary without waiting for any event.

Counters are keyed by the period's start: a rolled-forward period starts at
the old end, exactly where Stripe's renewal starts the next one, so the
renewal webhook corrects the end without resetting the usage counted meanwhile.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from billing_service.lifecycle import Grant
from billing_service.plans import FREE_TIER, Catalog, Plan
from billing_service.storage.models import Subscription


@dataclass(frozen=True)
class Period:
    """One usage period [start, end) in naive UTC, and the plan whose limits apply in it."""

    start: datetime
    end: datetime
    plan: Plan


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by whole calendar months, clamping the day as Stripe does."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def calendar_month(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding ``now``."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, add_months(start, 1)


def _paid_bounds(row: Subscription, now: datetime) -> tuple[datetime, datetime] | None:
    end = row.current_period_end
    if end is None:
        return None
    start = row.current_period_start or add_months(end, -1)
    anchor, months = end, 0
    # Late renewal: the plan still applies, the stored period is over; count whole months on.
    while end <= now and months < 1200:
        months += 1
        start, end = end, add_months(anchor, months)
    return start, end


def usage_period(row: Subscription | None, grant: Grant, catalog: Catalog, now: datetime) -> Period:
    """The period ``now`` falls in for a user whose current subscription is ``row``."""
    if grant.tier != FREE_TIER and row is not None:
        bounds = _paid_bounds(row, now)
        if bounds is not None:
            return Period(bounds[0], bounds[1], catalog.tier(grant.tier))
    start, end = calendar_month(now)
    return Period(start, end, catalog.free)
