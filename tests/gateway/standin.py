"""A real grpc.aio BillingService that answers ApplyStripeEvent with programmed outcomes.

It runs on its own event loop in a background thread, on 127.0.0.1:0, so
module-scoped fixtures can share it with gateway subprocesses. The outcome
of an event is chosen by its id (``evt_<outcome>_...``) unless
``program[event_id]`` says otherwise::

    evt_applied_* / evt_duplicate_* / evt_ignored_* / evt_stale_*  -> that outcome
    evt_invalid_*      -> INVALID_ARGUMENT
    evt_unavailable_*  -> UNAVAILABLE
    evt_internal_*     -> INTERNAL
    evt_slow_*         -> never answers: the caller's deadline ends the call
    anything else      -> APPLIED if it has a string id, else INVALID_ARGUMENT

ApplyStripeEvents answers each event the same way, one result each (an
error as its code and message; a slow event holds the whole call), and
records each call's event ids in ``batches`` and its view in ``views``.
With ``batch_failure`` set to a status code the whole call fails with it;
with ``batching`` False the stand-in is a service from before
ApplyStripeEvents (UNIMPLEMENTED).
"""

from __future__ import annotations

import asyncio
import json
import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from billing_client.names import OUTCOME_VALUES
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

ERRORS = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "internal": grpc.StatusCode.INTERNAL,
}


def _event_id(payload: bytes) -> str:
    try:
        event = json.loads(payload)
    except ValueError:
        return ""
    value = event.get("id") if isinstance(event, dict) else None
    return value if isinstance(value, str) else ""


class _Servicer(pb_grpc.BillingServiceServicer):
    def __init__(self, owner: StandIn) -> None:
        self._owner = owner

    def _behaviour(self, event_id: str) -> str:
        with self._owner.lock:
            self._owner.received.append(event_id)
            behaviour = self._owner.program.get(event_id)
        if behaviour is None:
            parts = event_id.split("_")
            behaviour = parts[1] if len(parts) > 2 and parts[0] == "evt" else "applied"
            if not event_id:
                behaviour = "invalid"
        return behaviour

    async def ApplyStripeEvent(self, request, context):
        event_id = _event_id(request.payload)
        behaviour = self._behaviour(event_id)
        if behaviour == "slow":
            # Hangs until gRPC cancels the call when the gateway's deadline passes.
            await asyncio.Event().wait()
        if behaviour in ERRORS:
            await context.abort(ERRORS[behaviour], f"programmed {behaviour} for {event_id!r}")
        outcome = OUTCOME_VALUES.get(behaviour, pb.EVENT_OUTCOME_APPLIED)
        return pb.ApplyStripeEventResponse(outcome=outcome, event_id=event_id)

    async def ApplyStripeEvents(self, request, context):
        owner = self._owner
        if not owner.batching:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
        event_ids = [_event_id(item.payload) for item in request.events]
        with owner.lock:
            owner.batches.append(event_ids)
            owner.views.append(request.view)
        if owner.batch_failure is not None:
            await context.abort(owner.batch_failure, "programmed failure of the whole call")
        results = []
        for event_id in event_ids:
            behaviour = self._behaviour(event_id)
            if behaviour == "slow":
                await asyncio.Event().wait()
            if behaviour in ERRORS:
                code = ERRORS[behaviour]
                results.append(
                    pb.ApplyStripeEventResult(
                        error_code=code.value[0],
                        error_message=f"programmed {behaviour} for {event_id!r}",
                    )
                )
                continue
            outcome = OUTCOME_VALUES.get(behaviour, pb.EVENT_OUTCOME_APPLIED)
            response = pb.ApplyStripeEventResponse(outcome=outcome, event_id=event_id)
            results.append(pb.ApplyStripeEventResult(response=response))
        return pb.ApplyStripeEventsResponse(results=results)


class StandIn:
    """Start with ``start()``, stop with ``stop()``; ``target`` is "127.0.0.1:PORT"."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[str] = []
        self.program: dict[str, str] = {}
        self.batches: list[list[str]] = []
        self.views: list[int] = []  # each ApplyStripeEvents call's requested view
        self.batching = True
        self.batch_failure: grpc.StatusCode | None = None
        self.target = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="standin", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> StandIn:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("stand-in server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def count(self, event_id: str) -> int:
        with self.lock:
            return self.received.count(event_id)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_BillingServiceServicer_to_server(_Servicer(self), server)
        health_servicer = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        await health_servicer.set(
            "billing.v1.BillingService", health_pb2.HealthCheckResponse.SERVING
        )
        self.target = f"127.0.0.1:{port}"
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await server.stop(0)
