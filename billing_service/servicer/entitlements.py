"""The entitlement RPCs: CheckEntitlement (plain or metered), GetEntitlements, WatchEntitlements.

A plain CheckEntitlement the cache can answer is answered from memory
without awaiting anything (``answer_from_memory``, also called by the
auth/metrics wrapper before the handler); a metered one asks the usage
service, and names the feature's answer too when the request has one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from billing_service.entitlements import EntitlementService
from billing_service.servicer.edge import Context, abort_for, caller_of, rpc_errors
from billing_service.stream_limits import StreamLimiter
from billing_service.usage import messages
from billing_service.usage.service import UsageService
from generated.billing.v1 import billing_pb2 as pb


class EntitlementRpcs:
    """CheckEntitlement, GetEntitlements and WatchEntitlements."""

    _entitlements: EntitlementService
    _usage: UsageService
    _stream_limits: StreamLimiter

    def answer_from_memory(
        self, request: pb.CheckEntitlementRequest
    ) -> pb.CheckEntitlementResponse | None:
        """CheckEntitlement's answer when the cache holds it, else None (no await, no I/O).

        The guard's wrapper calls this before CheckEntitlement itself; a metered
        check never comes from here.
        """
        if request.meter:
            return None
        return self._entitlements.check_cached(request.user_id, request.feature)

    async def CheckEntitlement(
        self, request: pb.CheckEntitlementRequest, context: Context
    ) -> pb.CheckEntitlementResponse:
        """See billing.proto. A cache hit is answered from memory without awaiting anything."""
        answer = self.answer_from_memory(request)
        if answer is not None:
            return answer
        if request.meter:
            return await self._check_usage(request, context)
        return await self._check_entitlement(request, context)

    @rpc_errors
    async def _check_entitlement(
        self, request: pb.CheckEntitlementRequest, context: Context
    ) -> pb.CheckEntitlementResponse:
        return await self._entitlements.check(request.user_id, request.feature)

    @rpc_errors
    async def _check_usage(
        self, request: pb.CheckEntitlementRequest, context: Context
    ) -> pb.CheckEntitlementResponse:
        allowed, usage = await self._usage.check(request.user_id, request.meter, request.quantity)
        response = pb.CheckEntitlementResponse(allowed=allowed, usage=messages.meter_usage(usage))
        if request.feature:
            feature = await self._entitlements.check(request.user_id, request.feature)
            response.MergeFrom(feature)
            response.allowed = allowed and feature.allowed
        else:
            response.tier = (await self._usage.period(request.user_id)).plan.name
        left = "unlimited" if usage.unlimited else f"{usage.remaining} of {usage.limit} left"
        fits = "fits" if allowed else "does not fit"
        quantity = request.quantity or 1
        response.reason = "; ".join(
            part for part in (response.reason, f"{quantity} {usage.meter} {fits} ({left})") if part
        )
        return response

    @rpc_errors
    async def GetEntitlements(
        self, request: pb.GetEntitlementsRequest, context: Context
    ) -> pb.GetEntitlementsResponse:
        """See billing.proto."""
        return await self._entitlements.entitlements(request.user_id)

    async def WatchEntitlements(
        self, request: pb.WatchEntitlementsRequest, context: Context
    ) -> AsyncIterator[pb.WatchEntitlementsResponse]:
        """See billing.proto; a stream ends with UNAVAILABLE on shutdown, RESOURCE_EXHAUSTED
        when the consumer falls more than the pending limit behind (docs/entitlements.md)."""
        try:
            with self._stream_limits.hold(caller_of(context)):
                stream = self._entitlements.watch(
                    list(request.user_ids), lambda: context.send_initial_metadata(())
                )
                async for message in stream:
                    yield message
        except Exception as exc:
            await abort_for("WatchEntitlements", exc, context)
