"""Both Stripe object shapes read the same way."""

from __future__ import annotations

import copy
import json
from typing import Any

import stripe

from billing_service.stripe_shapes import (
    from_timestamp,
    invoice_subscription_id,
    subscription_snapshot,
)
from tests.support.processes import REPO_ROOT

FIXTURES = json.loads(
    (REPO_ROOT / "tests/fixtures/stripe_fixtures3.json").read_text(encoding="utf-8")
)["resources"]


def current_subscription() -> dict[str, Any]:
    sub = copy.deepcopy(FIXTURES["subscription"])
    sub.update(id="sub_1", customer="cus_1", status="active", cancel_at_period_end=False)
    sub["cancel_at"] = None
    item = sub["items"]["data"][0]
    item.update(current_period_start=1_700_000_000, current_period_end=1_702_592_000)
    item["price"]["id"] = "price_pro_monthly"
    return sub


def legacy_subscription() -> dict[str, Any]:
    sub = current_subscription()
    item = sub["items"]["data"][0]
    sub["current_period_start"] = item.pop("current_period_start")
    sub["current_period_end"] = item.pop("current_period_end")
    return sub


def test_fixture_is_current_shape() -> None:
    assert "current_period_end" not in FIXTURES["subscription"]
    assert "current_period_end" in FIXTURES["subscription"]["items"]["data"][0]


def test_current_and_legacy_subscription_read_alike() -> None:
    current, legacy = (
        subscription_snapshot(current_subscription()),
        subscription_snapshot(legacy_subscription()),
    )
    assert current == legacy
    assert current.current_period_end == from_timestamp(1_702_592_000)
    assert current.price_id == "price_pro_monthly"
    assert current.customer_id == "cus_1"


def test_stripe_object_is_accepted() -> None:
    obj = stripe.StripeObject.construct_from(current_subscription(), "sk_test_x")
    assert not isinstance(obj, dict)
    assert subscription_snapshot(obj).id == "sub_1"


def test_expanded_customer_and_cancel_at_period_end() -> None:
    sub = current_subscription()
    sub["customer"] = {"id": "cus_9", "object": "customer"}
    sub["cancel_at_period_end"] = True
    snapshot = subscription_snapshot(sub)
    assert snapshot.customer_id == "cus_9"
    assert snapshot.cancel_at_period_end


def test_cancel_at_equal_to_period_end_means_cancelling() -> None:
    sub = current_subscription()
    sub["cancel_at"] = 1_702_592_000
    assert subscription_snapshot(sub).cancel_at_period_end


def test_invoice_subscription_in_both_shapes() -> None:
    invoice = copy.deepcopy(FIXTURES["invoice"])
    invoice["parent"] = {
        "type": "subscription_details",
        "subscription_details": {"subscription": "sub_new", "metadata": {}},
        "quote_details": None,
    }
    assert invoice_subscription_id(invoice) == "sub_new"
    legacy = {"id": "in_1", "object": "invoice", "subscription": "sub_old", "parent": None}
    assert invoice_subscription_id(legacy) == "sub_old"
    assert invoice_subscription_id({"id": "in_2", "parent": None}) == ""
