"""Every object the emulator returns carries every top-level key of Stripe's fixture."""

from __future__ import annotations

from typing import Any

from devtools.stripe_emulator.process import EmulatorProcess

from .conftest import FIXTURES, PRO, checkout_subscription


def assert_keys(kind: str, obj: Any) -> None:
    data = obj if isinstance(obj, dict) else obj.to_dict()
    missing = sorted(set(FIXTURES[kind]) - set(data))
    assert not missing, f"{kind} lacks {missing}"
    assert data["object"] == kind


async def test_every_fixture_key_is_present(client: Any, emulator: EmulatorProcess) -> None:
    session, sub = await checkout_subscription(client, emulator)
    assert_keys("checkout.session", session)
    assert_keys("subscription", sub)
    item = sub.to_dict()["items"]["data"][0]
    assert_keys("subscription_item", item)
    assert_keys("price", item["price"])

    customer = await client.v1.customers.retrieve_async(sub.customer)
    assert_keys("customer", customer)
    price = await client.v1.prices.retrieve_async(PRO)
    assert_keys("price", price)
    product = await client.v1.products.retrieve_async(price.product)
    assert_keys("product", product)
    invoice = await client.v1.invoices.retrieve_async(sub.latest_invoice)
    assert_keys("invoice", invoice)
    line = invoice.to_dict()["lines"]["data"][0]
    assert not set(FIXTURES["invoice"]["lines"]["data"][0]) - set(line)
    portal = await client.v1.billing_portal.sessions.create_async(
        {"customer": sub.customer, "return_url": "http://localhost/account"}
    )
    assert_keys("billing_portal.session", portal)
    assert portal.url.startswith(emulator.base_url)
    events = await client.v1.events.list_async({"limit": 1})
    assert_keys("event", events.data[0])


async def test_current_api_version_shapes(client: Any, emulator: EmulatorProcess) -> None:
    _, sub = await checkout_subscription(client, emulator)
    data = sub.to_dict()
    assert "current_period_start" not in data
    assert "current_period_end" not in data
    item = data["items"]["data"][0]
    assert item["current_period_start"] == data["start_date"]
    assert item["current_period_end"] > item["current_period_start"] + 27 * 86400
    assert item["price"]["id"] == PRO and item["subscription"] == sub.id

    invoice = (await client.v1.invoices.retrieve_async(sub.latest_invoice)).to_dict()
    assert invoice["parent"]["type"] == "subscription_details"
    assert invoice["parent"]["subscription_details"]["subscription"] == sub.id
    assert invoice["parent"]["subscription_details"]["metadata"] == {"user_id": "u1"}
    assert invoice["status"] == "paid" and invoice["amount_paid"] == 1900
    assert invoice["billing_reason"] == "subscription_create"

    event = (await client.v1.events.list_async({"type": "customer.subscription.created"})).data[0]
    assert event.api_version and event.livemode is False
    assert event.to_dict()["data"]["object"]["object"] == "subscription"
    assert set(event.to_dict()["request"]) == {"id", "idempotency_key"}
