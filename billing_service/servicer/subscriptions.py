"""The subscription RPCs: Checkout, Portal, Get/Cancel/Resume, plan and seat changes, resync.

Each handler reads its request, calls one operation and converts the answer
(``convert``); proto enums become the operation's plain values here, unknown
numbers passing through as text so the operation names the field.
"""

from __future__ import annotations

from billing_service.checkout import CheckoutService
from billing_service.convert import (
    interval_choice,
    interval_name,
    preview_to_proto,
    proration_name,
    subscription_to_proto,
)
from billing_service.plan_changes import PlanChanges
from billing_service.resync import ResyncService
from billing_service.seat_changes import SeatChanges
from billing_service.servicer.edge import Context, caller_of, rpc_errors
from billing_service.storage.checkout_requests import CheckoutParams
from billing_service.subscriptions import SubscriptionService
from generated.billing.v1 import billing_pb2 as pb


class SubscriptionRpcs:
    """CreateCheckout, CreatePortal, Get/Cancel/ResumeSubscription, SyncCheckoutSession,
    ReconcileUser, ChangePlan, PreviewPlanChange, UpdateSeats and PreviewSeatChange."""

    _subscriptions: SubscriptionService
    _checkout: CheckoutService
    _plan_changes: PlanChanges
    _seat_changes: SeatChanges
    _resync: ResyncService

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
            proration=proration_name(request.proration),
            request_id=request.request_id,
            proration_date=(
                request.proration_date.seconds if request.HasField("proration_date") else None
            ),
            caller=caller_of(context),
            subscription_id=request.subscription_id,
            interval=interval_choice(request.interval),
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
            proration=proration_name(request.proration),
            subscription_id=request.subscription_id,
            interval=interval_choice(request.interval),
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
            proration=proration_name(request.proration),
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
            proration=proration_name(request.proration),
            subscription_id=request.subscription_id,
        )
        response = pb.PreviewSeatChangeResponse()
        preview_to_proto(preview, response)
        return response
