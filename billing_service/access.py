"""The access a stored subscription grants: the lifecycle table applied to a row.

``lifecycle.grant`` is the rule over plain values; ``evaluate`` feeds it one
stored row (a plan the catalog no longer knows grants nothing), and
``SubscriptionView`` is what the RPCs answer about a user: the row that
answers for them, its grant, and their other live subscriptions. Pure: no
I/O, no Stripe, no protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_service.lifecycle import Grant, Status, grant
from billing_service.plans import FREE_TIER, Catalog
from billing_service.storage.models import Subscription


def evaluate(row: Subscription | None, catalog: Catalog, now: datetime) -> Grant:
    """The grant of one stored subscription row (free without one)."""
    if row is None:
        return Grant(FREE_TIER, None)
    plan = row.plan if row.plan in catalog.plans else ""
    return grant(
        Status(row.status),
        plan,
        row.current_period_end,
        row.cancel_at_period_end,
        now,
        catalog.access,
    )


@dataclass(frozen=True)
class SubscriptionView:
    """A user's subscription plus the access it grants now."""

    user_id: str
    row: Subscription | None
    stripe_customer_id: str
    grant: Grant
    # The user's other live subscriptions (a duplicate), best first; normally empty.
    others: tuple[Subscription, ...] = ()

    @property
    def status(self) -> Status:
        """The stored status, NONE without a subscription."""
        return Status(self.row.status) if self.row else Status.NONE
