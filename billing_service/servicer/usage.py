"""The metered-usage RPCs: ConsumeUsage, RefundUsage and GetUsage (docs/usage.md)."""

from __future__ import annotations

from datetime import UTC

from billing_service.servicer.edge import Context, rpc_errors
from billing_service.usage import messages
from billing_service.usage.service import UsageService
from generated.billing.v1 import billing_pb2 as pb


class UsageRpcs:
    """ConsumeUsage, RefundUsage and GetUsage over the usage service."""

    _usage: UsageService

    @rpc_errors
    async def ConsumeUsage(
        self, request: pb.ConsumeUsageRequest, context: Context
    ) -> pb.ConsumeUsageResponse:
        """See billing.proto and docs/usage.md."""
        answer = await self._usage.consume(
            request.user_id,
            request.meter,
            request.quantity,
            request.idempotency_key,
            request.occurred_at.ToDatetime(UTC) if request.HasField("occurred_at") else None,
        )
        return messages.consume_response(answer)

    @rpc_errors
    async def RefundUsage(
        self, request: pb.RefundUsageRequest, context: Context
    ) -> pb.RefundUsageResponse:
        """See billing.proto and docs/usage.md."""
        answer = await self._usage.refund(request.user_id, request.meter, request.idempotency_key)
        return messages.refund_response(answer)

    @rpc_errors
    async def GetUsage(self, request: pb.GetUsageRequest, context: Context) -> pb.GetUsageResponse:
        """See billing.proto and docs/usage.md."""
        return messages.usage_response(await self._usage.usage(request.user_id, request.meter))
