"""Customers: create, update and list, and the emulator's per-customer payment behaviour."""

from __future__ import annotations

from typing import Any

from ..account import Account
from ..errors import StripeError
from ..forms import as_metadata, merge_metadata, reject_unknown
from ..listing import matches_created, paginate
from ..objects import JSON, new_customer

#: What a charge does: the customer's emulator payment behaviour, or a Checkout choice.
PAYMENT_OUTCOMES = ("succeed", "fail", "requires_action")


def create_customer(account: Account, params: dict[str, Any]) -> JSON:
    """POST /v1/customers."""
    reject_unknown(
        params,
        {
            "email",
            "name",
            "description",
            "phone",
            "metadata",
            "payment_method",
            "invoice_settings",
            "address",
            "preferred_locales",
        },
    )
    customer = new_customer(
        account.fx,
        created=account.clock.now(),
        email=params.get("email") or None,
        name=params.get("name") or None,
        description=params.get("description") or None,
        phone=params.get("phone") or None,
        metadata=as_metadata(params.get("metadata")),
    )
    account.store.customers[customer["id"]] = customer
    state = account.state_of_customer(customer["id"])
    if params.get("payment_method"):
        state.has_payment_method = True
    account.emit("customer.created", customer)
    return customer


def update_customer(account: Account, customer_id: str, params: dict[str, Any]) -> JSON:
    """POST /v1/customers/{id}."""
    reject_unknown(
        params,
        {
            "email",
            "name",
            "description",
            "phone",
            "metadata",
            "invoice_settings",
            "address",
            "preferred_locales",
        },
    )
    customer = account.store.get("customers", customer_id)
    previous: JSON = {}
    for key in ("email", "name", "description", "phone"):
        if key in params:
            value = params[key] or None
            if customer[key] != value:
                previous[key] = customer[key]
                customer[key] = value
    if "metadata" in params:
        merged = merge_metadata(customer["metadata"], params["metadata"])
        if merged != customer["metadata"]:
            previous["metadata"] = customer["metadata"]
            customer["metadata"] = merged
    if previous:
        account.emit("customer.updated", customer, previous)
    return customer


def list_customers(account: Account, params: dict[str, Any]) -> JSON:
    """GET /v1/customers."""
    email = params.get("email")
    rows = [
        c
        for c in reversed(account.store.customers.values())
        if (not email or c["email"] == email) and matches_created(c, params.get("created"))
    ]
    return paginate(rows, params, "/v1/customers")


def set_payment_behavior(
    account: Account, customer_id: str, fail: bool, mode: str | None = None
) -> JSON:
    """Make the customer's future charges succeed, fail or require action."""
    account.store.get("customers", customer_id)
    outcome = mode or ("fail" if fail else "succeed")
    if outcome not in PAYMENT_OUTCOMES:
        raise StripeError.invalid(f"mode must be one of {PAYMENT_OUTCOMES}", param="mode")
    account.state_of_customer(customer_id).payment = outcome
    return {"customer": customer_id, "payment": outcome}
