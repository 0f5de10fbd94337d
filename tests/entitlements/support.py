"""Helpers for entitlement tests: event writers (and the shared RedisServer)."""

from __future__ import annotations

from devtools.redis_server import RedisServer
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory

__all__ = ["RedisServer"]


class Billing:
    """The calls the entitlement tests make on one server."""

    def __init__(self, stub: pb_grpc.BillingServiceStub) -> None:
        self.stub = stub

    async def check(self, user_id: str, feature: str) -> pb.CheckEntitlementResponse:
        """CheckEntitlement."""
        request = pb.CheckEntitlementRequest(user_id=user_id, feature=feature)
        answer: pb.CheckEntitlementResponse = await self.stub.CheckEntitlement(request)
        return answer

    async def tier(self, user_id: str) -> str:
        """The tier CheckEntitlement derives its answer from."""
        return (await self.check(user_id, "priority_support")).tier

    async def get(self, user_id: str) -> pb.GetEntitlementsResponse:
        """GetEntitlements."""
        answer: pb.GetEntitlementsResponse = await self.stub.GetEntitlements(
            pb.GetEntitlementsRequest(user_id=user_id)
        )
        return answer

    async def subscribe(
        self,
        user_id: str,
        sub_id: str,
        status: str,
        *,
        price: str = "price_pro_monthly",
        cancel_at_period_end: bool = False,
        period_end: int | None = None,
    ) -> pb.ApplyStripeEventResponse:
        """Apply a customer.subscription.updated event setting the subscription's state."""
        period_start = None if period_end is None else period_end - factory.PERIOD
        obj = factory.subscription(
            sub_id,
            f"cus_{user_id}",
            status,
            price=price,
            user_id=user_id,
            cancel_at_period_end=cancel_at_period_end,
            period_start=period_start,
            period_end=period_end,
        )
        ev = factory.event("customer.subscription.updated", obj)
        answer: pb.ApplyStripeEventResponse = await self.stub.ApplyStripeEvent(
            pb.ApplyStripeEventRequest(payload=factory.payload(ev))
        )
        assert answer.outcome == pb.EVENT_OUTCOME_APPLIED, answer.reason
        return answer
