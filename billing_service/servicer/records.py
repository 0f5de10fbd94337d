"""The RPCs over events and what they leave: ApplyStripeEvent, ListAuditEvents, ListInvoices."""

from __future__ import annotations

from billing_service.audit import AuditLog
from billing_service.convert import (
    OUTCOME_TO_PROTO,
    audit_to_proto,
    invoice_to_proto,
    subscription_to_proto,
)
from billing_service.events.service import EventService
from billing_service.invoices import InvoiceLog
from billing_service.servicer.edge import Context, rpc_errors
from generated.billing.v1 import billing_pb2 as pb


class RecordRpcs:
    """ApplyStripeEvent and the two paged reads of what events left behind."""

    _events: EventService
    _audit: AuditLog
    _invoices: InvoiceLog

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
