"""``billing-service reconcile``: heal gaps in webhook delivery from Stripe's own records.

``reconcile --since TIME`` pages through Stripe's Events API (the event types
ApplyStripeEvent acts on, created at or after TIME), skips the ids already in
``processed_event`` and submits the rest, oldest first, to ApplyStripeEvent on
BILLING_SERVICE_TARGET - the webhook path itself, so the server's locks,
exactly-once record, audit trail and entitlement-cache notifications all
apply. It prints what it saw and did and exits 1 when anything was not done
(never a silent success)::

    billing-service reconcile --since 2026-11-01T00:00:00Z
    billing-service reconcile --since 3d

``reconcile --user ID`` calls ReconcileUser, which resyncs that user's
subscriptions from Stripe's subscriptions API.

Rate limits and outages: each Stripe page and each event gets
BILLING_RECONCILE_MAX_ATTEMPTS tries (after the SDK's own
STRIPE_MAX_NETWORK_RETRIES), waiting BILLING_RECONCILE_BACKOFF_SECONDS,
doubling, between them. When Stripe cannot be listed nothing is applied.
When an event still cannot be applied after its tries, reconcile stops there
(so later events of the same subscription are not applied before it) and
reports it and every event after it as not applied; rerunning is safe.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO, TypeVar

import grpc
import peewee

from billing_client import Credentials, aio_channel
from billing_client.names import OUTCOME_NAMES
from billing_service.errors import Unavailable
from billing_service.events.parse import HANDLED_TYPES
from billing_service.settings import Settings
from billing_service.storage.database import StorageUnavailable, open_database
from billing_service.storage.models import ProcessedEvent
from billing_service.storage.models import database as database_proxy
from billing_service.stripe_api import StripeApi
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

T = TypeVar("T")

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
    """The command line cannot be acted on (e.g. an unreadable --since)."""


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
    """What one ``reconcile --since`` run saw and did."""

    seen: int = 0
    already_processed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOME_NAMES.values(), 0))
    failed: list[tuple[str, str]] = field(default_factory=list)
    listing_error: str = ""

    @property
    def ok(self) -> bool:
        """True when every event seen was handled and the listing completed."""
        return not self.failed and not self.listing_error

    def lines(self) -> Iterator[str]:
        """The human-readable report."""
        if self.listing_error:
            yield f"could not list Stripe events: {self.listing_error}; nothing was applied"
        yield f"seen: {self.seen}"
        yield f"already processed: {self.already_processed}"
        for name, count in self.counts.items():
            yield f"{name}: {count}"
        yield f"failed: {len(self.failed)}"
        for event_id, reason in self.failed:
            yield f"  {event_id}: {reason}"
        yield "result: OK" if self.ok else "result: INCOMPLETE (rerun after fixing the cause)"


class Backoff:
    """Bounded retries with doubling waits for transient failures."""

    def __init__(self, attempts: int, first_wait: float, out: TextIO) -> None:
        self._attempts = max(1, attempts)
        self._first_wait = first_wait
        self._out = out

    async def run(
        self, what: str, call: Callable[[], Awaitable[T]], retryable: Callable[[Exception], bool]
    ) -> T:
        """``await call()``, retrying while ``retryable(error)``; the last error propagates."""
        wait = self._first_wait
        for attempt in range(1, self._attempts + 1):
            try:
                return await call()
            except Exception as exc:
                if attempt == self._attempts or not retryable(exc):
                    raise
                print(
                    f"{what}: {_describe(exc)}; try {attempt + 1}/{self._attempts} in {wait:g}s",
                    file=self._out,
                )
                await asyncio.sleep(wait)
                wait = min(MAX_BACKOFF_SECONDS, wait * 2)
        raise AssertionError("unreachable")


def _describe(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details() or ''}".strip()
    return str(exc) or type(exc).__name__


def _grpc_retryable(exc: Exception) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _RETRYABLE


def _stripe_retryable(exc: Exception) -> bool:
    return isinstance(exc, Unavailable)


def channel(settings: Settings) -> grpc.aio.Channel:
    """The channel to BILLING_SERVICE_TARGET (default BILLING_GRPC_ADDR), with credentials.

    Without channel retries: ``Backoff`` retries each call and reports every try.
    """
    return aio_channel(settings.service_target, Credentials.from_env(), retries=False)


def call_metadata() -> tuple[tuple[str, str], ...]:
    """What every call carries: our caller name and, when set, BILLING_SERVICE_TOKEN."""
    return Credentials.from_env().metadata(CALLER)


async def list_events(stripe: StripeApi, since: datetime, backoff: Backoff) -> list[dict[str, Any]]:
    """Every handled-type event created at or after ``since``, oldest first, as raw JSON."""
    params: dict[str, Any] = {
        "created": {"gte": int(since.timestamp())},
        "types": sorted(HANDLED_TYPES),
        "limit": 100,
    }
    newest_first: list[dict[str, Any]] = []
    while True:
        page = await backoff.run(
            "listing Stripe events", lambda: stripe.list_events(params), _stripe_retryable
        )
        data = [event for event in page.get("data") or [] if isinstance(event, dict)]
        newest_first.extend(data)
        if not page.get("has_more") or not data:
            break
        params["starting_after"] = data[-1]["id"]
    # Stripe lists newest first; reversed, same-second events keep Stripe's own order.
    return newest_first[::-1]


def processed_ids(database_url: str, event_ids: list[str]) -> set[str]:
    """Which of ``event_ids`` ``processed_event`` already holds (finished, any outcome)."""
    db = open_database(database_url, max_connections=1)
    database_proxy.initialize(db)
    found: set[str] = set()
    try:
        with db.connection_context():
            for start in range(0, len(event_ids), 500):
                chunk = event_ids[start : start + 500]
                query = ProcessedEvent.select(ProcessedEvent.event_id).where(
                    ProcessedEvent.event_id.in_(chunk), ProcessedEvent.outcome != "pending"
                )
                found.update(str(row.event_id) for row in query)
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        raise StorageUnavailable(f"database unavailable: {type(exc).__name__}") from exc
    finally:
        db.close()
    return found


async def reconcile_since(settings: Settings, since: datetime, out: TextIO) -> Summary:
    """List Stripe's events since ``since`` and apply the unprocessed ones through the service."""
    summary = Summary()
    backoff = Backoff(settings.reconcile_max_attempts, settings.reconcile_backoff_seconds, out)
    stripe = StripeApi(settings)
    try:
        events = await list_events(stripe, since, backoff)
    except Exception as exc:
        summary.listing_error = _describe(exc)
        return summary
    finally:
        await stripe.close()
    summary.seen = len(events)
    done = processed_ids(settings.database_url, [str(e.get("id")) for e in events])
    pending = [e for e in events if e.get("id") not in done]
    summary.already_processed = len(events) - len(pending)
    async with channel(settings) as chan:
        stub = pb_grpc.BillingServiceStub(chan)
        for index, event in enumerate(pending):
            event_id = str(event.get("id"))
            request = pb.ApplyStripeEventRequest(payload=json.dumps(event).encode())
            try:
                answer = await backoff.run(
                    f"applying {event_id}",
                    lambda request=request: stub.ApplyStripeEvent(  # type: ignore[misc]
                        request, timeout=RPC_DEADLINE_SECONDS, metadata=call_metadata()
                    ),
                    _grpc_retryable,
                )
            except grpc.aio.AioRpcError as exc:
                summary.failed.append((event_id, _describe(exc)))
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


async def reconcile_user(settings: Settings, user_id: str, out: TextIO) -> bool:
    """Call ReconcileUser for ``user_id``; print what it did; True on success."""
    backoff = Backoff(settings.reconcile_max_attempts, settings.reconcile_backoff_seconds, out)
    async with channel(settings) as chan:
        stub = pb_grpc.BillingServiceStub(chan)
        try:
            answer = await backoff.run(
                f"ReconcileUser {user_id}",
                lambda: stub.ReconcileUser(
                    pb.ReconcileUserRequest(user_id=user_id),
                    timeout=RPC_DEADLINE_SECONDS,
                    metadata=call_metadata(),
                ),
                _grpc_retryable,
            )
        except grpc.aio.AioRpcError as exc:
            print(f"user {user_id} not reconciled: {_describe(exc)}", file=out)
            return False
    sub = answer.subscription
    print(
        f"user {user_id}: {answer.subscriptions_seen} subscription(s) in Stripe, "
        f"{answer.subscriptions_changed} changed; now "
        f"{pb.SubscriptionStatus.Name(sub.status).removeprefix('SUBSCRIPTION_STATUS_').lower()} "
        f"tier {sub.tier} {sub.stripe_subscription_id}".rstrip(),
        file=out,
    )
    return True


def add_reconcile_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``reconcile --since TIME | --user ID`` to the CLI."""
    parser = commands.add_parser(
        "reconcile",
        help="apply Stripe events that never arrived (--since) or resync one user (--user), "
        "through the service on BILLING_SERVICE_TARGET; exit 1 when anything failed",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--since",
        metavar="TIME",
        help="ISO 8601 time (2026-11-01T00:00:00Z) or a duration back from now (3d, 12h, 30m)",
    )
    which.add_argument("--user", metavar="ID", help="our user id")


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``reconcile``; 0 when everything was done, 1 otherwise, 2 for a bad --since."""
    out = sys.stdout
    if args.user is not None:
        return 0 if asyncio.run(reconcile_user(settings, args.user, out)) else 1
    try:
        since = parse_since(args.since, datetime.now(UTC))
    except ReconcileError as exc:
        print(f"billing-service: {exc}", file=sys.stderr)
        return 2
    print(f"reconciling Stripe events created since {since.isoformat()}", file=out)
    summary = asyncio.run(reconcile_since(settings, since, out))
    for line in summary.lines():
        print(line, file=out)
    return 0 if summary.ok else 1
