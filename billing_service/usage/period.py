"""The usage period of a user at a given time: pure, no I/O, ``now`` passed in.

- A user whose subscription grants a paid tier counts against that
  subscription's current billing period (Stripe's ``current_period_start/end``,
  read from either API shape when the row was stored).
- Everyone else (free, lapsed, cancelled) counts against the calendar month in UTC.
- A stored period that has already ended while the subscription still grants
  the plan (the renewal webhook is late) rolls forward by whole months, so usage
  resets at the boundary without waiting for any event.

- Limits are monthly: when the billing period is longer than a month (an
  annual price), the usage period is the month-long slice of it that holds
  ``now``, anchored at the period start (a start on the 31st gives slices
  ending on the last day of shorter months, then on the 31st again); the last
  slice ends with the billing period.

Counters are keyed by the period's start: a rolled-forward period starts at
the old end, exactly where Stripe's renewal starts the next one, so the
renewal webhook corrects the end without resetting the usage counted meanwhile.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import datetime

from billing_service.lifecycle import Grant
from billing_service.plans import FREE_TIER, Catalog, Plan
from billing_service.storage.models import Subscription
from billing_service.usage.limits import MeterLimit


@dataclass(frozen=True)
class Period:
    """One usage period [start, end) in naive UTC, and the plan whose limits apply in it."""

    start: datetime
    end: datetime
    plan: Plan
    # Seats of the subscription; the limits scale with them when the plan says
    # limits_per_seat.
    seats: int = 1

    def limit(self, meter: str) -> MeterLimit:
        """The plan's limit of ``meter`` in this period, times the seats when per seat."""
        limit = self.plan.limit(meter)
        if self.plan.seats.limits_per_seat and self.seats > 1:
            return replace(limit, included=limit.included * self.seats)
        return limit


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
    return monthly_slice(start, end, now)


def monthly_slice(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The month-long slice of [start, end) holding ``now``; the period itself when not longer.

    Slices are counted from ``start`` (not chained), so the day clamps per
    month and comes back: Jan 31 -> Feb 28 -> Mar 31.
    """
    if end <= add_months(start, 1):
        return start, end
    months = 0
    while add_months(start, months + 1) <= now and months < 1200:
        months += 1
    return add_months(start, months), min(end, add_months(start, months + 1))


def usage_period(row: Subscription | None, grant: Grant, catalog: Catalog, now: datetime) -> Period:
    """The period ``now`` falls in for a user whose current subscription is ``row``."""
    if grant.tier != FREE_TIER and row is not None:
        bounds = _paid_bounds(row, now)
        if bounds is not None:
            seats = max(1, int(row.quantity or 1))
            return Period(bounds[0], bounds[1], catalog.tier(grant.tier), seats)
    start, end = calendar_month(now)
    return Period(start, end, catalog.free)
