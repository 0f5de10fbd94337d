"""The RPCs over events and what they leave: ApplyStripeEvent(s), ListAuditEvents, ListInvoices."""

from __future__ import annotations

import asyncio

from billing_client.names import MAX_EVENTS_PER_APPLY
from billing_service.audit import AuditLog
from billing_service.convert import (
    OUTCOME_TO_PROTO,
    audit_to_proto,
    invoice_to_proto,
    subscription_to_proto,
)
from billing_service.errors import InvalidArgument
from billing_service.events.service import EventAnswer, EventService
from billing_service.invoices import InvoiceLog
from billing_service.servicer.edge import Context, rpc_errors, status_for
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
        return _event_response(await self._events.apply(request.payload))

    @rpc_errors
    async def ApplyStripeEvents(
        self, request: pb.ApplyStripeEventsRequest, context: Context
    ) -> pb.ApplyStripeEventsResponse:
        """See billing.proto: each event as ApplyStripeEvent, concurrently, one result each."""
        if len(request.events) > MAX_EVENTS_PER_APPLY:
            raise InvalidArgument(
                "events", f"at most {MAX_EVENTS_PER_APPLY} per call, got {len(request.events)}"
            )
        # gather starts the applies in request order, so a customer's events are
        # claimed in the order the caller sent them, as concurrent calls would be.
        results = await asyncio.gather(*(self._apply_one(item) for item in request.events))
        return pb.ApplyStripeEventsResponse(results=results)

    async def _apply_one(self, item: pb.ApplyStripeEventRequest) -> pb.ApplyStripeEventResult:
        try:
            answer = await self._events.apply(item.payload)
        except Exception as exc:  # each event fails alone, with ApplyStripeEvent's status
            code, details = status_for("ApplyStripeEvents", exc)
            return pb.ApplyStripeEventResult(error_code=code.value[0], error_message=details)
        return pb.ApplyStripeEventResult(response=_event_response(answer))

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


def _event_response(answer: EventAnswer) -> pb.ApplyStripeEventResponse:
    response = pb.ApplyStripeEventResponse(
        outcome=OUTCOME_TO_PROTO[answer.result.outcome],
        event_id=answer.result.event_id,
        reason=answer.result.reason,
    )
    if answer.subscription is not None:
        response.subscription.CopyFrom(subscription_to_proto(answer.subscription))
    return response
