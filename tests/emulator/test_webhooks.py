"""Signed webhook delivery: signatures, ordering, retries, hold and redelivery."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from devtools.waiting import wait_until_async

from .conftest import PLANS, Receiver, checkout_subscription, make_client

OLD_SECRET = "whsec_old_secret_for_rotation"
NEW_SECRET = "whsec_new_secret_for_rotation"


def timestamp(header: str) -> int:
    match = re.match(r"t=(\d+),", header)
    assert match, header
    return int(match.group(1))


async def test_every_delivery_verifies_with_each_secret_in_order(
    receiver: Receiver, http_client: stripe.AIOHTTPClient
) -> None:
    with EmulatorProcess(
        PLANS, webhook_urls=[receiver.url], webhook_secrets=[OLD_SECRET, NEW_SECRET]
    ) as emu:
        client = make_client(emu.base_url, http_client)
        _, sub = await checkout_subscription(client, emu)
        await client.v1.subscriptions.update_async(sub.id, {"metadata": {"k": "v"}})
        listed = await client.v1.events.list_async({"limit": 100})
        expected = [e.id for e in reversed(listed.data)]
        # Delivery is in creation order: once this later event arrived, every
        # delivery of the ones before it has too, and only once.
        sentinel = await client.v1.customers.create_async({"email": "sentinel@example.com"})
        await receiver.wait_for(len(expected) + 1)
        *before, (last_body, _) = receiver.received
        assert json.loads(last_body)["data"]["object"]["id"] == sentinel.id
        assert len(before) == len(expected)

        received_ids = []
        for body, header in before:
            assert header.count("v1=") == 2
            for secret in (OLD_SECRET, NEW_SECRET):
                event = stripe.Webhook.construct_event(body.decode(), header, secret)
                assert event.livemode is False
            with pytest.raises(stripe.SignatureVerificationError):
                stripe.Webhook.construct_event(body.decode(), header, "whsec_wrong")
            received_ids.append(json.loads(body)["id"])
        assert received_ids == expected
        assert [json.loads(b)["type"] for b, _ in receiver.received][:2] == [
            "customer.created",
            "customer.subscription.created",
        ]
        deliveries = emu.deliveries()
        assert len(deliveries) == len(expected) + 1
        assert all(d["status"] == 200 and d["attempt"] == 1 for d in deliveries)
    assert emu.returncode == 0


async def test_retry_after_500_has_fresh_signature_and_same_body(
    receiver: Receiver, http_client: stripe.AIOHTTPClient
) -> None:
    receiver.fail_first = 1
    with EmulatorProcess(PLANS, extra_args=["--webhook-retry-delays", "1.1,0.2"]) as emu:
        emu.add_webhook(receiver.url, [NEW_SECRET])
        client = make_client(emu.base_url, http_client)
        customer = await client.v1.customers.create_async({"email": "retry@example.com"})
        await receiver.wait_for(2)
        (first_body, first_header), (second_body, second_header) = receiver.received[:2]
        assert first_body == second_body
        assert json.loads(first_body)["data"]["object"]["id"] == customer.id
        assert timestamp(second_header) > timestamp(first_header)
        assert first_header != second_header
        stripe.Webhook.construct_event(second_body.decode(), second_header, NEW_SECRET)
        attempts = [(d["attempt"], d["status"]) for d in emu.deliveries()]
        assert attempts == [(1, 500), (2, 200)]


async def test_hold_and_deliver(receiver: Receiver, http_client: stripe.AIOHTTPClient) -> None:
    with EmulatorProcess(PLANS) as emu:
        emu.add_webhook(receiver.url, [NEW_SECRET])
        client = make_client(emu.base_url, http_client)
        emu.hold_webhooks(True)
        held = await client.v1.customers.create_async({"email": "held@example.com"})
        # Idle: the emulator is done with the held event (it was not sent).
        await wait_until_async(
            "deliveries to go idle", lambda: asyncio.to_thread(emu.deliveries_idle)
        )
        assert receiver.received == [] and emu.deliveries() == []
        missed = (await client.v1.events.list_async({"type": "customer.created"})).data[0]
        assert missed.data.object.id == held.id

        emu.hold_webhooks(False)
        later = await client.v1.customers.create_async({"email": "later@example.com"})
        # In creation order: the held event, were it still coming, would arrive first.
        await receiver.wait_for(1)
        ids = [json.loads(body)["data"]["object"]["id"] for body, _ in receiver.received]
        assert ids == [later.id]

        # The receiver runs in this event loop: call the blocking helper from a thread.
        attempts = await asyncio.to_thread(emu.deliver, missed.id)
        assert [a["status"] for a in attempts] == [200]
        await receiver.wait_for(2)
        body, header = receiver.received[1]
        event = stripe.Webhook.construct_event(body.decode(), header, NEW_SECRET)
        assert event.id == missed.id
