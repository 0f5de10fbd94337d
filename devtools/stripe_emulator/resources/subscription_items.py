"""A subscription's ``items[]``: parsing them for a new subscription, and changing them.

Changes are prorated linearly in seconds over the current period; each change
yields proration line specs ``(item id, amount, description)`` that an
invoice turns into lines (now, or at the next renewal).
"""

from __future__ import annotations

import copy
from typing import Any

from ..account import Account
from ..errors import StripeError
from ..forms import as_bool, as_int, as_list
from ..objects import JSON, new_subscription_item, plan_from_price
from .catalog import price_param
from .periods import current_period

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")

#: A proration line to invoice: (subscription item id, amount in cents, description).
ProrationSpec = tuple[str, int, str]


def _price_name(price: JSON) -> str:
    return str(price["nickname"] or price["id"])


def items_param(account: Account, params: dict[str, Any]) -> list[tuple[str, int]]:
    """The ``items[i][price/quantity]`` of a new subscription as (price id, quantity)."""
    raw_items = as_list(params.get("items"), "items")
    if not raw_items:
        raise StripeError.missing_param("items")
    result = []
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise StripeError.invalid("Invalid item", param=f"items[{index}]")
        price = price_param(account, raw.get("price"), f"items[{index}][price]")
        if price["recurring"] is None:
            raise StripeError.invalid(
                "The price specified is not recurring.", param=f"items[{index}][price]"
            )
        quantity = as_int(raw.get("quantity", 1), f"items[{index}][quantity]", minimum=1)
        result.append((price["id"], quantity))
    return result


def change_items(
    account: Account, sub: JSON, raw_items: list[Any], proration: str, proration_date: int | None
) -> list[ProrationSpec]:
    """Apply ``items[]`` changes; returns the proration line specs they cause."""
    now = proration_date or account.clock.now()
    start, end = current_period(sub)
    fraction = max(0.0, min(1.0, (end - now) / (end - start))) if end > start else 0.0
    prorate = proration != "none" and sub["status"] != "trialing"
    by_id = {item["id"]: item for item in sub["items"]["data"]}
    specs: list[ProrationSpec] = []
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise StripeError.invalid("Invalid item", param=f"items[{index}]")
        item_id = raw.get("id")
        if item_id:
            item = by_id.get(str(item_id))
            if item is None:
                raise StripeError(
                    400,
                    f"No such subscription item: '{item_id}'",
                    param=f"items[{index}][id]",
                    code="resource_missing",
                )
            old_amount = int(item["price"]["unit_amount"]) * int(item["quantity"])
            if raw.get("deleted") not in (None, "") and as_bool(
                raw["deleted"], f"items[{index}][deleted]"
            ):
                sub["items"]["data"].remove(item)
                if prorate and old_amount:
                    specs.append(
                        (
                            item["id"],
                            -round(old_amount * fraction),
                            f"Unused time on {_price_name(item['price'])}",
                        )
                    )
                continue
            old_name = item["price"]["nickname"] or item["price"]["id"]
            if raw.get("price"):
                price = price_param(account, raw["price"], f"items[{index}][price]")
                item["price"] = copy.deepcopy(price)
                item["plan"] = plan_from_price(account.fx, price)
            if raw.get("quantity") not in (None, ""):
                item["quantity"] = as_int(raw["quantity"], f"items[{index}][quantity]", minimum=1)
            new_amount = int(item["price"]["unit_amount"]) * int(item["quantity"])
            new_name = item["price"]["nickname"] or item["price"]["id"]
            if prorate and new_amount != old_amount:
                specs.append(
                    (item["id"], -round(old_amount * fraction), f"Unused time on {old_name}")
                )
                specs.append(
                    (item["id"], round(new_amount * fraction), f"Remaining time on {new_name}")
                )
        else:
            price = price_param(account, raw.get("price"), f"items[{index}][price]")
            quantity = as_int(raw.get("quantity", 1), f"items[{index}][quantity]", minimum=1)
            item = new_subscription_item(
                account.fx,
                subscription=sub["id"],
                price=price,
                created=account.clock.now(),
                period_start=start,
                period_end=end,
                quantity=quantity,
            )
            sub["items"]["data"].append(item)
            amount = int(price["unit_amount"]) * quantity
            if prorate and amount:
                specs.append(
                    (
                        item["id"],
                        round(amount * fraction),
                        f"Remaining time on {price['nickname'] or price['id']}",
                    )
                )
    if not sub["items"]["data"]:
        raise StripeError.invalid("A subscription must have at least one item.", param="items")
    return specs
