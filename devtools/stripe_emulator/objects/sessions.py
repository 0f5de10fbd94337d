"""Hosted sessions: Checkout Sessions (and what they collect) and billing portal sessions."""

from __future__ import annotations

from .fixtures import JSON, Fixtures, new_id


def _null_address() -> JSON:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def new_checkout_session(
    fx: Fixtures,
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
    obj = fx.template("checkout.session")
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


def customer_details(fx: Fixtures, email: str | None, name: str | None) -> JSON:
    """The ``customer_details`` Checkout fills in when the customer pays."""
    details: JSON = fx.template("checkout.session")["customer_details"]
    details.update(address=_null_address(), email=email, name=name, tax_ids=[])
    return details


def new_portal_session(
    fx: Fixtures, *, created: int, customer: str, return_url: str | None, url_base: str
) -> JSON:
    """A billing portal session whose ``url`` is the emulator."""
    obj = fx.template("billing_portal.session")
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
