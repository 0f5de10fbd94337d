"""Products and prices: seeded from the plans file, created and listed through ``/v1``."""

from __future__ import annotations

from typing import Any

from ..account import Account
from ..errors import StripeError
from ..forms import as_bool, as_int, as_metadata, reject_unknown
from ..listing import filter_list, paginate
from ..objects import JSON, new_price, new_product
from ..plans import MeterSeed, PlanSeed


def seed_plans(account: Account, plans: list[PlanSeed]) -> None:
    """A product per plan name and a price per plan entry, with the plans file's ids."""
    plan_products: dict[str, JSON] = {}
    for plan in plans:
        now = account.clock.now()
        product = new_product(account.fx, created=now, name=plan.name.replace("_", " ").title())
        price = new_price(
            account.fx,
            created=now,
            product=product["id"],
            unit_amount=plan.unit_amount,
            price_id=plan.price_id,
            nickname=plan.name,
            interval=plan.interval,
        )
        if plan.name in plan_products:
            product = plan_products[plan.name]
        else:
            product["default_price"] = price["id"]
            plan_products[plan.name] = product
        price["product"] = product["id"]
        account.store.products[product["id"]] = product
        account.store.prices[price["id"]] = price


def seed_meters(account: Account, meters: list[MeterSeed]) -> None:
    """A product and a metered price per billed meter; renewals bill their usage."""
    for meter in meters:
        now = account.clock.now()
        product = new_product(account.fx, created=now, name=meter.meter.replace("_", " ").title())
        price = new_price(
            account.fx,
            created=now,
            product=product["id"],
            unit_amount=meter.unit_amount,
            price_id=meter.price_id,
            nickname=meter.event_name,
        )
        price["recurring"]["usage_type"] = "metered"
        product["default_price"] = price["id"]
        account.store.products[product["id"]] = product
        account.store.prices[price["id"]] = price
        account.metered_prices[meter.event_name] = price


def price_param(account: Account, price_id: Any, param: str) -> JSON:
    """The price a parameter names, or a 400 naming ``param``."""
    if not isinstance(price_id, str) or not price_id:
        raise StripeError.missing_param(param)
    return account.store.get("prices", price_id, param=param, status=400)


def create_price(account: Account, params: dict[str, Any]) -> JSON:
    """POST /v1/prices."""
    reject_unknown(
        params,
        {
            "currency",
            "unit_amount",
            "product",
            "product_data",
            "recurring",
            "nickname",
            "lookup_key",
            "metadata",
            "active",
        },
    )
    currency = params.get("currency")
    if not currency:
        raise StripeError.missing_param("currency")
    if "unit_amount" not in params:
        raise StripeError.missing_param("unit_amount")
    amount = as_int(params["unit_amount"], "unit_amount", minimum=0)
    now = account.clock.now()
    if params.get("product"):
        product = account.store.get("products", str(params["product"]), param="product", status=400)
    else:
        data = params.get("product_data")
        if not isinstance(data, dict) or not data.get("name"):
            raise StripeError.missing_param("product_data[name]")
        product = new_product(account.fx, created=now, name=str(data["name"]))
        account.store.products[product["id"]] = product
        account.emit("product.created", product)
    recurring = params.get("recurring")
    interval: str | None = None
    count = 1
    if isinstance(recurring, dict):
        interval = str(recurring.get("interval") or "")
        if interval not in ("day", "week", "month", "year"):
            raise StripeError.invalid("Invalid interval", param="recurring[interval]")
        count = as_int(recurring.get("interval_count", 1), "recurring[interval_count]", minimum=1)
    price = new_price(
        account.fx,
        created=now,
        product=product["id"],
        unit_amount=amount,
        currency=str(currency).lower(),
        interval=interval,
        interval_count=count,
        nickname=params.get("nickname") or None,
        lookup_key=params.get("lookup_key") or None,
        metadata=as_metadata(params.get("metadata")),
    )
    account.store.prices[price["id"]] = price
    account.emit("price.created", price)
    return price


def list_prices(account: Account, params: dict[str, Any]) -> JSON:
    """GET /v1/prices."""
    product = params.get("product")
    active = as_bool(params["active"], "active") if "active" in params else None
    kind = params.get("type")
    lookup_keys = filter_list(params, "lookup_keys")
    rows = [
        p
        for p in reversed(account.store.prices.values())
        if (not product or p["product"] == product)
        and (active is None or p["active"] == active)
        and (not kind or p["type"] == kind)
        and (not lookup_keys or p["lookup_key"] in lookup_keys)
    ]
    return paginate(rows, params, "/v1/prices")


def list_products(account: Account, params: dict[str, Any]) -> JSON:
    """GET /v1/products."""
    return paginate(list(reversed(account.store.products.values())), params, "/v1/products")
