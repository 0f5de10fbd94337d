"""CreateCheckout and CreatePortal over gRPC against the emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import stripe

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import checkout, expect_code, stripe_client, subscribe


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator, to look at what the service created there."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk


async def test_checkout_for_pro_returns_an_emulator_session(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, emulator: Any, user_id: str
) -> None:
    response = await checkout(stub, user_id, "pro")
    assert response.session_id.startswith("cs_")
    assert response.checkout_url.startswith(emulator.base_url)

    session = (await client.v1.checkout.sessions.retrieve_async(response.session_id)).to_dict()
    assert session["mode"] == "subscription"
    assert session["client_reference_id"] == user_id
    assert session["metadata"]["user_id"] == user_id
    assert session["customer"].startswith("cus_")
    customer = await client.v1.customers.retrieve_async(session["customer"])
    assert customer.email == f"{user_id}@example.com"


async def test_retried_checkout_with_same_request_id_gives_same_session(
    stub: pb_grpc.BillingServiceStub, user_id: str
) -> None:
    first = await checkout(stub, user_id, "pro", request_id="req-42")
    again = await checkout(stub, user_id, "pro", request_id="req-42")
    other = await checkout(stub, user_id, "pro", request_id="req-43")
    assert again.session_id == first.session_id
    assert other.session_id != first.session_id


async def test_one_stripe_customer_per_user(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, user_id: str
) -> None:
    sessions = [await checkout(stub, user_id, plan) for plan in ("pro", "studio", "pro")]
    customers = {
        (await client.v1.checkout.sessions.retrieve_async(s.session_id)).customer for s in sessions
    }
    assert len(customers) == 1


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("user_id", {"user_id": ""}),
        ("user_id", {"user_id": "has space"}),
        ("email", {"email": "not-an-email"}),
        ("plan", {"plan": ""}),
        ("plan", {"plan": "platinum"}),
        ("success_url", {"success_url": "ftp://x"}),
        ("success_url", {"success_url": ""}),
        ("cancel_url", {"cancel_url": "/relative"}),
    ],
)
async def test_checkout_rejects_bad_fields_by_name(
    stub: pb_grpc.BillingServiceStub, field: str, overrides: dict[str, str]
) -> None:
    request: dict[str, Any] = {
        "user_id": "u-valid",
        "email": "a@example.com",
        "plan": "pro",
        "success_url": "https://app.example.com/ok",
        "cancel_url": "https://app.example.com/back",
        **overrides,
    }
    details = await expect_code(
        stub.CreateCheckout(pb.CreateCheckoutRequest(**request)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert details.startswith(f"{field}:")


async def test_live_subscription_blocks_a_second_checkout(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, emulator: Any, user_id: str
) -> None:
    subscription = await subscribe(stub, emulator, client, user_id)
    assert subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    details = await expect_code(
        checkout(stub, user_id, "studio"), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "portal" in details


async def test_portal_needs_a_customer_then_returns_a_url(
    stub: pb_grpc.BillingServiceStub, emulator: Any, user_id: str
) -> None:
    request = pb.CreatePortalRequest(user_id=user_id, return_url="https://app.example.com/account")
    await expect_code(stub.CreatePortal(request), grpc.StatusCode.NOT_FOUND)
    await checkout(stub, user_id)
    portal = await stub.CreatePortal(request)
    assert portal.portal_url.startswith(emulator.base_url)


async def test_portal_rejects_bad_return_url(stub: pb_grpc.BillingServiceStub) -> None:
    details = await expect_code(
        stub.CreatePortal(pb.CreatePortalRequest(user_id="u1", return_url="nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("return_url:")
