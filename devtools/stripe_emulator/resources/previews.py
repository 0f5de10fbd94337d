"""Invoice previews: ``POST /v1/invoices/create_preview``, never stored.

Without a subscription it previews a new one's first invoice; with one, the
next renewal invoice including pending prorations and those the previewed
``items`` change would cause (``always_invoice``: only those, invoiced now).
"""

from __future__ import annotations

import copy
from typing import Any

from ..account import Account
from ..clock import add_months
from ..errors import StripeError
from ..forms import as_int, as_list, reject_unknown
from ..objects import JSON, new_id, new_subscription, new_subscription_item
from .invoices import draft_invoice
from .periods import current_period, months_of, subscription_months
from .subscription_items import PRORATION_BEHAVIORS, ProrationSpec, change_items, items_param


def preview_invoice(account: Account, params: dict[str, Any]) -> JSON:
    """POST /v1/invoices/create_preview with simple linear proration."""
    reject_unknown(params, {"customer", "subscription", "subscription_details", "automatic_tax"})
    customer_id = params.get("customer")
    sub_id = params.get("subscription")
    if not customer_id and not sub_id:
        raise StripeError.missing_param("customer")
    sub_source = None
    if sub_id:
        sub_source = account.store.get(
            "subscriptions", str(sub_id), param="subscription", status=400
        )
        customer_id = customer_id or sub_source["customer"]
        if sub_source["customer"] != customer_id:
            raise StripeError.invalid(
                "The subscription does not belong to the customer.", param="subscription"
            )
    customer = account.store.get("customers", str(customer_id), param="customer", status=400)
    details = params.get("subscription_details") or {}
    if not isinstance(details, dict):
        raise StripeError.invalid("Invalid hash", param="subscription_details")
    proration = str(details.get("proration_behavior") or "create_prorations")
    if proration not in PRORATION_BEHAVIORS:
        raise StripeError.invalid(
            "Invalid proration_behavior", param="subscription_details[proration_behavior]"
        )
    if sub_source is None:
        return _preview_new(account, customer, details)
    return _preview_change(account, sub_source, details, proration)


def _preview_new(account: Account, customer: JSON, details: JSON) -> JSON:
    now = account.clock.now()
    items = items_param(account, {"items": details.get("items")})
    sub = new_subscription(
        account.fx,
        sub_id=new_id("sub_"),
        customer=customer["id"],
        created=now,
        items=[
            new_subscription_item(
                account.fx,
                subscription="",
                price=account.store.prices[p],
                created=now,
                period_start=now,
                period_end=add_months(now, months_of(account.store.prices[items[0][0]])),
                quantity=q,
            )
            for p, q in items
        ],
        status="active",
        metadata={},
        billing_cycle_anchor=now,
    )
    return draft_invoice(
        account,
        sub,
        "subscription_create",
        full_period=(now, add_months(now, months_of(account.store.prices[items[0][0]]))),
        invoice_id=new_id("upcoming_in_"),
        store=False,
    )


def _preview_change(account: Account, sub_source: JSON, details: JSON, proration: str) -> JSON:
    sub = copy.deepcopy(sub_source)
    specs = list(account.sub_state[sub["id"]].pending_lines)
    new_specs: list[ProrationSpec] = []
    if details.get("items") not in (None, ""):
        proration_date = None
        if details.get("proration_date") not in (None, ""):
            proration_date = as_int(
                details["proration_date"], "subscription_details[proration_date]"
            )
        try:
            new_specs = change_items(
                account, sub, as_list(details["items"], "items"), proration, proration_date
            )
        except StripeError as error:
            if error.param and error.param.startswith("items"):
                error.param = f"subscription_details[{error.param.replace('[', '][', 1)}"
            raise
    start, end = current_period(sub)
    if proration == "always_invoice":
        return draft_invoice(
            account,
            sub,
            "subscription_update",
            full_period=None,
            prorations=new_specs,
            invoice_id=new_id("upcoming_in_"),
            store=False,
        )
    next_state = account.sub_state[sub["id"]]
    next_end = (
        add_months(next_state.anchor, (next_state.cycle + 2) * subscription_months(sub))
        if sub["status"] != "trialing"
        else add_months(end, subscription_months(sub))
    )
    return draft_invoice(
        account,
        sub,
        "upcoming",
        full_period=(end, next_end),
        prorations=specs + new_specs,
        period=(start, end),
        invoice_id=new_id("upcoming_in_"),
        store=False,
    )
