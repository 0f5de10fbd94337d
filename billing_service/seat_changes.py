"""UpdateSeats and PreviewSeatChange: changing the quantity of a per-seat subscription.

The same shape and error model as ChangePlan (``billing_service.plan_changes``):
validate, read the subscription's single item from Stripe, then either update
its quantity with the caller's proration behaviour and store Stripe's answer
with an audit record naming the caller, or ask Stripe's invoice preview what
the change would bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billing_service import validation
from billing_service.access import SubscriptionView
from billing_service.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_service.lifecycle import LIVE_PAID
from billing_service.plan_changes import PlanChangePreview, proration_behavior
from billing_service.plans import Catalog, Plan
from billing_service.stripe_api import StripeApi
from billing_service.stripe_shapes import from_timestamp
from billing_service.subscriptions import SubscriptionService


@dataclass(frozen=True)
class _Target:
    view: SubscriptionView
    plan: Plan
    item_id: str
    quantity: int


class SeatChanges:
    """The seat operations behind UpdateSeats and PreviewSeatChange."""

    def __init__(
        self, stripe_api: StripeApi, catalog: Catalog, subscriptions: SubscriptionService
    ) -> None:
        self._stripe = stripe_api
        self._catalog = catalog
        self._subscriptions = subscriptions

    async def _target(self, user_id: str, quantity: int, subscription_id: str) -> _Target:
        validation.user_id(user_id)
        if quantity < 1:
            raise InvalidArgument("quantity", "must be at least 1")
        view = await self._subscriptions.target(user_id, subscription_id)
        row = view.row
        if row is None:
            raise NotFound(f"user {user_id!r} has no subscription")
        if view.status not in LIVE_PAID:
            raise FailedPrecondition(
                f"subscription is {view.status.value}; only trialing, active, past_due "
                "or unpaid subscriptions change seats"
            )
        plan = self._catalog.plans.get(str(row.plan))
        if plan is None:
            raise FailedPrecondition(f"subscription's plan {row.plan!r} is not in the catalog")
        problem = plan.seats.check(quantity)
        if problem:
            raise InvalidArgument("quantity", problem)
        raw = await self._stripe.retrieve_subscription(str(row.stripe_subscription_id))
        items = raw.get("items", {}).get("data") or []
        if len(items) != 1:
            raise FailedPrecondition(
                f"subscription has {len(items)} items; only single-item subscriptions change seats"
            )
        item: dict[str, Any] = items[0]
        current = int(item.get("quantity") or 1)
        if current == quantity:
            raise FailedPrecondition(f"subscription already has {quantity} seats")
        return _Target(view, plan, str(item["id"]), current)

    async def update(
        self,
        *,
        user_id: str,
        quantity: int,
        proration: str,
        request_id: str,
        proration_date: int | None,
        caller: str,
        subscription_id: str = "",
    ) -> SubscriptionView:
        """Set the seats of the user's live subscription; see billing.proto UpdateSeats."""
        behavior = proration_behavior(proration)
        validation.request_id(request_id)
        target = await self._target(user_id, quantity, subscription_id)
        assert target.view.row is not None
        answer = await self._stripe.change_subscription_item(
            str(target.view.row.stripe_subscription_id),
            {"id": target.item_id, "quantity": quantity},
            behavior,
            proration_date=proration_date,
            request_id=request_id,
            operation="subscription-seats",
        )
        detail = f"seats {target.quantity} -> {quantity}; proration_behavior={behavior}"
        return await self._subscriptions.store_answer(
            target.view, answer, caller, "UpdateSeats", detail
        )

    async def preview(
        self, *, user_id: str, quantity: int, proration: str, subscription_id: str = ""
    ) -> PlanChangePreview:
        """What UpdateSeats would bill; see billing.proto PreviewSeatChange."""
        behavior = proration_behavior(proration)
        target = await self._target(user_id, quantity, subscription_id)
        assert target.view.row is not None
        invoice = await self._stripe.preview_invoice(
            {
                "customer": str(target.view.row.stripe_customer_id),
                "subscription": str(target.view.row.stripe_subscription_id),
                "subscription_details": {
                    "items": [{"id": target.item_id, "quantity": quantity}],
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
