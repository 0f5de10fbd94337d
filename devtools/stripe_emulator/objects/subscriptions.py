"""Subscriptions and their items (the current period lives on the items)."""

from __future__ import annotations

import copy

from .catalog import plan_from_price
from .fixtures import JSON, Fixtures, list_object, new_id


def new_subscription_item(
    fx: Fixtures,
    *,
    subscription: str,
    price: JSON,
    created: int,
    period_start: int,
    period_end: int,
    quantity: int = 1,
) -> JSON:
    """A subscription item; the current period lives here, not on the subscription."""
    obj = fx.template("subscription_item")
    obj.update(
        id=new_id("si_", 14),
        billing_thresholds=None,
        created=created,
        current_period_start=period_start,
        current_period_end=period_end,
        discounts=[],
        metadata={},
        plan=plan_from_price(fx, price),
        price=copy.deepcopy(price),
        quantity=quantity,
        subscription=subscription,
        tax_rates=[],
    )
    return obj


def new_subscription(
    fx: Fixtures,
    *,
    sub_id: str,
    customer: str,
    created: int,
    items: list[JSON],
    status: str,
    metadata: dict[str, str],
    billing_cycle_anchor: int,
    trial_start: int | None = None,
    trial_end: int | None = None,
    currency: str = "usd",
    missing_payment_method: str = "create_invoice",
) -> JSON:
    """A subscription (without ``current_period_*`` at the top level)."""
    obj = fx.template("subscription")
    obj.update(
        id=sub_id,
        application=None,
        application_fee_percent=None,
        automatic_tax={"enabled": False, "liability": None, "disabled_reason": None},
        billing_cycle_anchor=billing_cycle_anchor,
        billing_cycle_anchor_config=None,
        billing_mode={"type": "classic", "flexible": None},
        billing_schedules=[],
        billing_thresholds=None,
        cancel_at=None,
        cancel_at_period_end=False,
        canceled_at=None,
        cancellation_details={"comment": None, "feedback": None, "reason": None},
        collection_method="charge_automatically",
        created=created,
        currency=currency,
        customer=customer,
        customer_account=None,
        days_until_due=None,
        default_payment_method=None,
        default_source=None,
        default_tax_rates=[],
        description=None,
        discounts=[],
        ended_at=None,
        items=list_object(items, f"/v1/subscription_items?subscription={sub_id}"),
        latest_invoice=None,
        livemode=False,
        managed_payments={"enabled": False},
        metadata=dict(metadata),
        next_pending_invoice_item_invoice=None,
        on_behalf_of=None,
        pause_collection=None,
        pending_invoice_item_interval=None,
        pending_setup_intent=None,
        pending_update=None,
        schedule=None,
        start_date=created,
        status=status,
        test_clock=None,
        transfer_data=None,
        trial_end=trial_end,
        trial_settings={"end_behavior": {"missing_payment_method": missing_payment_method}},
        trial_start=trial_start,
    )
    obj["payment_settings"].update(
        payment_method_options=None,
        payment_method_types=None,
        save_default_payment_method="off",
    )
    obj["invoice_settings"].update(account_tax_ids=None, issuer={"type": "self"})
    return obj
