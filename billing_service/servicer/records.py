"""The RPCs over events and what they leave: ApplyStripeEvent(s), ListAuditEvents, ListInvoices."""

from __future__ import annotations

import asyncio
import time

import grpc

from billing_client.names import MAX_EVENTS_PER_APPLY
from billing_service import deadlines
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
        until = _events_deadline(deadlines.deadline())
        basic = request.view == pb.EVENT_RESULT_VIEW_BASIC
        # Concurrently, as separate ApplyStripeEvent calls in flight together would
        # be: arrival order decides nothing, the events' own ``created`` does.
        results = await asyncio.gather(
            *(self._apply_one(item, until, basic) for item in request.events)
        )
        return pb.ApplyStripeEventsResponse(results=results)

    async def _apply_one(
        self, item: pb.ApplyStripeEventRequest, until: float | None, basic: bool
    ) -> pb.ApplyStripeEventResult:
        deadlines.adopt(until)  # this event's work stops where the call's would
        delay = None if until is None else max(0.0, until - time.monotonic())
        try:
            async with asyncio.timeout(delay) as budget:
                answer = await self._events.apply(item.payload)
        except TimeoutError as exc:
            if not budget.expired():
                return _failed(exc)
            # Answer the rest of the call rather than lose it to one slow event.
            return pb.ApplyStripeEventResult(
                error_code=grpc.StatusCode.DEADLINE_EXCEEDED.value[0],
                error_message="not finished before the call's deadline; retry",
            )
        except Exception as exc:  # each event fails alone, with ApplyStripeEvent's status
            return _failed(exc)
        return pb.ApplyStripeEventResult(response=_event_response(answer, basic=basic))

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


def _event_response(answer: EventAnswer, *, basic: bool = False) -> pb.ApplyStripeEventResponse:
    """The answer; ``basic`` (EVENT_RESULT_VIEW_BASIC) leaves the subscription out."""
    response = pb.ApplyStripeEventResponse(
        outcome=OUTCOME_TO_PROTO[answer.result.outcome],
        event_id=answer.result.event_id,
        reason=answer.result.reason,
    )
    if answer.subscription is not None and not basic:
        response.subscription.CopyFrom(subscription_to_proto(answer.subscription))
    return response


def _events_deadline(call_deadline: float | None) -> float | None:
    """When a call's events must be done: a little before the call's own deadline.

    The margin (a tenth of what is left, at most half a second) leaves time to
    answer the events that finished when one did not.
    """
    if call_deadline is None:
        return None
    left = call_deadline - time.monotonic()
    return call_deadline - min(0.5, max(0.0, left) / 10)


def _failed(exc: Exception) -> pb.ApplyStripeEventResult:
    code, details = status_for("ApplyStripeEvents", exc)
    return pb.ApplyStripeEventResult(error_code=code.value[0], error_message=details)
