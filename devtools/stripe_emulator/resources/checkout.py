"""Checkout Sessions (subscription mode): create, list, expire, and what paying one does.

Paying (the hosted page's Pay button or ``/_emulator/.../complete``) creates
the customer if the session had none, starts the subscription with the
session's spec (:class:`~..bookkeeping.CheckoutSpec`) and marks the session
``complete``, even when the payment fails (``payment_status: "unpaid"``).
"""

from __future__ import annotations

from typing import Any

from ..account import Account
from ..bookkeeping import CheckoutSpec
from ..errors import StripeError
from ..forms import (
    as_bool,
    as_enabled,
    as_int,
    as_list,
    as_metadata,
    missing_payment_method_param,
    reject_unknown,
)
from ..listing import matches_created, paginate
from ..objects import JSON, customer_details, new_checkout_session, new_customer
from . import discounts
from .catalog import price_param
from .customers import PAYMENT_OUTCOMES
from .subscriptions import start_subscription

_SESSION_STATUSES = ("open", "complete", "expired")


def create_checkout_session(account: Account, params: dict[str, Any]) -> JSON:
    """POST /v1/checkout/sessions (subscription mode only)."""
    reject_unknown(
        params,
        {
            "mode",
            "customer",
            "customer_email",
            "line_items",
            "client_reference_id",
            "metadata",
            "subscription_data",
            "success_url",
            "cancel_url",
            "allow_promotion_codes",
            "billing_address_collection",
            "locale",
            "payment_method_types",
            "customer_update",
            "automatic_tax",
            "tax_id_collection",
            "ui_mode",
            "discounts",
            "payment_method_collection",
        },
    )
    mode = params.get("mode")
    if not mode:
        raise StripeError.missing_param("mode")
    if mode != "subscription":
        raise StripeError.invalid(
            "The emulator only supports Checkout Sessions with mode=subscription.", param="mode"
        )
    customer_id = params.get("customer") or None
    email = params.get("customer_email") or None
    if customer_id and email:
        raise StripeError.invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    if customer_id:
        account.store.get("customers", str(customer_id), param="customer", status=400)
    items, amount = _line_items(account, params.get("line_items"))
    sub_data = params.get("subscription_data") or {}
    if not isinstance(sub_data, dict):
        raise StripeError.invalid("Invalid hash", param="subscription_data")
    trial_days = None
    if sub_data.get("trial_period_days") not in (None, ""):
        trial_days = as_int(
            sub_data["trial_period_days"], "subscription_data[trial_period_days]", minimum=1
        )
    promo = params.get("allow_promotion_codes")
    promotion_code = _promotion_code(account, params.get("discounts"))
    if promotion_code and promo is not None and as_bool(promo, "allow_promotion_codes"):
        raise StripeError.invalid(
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
            param="allow_promotion_codes",
        )
    collection = params.get("payment_method_collection") or "always"
    if collection not in ("always", "if_required"):
        raise StripeError.invalid(
            "Invalid payment_method_collection", param="payment_method_collection"
        )
    automatic_tax = as_enabled(params.get("automatic_tax"), "automatic_tax")
    tax_ids = as_enabled(params.get("tax_id_collection"), "tax_id_collection")
    session = new_checkout_session(
        account.fx,
        created=account.clock.now(),
        url_base=account.url_base,
        customer=str(customer_id) if customer_id else None,
        customer_email=str(email) if email else None,
        amount=0 if trial_days else amount,
        success_url=params.get("success_url") or None,
        cancel_url=params.get("cancel_url") or None,
        client_reference_id=params.get("client_reference_id") or None,
        metadata=as_metadata(params.get("metadata")),
        allow_promotion_codes=None if promo is None else as_bool(promo, "allow_promotion_codes"),
        billing_address_collection=params.get("billing_address_collection") or None,
    )
    if params.get("locale"):
        session["locale"] = params["locale"]
    session["payment_method_collection"] = collection
    session["automatic_tax"]["enabled"] = automatic_tax
    session["tax_id_collection"] = {"enabled": tax_ids, "required": "never"}
    if promotion_code:
        session["discounts"] = [{"coupon": None, "promotion_code": promotion_code}]
    account.store.checkout_sessions[session["id"]] = session
    account.checkout_specs[session["id"]] = CheckoutSpec(
        line_items=items,
        subscription_metadata=as_metadata(sub_data.get("metadata"), "subscription_data[metadata]"),
        trial_period_days=trial_days,
        missing_payment_method=missing_payment_method_param(
            sub_data.get("trial_settings"), "subscription_data[trial_settings]"
        ),
        promotion_code=promotion_code,
        automatic_tax=automatic_tax,
    )
    return session


def _line_items(account: Account, raw: Any) -> tuple[list[tuple[str, int]], int]:
    """``line_items[i][price/quantity]`` as (price id, quantity) and the amount they cost."""
    raw_items = as_list(raw, "line_items")
    if not raw_items:
        raise StripeError.missing_param("line_items")
    items: list[tuple[str, int]] = []
    amount = 0
    for index, entry in enumerate(raw_items):
        if not isinstance(entry, dict):
            raise StripeError.invalid("Invalid line item", param=f"line_items[{index}]")
        price = price_param(account, entry.get("price"), f"line_items[{index}][price]")
        if price["recurring"] is None:
            raise StripeError.invalid(
                "You must specify at least one recurring price in `subscription` mode.",
                param=f"line_items[{index}][price]",
            )
        quantity = as_int(entry.get("quantity", 1), f"line_items[{index}][quantity]", minimum=1)
        items.append((price["id"], quantity))
        amount += int(price["unit_amount"]) * quantity
    return items, amount


def _promotion_code(account: Account, raw: Any) -> str | None:
    """The one promotion code of a session's ``discounts`` parameter, if any."""
    entries = as_list(raw, "discounts") if raw not in (None, "") else []
    if len(entries) > 1:
        raise StripeError.invalid("You may only specify one discount.", param="discounts")
    if not entries:
        return None
    entry = entries[0]
    if not isinstance(entry, dict) or not entry.get("promotion_code"):
        raise StripeError.missing_param("discounts[0][promotion_code]")
    promo_id = str(entry["promotion_code"])
    discounts.redeemable_promotion_code(account, promo_id, "discounts[0][promotion_code]")
    return promo_id


def list_checkout_sessions(account: Account, params: dict[str, Any]) -> JSON:
    """GET /v1/checkout/sessions, filtered by ``customer``, ``status`` and ``subscription``."""
    status = params.get("status")
    if status and status not in _SESSION_STATUSES:
        raise StripeError.invalid(
            "Invalid status: must be one of open, complete or expired", param="status"
        )
    wanted = {key: params.get(key) for key in ("customer", "status", "subscription")}
    rows = [
        session
        for session in reversed(account.store.checkout_sessions.values())
        if all(not value or session.get(key) == value for key, value in wanted.items())
        and matches_created(session, params.get("created"))
    ]
    return paginate(rows, params, "/v1/checkout/sessions")


def expire_checkout_session(account: Account, session_id: str, params: dict[str, Any]) -> JSON:
    """POST /v1/checkout/sessions/{id}/expire: an open session can no longer be paid."""
    reject_unknown(params, set())
    session = account.store.get("checkout_sessions", session_id)
    if session["status"] != "open":
        raise StripeError.invalid(
            f'Only Checkout Sessions with a status in ["open"] can be expired. '
            f"Session {session_id} has a status of {session['status']}.",
            param="session",
        )
    session.update(status="expired", url=None)
    account.emit("checkout.session.expired", session)
    return session


def complete_checkout(
    account: Account,
    session_id: str,
    payment: str | None = None,
    email: str | None = None,
    *,
    without_payment_method: bool = False,
) -> JSON:
    """What Stripe does when the customer pays a Checkout Session.

    ``without_payment_method``: the customer skipped the card, which Checkout
    allows only for a trial with ``payment_method_collection=if_required``.
    """
    session = account.store.get("checkout_sessions", session_id)
    if session["status"] != "open":
        raise StripeError.invalid(
            f"Checkout Session {session_id} is not open (status {session['status']}).",
            param="id",
        )
    if payment is not None and payment not in PAYMENT_OUTCOMES:
        raise StripeError.invalid(f"payment must be one of {PAYMENT_OUTCOMES}", param="payment")
    spec = account.checkout_specs[session_id]
    with account.request_context(None, None):
        if session["customer"]:
            customer = account.store.customers[session["customer"]]
        else:
            customer = new_customer(
                account.fx,
                created=account.clock.now(),
                email=session["customer_email"] or email or "customer@example.com",
            )
            account.store.customers[customer["id"]] = customer
            account.emit("customer.created", customer)
        state = account.state_of_customer(customer["id"])
        skip_card = (
            without_payment_method
            and bool(spec.trial_period_days)
            and session["payment_method_collection"] == "if_required"
        )
        if without_payment_method and not skip_card:
            raise StripeError.invalid(
                "This session collects a payment method (no trial, or "
                "payment_method_collection=always).",
                param="without_payment_method",
            )
        if not skip_card:
            state.has_payment_method = True
        outcome = payment or state.payment
        sub, invoice, paid = start_subscription(
            account,
            customer,
            spec.line_items,
            spec.subscription_metadata,
            trial_days=spec.trial_period_days,
            outcome=outcome,
            missing_payment_method=spec.missing_payment_method,
            promotion_code=spec.promotion_code,
            automatic_tax=spec.automatic_tax,
        )
        session.update(
            status="complete",
            customer=customer["id"],
            subscription=sub["id"],
            invoice=invoice["id"],
            customer_details=customer_details(account.fx, customer["email"], customer["name"]),
            payment_status=(
                "no_payment_required"
                if paid and invoice["amount_due"] == 0
                else "paid"
                if paid
                else "unpaid"
            ),
        )
        account.emit("checkout.session.completed", session)
    return session
