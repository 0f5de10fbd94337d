"""The /v1 API through the official SDK: checkout, errors, idempotency, subscriptions, events."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
import stripe

from devtools.stripe_emulator.process import EmulatorProcess

from .conftest import API_KEY, DAY, PRO, STUDIO, checkout_subscription, make_client


async def related_events(client: Any, since: int, ids: set[str]) -> list[Any]:
    """Events since ``since`` about the given objects, oldest first."""
    page = await client.v1.events.list_async({"created": {"gte": since}, "limit": 100})
    events = [e for e in page.data if e.data.object.id in ids]
    return list(reversed(events))


async def test_checkout_creates_active_subscription_with_events_in_order(
    client: Any, emulator: EmulatorProcess
) -> None:
    since = emulator.health()["now"]
    session, sub = await checkout_subscription(client, emulator)
    assert session.status == "complete" and session.payment_status == "paid"
    assert session.customer == sub.customer and session.subscription == sub.id
    assert session.client_reference_id == "u1" and session.metadata.to_dict() == {"user_id": "u1"}
    assert sub.status == "active" and sub.metadata.to_dict() == {"user_id": "u1"}
    customer = await client.v1.customers.retrieve_async(sub.customer)
    assert customer.email == "buyer@example.com"

    ids = {session.id, sub.id, sub.customer, sub.latest_invoice}
    types = [e.type for e in await related_events(client, since, ids)]
    assert types == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]


async def test_checkout_page_and_payment_failure(client: Any, emulator: EmulatorProcess) -> None:
    session, sub = await checkout_subscription(client, emulator, payment="fail")
    assert sub.status == "incomplete"
    invoice = await client.v1.invoices.retrieve_async(sub.latest_invoice)
    assert invoice.status == "open" and invoice.attempt_count == 1
    assert session.payment_status == "unpaid"

    other = await client.v1.checkout.sessions.create_async(
        {"mode": "subscription", "line_items": [{"price": PRO, "quantity": 1}]}
    )
    assert other.url == f"{emulator.base_url}/checkout/{other.id}"
    with urllib.request.urlopen(other.url) as page:  # noqa: S310
        assert b"Pay" in page.read()


async def test_invalid_params_name_the_param(client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(
            {"mode": "subscription", "line_items": [{"price": "price_nope", "quantity": 1}]}
        )
    assert caught.value.http_status == 400
    assert caught.value.param == "line_items[0][price]"
    assert caught.value.code == "resource_missing"
    body = caught.value.json_body["error"]  # type: ignore[index]
    assert body["type"] == "invalid_request_error" and "price_nope" in body["message"]

    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.checkout.sessions.create_async({"line_items": [{"price": PRO}]})
    assert missing.value.param == "mode"

    with pytest.raises(stripe.InvalidRequestError) as portal:
        await client.v1.billing_portal.sessions.create_async({"customer": "cus_missing"})
    assert portal.value.param == "customer"


async def test_unknown_id_is_404_resource_missing(client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.subscriptions.retrieve_async("sub_doesnotexist")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"
    assert caught.value.param == "id"


async def test_bad_api_key(emulator: EmulatorProcess, http_client: Any) -> None:
    bad = make_client(emulator.base_url, http_client, key="sk_live_supersecretvalue123")
    with pytest.raises(stripe.AuthenticationError) as caught:
        await bad.v1.customers.list_async()
    assert caught.value.http_status == 401
    body = caught.value.json_body["error"]  # type: ignore[index]
    assert body["type"] == "invalid_request_error"
    assert "supersecretvalue" not in body["message"]
    assert body["message"].startswith("Invalid API Key provided: ")


def _raw_post(base_url: str, path: str, form: str, key: str) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310
        f"{base_url}{path}",
        data=form.encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {API_KEY}",
            "Idempotency-Key": key,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


async def test_idempotency_replay_and_mismatch(client: Any, emulator: EmulatorProcess) -> None:
    key = str(uuid.uuid4())
    params = {"email": "idem@example.com", "metadata": {"user_id": "u9"}}
    first = await client.v1.customers.create_async(params, {"idempotency_key": key})
    second = await client.v1.customers.create_async(params, {"idempotency_key": key})
    assert first.id == second.id
    listed = await client.v1.customers.list_async({"email": "idem@example.com"})
    assert [c.id for c in listed.data] == [first.id]

    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.create_async(
            {"email": "other@example.com"}, {"idempotency_key": key}
        )

    raw_key = str(uuid.uuid4())
    status, headers, body = _raw_post(emulator.base_url, "/v1/customers", "email=r%40x.io", raw_key)
    assert status == 200 and "Idempotent-Replayed" not in headers
    status, headers, again = _raw_post(
        emulator.base_url, "/v1/customers", "email=r%40x.io", raw_key
    )
    assert status == 200 and headers["Idempotent-Replayed"] == "true" and again == body
    status, _, error = _raw_post(emulator.base_url, "/v1/customers", "email=z%40x.io", raw_key)
    assert status == 400 and error["error"]["type"] == "idempotency_error"


async def test_customers_update_and_list(client: Any) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    created = [await client.v1.customers.create_async({"email": email}) for _ in range(3)]
    updated = await client.v1.customers.update_async(created[0].id, {"metadata": {"a": "1"}})
    assert updated.metadata.to_dict() == {"a": "1"}
    page = await client.v1.customers.list_async({"email": email, "limit": 2})
    assert [c.id for c in page.data] == [created[2].id, created[1].id] and page.has_more
    rest = await client.v1.customers.list_async(
        {"email": email, "limit": 2, "starting_after": created[1].id}
    )
    assert [c.id for c in rest.data] == [created[0].id] and not rest.has_more


async def test_prices(client: Any) -> None:
    seeded = await client.v1.prices.retrieve_async(STUDIO)
    assert seeded.unit_amount == 4900 and seeded.recurring.interval == "month"
    made = await client.v1.prices.create_async(
        {
            "currency": "usd",
            "unit_amount": 500,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Extra"},
        }
    )
    assert made.id.startswith("price_") and made.product.startswith("prod_")
    listed = await client.v1.prices.list_async({"product": made.product})
    assert [p.id for p in listed.data] == [made.id]


async def test_subscription_update_cancel_and_list(client: Any, emulator: EmulatorProcess) -> None:
    _, sub = await checkout_subscription(client, emulator)
    sub = await client.v1.subscriptions.update_async(
        sub.id, {"cancel_at_period_end": True, "metadata": {"plan": "pro"}}
    )
    assert sub.cancel_at_period_end is True
    assert sub.cancel_at == sub["items"].data[0].current_period_end
    assert sub.metadata.to_dict() == {"user_id": "u1", "plan": "pro"}
    event = (await client.v1.events.list_async({"type": "customer.subscription.updated"})).data[0]
    assert event.data.object.id == sub.id
    assert event.data.previous_attributes.cancel_at_period_end is False
    assert event.request.id and event.request.idempotency_key

    canceled = await client.v1.subscriptions.cancel_async(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at and canceled.canceled_at
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.subscriptions.cancel_async(sub.id)
    assert again.value.http_status == 400

    active = await client.v1.subscriptions.list_async({"customer": sub.customer})
    assert active.data == []
    everything = await client.v1.subscriptions.list_async(
        {"customer": sub.customer, "status": "all"}
    )
    assert [s.id for s in everything.data] == [sub.id]
    deleted = (await client.v1.events.list_async({"type": "customer.subscription.deleted"})).data
    assert deleted[0].data.object.id == sub.id


async def test_plan_change_and_preview(client: Any, emulator: EmulatorProcess) -> None:
    _, sub = await checkout_subscription(client, emulator)
    item = sub["items"].data[0]
    preview = await client.v1.invoices.create_preview_async(
        {
            "customer": sub.customer,
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": item.id, "price": STUDIO}],
                "proration_behavior": "always_invoice",
            },
        }
    )
    # Just after the period started, nearly the whole difference is due.
    assert 3000 - 20 <= preview.amount_due <= 3000
    assert preview.parent.subscription_details.subscription == sub.id

    updated = await client.v1.subscriptions.update_async(
        sub.id,
        {"items": [{"id": item.id, "price": STUDIO}], "proration_behavior": "always_invoice"},
    )
    assert updated["items"].data[0].price.id == STUDIO
    assert updated["items"].data[0].id == item.id
    invoice = await client.v1.invoices.retrieve_async(updated.latest_invoice)
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_due == preview.amount_due and invoice.status == "paid"
    invoices = await client.v1.invoices.list_async({"subscription": sub.id})
    assert len(invoices.data) == 2

    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.subscriptions.update_async(
            sub.id, {"items": [{"id": item.id, "price": "price_nope"}]}
        )
    assert caught.value.param == "items[0][price]"


async def test_create_subscription_pause_and_resume(client: Any, emulator: EmulatorProcess) -> None:
    customer = await client.v1.customers.create_async({"email": "trial@example.com"})
    sub = await client.v1.subscriptions.create_async(
        {
            "customer": customer.id,
            "items": [{"price": PRO}],
            "trial_period_days": 5,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
            "metadata": {"user_id": "u5"},
        }
    )
    assert sub.status == "trialing" and sub.trial_end == sub.trial_start + 5 * DAY
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.resume_async(sub.id)
    result = emulator.advance_clock(6 * DAY)
    mine = [e for e in result["events"] if e["type"].startswith("customer.subscription.")]
    assert mine
    sub = await client.v1.subscriptions.retrieve_async(sub.id)
    assert sub.status == "paused"
    resumed = await client.v1.subscriptions.resume_async(sub.id)
    assert resumed.status == "active"
    paused_events = await client.v1.events.list_async({"types": ["customer.subscription.paused"]})
    assert any(e.data.object.id == sub.id for e in paused_events.data)
    resumed_events = await client.v1.events.list_async({"type": "customer.subscription.resumed"})
    assert resumed_events.data[0].data.object.id == sub.id

    collecting = await client.v1.subscriptions.update_async(
        sub.id, {"pause_collection": {"behavior": "void"}}
    )
    assert collecting.pause_collection.behavior == "void" and collecting.status == "active"
    cleared = await client.v1.subscriptions.update_async(sub.id, {"pause_collection": ""})
    assert cleared.pause_collection is None


async def test_event_list_pagination_and_filters(client: Any) -> None:
    since_page = await client.v1.events.list_async({"limit": 1})
    newest = since_page.data[0]
    made = [
        await client.v1.customers.create_async({"email": f"e{i}@example.com"}) for i in range(3)
    ]
    page = await client.v1.events.list_async({"type": "customer.created", "limit": 2})
    assert [e.data.object.id for e in page.data] == [made[2].id, made[1].id]
    assert page.has_more
    later = await client.v1.events.list_async(
        {"type": "customer.created", "limit": 2, "starting_after": page.data[1].id}
    )
    assert later.data[0].data.object.id == made[0].id
    newer = await client.v1.events.list_async({"ending_before": newest.id, "limit": 100})
    assert newer.data[-1].data.object.id == made[0].id
    assert not newer.has_more
    filtered = await client.v1.events.list_async(
        {"created": {"gte": newest.created}, "types": ["customer.created"], "limit": 100}
    )
    assert {c.id for c in made} <= {e.data.object.id for e in filtered.data}
    one = await client.v1.events.retrieve_async(page.data[0].id)
    assert one.id == page.data[0].id and one.type == "customer.created"


async def test_checkout_sessions_list_by_customer_and_status_and_expire(
    client: Any, emulator: EmulatorProcess
) -> None:
    since = emulator.health()["now"]
    customer = await client.v1.customers.create_async({"email": "two@example.com"})
    params = {
        "mode": "subscription",
        "customer": customer.id,
        "line_items": [{"price": PRO, "quantity": 1}],
        "success_url": "https://app.example.com/ok",
    }
    older = await client.v1.checkout.sessions.create_async(params)
    newer = await client.v1.checkout.sessions.create_async(params)
    listed = await client.v1.checkout.sessions.list_async(
        {"customer": customer.id, "status": "open"}
    )
    assert [s.id for s in listed.data] == [newer.id, older.id]

    expired = await client.v1.checkout.sessions.expire_async(older.id)
    assert (expired.status, expired.url) == ("expired", None)
    still_open = await client.v1.checkout.sessions.list_async(
        {"customer": customer.id, "status": "open"}
    )
    assert [s.id for s in still_open.data] == [newer.id]
    every = await client.v1.checkout.sessions.list_async({"customer": customer.id})
    assert {s.id for s in every.data} == {older.id, newer.id}
    types = [e.type for e in await related_events(client, since, {older.id})]
    assert types == ["checkout.session.expired"]

    with pytest.raises(stripe.InvalidRequestError, match="can be expired"):
        await client.v1.checkout.sessions.expire_async(older.id)
    with pytest.raises(stripe.InvalidRequestError) as bad:
        await client.v1.checkout.sessions.list_async({"status": "paid"})
    assert bad.value.param == "status"
    with pytest.raises(Exception, match="not open"):
        emulator.complete_checkout(older.id)
