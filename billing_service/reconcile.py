"""The reconcile engine: heal gaps in webhook delivery from Stripe's own records.

``reconcile_since`` pages through Stripe's Events API (the event types
ApplyStripeEvent acts on, created at or after a time), skips the ids already
in ``processed_event`` and submits the rest, oldest first, to
ApplyStripeEvent on BILLING_SERVICE_TARGET - the webhook path itself, so the
server's locks, exactly-once record, audit trail and entitlement-cache
notifications all apply. ``call_reconcile_user`` asks the service's
ReconcileUser RPC to resync one user's subscriptions from Stripe's
subscriptions API. The command line around both is reconcile_cli.py.

Rate limits and outages: listing Stripe retries through the SDK's own
``max_network_retries`` (STRIPE_MAX_NETWORK_RETRIES); when Stripe still
cannot be listed nothing is applied. gRPC itself retries each call (the
channel's service-config retry policy): BILLING_RECONCILE_MAX_ATTEMPTS tries
(at most gRPC's 5) on UNAVAILABLE or RESOURCE_EXHAUSTED, the waits starting
near BILLING_RECONCILE_BACKOFF_SECONDS and doubling (at most 30 s, gRPC picks
each at random below its bound); the call's deadline covers every try.
When an event still cannot be applied after its tries, reconcile stops there
(so later events of the same subscription are not applied before it) and
reports it and every event after it as not applied; rerunning is safe.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from billing_client import Credentials, RetryPolicy, aio_channel
from billing_client.names import OUTCOME_NAMES
from billing_service.events.parse import HANDLED_TYPES
from billing_service.settings import Settings
from billing_service.storage.database import Database
from billing_service.storage.models import ProcessedEvent
from billing_service.stripe_api import StripeApi
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

CALLER = "billing-service-reconcile"
RPC_DEADLINE_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 30.0
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class ReconcileError(ValueError):
    """The request cannot be acted on (e.g. an unreadable --since)."""


def parse_since(text: str, now: datetime) -> datetime:
    """An aware UTC time from ``2026-11-01T00:00:00Z`` (any ISO 8601) or ``3d``/``12h``/``30m``."""
    raw = text.strip()
    relative = _RELATIVE.match(raw)
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ReconcileError(
            f"--since {text!r}: expected an ISO 8601 time (2026-11-01T00:00:00Z) or 3d/12h/30m/90s"
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if parsed > now:
        raise ReconcileError(f"--since {text!r} is in the future")
    return parsed


@dataclass
class Summary:
    """What one ``reconcile_since`` run saw and did."""

    seen: int = 0
    already_processed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOME_NAMES.values(), 0))
    failed: list[tuple[str, str]] = field(default_factory=list)
    listing_error: str = ""

    @property
    def ok(self) -> bool:
        """True when every event seen was handled and the listing completed."""
        return not self.failed and not self.listing_error


def describe(exc: Exception) -> str:
    """A one-line reason for ``exc`` (a gRPC status, or the error's message)."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details() or ''}".strip()
    return str(exc) or type(exc).__name__


def channel(settings: Settings) -> grpc.aio.Channel:
    """The channel to BILLING_SERVICE_TARGET (default BILLING_GRPC_ADDR), with credentials.

    gRPC retries ApplyStripeEvent and ReconcileUser on transient codes (see the module doc).
    """
    policy = RetryPolicy(
        methods=frozenset({"ApplyStripeEvent", "ReconcileUser"}),
        max_attempts=settings.reconcile_max_attempts,
        initial_backoff_seconds=settings.reconcile_backoff_seconds,
        max_backoff_seconds=MAX_BACKOFF_SECONDS,
        codes=frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}),
    )
    return aio_channel(settings.service_target, Credentials.from_env(), retries=policy)


def call_metadata() -> tuple[tuple[str, str], ...]:
    """What every call carries: our caller name and, when set, BILLING_SERVICE_TOKEN."""
    return Credentials.from_env().metadata(CALLER)


async def list_events(stripe: StripeApi, since: datetime) -> list[dict[str, Any]]:
    """Every handled-type event created at or after ``since``, oldest first, as raw JSON."""
    params = {"created": {"gte": int(since.timestamp())}, "types": sorted(HANDLED_TYPES)}
    # Stripe lists newest first; reversed, same-second events keep Stripe's own order.
    return (await stripe.list_events(params))[::-1]


def processed_ids(database_url: str, event_ids: list[str]) -> set[str]:
    """Which of ``event_ids`` ``processed_event`` already holds (any outcome)."""

    def finished() -> set[str]:
        found: set[str] = set()
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            query = ProcessedEvent.select(ProcessedEvent.event_id).where(
                ProcessedEvent.event_id.in_(chunk)
            )
            found.update(str(row.event_id) for row in query)
        return found

    with contextlib.closing(Database(database_url, workers=1)) as db:
        return db.call(finished)


async def reconcile_since(settings: Settings, since: datetime) -> Summary:
    """List Stripe's events since ``since`` and apply the unprocessed ones through the service."""
    summary = Summary()
    stripe = StripeApi(settings)
    try:
        events = await list_events(stripe, since)
    except Exception as exc:
        summary.listing_error = describe(exc)
        return summary
    finally:
        await stripe.close()
    summary.seen = len(events)
    done = processed_ids(settings.database_url, [str(e.get("id")) for e in events])
    pending = [e for e in events if e.get("id") not in done]
    summary.already_processed = len(events) - len(pending)
    metadata = call_metadata()
    async with channel(settings) as chan:
        stub = pb_grpc.BillingServiceStub(chan)
        for index, event in enumerate(pending):
            event_id = str(event.get("id"))
            request = pb.ApplyStripeEventRequest(payload=json.dumps(event).encode())
            try:
                answer = await stub.ApplyStripeEvent(
                    request, timeout=RPC_DEADLINE_SECONDS, metadata=metadata
                )
            except grpc.aio.AioRpcError as exc:
                summary.failed.append((event_id, describe(exc)))
                if exc.code() in _RETRYABLE:
                    # Stop in order: later events must not overtake this one.
                    for later in pending[index + 1 :]:
                        summary.failed.append((str(later.get("id")), "not attempted"))
                    break
                continue
            outcome = OUTCOME_NAMES.get(answer.outcome)
            if outcome is None:
                summary.failed.append((event_id, f"unexpected outcome {answer.outcome}"))
            else:
                summary.counts[outcome] += 1
    return summary


async def call_reconcile_user(settings: Settings, user_id: str) -> pb.ReconcileUserResponse:
    """Ask the service's ReconcileUser RPC to resync ``user_id``; its error propagates."""
    async with channel(settings) as chan:
        stub = pb_grpc.BillingServiceStub(chan)
        answer: pb.ReconcileUserResponse = await stub.ReconcileUser(
            pb.ReconcileUserRequest(user_id=user_id),
            timeout=RPC_DEADLINE_SECONDS,
            metadata=call_metadata(),
        )
    return answer
