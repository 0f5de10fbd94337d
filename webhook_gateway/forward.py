"""Forwarding verified events to the billing service over one grpc.aio channel.

The channel is opened once per process (``app.cleanup_ctx`` in app.py) and
shared by every request: gRPC multiplexes calls over it and reconnects by
itself after the billing service restarts. Credentials, channel options and
the outcome names are the billing-client package's; what is the gateway's
own is the verdict: which answers end a delivery (200), which dead-letter it,
and which send it back to Stripe (503).

Deliveries forwarded within ``linger`` seconds of the first one waiting
(``GATEWAY_FORWARD_LINGER_MS``; 0: within the same event-loop turn) share
one ``ApplyStripeEvents`` call, up to ``max_batch`` (``GATEWAY_FORWARD_BATCH``),
and a full batch goes at once; a batch of one makes a plain
``ApplyStripeEvent`` call. Each event still gets its own result and
verdict. A per-call cost (the HTTP/2 stream, metadata, the call objects on
both sides) is then paid once per batch instead of once per delivery,
which is most of what a forward costs (docs/performance.md). A failure
of the whole call is no verdict on any event: every delivery in it gets
503. A service that does not know ``ApplyStripeEvents`` (an older one
during a rolling deploy: UNIMPLEMENTED) gets single calls from then on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing_client import Credentials, aio_channel
from billing_client.channel import QUICK_RECONNECT_OPTIONS
from billing_client.names import OUTCOME_NAMES, SERVICE_NAME
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

CALLER = "webhook-gateway"
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


class Verdict(Enum):
    """What the gateway makes of one ApplyStripeEvent call."""

    DONE = "done"  # the service finished with the event: answer 200
    INVALID = "invalid"  # the service says it can never be applied: dead-letter it
    RETRY = "retry"  # anything else: answer 503 so Stripe delivers it again


@dataclass(frozen=True)
class ForwardResult:
    """The outcome of one forward: a verdict plus what to report."""

    verdict: Verdict
    status: str  # the outcome's name ("applied", ...) for DONE, the gRPC code name otherwise
    event_id: str = ""
    detail: str = ""


# A delivery the gateway gave up on while closing: Stripe delivers it again.
_CLOSING = ForwardResult(Verdict.RETRY, "CANCELLED")


class Forwarder:
    """Calls ApplyStripeEvent(s) and the gRPC health service on one channel."""

    def __init__(
        self,
        target: str,
        deadline_seconds: float,
        credentials: Credentials | None = None,
        *,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        max_batch: int = 1,
        linger: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.target = target
        self.deadline_seconds = deadline_seconds
        # 1: one ApplyStripeEvent per delivery. ``on_batch`` hears each call's event count.
        self._max_batch = max(1, max_batch)
        self._linger = max(0.0, linger)
        self._on_batch = on_batch
        self._waiting: list[tuple[bytes, asyncio.Future[ForwardResult]]] = []
        self._flush: asyncio.Handle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        credentials = credentials or Credentials()
        # No channel retries: a delivery that fails is answered 503 and Stripe redelivers it.
        # A quick reconnect: after a billing-service restart the next delivery should find
        # it, not wait out gRPC's exponential backoff.
        self._channel = aio_channel(
            target,
            credentials,
            retries=False,
            options=QUICK_RECONNECT_OPTIONS,
            interceptors=interceptors,
        )
        self._metadata = credentials.metadata(CALLER)
        self._stub = pb_grpc.BillingServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def apply(self, payload: bytes) -> ForwardResult:
        """Submit ``payload`` (the verified raw event) and classify the answer.

        With batching on, the payload waits until the batch it joined is
        full or ``linger`` has passed since the batch's first payload (the
        end of the event-loop turn with no linger), then goes with the
        others in it.
        """
        if self._max_batch == 1:
            return await self._apply_one(payload)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ForwardResult] = loop.create_future()
        self._waiting.append((payload, future))
        if len(self._waiting) >= self._max_batch:
            self._send_waiting()
        elif self._flush is None:
            if self._linger:
                self._flush = loop.call_later(self._linger, self._send_waiting)
            else:
                self._flush = loop.call_soon(self._send_waiting)
        return await future

    def _take_waiting(self) -> list[tuple[bytes, asyncio.Future[ForwardResult]]]:
        """The waiting batch, emptied, with its pending flush called off."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        batch, self._waiting = self._waiting, []
        return batch

    def _send_waiting(self) -> None:
        task = asyncio.get_running_loop().create_task(self._send(self._take_waiting()))
        self._sending.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[bytes, asyncio.Future[ForwardResult]]]) -> None:
        # A delivery whose request was cancelled meanwhile is not forwarded.
        batch = [(payload, future) for payload, future in batch if not future.done()]
        if not batch:
            return
        results: list[ForwardResult] = []
        try:
            if len(batch) == 1 or self._max_batch == 1:
                results = list(await asyncio.gather(*(self._apply_one(p) for p, _ in batch)))
            else:
                results = await self._apply_many([payload for payload, _ in batch])
        except asyncio.CancelledError:  # closing
            results = [_CLOSING] * len(batch)
            raise
        except Exception as exc:  # a bug: each delivery's handler answers it (503)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            for (_, future), result in zip(batch, results, strict=False):
                if not future.done():
                    future.set_result(result)

    async def _apply_many(self, payloads: list[bytes]) -> list[ForwardResult]:
        try:
            if self._on_batch is not None:
                self._on_batch(len(payloads))
            answer = await self._stub.ApplyStripeEvents(
                pb.ApplyStripeEventsRequest(
                    events=[pb.ApplyStripeEventRequest(payload=payload) for payload in payloads],
                    # The verdict needs outcome, event id and reason only (a service
                    # that predates the view ignores it and answers whole).
                    view=pb.EVENT_RESULT_VIEW_BASIC,
                ),
                timeout=self.deadline_seconds,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                log.warning("the billing service has no ApplyStripeEvents; forwarding one by one")
                self._max_batch = 1
                return list(await asyncio.gather(*(self._apply_one(p) for p in payloads)))
            # The whole call failed: no verdict on any of its events, so none is
            # dead-lettered (not even on INVALID_ARGUMENT, a refusal of the call).
            log.warning("ApplyStripeEvents failed (%s): %s", code.name, exc.details())
            return [ForwardResult(Verdict.RETRY, code.name, detail=exc.details() or "")] * len(
                payloads
            )
        if len(answer.results) != len(payloads):
            log.error(
                "ApplyStripeEvents answered %d results for %d events",
                len(answer.results),
                len(payloads),
            )
            return [ForwardResult(Verdict.RETRY, "MALFORMED_ANSWER")] * len(payloads)
        return [_classify_result(result) for result in answer.results]

    async def _apply_one(self, payload: bytes) -> ForwardResult:
        if self._on_batch is not None:
            self._on_batch(1)
        try:
            response = await self._stub.ApplyStripeEvent(
                pb.ApplyStripeEventRequest(payload=payload),
                timeout=self.deadline_seconds,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            return _classify_failure(exc.code(), exc.details() or "")
        return _classify_response(response)

    async def ready(self, wait_seconds: float = 2.0) -> bool:
        """True when the billing service's gRPC health check says SERVING."""
        try:
            answer = await self._health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=wait_seconds
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        """Close the channel, cancelling calls still in flight; a waiting batch is not sent."""
        for _, future in self._take_waiting():
            if not future.done():
                future.set_result(_CLOSING)
        await self._channel.close(None)


def _classify_failure(code: grpc.StatusCode, details: str) -> ForwardResult:
    """The verdict on one event that ApplyStripeEvent failed with ``code``."""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ForwardResult(Verdict.INVALID, code.name, detail=details)
    # Only INVALID_ARGUMENT is a verdict on the event itself; every other
    # failure (down, deadline, a bug answered INTERNAL, not deployed yet,
    # our credentials refused) may pass later, so Stripe must keep the
    # event and retry it.
    return ForwardResult(Verdict.RETRY, code.name, detail=details)


def _classify_response(response: pb.ApplyStripeEventResponse) -> ForwardResult:
    """The verdict on one event the service answered."""
    # Every outcome means the service is done with the event; none (UNSPECIFIED, or
    # one newer than this gateway) is a bug to fix before Stripe gives up: retry.
    status = OUTCOME_NAMES.get(response.outcome)
    if status is None:
        log.error("ApplyStripeEvent answered unknown outcome %d", response.outcome)
        return ForwardResult(Verdict.RETRY, "UNKNOWN_OUTCOME", response.event_id)
    return ForwardResult(Verdict.DONE, status, response.event_id, response.reason)


def _classify_result(result: pb.ApplyStripeEventResult) -> ForwardResult:
    """The verdict on one event of an ApplyStripeEvents answer."""
    if result.error_code == 0:
        return _classify_response(result.response)
    code = _STATUS_CODES.get(result.error_code, grpc.StatusCode.UNKNOWN)
    return _classify_failure(code, result.error_message)
