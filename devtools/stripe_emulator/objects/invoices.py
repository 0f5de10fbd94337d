"""Invoices and their lines (a subscription invoice names its subscription under ``parent``)."""

from __future__ import annotations

from .fixtures import JSON, Fixtures, list_object, new_id


def new_invoice_line(
    fx: Fixtures,
    *,
    invoice_id: str,
    amount: int,
    description: str,
    period_start: int,
    period_end: int,
    subscription: str,
    item: JSON,
    proration: bool = False,
) -> JSON:
    """An invoice line for one subscription item (or its proration)."""
    template: JSON = fx.template("invoice")["lines"]["data"][0]
    price = item["price"]
    template.update(
        id=new_id("il_"),
        amount=amount,
        currency=price["currency"],
        description=description,
        discount_amounts=[],
        discountable=True,
        discounts=[],
        invoice=invoice_id,
        livemode=False,
        metadata={},
        period={"start": period_start, "end": period_end},
        quantity=item["quantity"],
        quantity_decimal=str(item["quantity"]),
        subscription=subscription,
        pretax_credit_amounts=[],
        taxes=[],
        parent={
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription,
                "subscription_item": item["id"],
            },
        },
        pricing={
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]},
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        subtotal=amount,
    )
    return template


def new_invoice(
    fx: Fixtures,
    *,
    invoice_id: str,
    customer: JSON,
    subscription: JSON,
    created: int,
    billing_reason: str,
    lines: list[JSON],
    period_start: int,
    period_end: int,
) -> JSON:
    """A draft subscription invoice; its subscription is under ``parent``."""
    obj = fx.template("invoice")
    total = sum(int(line["amount"]) for line in lines)
    due = max(total, 0)
    obj.update(
        id=invoice_id,
        account_country="US",
        account_name="Stripe Emulator",
        account_tax_ids=None,
        amount_due=due,
        amount_overpaid=0,
        amount_paid=0,
        amount_remaining=due,
        amount_shipping=0,
        application=None,
        attempt_count=0,
        attempted=False,
        auto_advance=True,
        automatic_tax={
            "enabled": False,
            "liability": None,
            "status": None,
            "disabled_reason": None,
            "provider": None,
        },
        automatically_finalizes_at=None,
        billing_reason=billing_reason,
        collection_method="charge_automatically",
        created=created,
        currency=subscription["currency"],
        custom_fields=None,
        customer=customer["id"],
        customer_account=None,
        customer_address=None,
        customer_email=customer["email"],
        customer_name=customer["name"],
        customer_phone=customer["phone"],
        customer_shipping=None,
        customer_tax_exempt="none",
        customer_tax_ids=[],
        default_payment_method=None,
        default_source=None,
        default_tax_rates=[],
        description=None,
        discounts=[],
        due_date=None,
        effective_at=None,
        ending_balance=None,
        footer=None,
        from_invoice=None,
        hosted_invoice_url=None,
        invoice_pdf=None,
        issuer={"type": "self"},
        last_finalization_error=None,
        latest_revision=None,
        lines=list_object(lines, f"/v1/invoices/{invoice_id}/lines"),
        livemode=False,
        metadata={},
        next_payment_attempt=None,
        number=None,
        on_behalf_of=None,
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
        },
        period_end=period_end,
        period_start=period_start,
        post_payment_credit_notes_amount=0,
        pre_payment_credit_notes_amount=0,
        receipt_number=None,
        rendering=None,
        shipping_cost=None,
        shipping_details=None,
        starting_balance=0,
        statement_descriptor=None,
        status="draft",
        status_transitions={
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        # The legacy top-level field is kept (null), as in the fixture.
        subscription=None,
        subtotal=total,
        subtotal_excluding_tax=total,
        test_clock=None,
        total=total,
        total_discount_amounts=[],
        total_excluding_tax=total,
        total_pretax_credit_amounts=[],
        total_taxes=[],
        webhooks_delivered_at=None,
    )
    return obj
