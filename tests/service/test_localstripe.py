"""Cancel and Get against a real localstripe subscription (legacy API shapes)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import stripe

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import CALLER, stripe_client
from tests.support.localstripe import LocalStripeProcess
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripeProcess]:
    with LocalStripeProcess() as process:
        yield process


@pytest.fixture
async def legacy_client(localstripe: LocalStripeProcess) -> AsyncIterator[stripe.StripeClient]:
    async with stripe_client(localstripe.base_url, "sk_test_localstripe") as sdk:
        yield sdk


async def _legacy_subscription(client: stripe.StripeClient, user_id: str) -> dict[str, object]:
    card: Any = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    token = await client.v1.tokens.create_async({"card": card})
    customer = await client.v1.customers.create_async(
        {"email": f"{user_id}@example.com", "metadata": {"user_id": user_id}, "source": token.id}
    )
    # The plan may exist from an earlier test of this module.
    with contextlib.suppress(stripe.InvalidRequestError):
        await client.v1.plans.create_async(
            {
                "id": "price_pro_monthly",
                "amount": 1900,
                "currency": "usd",
                "interval": "month",
                "product": {"name": "Pro"},
            }
        )
    subscription = await client.v1.subscriptions.create_async(
        {
            "customer": customer.id,
            "items": [{"plan": "price_pro_monthly"}],
            "metadata": {"user_id": user_id},
        }
    )
    return subscription.to_dict()


async def test_cancel_and_get_on_a_localstripe_subscription(
    tmp_path: Path, localstripe: LocalStripeProcess, legacy_client: stripe.StripeClient
) -> None:
    user_id = "u-localstripe"
    subscription = await _legacy_subscription(legacy_client, user_id)
    assert "current_period_end" in subscription  # the legacy shape
    events = await legacy_client.v1.events.list_async({"type": "customer.subscription.created"})
    created = next(e.to_dict() for e in events.data if e.data.object.id == subscription["id"])

    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        "STRIPE_API_BASE": localstripe.base_url,
        "STRIPE_SECRET_KEY": "sk_test_localstripe",
    }
    with ServiceProcess(env) as service:
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            applied = await stub.ApplyStripeEvent(
                pb.ApplyStripeEventRequest(payload=json.dumps(created).encode())
            )
            assert applied.outcome == pb.EVENT_OUTCOME_APPLIED
            got = (
                await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))
            ).subscription
            assert got.stripe_subscription_id == subscription["id"]
            assert got.status == pb.SUBSCRIPTION_STATUS_ACTIVE
            assert got.tier == "pro"
            assert got.current_period_end.seconds == subscription["current_period_end"]

            canceled = (
                await stub.CancelSubscription(
                    pb.CancelSubscriptionRequest(user_id=user_id), metadata=CALLER
                )
            ).subscription
            assert canceled.status == pb.SUBSCRIPTION_STATUS_CANCELED
            assert canceled.tier == "free"
            remote = await legacy_client.v1.subscriptions.retrieve_async(str(subscription["id"]))
            assert remote.status == "canceled"
            got = (
                await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))
            ).subscription
            assert got.status == pb.SUBSCRIPTION_STATUS_CANCELED
