"""Subscriptions: starting one (from the API or a paid Checkout Session), listing, cancelling.

Changes to a running subscription are in ``subscription_updates``; what the
clock does to it in ``renewals`` and ``dunning``.
"""

from __future__ import annotations

import copy
from typing import Any

from ..account import Account
from ..bookkeeping import SubscriptionState
from ..clock import DAY, add_months
from ..errors import StripeError
from ..forms import as_bool, as_int, as_metadata, missing_payment_method_param, reject_unknown
from ..listing import matches_created, paginate
from ..objects import JSON, new_id, new_subscription, new_subscription_item
from . import discounts
from .invoices import draft_invoice, run_invoice
from .periods import current_period, months_of
from .subscription_items import items_param

_LIST_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)


def start_subscription(
    account: Account,
    customer: JSON,
    line_items: list[tuple[str, int]],
    metadata: dict[str, str],
    *,
    trial_days: int | None = None,
    trial_end: int | None = None,
    outcome: str,
    missing_payment_method: str = "create_invoice",
    promotion_code: str | None = None,
    automatic_tax: bool = False,
) -> tuple[JSON, JSON, bool]:
    """A new subscription and its first invoice, charged with ``outcome``.

    Returns the subscription, the invoice and whether it was paid.
    """
    now = account.clock.now()
    sub_id = new_id("sub_")
    if trial_days:
        trial_end = now + trial_days * DAY
    trialing = trial_end is not None
    anchor = trial_end if trial_end is not None else now
    months = months_of(account.store.prices[line_items[0][0]])
    end = anchor if trialing else add_months(anchor, months)
    items = [
        new_subscription_item(
            account.fx,
            subscription=sub_id,
            price=account.store.prices[price_id],
            created=now,
            period_start=now,
            period_end=end,
            quantity=quantity,
        )
        for price_id, quantity in line_items
    ]
    paid_up = trialing or outcome == "succeed"
    sub = new_subscription(
        account.fx,
        sub_id=sub_id,
        customer=customer["id"],
        created=now,
        items=items,
        status="trialing" if trialing else ("active" if paid_up else "incomplete"),
        metadata=metadata,
        billing_cycle_anchor=anchor,
        trial_start=now if trialing else None,
        trial_end=trial_end,
        currency=items[0]["price"]["currency"],
        missing_payment_method=missing_payment_method,
    )
    sub["automatic_tax"]["enabled"] = automatic_tax
    if promotion_code:
        discount = discounts.apply_discount(
            account, promotion_code, now=now, customer=customer["id"], subscription=sub_id
        )
        sub["discounts"] = [discount["id"]]
    account.store.subscriptions[sub_id] = sub
    state = SubscriptionState(anchor=anchor, cycle=-1 if trialing else 0)
    account.sub_state[sub_id] = state
    if customer["currency"] is None:
        customer["currency"] = sub["currency"]
    invoice = draft_invoice(account, sub, "subscription_create", full_period=(now, end))
    account.emit("customer.subscription.created", sub)
    paid = run_invoice(account, invoice, outcome, None)
    if not paid:
        state.open_invoice = invoice["id"]
    return sub, invoice, paid


def create_subscription(account: Account, params: dict[str, Any]) -> JSON:
    """POST /v1/subscriptions (charges the customer at once unless trialing)."""
    reject_unknown(
        params,
        {
            "customer",
            "items",
            "metadata",
            "trial_period_days",
            "trial_end",
            "trial_settings",
            "default_payment_method",
            "payment_behavior",
            "proration_behavior",
            "collection_method",
            "cancel_at_period_end",
            "description",
            "off_session",
        },
    )
    customer_id = params.get("customer")
    if not customer_id:
        raise StripeError.missing_param("customer")
    customer = account.store.get("customers", str(customer_id), param="customer", status=400)
    items = items_param(account, params)
    trial_days = None
    if params.get("trial_period_days") not in (None, ""):
        trial_days = as_int(params["trial_period_days"], "trial_period_days", minimum=1)
    trial_end = None
    if params.get("trial_end") not in (None, "", "now"):
        trial_end = as_int(params["trial_end"], "trial_end")
        if trial_end <= account.clock.now():
            raise StripeError.invalid("trial_end must be in the future", param="trial_end")
    behavior = missing_payment_method_param(params.get("trial_settings"), "trial_settings")
    state = account.state_of_customer(customer["id"])
    if params.get("default_payment_method"):
        state.has_payment_method = True
    sub, _, _ = start_subscription(
        account,
        customer,
        items,
        as_metadata(params.get("metadata")),
        trial_days=trial_days,
        trial_end=trial_end,
        outcome=state.payment,
        missing_payment_method=behavior,
    )
    if params.get("default_payment_method"):
        sub["default_payment_method"] = str(params["default_payment_method"])
    if "cancel_at_period_end" in params and as_bool(
        params["cancel_at_period_end"], "cancel_at_period_end"
    ):
        apply_cancel_at_period_end(account, sub, True)
    return sub


def list_subscriptions(account: Account, params: dict[str, Any]) -> JSON:
    """GET /v1/subscriptions (default: every status but canceled)."""
    customer, price = params.get("customer"), params.get("price")
    status = params.get("status")
    if status and status not in _LIST_STATUSES:
        raise StripeError.invalid(
            f"Invalid status: must be one of {', '.join(_LIST_STATUSES)}", param="status"
        )

    def keep(sub: JSON) -> bool:
        if customer and sub["customer"] != customer:
            return False
        if price and all(i["price"]["id"] != price for i in sub["items"]["data"]):
            return False
        if status == "all":
            return True
        if status == "ended":
            return sub["status"] in ("canceled", "incomplete_expired")
        if status:
            return bool(sub["status"] == status)
        return bool(sub["status"] != "canceled")

    rows = [
        s
        for s in reversed(account.store.subscriptions.values())
        if keep(s) and matches_created(s, params.get("created"))
    ]
    return paginate(rows, params, "/v1/subscriptions")


def apply_cancel_at_period_end(account: Account, sub: JSON, value: bool) -> JSON:
    """Set ``cancel_at_period_end`` and its companions; returns their previous values."""
    previous: JSON = {}
    if sub["cancel_at_period_end"] == value:
        return previous
    for key in ("cancel_at_period_end", "cancel_at", "canceled_at", "cancellation_details"):
        previous[key] = copy.deepcopy(sub[key])
    sub["cancel_at_period_end"] = value
    if value:
        sub["cancel_at"] = current_period(sub)[1]
        sub["canceled_at"] = account.clock.now()
        sub["cancellation_details"]["reason"] = "cancellation_requested"
    else:
        sub["cancel_at"] = None
        sub["canceled_at"] = None
        sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
    return previous


def cancel_subscription(
    account: Account,
    sub_id: str,
    params: dict[str, Any],
    *,
    reason: str = "cancellation_requested",
) -> JSON:
    """DELETE /v1/subscriptions/{id}: cancel now."""
    reject_unknown(params, {"cancellation_details", "invoice_now", "prorate"})
    sub = account.store.get("subscriptions", sub_id)
    if sub["status"] == "canceled":
        raise StripeError.invalid(
            f"This subscription has already been canceled: '{sub_id}'.", param="subscription"
        )
    details = params.get("cancellation_details")
    if isinstance(details, dict):
        for key in ("comment", "feedback"):
            if key in details:
                sub["cancellation_details"][key] = details[key] or None
    end_subscription(account, sub, reason)
    return sub


def end_subscription(account: Account, sub: JSON, reason: str) -> None:
    """Cancel ``sub`` now for ``reason`` (``customer.subscription.deleted``)."""
    now = account.clock.now()
    sub["status"] = "canceled"
    sub["ended_at"] = now
    if (
        sub["canceled_at"] is None
        or reason != "cancellation_requested"
        or not sub["cancel_at_period_end"]
    ):
        sub["canceled_at"] = now
    sub["cancellation_details"]["reason"] = reason
    state = account.sub_state[sub["id"]]
    state.retry_at = None
    account.emit("customer.subscription.deleted", sub)
