"""Multi-step flows shared by tests: checkout in the emulator, events into the service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import stripe

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

CALLER = (("x-billing-caller", "test-suite"),)


@asynccontextmanager
async def stripe_client(
    base_url: str, key: str = "sk_test_emulator"
) -> AsyncIterator[stripe.StripeClient]:
    """An SDK client pointed at a local Stripe-compatible server, closed on exit."""
    http = stripe.AIOHTTPClient()
    yield stripe.StripeClient(
        key, base_addresses={"api": base_url}, max_network_retries=0, http_client=http
    )
    await http.close_async()


async def apply_all_events(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, since: int = 0
) -> list[pb.ApplyStripeEventResponse]:
    """Apply every event the Stripe server holds (oldest first) through ApplyStripeEvent."""
    events: list[dict[str, Any]] = []
    params: Any = {"limit": 100, "created": {"gte": since}}
    while True:
        page = await client.v1.events.list_async(params)
        # The raw JSON, exactly as a webhook would carry it (to_dict() makes Decimals).
        assert page.last_response is not None
        events.extend(json.loads(page.last_response.body)["data"])
        if not page.has_more:
            break
        params["starting_after"] = page.data[-1].id
    events.sort(key=lambda e: (e["created"], e["id"]))
    return [
        await stub.ApplyStripeEvent(
            pb.ApplyStripeEventRequest(payload=json.dumps(event).encode()), timeout=10
        )
        for event in events
    ]


async def checkout(
    stub: pb_grpc.BillingServiceStub, user_id: str, plan: str = "pro", request_id: str = ""
) -> pb.CreateCheckoutResponse:
    """CreateCheckout with valid URLs."""
    return await stub.CreateCheckout(
        pb.CreateCheckoutRequest(
            user_id=user_id,
            email=f"{user_id}@example.com",
            plan=plan,
            success_url="https://app.example.com/ok",
            cancel_url="https://app.example.com/back",
            request_id=request_id,
        ),
        metadata=CALLER,
        timeout=10,
    )


async def subscribe(
    stub: pb_grpc.BillingServiceStub,
    emulator: Any,
    client: stripe.StripeClient,
    user_id: str,
    plan: str = "pro",
) -> pb.Subscription:
    """Checkout, pay in the emulator, apply the resulting events; returns the subscription."""
    session = await checkout(stub, user_id, plan)
    emulator.complete_checkout(session.session_id)
    await apply_all_events(stub, client)
    got = await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=5)
    return got.subscription


async def expect_code(call: Any, code: grpc.StatusCode) -> str:
    """Await ``call``; assert it failed with ``code``; return the details."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == code, f"expected {code.name}, got {exc.code().name}: {exc.details()}"
        return exc.details() or ""
    raise AssertionError(f"expected {code.name}, call succeeded")
