"""ChangePlan and PreviewPlanChange: moving a live subscription to another plan's price.

Both validate, then read the subscription from Stripe (its single item's id
and current price). ChangePlan updates that item's price with the caller's
proration behaviour and an idempotency key derived from ``request_id``, then
stores Stripe's answer through the one writer with an audit record naming the
caller, ordered by Stripe's clock at the answer (an event created before it is
STALE; the ``customer.subscription.updated`` webhook that follows confirms it).
PreviewPlanChange asks ``POST /v1/invoices/create_preview``
what the same change would bill and stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_service import validation
from billing_service.access import SubscriptionView
from billing_service.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_service.lifecycle import LIVE_PAID
from billing_service.plan_options import Interval
from billing_service.plans import Catalog, Plan
from billing_service.stripe_api import StripeApi
from billing_service.stripe_shapes import from_timestamp, object_id
from billing_service.subscriptions import SubscriptionService

# Stripe's proration_behavior values; the servicer maps billing.v1 ProrationBehavior onto them.
PRORATION_BEHAVIORS = frozenset({"create_prorations", "none", "always_invoice"})


def proration_behavior(value: str) -> str:
    """``value`` when it is a Stripe proration_behavior, else InvalidArgument(proration)."""
    if value not in PRORATION_BEHAVIORS:
        raise InvalidArgument("proration", f"unknown ProrationBehavior {value}")
    return value


@dataclass(frozen=True)
class PlanChangePreview:
    """What a plan change would bill: amount (minor units), currency, proration time."""

    amount_due: int
    currency: str
    proration_date: datetime | None


@dataclass(frozen=True)
class _Target:
    view: SubscriptionView
    plan: Plan
    item_id: str
    price_id: str
    interval: str


_INTERVALS = {interval.value: interval for interval in Interval}


def _interval(value: str, current: str) -> Interval:
    """The requested interval; "" keeps the subscription's (monthly when unknown)."""
    if not value:
        return Interval.YEAR if current == Interval.YEAR.value else Interval.MONTH
    try:
        return _INTERVALS[value]
    except KeyError:
        raise InvalidArgument("interval", f"unknown BillingInterval {value}") from None


class PlanChanges:
    """The plan change operations behind ChangePlan and PreviewPlanChange."""

    def __init__(
        self, stripe_api: StripeApi, catalog: Catalog, subscriptions: SubscriptionService
    ) -> None:
        self._stripe = stripe_api
        self._catalog = catalog
        self._subscriptions = subscriptions

    async def _target(
        self, user_id: str, plan: Plan, subscription_id: str, interval_value: str = ""
    ) -> _Target:
        if interval_value and interval_value not in _INTERVALS:
            raise InvalidArgument("interval", f"unknown BillingInterval {interval_value}")
        view = await self._subscriptions.target(user_id, subscription_id)
        row = view.row
        if row is None:
            raise NotFound(f"user {user_id!r} has no subscription")
        if view.status not in LIVE_PAID:
            raise FailedPrecondition(
                f"subscription is {view.status.value}; only trialing, active, past_due "
                "or unpaid subscriptions change plans"
            )
        interval = _interval(interval_value, str(row.interval))
        price_id = plan.price_for(interval)
        if price_id is None:
            raise InvalidArgument("interval", f"plan {plan.name!r} has no {interval.value}ly price")
        if row.plan == plan.name and (not interval_value or row.price_id == price_id):
            raise FailedPrecondition(
                f"subscription is already on plan {plan.name!r}"
                + (f" billed by the {interval.value}" if row.price_id == price_id else "")
            )
        raw = await self._stripe.retrieve_subscription(str(row.stripe_subscription_id))
        items = raw.get("items", {}).get("data") or []
        if len(items) != 1:
            raise FailedPrecondition(
                f"subscription has {len(items)} items; only single-item subscriptions change plans"
            )
        item: dict[str, Any] = items[0]
        if object_id(item.get("price")) == price_id:
            raise FailedPrecondition(f"subscription is already on plan {plan.name!r} in Stripe")
        return _Target(view, plan, str(item["id"]), price_id, interval.value)

    async def change(
        self,
        *,
        user_id: str,
        plan: str,
        proration: str,
        request_id: str,
        proration_date: int | None,
        caller: str,
        subscription_id: str = "",
        interval: str = "",
    ) -> SubscriptionView:
        """Move the user's live subscription to ``plan``; see billing.proto ChangePlan.

        ``proration`` is Stripe's proration_behavior; ``interval`` "month" or
        "year" ("" keeps the subscription's).
        """
        validation.user_id(user_id)
        target_plan = self._catalog.requested(plan)
        behavior = proration_behavior(proration)
        validation.request_id(request_id)
        target = await self._target(user_id, target_plan, subscription_id, interval)
        assert target.view.row is not None
        answer = await self._stripe.change_subscription_price(
            str(target.view.row.stripe_subscription_id),
            target.item_id,
            target.price_id,
            behavior,
            proration_date=proration_date,
            request_id=request_id,
        )
        before, after = str(target.view.row.plan), target_plan.name
        current = str(target.view.row.interval or Interval.MONTH.value)
        if current != target.interval:
            before, after = f"{before} ({current})", f"{after} ({target.interval})"
        detail = f"plan {before} -> {after}; proration_behavior={behavior}"
        return await self._subscriptions.store_answer(
            target.view, answer, caller, "ChangePlan", detail
        )

    async def preview(
        self,
        *,
        user_id: str,
        plan: str,
        proration: str,
        subscription_id: str = "",
        interval: str = "",
    ) -> PlanChangePreview:
        """What ChangePlan would bill; see billing.proto PreviewPlanChange."""
        validation.user_id(user_id)
        target_plan = self._catalog.requested(plan)
        behavior = proration_behavior(proration)
        target = await self._target(user_id, target_plan, subscription_id, interval)
        assert target.view.row is not None
        invoice = await self._stripe.preview_invoice(
            {
                "customer": str(target.view.row.stripe_customer_id),
                "subscription": str(target.view.row.stripe_subscription_id),
                "subscription_details": {
                    "items": [{"id": target.item_id, "price": target.price_id}],
                    "proration_behavior": behavior,
                },
            }
        )
        prorated_at = invoice.get("subscription_proration_date") or invoice.get("created")
        return PlanChangePreview(
            amount_due=int(invoice.get("amount_due") or 0),
            currency=str(invoice.get("currency") or ""),
            proration_date=from_timestamp(prorated_at),
        )
