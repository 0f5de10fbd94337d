"""``BillingServicer``: the RPC families composed into the one billing.v1.BillingService."""

from __future__ import annotations

from billing_service.audit import AuditLog
from billing_service.checkout import CheckoutService
from billing_service.entitlements import EntitlementService
from billing_service.events.service import EventService
from billing_service.invoices import InvoiceLog
from billing_service.plan_changes import PlanChanges
from billing_service.resync import ResyncService
from billing_service.seat_changes import SeatChanges
from billing_service.servicer.entitlements import EntitlementRpcs
from billing_service.servicer.records import RecordRpcs
from billing_service.servicer.subscriptions import SubscriptionRpcs
from billing_service.servicer.usage import UsageRpcs
from billing_service.stream_limits import StreamLimiter
from billing_service.subscriptions import SubscriptionService
from billing_service.usage.service import UsageService
from generated.billing.v1 import billing_pb2_grpc as pb_grpc


class BillingServicer(
    SubscriptionRpcs,
    RecordRpcs,
    EntitlementRpcs,
    UsageRpcs,
    pb_grpc.BillingServiceServicer,
):
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
