"""Coupons, promotion codes and the discounts they make, shaped after Stripe's fixtures.

The current API shape: a promotion code names its coupon under
``promotion.coupon``, a discount under ``source.coupon``; subscriptions and
sessions list discount ids in ``discounts`` (expand ``discounts`` to read
them).
"""

from __future__ import annotations

from typing import Any

from ..account import Account
from ..errors import StripeError
from ..forms import as_bool, as_int, as_metadata
from ..listing import paginate
from ..objects import JSON, new_id

_DURATIONS = ("once", "repeating", "forever")


def create_coupon(account: Account, params: dict[str, Any]) -> JSON:
    """POST /v1/coupons: ``percent_off`` or ``amount_off`` + ``currency``."""
    percent, amount = params.get("percent_off"), params.get("amount_off")
    if (percent is None) == (amount is None):
        raise StripeError.invalid(
            "You must pass exactly one of percent_off or amount_off.", param="percent_off"
        )
    duration = params.get("duration", "once")
    if duration not in _DURATIONS:
        raise StripeError.invalid(f"Invalid duration: {duration}", param="duration")
    months = None
    if duration == "repeating":
        months = as_int(params.get("duration_in_months"), "duration_in_months", minimum=1)
    coupon = account.fx.template("coupon")
    coupon.update(
        id=str(params.get("id") or new_id("", 8)),
        amount_off=None if amount is None else as_int(amount, "amount_off", minimum=1),
        currency=None if amount is None else str(params.get("currency") or "usd"),
        percent_off=None if percent is None else float(percent),
        created=account.clock.now(),
        duration=duration,
        duration_in_months=months,
        max_redemptions=None,
        metadata=as_metadata(params.get("metadata")),
        name=params.get("name") or None,
        redeem_by=None,
        times_redeemed=0,
        valid=True,
    )
    account.store.coupons[coupon["id"]] = coupon
    return coupon


def create_promotion_code(account: Account, params: dict[str, Any]) -> JSON:
    """POST /v1/promotion_codes with ``promotion[type]=coupon``, ``promotion[coupon]``, ``code``."""
    promotion = params.get("promotion") or {}
    coupon_id = promotion.get("coupon") if isinstance(promotion, dict) else None
    if not coupon_id:
        raise StripeError.missing_param("promotion[coupon]")
    store = account.store
    store.get("coupons", str(coupon_id), param="promotion[coupon]", status=400)
    code = str(params.get("code") or new_id("", 8).upper())
    if any(p["code"] == code and p["active"] for p in store.promotion_codes.values()):
        raise StripeError.invalid(
            "An active promotion code with `code` already exists.", param="code"
        )
    promo = account.fx.template("promotion_code")
    promo.update(
        id=new_id("promo_"),
        active=as_bool(params.get("active", True), "active"),
        code=code,
        created=account.clock.now(),
        customer=params.get("customer") or None,
        expires_at=None,
        max_redemptions=None,
        metadata=as_metadata(params.get("metadata")),
        promotion={"coupon": str(coupon_id), "type": "coupon"},
        times_redeemed=0,
    )
    store.promotion_codes[promo["id"]] = promo
    return promo


def list_promotion_codes(account: Account, params: dict[str, Any]) -> JSON:
    """GET /v1/promotion_codes filtered by ``code``, ``active`` and ``coupon``."""
    code, coupon = params.get("code"), params.get("coupon")
    active = params.get("active")
    wanted = None if active is None else as_bool(active, "active")
    rows = [
        promo
        for promo in reversed(account.store.promotion_codes.values())
        if (not code or promo["code"] == code)
        and (not coupon or promo["promotion"]["coupon"] == coupon)
        and (wanted is None or promo["active"] == wanted)
    ]
    return paginate(rows, params, "/v1/promotion_codes")


def redeemable_promotion_code(account: Account, promo_id: str, param: str) -> JSON:
    """The active promotion code ``promo_id`` (a Stripe error naming ``param`` otherwise)."""
    promo = account.store.get("promotion_codes", promo_id, param=param, status=400)
    if not promo["active"]:
        raise StripeError.invalid(f"The promotion code `{promo['code']}` is inactive.", param=param)
    return promo


def apply_discount(
    account: Account, promo_id: str, *, now: int, customer: str, subscription: str
) -> JSON:
    """A discount from ``promo_id`` on a subscription, starting ``now``; counts the redemption."""
    store = account.store
    promo = store.promotion_codes[promo_id]
    coupon = store.coupons[promo["promotion"]["coupon"]]
    end = None
    if coupon["duration"] == "repeating":
        end = now + int(coupon["duration_in_months"]) * 30 * 86400
    elif coupon["duration"] == "once":
        end = now + 31 * 86400
    discount = account.fx.template("discount")
    discount.update(
        id=new_id("di_"),
        checkout_session=None,
        customer=customer,
        end=end,
        invoice=None,
        invoice_item=None,
        promotion_code=promo_id,
        source={"coupon": coupon["id"], "type": "coupon"},
        start=now,
        subscription=subscription,
        subscription_item=None,
    )
    promo["times_redeemed"] += 1
    coupon["times_redeemed"] += 1
    store.discounts[discount["id"]] = discount
    return discount
