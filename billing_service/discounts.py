"""A subscription's discount, read from either Stripe API shape and stored as JSON.

Older API versions put the whole discount, its ``coupon`` inside, in the
subscription's ``discount``; newer ones list discount ids in ``discounts``
(objects only when expanded) and name the coupon under ``source.coupon``.
When only ids arrive, ``pending_ids`` says so and the subscription is
fetched from Stripe with them expanded (``billing_service.events.resolve``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Discount:
    """What a product page shows of a discount; amounts in the currency's minor unit."""

    name: str = ""
    percent_off: float = 0.0
    amount_off: int = 0
    currency: str = ""
    # Unix time the discount stops applying; 0 when it runs forever.
    end: int = 0
    # The code the customer entered ("" when applied without one).
    promotion_code: str = ""
    coupon_id: str = ""

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Discount | None:
        """The stored form back ("" or unreadable: no discount)."""
        try:
            data = json.loads(raw) if raw else None
            return cls(**data) if isinstance(data, dict) else None
        except (ValueError, TypeError):
            return None


def _coupon(discount: Mapping[str, Any]) -> Mapping[str, Any] | str | None:
    source = discount.get("source")
    if isinstance(source, Mapping) and source.get("coupon"):
        found: Mapping[str, Any] | str = source["coupon"]
        return found
    coupon = discount.get("coupon")
    return coupon if isinstance(coupon, Mapping | str) else None


def _read(discount: Mapping[str, Any]) -> Discount | None:
    """A discount object whose coupon is expanded; None when the coupon is only an id."""
    coupon = _coupon(discount)
    if not isinstance(coupon, Mapping):
        return None
    promo = discount.get("promotion_code")
    code = str(promo.get("code") or "") if isinstance(promo, Mapping) else ""
    return Discount(
        name=str(coupon.get("name") or ""),
        percent_off=float(coupon.get("percent_off") or 0),
        amount_off=int(coupon.get("amount_off") or 0),
        currency=str(coupon.get("currency") or ""),
        end=int(discount.get("end") or 0),
        promotion_code=code,
        coupon_id=str(coupon.get("id") or ""),
    )


def subscription_discount(sub: Mapping[str, Any]) -> tuple[Discount | None, bool]:
    """(the first discount, True when it is there but not expanded enough to read)."""
    listed = sub.get("discounts")
    if isinstance(listed, list) and listed:
        first = listed[0]
        if isinstance(first, Mapping):
            found = _read(first)
            return found, found is None
        return None, True
    legacy = sub.get("discount")
    if isinstance(legacy, Mapping):
        found = _read(legacy)
        return found, found is None
    return None, False
