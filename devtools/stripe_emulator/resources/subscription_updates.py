"""Changing a running subscription: ``POST /v1/subscriptions/{id}`` and ``/resume``.

Item changes are prorated (``subscription_items``): with ``always_invoice``
the prorations are invoiced at once, otherwise they wait for the next renewal
invoice. One ``customer.subscription.updated`` names what changed.
"""

from __future__ import annotations

import copy
from typing import Any

from ..account import Account
from ..clock import add_months
from ..errors import StripeError
from ..forms import as_bool, as_int, as_list, merge_metadata, reject_unknown
from ..objects import JSON
from .dunning import charge_cycle_invoice
from .invoices import draft_invoice, run_invoice
from .periods import current_period, set_period, subscription_months
from .subscription_items import PRORATION_BEHAVIORS, ProrationSpec, change_items
from .subscriptions import apply_cancel_at_period_end

PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")


def update_subscription(account: Account, sub_id: str, params: dict[str, Any]) -> JSON:
    """POST /v1/subscriptions/{id}."""
    reject_unknown(
        params,
        {
            "cancel_at_period_end",
            "metadata",
            "items",
            "proration_behavior",
            "proration_date",
            "pause_collection",
            "cancellation_details",
            "default_payment_method",
            "payment_behavior",
            "description",
            "trial_settings",
            "off_session",
            "billing_cycle_anchor",
        },
    )
    sub = account.store.get("subscriptions", sub_id)
    if sub["status"] in ("canceled", "incomplete_expired") and set(params) - {
        "metadata",
        "cancellation_details",
        "expand",
    }:
        raise StripeError.invalid(
            "A canceled subscription can only update its cancellation_details and metadata."
        )
    proration = str(params.get("proration_behavior") or "create_prorations")
    if proration not in PRORATION_BEHAVIORS:
        raise StripeError.invalid(
            f"Invalid proration_behavior: must be one of {', '.join(PRORATION_BEHAVIORS)}",
            param="proration_behavior",
        )
    before = copy.deepcopy(sub)
    previous: JSON = {}
    if "metadata" in params:
        merged = merge_metadata(sub["metadata"], params["metadata"])
        if merged != sub["metadata"]:
            previous["metadata"] = sub["metadata"]
            sub["metadata"] = merged
    if "cancel_at_period_end" in params:
        value = as_bool(params["cancel_at_period_end"], "cancel_at_period_end")
        previous.update(apply_cancel_at_period_end(account, sub, value))
    details = params.get("cancellation_details")
    if isinstance(details, dict):
        previous.setdefault("cancellation_details", copy.deepcopy(sub["cancellation_details"]))
        for key in ("comment", "feedback"):
            if key in details:
                sub["cancellation_details"][key] = details[key] or None
    if "pause_collection" in params:
        previous["pause_collection"] = sub["pause_collection"]
        sub["pause_collection"] = _pause_param(params["pause_collection"])
    if params.get("default_payment_method"):
        previous["default_payment_method"] = sub["default_payment_method"]
        sub["default_payment_method"] = str(params["default_payment_method"])
        account.state_of_customer(sub["customer"]).has_payment_method = True
    specs: list[ProrationSpec] = []
    if "items" in params:
        proration_date = None
        if params.get("proration_date") not in (None, ""):
            proration_date = as_int(params["proration_date"], "proration_date")
        specs = change_items(
            account, sub, as_list(params["items"], "items"), proration, proration_date
        )
        if sub["items"] != before["items"]:
            previous["items"] = before["items"]
    previous = {k: v for k, v in previous.items() if before.get(k) != sub.get(k)}
    if specs and proration == "always_invoice":
        invoice = draft_invoice(
            account, sub, "subscription_update", full_period=None, prorations=specs
        )
        previous["latest_invoice"] = before["latest_invoice"]
    elif specs:
        account.sub_state[sub_id].pending_lines.extend(specs)
        invoice = None
    else:
        invoice = None
    if previous:
        account.emit("customer.subscription.updated", sub, previous)
    if invoice is not None:
        run_invoice(account, invoice, account.state_of_customer(sub["customer"]).payment, None)
    return sub


def _pause_param(value: Any) -> JSON | None:
    if value in ("", None):
        return None
    if not isinstance(value, dict):
        raise StripeError.invalid("Invalid pause_collection", param="pause_collection")
    behavior = value.get("behavior")
    if behavior not in PAUSE_BEHAVIORS:
        raise StripeError.invalid(
            f"Invalid behavior: must be one of {', '.join(PAUSE_BEHAVIORS)}",
            param="pause_collection[behavior]",
        )
    resumes_at = value.get("resumes_at")
    return {
        "behavior": behavior,
        "resumes_at": None
        if resumes_at in (None, "")
        else as_int(resumes_at, "pause_collection[resumes_at]"),
    }


def resume_subscription(account: Account, sub_id: str, params: dict[str, Any]) -> JSON:
    """POST /v1/subscriptions/{id}/resume: a paused subscription starts a new period now."""
    reject_unknown(params, {"billing_cycle_anchor", "proration_behavior", "proration_date"})
    sub = account.store.get("subscriptions", sub_id)
    if sub["status"] != "paused":
        raise StripeError.invalid(
            "Only a subscription with status `paused` can be resumed.", param="subscription"
        )
    now = account.clock.now()
    state = account.sub_state[sub_id]
    state.anchor, state.cycle = now, 0
    before = copy.deepcopy(sub)
    outcome = account.state_of_customer(sub["customer"]).payment
    sub["status"] = "active"
    sub["billing_cycle_anchor"] = now
    set_period(sub, now, add_months(now, subscription_months(sub)))
    invoice = draft_invoice(account, sub, "subscription_cycle", full_period=current_period(sub))
    account.emit("customer.subscription.resumed", sub)
    account.emit(
        "customer.subscription.updated",
        sub,
        {
            "status": "paused",
            "items": before["items"],
            "latest_invoice": before["latest_invoice"],
            "billing_cycle_anchor": before["billing_cycle_anchor"],
        },
    )
    charge_cycle_invoice(account, sub, invoice, outcome)
    return sub
