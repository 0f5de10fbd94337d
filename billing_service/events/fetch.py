"""The event path's Stripe calls: one subscription's state now, and its discounts.

Each call first draws from the shared ``FetchBudget`` (``fetch_budget.py``)
and is counted in ``billing_stripe_event_fetches_total`` by cause and result.
A fetch that fails propagates (UNAVAILABLE) and nothing is recorded, so the
webhook's retry applies the event; a discount read is best effort.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from billing_service import metrics
from billing_service.errors import BillingError, NotFound
from billing_service.events.fetch_budget import FetchBudget
from billing_service.stripe_shapes import SubscriptionSnapshot, subscription_snapshot


class SubscriptionFetcher(Protocol):
    """What resolving needs from Stripe: the current state of one subscription."""

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe holds it now."""
        ...

    async def retrieve_subscription_discounts(self, subscription_id: str) -> dict[str, Any]:
        """The subscription with its discounts expanded."""
        ...


# Causes of Stripe calls on the event path (label of billing_stripe_event_fetches_total).
CAUSE_CONFLICT = "same_second_conflict"
CAUSE_UNTIED = "untied_subscription"
CAUSE_UNKNOWN_USER = "unknown_user"
CAUSE_DISCOUNT = "discount_ids"


class StripeFetches:
    """Budgeted, counted reads of subscriptions from Stripe for the event path."""

    def __init__(self, stripe: SubscriptionFetcher, budget: FetchBudget | None = None) -> None:
        self._stripe = stripe
        # Without a budget (tests of the engine alone) fetches are not limited.
        self._budget = budget

    async def fetch(self, subscription_id: str, cause: str) -> SubscriptionSnapshot | None:
        """The subscription from Stripe (one budgeted call); None when Stripe does not know it."""
        if self._budget is not None:
            await self._budget.take(cause)
        try:
            raw = await self._stripe.retrieve_subscription(subscription_id)
        except NotFound:
            metrics.EVENT_FETCHES.labels(cause, "not_found").inc()
            return None
        except BillingError:
            metrics.EVENT_FETCHES.labels(cause, "failed").inc()
            raise
        metrics.EVENT_FETCHES.labels(cause, "ok").inc()
        return await self.with_discount(subscription_snapshot(raw))

    async def with_discount(self, snapshot: SubscriptionSnapshot) -> SubscriptionSnapshot:
        """``snapshot`` with its discount read, when it arrived as ids only (newer API shape).

        Best effort and budgeted like every event-path fetch: the discount is for
        display, so when Stripe cannot be asked now the snapshot stays pending
        and the stored discount is kept (``transition.row_values``);
        the event itself still applies.
        """
        if not snapshot.discount_pending:
            return snapshot
        try:
            if self._budget is not None:
                await self._budget.take(CAUSE_DISCOUNT)
            raw = await self._stripe.retrieve_subscription_discounts(snapshot.id)
        except NotFound:
            metrics.EVENT_FETCHES.labels(CAUSE_DISCOUNT, "not_found").inc()
            return replace(snapshot, discount_pending=False)
        except BillingError:
            metrics.EVENT_FETCHES.labels(CAUSE_DISCOUNT, "failed").inc()
            return snapshot
        metrics.EVENT_FETCHES.labels(CAUSE_DISCOUNT, "ok").inc()
        expanded = subscription_snapshot(raw)
        return replace(snapshot, discount=expanded.discount, discount_pending=False)
