"""Stripe objects built from Stripe's official sample objects (``fixtures3.json``).

Every builder deep-copies the fixture template and overwrites its values, so
each object carries every field of the current API version's shape, with the
fixture's placeholder values replaced by real or null ones.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import string
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

#: API version stamped on events (the current shape the fixtures follow).
API_VERSION = "2026-10-28.endive"

_ALPHABET = string.ascii_letters + string.digits
_DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/stripe_fixtures3.json"


def default_fixtures_path() -> Path:
    """``$STRIPE_EMULATOR_FIXTURES`` or the copy under ``tests/fixtures``."""
    return Path(os.environ.get("STRIPE_EMULATOR_FIXTURES") or _DEFAULT_FIXTURES)


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id: ``prefix`` plus ``length`` random letters and digits."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def list_object(data: list[JSON], url: str, has_more: bool = False) -> JSON:
    """A Stripe list object."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _null_address() -> JSON:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


class Fixtures:
    """Stripe's sample objects, handed out as deep copies."""

    def __init__(self, path: Path | None = None) -> None:
        with (path or default_fixtures_path()).open(encoding="utf-8") as handle:
            self._resources: dict[str, JSON] = json.load(handle)["resources"]

    def template(self, name: str) -> JSON:
        """A fresh deep copy of the sample object ``name`` (e.g. ``"subscription"``)."""
        template: JSON = copy.deepcopy(self._resources[name])
        return template

    def customer(
        self,
        *,
        created: int,
        email: str | None,
        name: str | None = None,
        description: str | None = None,
        phone: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> JSON:
        """A new customer."""
        obj = self.template("customer")
        obj.update(
            id=new_id("cus_", 14),
            created=created,
            email=email,
            name=name,
            description=description,
            phone=phone,
            metadata=dict(metadata or {}),
            address=None,
            balance=0,
            currency=None,
            default_source=None,
            delinquent=False,
            discount=None,
            invoice_prefix="".join(secrets.choice("0123456789ABCDEF") for _ in range(8)),
            livemode=False,
            next_invoice_sequence=1,
            preferred_locales=[],
            shipping=None,
            tax_exempt="none",
            test_clock=None,
        )
        obj["invoice_settings"].update(
            custom_fields=None, default_payment_method=None, footer=None, rendering_options=None
        )
        return obj

    def product(
        self,
        *,
        created: int,
        name: str,
        product_id: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> JSON:
        """A new service product."""
        obj = self.template("product")
        obj.update(
            id=product_id or new_id("prod_", 14),
            created=created,
            updated=created,
            name=name,
            description=None,
            default_price=None,
            images=[],
            marketing_features=[],
            metadata=dict(metadata or {}),
            package_dimensions=None,
            shippable=None,
            statement_descriptor=None,
            tax_code=None,
            type="service",
            unit_label=None,
            url=None,
            livemode=False,
        )
        return obj

    def price(
        self,
        *,
        created: int,
        product: str,
        unit_amount: int,
        currency: str = "usd",
        interval: str | None = "month",
        interval_count: int = 1,
        price_id: str | None = None,
        nickname: str | None = None,
        lookup_key: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> JSON:
        """A new per-unit price; recurring unless ``interval`` is None."""
        obj = self.template("price")
        recurring = None
        if interval is not None:
            recurring = {
                "interval": interval,
                "interval_count": interval_count,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
        obj.update(
            id=price_id or new_id("price_"),
            active=True,
            billing_scheme="per_unit",
            created=created,
            currency=currency,
            custom_unit_amount=None,
            livemode=False,
            lookup_key=lookup_key,
            metadata=dict(metadata or {}),
            nickname=nickname,
            product=product,
            recurring=recurring,
            tax_behavior="unspecified",
            tiers_mode=None,
            transform_quantity=None,
            type="recurring" if recurring else "one_time",
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
        )
        return obj

    def plan_from_price(self, price: JSON) -> JSON:
        """The legacy ``plan`` view of a recurring price (still on subscription items)."""
        plan: JSON = self.template("subscription_item")["plan"]
        recurring = price.get("recurring") or {}
        plan.update(
            id=price["id"],
            active=price["active"],
            amount=price["unit_amount"],
            amount_decimal=price["unit_amount_decimal"],
            billing_scheme="per_unit",
            created=price["created"],
            currency=price["currency"],
            interval=recurring.get("interval", "month"),
            interval_count=recurring.get("interval_count", 1),
            livemode=False,
            metadata=dict(price["metadata"]),
            meter=None,
            nickname=price["nickname"],
            product=price["product"],
            tiers_mode=None,
            transform_usage=None,
            trial_period_days=None,
            usage_type="licensed",
        )
        return plan

    def subscription_item(
        self,
        *,
        subscription: str,
        price: JSON,
        created: int,
        period_start: int,
        period_end: int,
        quantity: int = 1,
    ) -> JSON:
        """A subscription item; the current period lives here, not on the subscription."""
        obj = self.template("subscription_item")
        obj.update(
            id=new_id("si_", 14),
            billing_thresholds=None,
            created=created,
            current_period_start=period_start,
            current_period_end=period_end,
            discounts=[],
            metadata={},
            plan=self.plan_from_price(price),
            price=copy.deepcopy(price),
            quantity=quantity,
            subscription=subscription,
            tax_rates=[],
        )
        return obj

    def subscription(
        self,
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
        obj = self.template("subscription")
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

    def invoice_line(
        self,
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
        template: JSON = self.template("invoice")["lines"]["data"][0]
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

    def invoice(
        self,
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
        obj = self.template("invoice")
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

    def checkout_session(
        self,
        *,
        created: int,
        url_base: str,
        customer: str | None,
        customer_email: str | None,
        amount: int,
        success_url: str | None,
        cancel_url: str | None,
        client_reference_id: str | None,
        metadata: dict[str, str],
        allow_promotion_codes: bool | None,
        billing_address_collection: str | None,
    ) -> JSON:
        """An open subscription-mode Checkout Session whose ``url`` is the emulator."""
        obj = self.template("checkout.session")
        session_id = new_id("cs_test_", 58)
        obj.update(
            id=session_id,
            adaptive_pricing={"enabled": False},
            after_expiration=None,
            allow_promotion_codes=allow_promotion_codes,
            amount_subtotal=amount,
            amount_total=amount,
            automatic_tax={"enabled": False, "liability": None, "status": None, "provider": None},
            billing_address_collection=billing_address_collection,
            cancel_url=cancel_url,
            client_reference_id=client_reference_id,
            client_secret=None,
            collected_information=None,
            consent=None,
            consent_collection=None,
            created=created,
            currency="usd",
            currency_conversion=None,
            custom_fields=[],
            custom_text={
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            customer=customer,
            customer_account=None,
            customer_creation=None,
            customer_details=None,
            customer_email=customer_email,
            discounts=[],
            expires_at=created + 86400,
            integration_identifier=None,
            invoice=None,
            invoice_creation=None,
            livemode=False,
            locale=None,
            managed_payments={"enabled": False},
            metadata=dict(metadata),
            mode="subscription",
            origin_context=None,
            payment_intent=None,
            payment_link=None,
            payment_method_collection="always",
            payment_method_configuration_details=None,
            payment_method_options={},
            payment_method_types=["card"],
            payment_status="unpaid",
            permissions=None,
            phone_number_collection={"enabled": False},
            recovered_from=None,
            saved_payment_method_options={
                "allow_redisplay_filters": ["always"],
                "payment_method_remove": None,
                "payment_method_save": None,
            },
            setup_intent=None,
            shipping_address_collection=None,
            shipping_cost=None,
            shipping_options=[],
            status="open",
            submit_type=None,
            subscription=None,
            success_url=success_url,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            ui_mode="hosted",
            url=f"{url_base}/checkout/{session_id}",
            wallet_options=None,
        )
        return obj

    def customer_details(self, email: str | None, name: str | None) -> JSON:
        """The ``customer_details`` Checkout fills in when the customer pays."""
        details: JSON = self.template("checkout.session")["customer_details"]
        details.update(address=_null_address(), email=email, name=name, tax_ids=[])
        return details

    def portal_session(
        self, *, created: int, customer: str, return_url: str | None, url_base: str
    ) -> JSON:
        """A billing portal session whose ``url`` is the emulator."""
        obj = self.template("billing_portal.session")
        session_id = new_id("bps_")
        obj.update(
            id=session_id,
            configuration="bpc_emulator_default",
            created=created,
            customer=customer,
            customer_account=None,
            flow=None,
            livemode=False,
            locale=None,
            on_behalf_of=None,
            return_url=return_url,
            url=f"{url_base}/billing_portal/{session_id}",
        )
        return obj

    def event(
        self,
        *,
        event_type: str,
        created: int,
        obj: JSON,
        previous_attributes: JSON | None,
        pending_webhooks: int,
        request_id: str | None,
        idempotency_key: str | None,
    ) -> JSON:
        """An event whose ``data.object`` is a snapshot of ``obj``."""
        event = self.template("event")
        data: JSON = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = copy.deepcopy(previous_attributes)
        event.update(
            id=new_id("evt_"),
            api_version=API_VERSION,
            created=created,
            data=data,
            livemode=False,
            pending_webhooks=pending_webhooks,
            request={"id": request_id, "idempotency_key": idempotency_key},
            type=event_type,
        )
        return event
