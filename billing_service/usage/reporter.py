"""Sends overage from the ``usage_report`` outbox to Stripe Billing Meters, at least once.

ConsumeUsage only writes outbox rows (in its own transaction) and never waits
for Stripe. This reporter, one per replica, claims due rows in batches (on
PostgreSQL with ``FOR UPDATE SKIP LOCKED`` and a claim lease, so replicas
never send the same row at the same moment), sends each as a meter event
whose ``identifier`` is derived from the consumption's idempotency key (Stripe
dedupes identifiers for at least 24 hours), and marks it sent. A transient
failure (Stripe down, rate limited) retries with doubling backoff; a refusal
that can never succeed, a row outside Stripe's 35-day timestamp window, or a
row still unsent 24 hours after its first attempt (past the dedupe window) is
marked ``failed`` with the reason, never dropped: ``billing-service usage
report-status`` lists them and ``billing_usage_reports`` counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from peewee import fn
from prometheus_client import Gauge

from billing_service.errors import BillingError, Unavailable
from billing_service.storage.database import Database, StorageUnavailable
from billing_service.stripe_api import StripeApi
from billing_service.usage.clock import Clock
from billing_service.usage.models import UsageReport
from billing_service.usage.requests import MAX_AGE

log = logging.getLogger(__name__)

REPORTS = Gauge("billing_usage_reports", "Overage reports in the outbox, by state", ["state"])

CLAIM_LEASE = timedelta(seconds=60)
RETRY_WINDOW = timedelta(hours=24)
MAX_BACKOFF = timedelta(minutes=10)


@dataclass(frozen=True)
class Claimed:
    """A row this reporter is sending now."""

    id: int
    identifier: str
    stripe_customer_id: str
    event_name: str
    value: int
    timestamp: int
    attempts: int
    created_at: datetime


def claim(db: Database, now: datetime, batch: int) -> list[Claimed]:
    """Lease up to ``batch`` due pending rows to this reporter (runs on a db thread)."""
    with db.transaction():
        query = (
            UsageReport.select()
            .where((UsageReport.state == "pending") & (UsageReport.next_attempt_at <= now))
            .order_by(UsageReport.id)
            .limit(batch)
        )
        if db.is_postgres:
            query = query.for_update(skip_locked=True)
        rows = list(query)
        if rows:
            UsageReport.update(next_attempt_at=now + CLAIM_LEASE).where(
                UsageReport.id.in_([r.id for r in rows])
            ).execute()
    return [
        Claimed(
            r.id,
            r.identifier,
            r.stripe_customer_id,
            r.event_name,
            r.value,
            r.timestamp,
            r.attempts,
            r.created_at,
        )
        for r in rows
    ]


def mark_sent(row_id: int, now: datetime) -> None:
    """The row reached Stripe."""
    UsageReport.update(state="sent", sent_at=now, attempts=UsageReport.attempts + 1).where(
        (UsageReport.id == row_id) & (UsageReport.state == "pending")
    ).execute()


def mark_failed(row_id: int, reason: str) -> None:
    """The row can never reach Stripe; kept for a person."""
    UsageReport.update(state="failed", last_error=reason[:500]).where(
        (UsageReport.id == row_id) & (UsageReport.state == "pending")
    ).execute()


def mark_retry(row_id: int, attempts: int, reason: str, now: datetime) -> None:
    """Try the row again after a doubling backoff."""
    delay = min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts, 12)))
    UsageReport.update(
        attempts=attempts + 1, next_attempt_at=now + delay, last_error=reason[:500]
    ).where((UsageReport.id == row_id) & (UsageReport.state == "pending")).execute()


def counts(states: tuple[str, ...] | None = None) -> dict[str, int]:
    """Rows per state (only ``states`` when given: the loop skips the ever-growing ``sent``)."""
    query = UsageReport.select(UsageReport.state, fn.COUNT(UsageReport.id))
    if states is not None:
        query = query.where(UsageReport.state.in_(states))
    query = query.group_by(UsageReport.state).tuples()
    return {str(row[0]): int(row[1]) for row in query}  # type: ignore[index]


class UsageReporter:
    """The background loop that drains the outbox of one replica."""

    def __init__(
        self,
        db: Database,
        stripe_api: StripeApi,
        clock: Clock,
        *,
        interval: float = 1.0,
        batch: int = 100,
    ) -> None:
        self._db = db
        self._stripe = stripe_api
        self._clock = clock
        self._interval = interval
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start draining in the background."""
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop; rows in flight stay claimed until their lease ends, then another try sends them."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.drain_once()
                found = await self._db.run(counts, ("pending", "failed"))
                for state in ("pending", "failed"):
                    REPORTS.labels(state).set(found.get(state, 0))
            except StorageUnavailable as exc:
                log.warning("usage reports: storage unavailable (%s); will retry", exc)
                sent = 0
            except Exception:
                log.exception("usage reports: drain failed with a bug; will retry")
                sent = 0
            if sent < self._batch:
                await asyncio.sleep(self._interval)

    async def drain_once(self) -> int:
        """Send one batch of due rows; returns how many were claimed."""
        now = self._clock()
        rows = await self._db.run(claim, self._db, now, self._batch)
        await asyncio.gather(*(self._send(row, now) for row in rows))
        return len(rows)

    async def _send(self, row: Claimed, now: datetime) -> None:
        if not row.stripe_customer_id:
            await self._db.run(mark_failed, row.id, "the user has no Stripe customer to bill")
            return
        if row.timestamp < (now - MAX_AGE).replace(tzinfo=UTC).timestamp():
            await self._db.run(mark_failed, row.id, "older than Stripe's 35-day meter window")
            return
        params = {
            "event_name": row.event_name,
            "identifier": row.identifier,
            "timestamp": row.timestamp,
            "payload": {"stripe_customer_id": row.stripe_customer_id, "value": str(row.value)},
        }
        try:
            await self._stripe.create_meter_event(params, f"meter-event-{row.identifier}")
        except Unavailable as exc:
            if now - row.created_at > RETRY_WINDOW:
                reason = f"unsent 24 h after its first try (past Stripe's dedupe window): {exc}"
                await self._db.run(mark_failed, row.id, reason)
            else:
                await self._db.run(mark_retry, row.id, row.attempts, str(exc), now)
            return
        except BillingError as exc:
            await self._db.run(mark_failed, row.id, f"Stripe refused it: {exc}")
            return
        await self._db.run(mark_sent, row.id, now)
