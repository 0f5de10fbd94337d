"""The customer object."""

from __future__ import annotations

import secrets

from .fixtures import JSON, Fixtures, new_id


def new_customer(
    fx: Fixtures,
    *,
    created: int,
    email: str | None,
    name: str | None = None,
    description: str | None = None,
    phone: str | None = None,
    metadata: dict[str, str] | None = None,
) -> JSON:
    """A new customer."""
    obj = fx.template("customer")
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
