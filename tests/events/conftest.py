"""Fixtures for ApplyStripeEvent tests: a Stripe stand-in and service processes over it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def stripe_standin() -> Iterator[StripeStandIn]:
    """A local Stripe stand-in serving subscriptions, one per module."""
    with StripeStandIn() as standin:
        yield standin


def service_env(database_url: str, standin: StripeStandIn, **extra: str) -> dict[str, str]:
    """Environment of a billing-service process over ``database_url`` and the stand-in."""
    return {
        "DATABASE_URL": database_url,
        "STRIPE_API_BASE": standin.base_url,
        "STRIPE_SECRET_KEY": "sk_test_standin",
        "REDIS_URL": "",
        "BILLING_LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture(scope="module")
def events_service(database_url: str, stripe_standin: StripeStandIn) -> Iterator[ServiceProcess]:
    """A billing-service process (no Redis) over ``database_url``, one per module."""
    with ServiceProcess(service_env(database_url, stripe_standin)) as process:
        yield process


class EventsClient:
    """The calls these tests make, over one gRPC channel."""

    def __init__(self, stub: pb_grpc.BillingServiceStub) -> None:
        self.stub = stub

    async def send(self, ev: dict[str, Any]) -> pb.ApplyStripeEventResponse:
        """ApplyStripeEvent with ``ev`` as its payload."""
        request = pb.ApplyStripeEventRequest(payload=factory.payload(ev))
        response: pb.ApplyStripeEventResponse = await self.stub.ApplyStripeEvent(request)
        return response

    async def subscription(self, user_id: str) -> pb.Subscription:
        """GetSubscription's answer for ``user_id``."""
        request = pb.GetSubscriptionRequest(user_id=user_id)
        response = await self.stub.GetSubscription(request)
        return response.subscription

    async def invoices(self, user_id: str) -> list[pb.Invoice]:
        """Every kept invoice of ``user_id``, newest first."""
        found: list[pb.Invoice] = []
        token = ""
        while True:
            request = pb.ListInvoicesRequest(user_id=user_id, page_size=100, page_token=token)
            response = await self.stub.ListInvoices(request)
            found.extend(response.invoices)
            token = response.next_page_token
            if not token:
                return found

    async def audit(self, user_id: str) -> list[pb.AuditEvent]:
        """Every audit record of ``user_id``, newest first."""
        records: list[pb.AuditEvent] = []
        token = ""
        while True:
            request = pb.ListAuditEventsRequest(user_id=user_id, page_size=100, page_token=token)
            response = await self.stub.ListAuditEvents(request)
            records.extend(response.events)
            token = response.next_page_token
            if not token:
                return records


@pytest.fixture
async def client(events_service: ServiceProcess) -> AsyncIterator[EventsClient]:
    """An EventsClient on a fresh channel to ``events_service``."""
    async with grpc.aio.insecure_channel(events_service.target) as channel:
        yield EventsClient(pb_grpc.BillingServiceStub(channel))
