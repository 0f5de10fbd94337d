"""Forwarding verified events to BillingService.ApplyStripeEvent over one grpc.aio channel.

The channel is opened once per process (``app.cleanup_ctx`` in app.py) and
shared by every request: gRPC multiplexes calls over it and reconnects by
itself after the billing service restarts. Credentials, channel options and
the outcome names are the billing-client package's; what is the gateway's
own is the verdict: which answers end a delivery (200), which dead-letter it,
and which send it back to Stripe (503).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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


class Forwarder:
    """Calls ApplyStripeEvent and the gRPC health service on one channel."""

    def __init__(
        self,
        target: str,
        deadline_seconds: float,
        credentials: Credentials | None = None,
        *,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        self.target = target
        self.deadline_seconds = deadline_seconds
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
        """Submit ``payload`` (the verified raw event) and classify the answer."""
        try:
            response = await self._stub.ApplyStripeEvent(
                pb.ApplyStripeEventRequest(payload=payload),
                timeout=self.deadline_seconds,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                return ForwardResult(Verdict.INVALID, code.name, detail=exc.details() or "")
            # Only INVALID_ARGUMENT is a verdict on the event itself; every other
            # failure (down, deadline, a bug answered INTERNAL, not deployed yet,
            # our credentials refused) may pass later, so Stripe must keep the
            # event and retry it.
            return ForwardResult(Verdict.RETRY, code.name, detail=exc.details() or "")
        # Every outcome means the service is done with the event; none (UNSPECIFIED, or
        # one newer than this gateway) is a bug to fix before Stripe gives up: retry.
        status = OUTCOME_NAMES.get(response.outcome)
        if status is None:
            log.error("ApplyStripeEvent answered unknown outcome %d", response.outcome)
            return ForwardResult(Verdict.RETRY, "UNKNOWN_OUTCOME", response.event_id)
        return ForwardResult(Verdict.DONE, status, response.event_id, response.reason)

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
        """Close the channel, cancelling calls still in flight."""
        await self._channel.close(None)
