"""The billing.v1.BillingService servicer: translation between gRPC and the services.

Expected failures (the BillingError tree) become their status codes; a
storage outage becomes UNAVAILABLE; anything else is a bug, logged with its
traceback and answered INTERNAL without detail.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from billing_service.convert import subscription_to_proto
from billing_service.errors import BillingError
from billing_service.storage.database import StorageUnavailable
from billing_service.subscriptions import SubscriptionService
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

CALLER_METADATA_KEY = "x-billing-caller"

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


def caller_of(context: grpc.aio.ServicerContext) -> str:
    """The calling service's name from request metadata ("unknown" when absent)."""
    for key, value in context.invocation_metadata() or ():
        if key == CALLER_METADATA_KEY and isinstance(value, str) and value:
            return value[:128]
    return "unknown"


def rpc_errors(handler: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Map the service's errors to gRPC status codes for one handler."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await handler(self, request, context)
        except BillingError as exc:
            log.info("%s -> %s: %s", handler.__name__, exc.code.name, exc)
            await context.abort(exc.code, str(exc))
        except StorageUnavailable as exc:
            log.warning("%s -> UNAVAILABLE: %s", handler.__name__, exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "storage unavailable; retry")
        except Exception:
            log.exception("%s failed with a bug", handler.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable: context.abort raises")

    return wrapper


class BillingServicer(pb_grpc.BillingServiceServicer):
    """Implements billing.v1.BillingService; unimplemented RPCs answer UNIMPLEMENTED."""

    def __init__(self, subscriptions: SubscriptionService) -> None:
        self._subscriptions = subscriptions

    @rpc_errors
    async def CreateCheckout(
        self, request: pb.CreateCheckoutRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateCheckoutResponse:
        """See billing.proto."""
        url, session_id = await self._subscriptions.create_checkout(
            user_id=request.user_id,
            email=request.email,
            plan=request.plan,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            request_id=request.request_id,
        )
        return pb.CreateCheckoutResponse(checkout_url=url, session_id=session_id)

    @rpc_errors
    async def CreatePortal(
        self, request: pb.CreatePortalRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreatePortalResponse:
        """See billing.proto."""
        url = await self._subscriptions.create_portal(request.user_id, request.return_url)
        return pb.CreatePortalResponse(portal_url=url)

    @rpc_errors
    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSubscriptionResponse:
        """See billing.proto."""
        view = await self._subscriptions.get(request.user_id)
        return pb.GetSubscriptionResponse(subscription=subscription_to_proto(view))

    @rpc_errors
    async def CancelSubscription(
        self, request: pb.CancelSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelSubscriptionResponse:
        """See billing.proto."""
        view = await self._subscriptions.cancel(
            request.user_id, request.at_period_end, caller_of(context)
        )
        return pb.CancelSubscriptionResponse(subscription=subscription_to_proto(view))

    @rpc_errors
    async def ResumeSubscription(
        self, request: pb.ResumeSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResumeSubscriptionResponse:
        """See billing.proto."""
        view = await self._subscriptions.resume(request.user_id, caller_of(context))
        return pb.ResumeSubscriptionResponse(subscription=subscription_to_proto(view))

    async def _unimplemented(self, context: grpc.aio.ServicerContext, rpc: str) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{rpc} is not implemented yet")

    async def ApplyStripeEvent(
        self, request: pb.ApplyStripeEventRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApplyStripeEventResponse:
        """Not implemented yet: UNIMPLEMENTED."""
        await self._unimplemented(context, "ApplyStripeEvent")
        raise AssertionError("unreachable")

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAuditEventsResponse:
        """Not implemented yet: UNIMPLEMENTED."""
        await self._unimplemented(context, "ListAuditEvents")
        raise AssertionError("unreachable")

    async def CheckEntitlement(
        self, request: pb.CheckEntitlementRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckEntitlementResponse:
        """Not implemented yet: UNIMPLEMENTED."""
        await self._unimplemented(context, "CheckEntitlement")
        raise AssertionError("unreachable")

    async def GetEntitlements(
        self, request: pb.GetEntitlementsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetEntitlementsResponse:
        """Not implemented yet: UNIMPLEMENTED."""
        await self._unimplemented(context, "GetEntitlements")
        raise AssertionError("unreachable")

    async def WatchEntitlements(
        self, request: pb.WatchEntitlementsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchEntitlementsResponse]:
        """Not implemented yet: UNIMPLEMENTED."""
        await self._unimplemented(context, "WatchEntitlements")
        yield pb.WatchEntitlementsResponse()
