"""The billing.v1.BillingService servicer: translation between gRPC and the services.

Expected failures (the BillingError tree) become their status codes; a
storage outage becomes UNAVAILABLE; anything else is a bug, logged with its
traceback and answered INTERNAL without detail.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from billing_service.audit import AuditLog
from billing_service.auth import current_caller
from billing_service.checkout import CheckoutService
from billing_service.convert import (
    audit_to_proto,
    interval_name,
    invoice_to_proto,
    preview_to_proto,
    subscription_to_proto,
)
from billing_service.entitlements import EntitlementService
from billing_service.errors import BillingError
from billing_service.events.apply import Outcome
from billing_service.events.service import EventService
from billing_service.invoices import InvoiceLog
from billing_service.plan_changes import PlanChanges
from billing_service.resync import ResyncService
from billing_service.seat_changes import SeatChanges
from billing_service.storage.checkout_requests import CheckoutParams
from billing_service.storage.database import StorageUnavailable
from billing_service.stream_limits import StreamLimiter
from billing_service.subscriptions import SubscriptionService
from billing_service.usage import messages
from billing_service.usage.service import UsageService
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext

CALLER_METADATA_KEY = "x-billing-caller"

OUTCOME_TO_PROTO: dict[Outcome, pb.EventOutcome] = {
    Outcome.APPLIED: pb.EVENT_OUTCOME_APPLIED,
    Outcome.DUPLICATE: pb.EVENT_OUTCOME_DUPLICATE,
    Outcome.IGNORED: pb.EVENT_OUTCOME_IGNORED,
    Outcome.STALE: pb.EVENT_OUTCOME_STALE,
}

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, Context], Awaitable[Resp]]


def caller_of(context: Context) -> str:
    """The authenticated caller; without authentication, the name the caller gives itself.

    The ``x-billing-caller`` metadata only counts in BILLING_INSECURE_NO_AUTH mode:
    an authenticated caller cannot claim another name.
    """
    authenticated = current_caller.get()
    if authenticated:
        return authenticated
    for key, value in context.invocation_metadata() or ():
        if key == CALLER_METADATA_KEY and isinstance(value, str) and value:
            return value[:128]
    return "unknown"


def rpc_errors(handler: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Map the service's errors to gRPC status codes for one handler."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Req, context: Context) -> Resp:
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
    """Implements billing.v1.BillingService over the service objects that do the work."""

    def __init__(
        self,
        subscriptions: SubscriptionService,
        events: EventService,
        audit_log: AuditLog,
        entitlements: EntitlementService,
        *,
        plan_changes: PlanChanges,
        seat_changes: SeatChanges,
        resync: ResyncService,
        checkout: CheckoutService,
        usage: UsageService,
        stream_limits: StreamLimiter | None = None,
        invoices: InvoiceLog,
    ) -> None:
        self._subscriptions = subscriptions
        self._events = events
        self._audit = audit_log
        self._entitlements = entitlements
        self._plan_changes = plan_changes
        self._seat_changes = seat_changes
        self._resync = resync
        self._checkout = checkout
        self._usage = usage
        self._stream_limits = stream_limits or StreamLimiter()
        self._invoices = invoices

    @rpc_errors
    async def CreateCheckout(
        self, request: pb.CreateCheckoutRequest, context: Context
    ) -> pb.CreateCheckoutResponse:
        """See billing.proto."""
        params = CheckoutParams(
            user_id=request.user_id,
            email=request.email,
            plan=request.plan,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            interval=interval_name(request.interval),
            quantity=request.quantity or 1,
            promotion_code=request.promotion_code,
        )
        result = await self._checkout.create(params, request.request_id)
        return pb.CreateCheckoutResponse(
            checkout_url=result.checkout_url,
            session_id=result.session_id,
            trial_granted=result.trial_days > 0,
            trial_days=result.trial_days,
        )

    @rpc_errors
    async def CreatePortal(
        self, request: pb.CreatePortalRequest, context: Context
    ) -> pb.CreatePortalResponse:
        """See billing.proto."""
        url = await self._subscriptions.create_portal(request.user_id, request.return_url)
        return pb.CreatePortalResponse(portal_url=url)

    @rpc_errors
    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: Context
    ) -> pb.GetSubscriptionResponse:
        """See billing.proto."""
        view = await self._subscriptions.get(request.user_id)
        return pb.GetSubscriptionResponse(
            subscription=subscription_to_proto(view),
            other_live_subscriptions=[
                subscription_to_proto(other) for other in self._subscriptions.other_views(view)
            ],
        )

    @rpc_errors
    async def CancelSubscription(
        self, request: pb.CancelSubscriptionRequest, context: Context
    ) -> pb.CancelSubscriptionResponse:
        """See billing.proto."""
        view = await self._subscriptions.cancel(
            request.user_id, request.at_period_end, caller_of(context), request.subscription_id
        )
        return pb.CancelSubscriptionResponse(subscription=subscription_to_proto(view))

    @rpc_errors
    async def ResumeSubscription(
        self, request: pb.ResumeSubscriptionRequest, context: Context
    ) -> pb.ResumeSubscriptionResponse:
        """See billing.proto."""
        view = await self._subscriptions.resume(
            request.user_id, caller_of(context), request.subscription_id
        )
        return pb.ResumeSubscriptionResponse(subscription=subscription_to_proto(view))

    @rpc_errors
    async def SyncCheckoutSession(
        self, request: pb.SyncCheckoutSessionRequest, context: Context
    ) -> pb.SyncCheckoutSessionResponse:
        """See billing.proto and billing_service/resync.py."""
        view = await self._resync.sync_checkout_session(request.session_id, caller_of(context))
        return pb.SyncCheckoutSessionResponse(subscription=subscription_to_proto(view))

    @rpc_errors
    async def ReconcileUser(
        self, request: pb.ReconcileUserRequest, context: Context
    ) -> pb.ReconcileUserResponse:
        """See billing.proto and billing_service/resync.py."""
        result = await self._resync.reconcile_user(request.user_id, caller_of(context))
        return pb.ReconcileUserResponse(
            subscription=subscription_to_proto(result.view),
            subscriptions_seen=result.seen,
            subscriptions_changed=result.changed,
        )

    @rpc_errors
    async def ChangePlan(
        self, request: pb.ChangePlanRequest, context: Context
    ) -> pb.ChangePlanResponse:
        """See billing.proto and billing_service/plan_changes.py."""
        view = await self._plan_changes.change(
            user_id=request.user_id,
            plan=request.plan,
            proration=request.proration,
            request_id=request.request_id,
            proration_date=(
                request.proration_date.seconds if request.HasField("proration_date") else None
            ),
            caller=caller_of(context),
            subscription_id=request.subscription_id,
            interval=request.interval,
        )
        return pb.ChangePlanResponse(subscription=subscription_to_proto(view))

    @rpc_errors
    async def PreviewPlanChange(
        self, request: pb.PreviewPlanChangeRequest, context: Context
    ) -> pb.PreviewPlanChangeResponse:
        """See billing.proto and billing_service/plan_changes.py."""
        preview = await self._plan_changes.preview(
            user_id=request.user_id,
            plan=request.plan,
            proration=request.proration,
            subscription_id=request.subscription_id,
            interval=request.interval,
        )
        response = pb.PreviewPlanChangeResponse()
        preview_to_proto(preview, response)
        return response

    @rpc_errors
    async def UpdateSeats(
        self, request: pb.UpdateSeatsRequest, context: Context
    ) -> pb.UpdateSeatsResponse:
        """See billing.proto and billing_service/seat_changes.py."""
        view = await self._seat_changes.update(
            user_id=request.user_id,
            quantity=request.quantity,
            proration=request.proration,
            request_id=request.request_id,
            proration_date=(
                request.proration_date.seconds if request.HasField("proration_date") else None
            ),
            caller=caller_of(context),
            subscription_id=request.subscription_id,
        )
        return pb.UpdateSeatsResponse(subscription=subscription_to_proto(view))

    @rpc_errors
    async def PreviewSeatChange(
        self, request: pb.PreviewSeatChangeRequest, context: Context
    ) -> pb.PreviewSeatChangeResponse:
        """See billing.proto and billing_service/seat_changes.py."""
        preview = await self._seat_changes.preview(
            user_id=request.user_id,
            quantity=request.quantity,
            proration=request.proration,
            subscription_id=request.subscription_id,
        )
        response = pb.PreviewSeatChangeResponse()
        preview_to_proto(preview, response)
        return response

    @rpc_errors
    async def ApplyStripeEvent(
        self, request: pb.ApplyStripeEventRequest, context: Context
    ) -> pb.ApplyStripeEventResponse:
        """See billing.proto."""
        answer = await self._events.apply(request.payload)
        response = pb.ApplyStripeEventResponse(
            outcome=OUTCOME_TO_PROTO[answer.result.outcome],
            event_id=answer.result.event_id,
            reason=answer.result.reason,
        )
        if answer.subscription is not None:
            response.subscription.CopyFrom(subscription_to_proto(answer.subscription))
        return response

    @rpc_errors
    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        """See billing.proto."""
        records, next_token = await self._audit.list(
            request.user_id, request.page_size, request.page_token
        )
        return pb.ListAuditEventsResponse(
            events=[audit_to_proto(record) for record in records], next_page_token=next_token
        )

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

    @rpc_errors
    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, context: Context
    ) -> pb.ListInvoicesResponse:
        """See billing.proto."""
        rows, next_token = await self._invoices.list(
            request.user_id, request.page_size, request.page_token
        )
        return pb.ListInvoicesResponse(
            invoices=[invoice_to_proto(row) for row in rows], next_page_token=next_token
        )

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
        except BillingError as exc:
            log.info("WatchEntitlements -> %s: %s", exc.code.name, exc)
            await context.abort(exc.code, str(exc))
        except StorageUnavailable as exc:
            log.warning("WatchEntitlements -> UNAVAILABLE: %s", exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "storage unavailable; retry")
        except Exception:
            log.exception("WatchEntitlements failed with a bug")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
