"""Catalog objects: products, prices and the legacy ``plan`` view of a price."""

from __future__ import annotations

from .fixtures import JSON, Fixtures, new_id


def new_product(
    fx: Fixtures,
    *,
    created: int,
    name: str,
    product_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> JSON:
    """A new service product."""
    obj = fx.template("product")
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


def new_price(
    fx: Fixtures,
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
    obj = fx.template("price")
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


def plan_from_price(fx: Fixtures, price: JSON) -> JSON:
    """The legacy ``plan`` view of a recurring price (still on subscription items)."""
    plan: JSON = fx.template("subscription_item")["plan"]
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
