"""Calls the usage tests make, and the test clock the service reads "now" from."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory


def new_key() -> str:
    """An idempotency key no other call uses."""
    return f"key-{uuid.uuid4().hex}"


class TestClock:
    """The file behind BILLING_TEST_CLOCK_FILE; absent means real time."""

    __test__ = False

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self, at: datetime) -> None:
        """Make the service's usage "now" ``at`` (aware UTC)."""
        self.path.write_text(str(at.timestamp()), encoding="utf-8")

    def real(self) -> None:
        """Back to the real clock."""
        self.path.unlink(missing_ok=True)


class Usage:
    """Usage calls on one server."""

    def __init__(self, stub: pb_grpc.BillingServiceStub) -> None:
        self.stub = stub

    async def consume(
        self,
        user_id: str,
        quantity: int = 1,
        *,
        meter: str = "api_calls",
        key: str | None = None,
        occurred_at: datetime | None = None,
    ) -> pb.ConsumeUsageResponse:
        """ConsumeUsage (a fresh key unless given)."""
        request = pb.ConsumeUsageRequest(
            user_id=user_id, meter=meter, quantity=quantity, idempotency_key=key or new_key()
        )
        if occurred_at is not None:
            request.occurred_at.FromDatetime(occurred_at)
        answer: pb.ConsumeUsageResponse = await self.stub.ConsumeUsage(request, timeout=30)
        return answer

    async def refund(
        self, user_id: str, key: str, meter: str = "api_calls"
    ) -> pb.RefundUsageResponse:
        """RefundUsage."""
        answer: pb.RefundUsageResponse = await self.stub.RefundUsage(
            pb.RefundUsageRequest(user_id=user_id, meter=meter, idempotency_key=key), timeout=30
        )
        return answer

    async def get(self, user_id: str, meter: str = "") -> pb.GetUsageResponse:
        """GetUsage."""
        answer: pb.GetUsageResponse = await self.stub.GetUsage(
            pb.GetUsageRequest(user_id=user_id, meter=meter), timeout=30
        )
        return answer

    async def used(self, user_id: str, meter: str = "api_calls") -> int:
        """Units counted on ``meter`` in the current period."""
        return (await self.get(user_id, meter)).meters[0].used

    async def subscribe(
        self,
        user_id: str,
        sub_id: str,
        *,
        status: str = "active",
        price: str = "price_pro_monthly",
        period_start: int | None = None,
        period_end: int | None = None,
        cancel_at_period_end: bool = False,
        legacy: bool = False,
        customer: str = "",
    ) -> None:
        """Apply a customer.subscription.updated event setting the subscription's state."""
        start = period_start if period_start is not None else int(time.time()) - 3600
        obj = factory.subscription(
            sub_id,
            customer or f"cus_{user_id}",
            status,
            price=price,
            user_id=user_id,
            period_start=start,
            period_end=period_end,
            cancel_at_period_end=cancel_at_period_end,
            legacy=legacy,
        )
        ev = factory.event("customer.subscription.updated", obj, legacy=legacy)
        answer: pb.ApplyStripeEventResponse = await self.stub.ApplyStripeEvent(
            pb.ApplyStripeEventRequest(payload=factory.payload(ev)), timeout=30
        )
        assert answer.outcome == pb.EVENT_OUTCOME_APPLIED, answer.reason


async def status_of(call: object) -> grpc.StatusCode:
    """The status code an awaited call failed with."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    raise AssertionError("the call succeeded")


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, tzinfo=UTC)
