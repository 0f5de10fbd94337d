"""A subscription's seats, interval, trial end and discount, read from both API shapes."""

from __future__ import annotations

from typing import Any

from billing_service.discounts import Discount
from billing_service.stripe_shapes import subscription_snapshot

COUPON = {"id": "LAUNCH", "name": "Launch", "percent_off": 20.0, "amount_off": None}


def _sub(**fields: Any) -> dict[str, Any]:
    item = {
        "quantity": 4,
        "current_period_start": 1_700_000_000,
        "current_period_end": 1_731_536_000,
        "price": {
            "id": "price_y",
            "unit_amount": 12000,
            "currency": "usd",
            "recurring": {"interval": "year"},
        },
    }
    return {
        "id": "sub_1",
        "customer": "cus_1",
        "status": "trialing",
        "currency": "usd",
        "trial_end": 1_701_000_000,
        "items": {"data": [item]},
        **fields,
    }


def test_current_shape_with_expanded_discounts() -> None:
    discount = {
        "end": 1_708_000_000,
        "source": {"type": "coupon", "coupon": COUPON},
        "promotion_code": {"id": "promo_1", "code": "LAUNCH20"},
    }
    snapshot = subscription_snapshot(_sub(discounts=[discount]))
    assert (snapshot.interval, snapshot.quantity, snapshot.unit_amount) == ("year", 4, 12000)
    assert snapshot.trial_end is not None and snapshot.trial_end.year == 2023
    assert snapshot.discount == Discount(
        name="Launch",
        percent_off=20.0,
        end=1_708_000_000,
        promotion_code="LAUNCH20",
        coupon_id="LAUNCH",
    )
    assert not snapshot.discount_pending


def test_current_shape_with_discount_ids_is_pending() -> None:
    snapshot = subscription_snapshot(_sub(discounts=["di_1"]))
    assert (snapshot.discount, snapshot.discount_pending) == (None, True)


def test_legacy_shape_discount_with_coupon_and_plan() -> None:
    coupon = {
        "id": "TENOFF",
        "name": None,
        "percent_off": None,
        "amount_off": 1000,
        "currency": "usd",
    }
    legacy = {
        "id": "sub_1",
        "customer": "cus_1",
        "status": "active",
        "quantity": 2,
        "current_period_start": 1_700_000_000,
        "current_period_end": 1_702_592_000,
        "plan": {"id": "price_m", "amount": 1900, "currency": "usd", "interval": "month"},
        "discount": {"coupon": coupon, "end": None, "promotion_code": "promo_x"},
        "items": {"data": [{"plan": {"id": "price_m", "amount": 1900, "interval": "month"}}]},
    }
    snapshot = subscription_snapshot(legacy)
    assert (snapshot.interval, snapshot.quantity, snapshot.unit_amount) == ("month", 2, 1900)
    assert snapshot.discount == Discount(amount_off=1000, currency="usd", coupon_id="TENOFF")
    assert snapshot.trial_end is None


def test_no_discount_and_stored_form_round_trips() -> None:
    snapshot = subscription_snapshot(_sub(discounts=[]))
    assert (snapshot.discount, snapshot.discount_pending) == (None, False)
    stored = Discount(name="x", percent_off=5.5, end=10)
    assert Discount.from_json(stored.to_json()) == stored
    assert Discount.from_json("") is None
    assert Discount.from_json("not json") is None
