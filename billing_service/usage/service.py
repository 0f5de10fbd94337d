"""Usage RPCs: ConsumeUsage, RefundUsage, GetUsage and the meter part of CheckEntitlement.

Each call reads the user's current subscription row, evaluates its grant at
the usage clock's "now" and counts in the ledger (``usage.ledger``), all in
one call on a database thread: the plan, the period and the count come from
the same committed state, whichever replica answers. ConsumeUsage goes
through the group commit (``batch``), which on PostgreSQL with Redis counters
decides in Redis (``fast``). Answers are plain values (``answers``); the
servicer turns them into messages (``messages``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from billing_service import validation
from billing_service.access import evaluate
from billing_service.plans import Catalog
from billing_service.storage.database import Database
from billing_service.usage import ledger, requests
from billing_service.usage.announce import UsageAnnouncer
from billing_service.usage.answers import ConsumeAnswer, MeterUsage, RefundAnswer, UsageSummary
from billing_service.usage.batch import ConsumeBatcher, Recorded
from billing_service.usage.clock import Clock
from billing_service.usage.counters import RedisCounters
from billing_service.usage.current import current_subscription, current_subscriptions
from billing_service.usage.fast import FastLedger
from billing_service.usage.limits import MeterLimit
from billing_service.usage.period import Period, usage_period
from billing_service.usage.resets import ExhaustedMeters

log = logging.getLogger(__name__)

# How often each replica looks for answers a stopped batch left pending (fast.DRAIN_AFTER).
DRAIN_INTERVAL_SECONDS = 10.0

# Called after a consumption or refund changed a meter: (user_id, meter usage after it).
UsageChanged = Callable[[str, MeterUsage], None]


def _reason(record: Recorded) -> str:
    if record.unlimited:
        return f"meter {record.meter!r} is unlimited on this plan"
    if not record.allowed:
        left = max(0, record.limit - record.used_after)
        return f"refused: {record.quantity} requested, {left} of {record.limit} left in the period"
    if record.overage:
        return f"counted; {record.overage} past the included {record.limit}, billed as overage"
    return "counted"


def consume_answer(record: Recorded, *, replayed: bool) -> ConsumeAnswer:
    """The ConsumeUsage answer stored in ``record``."""
    return ConsumeAnswer(
        allowed=record.allowed,
        used=record.used_after,
        limit=record.limit,
        remaining=0 if record.unlimited else max(0, record.limit - record.used_after),
        overage=record.overage,
        unlimited=record.unlimited,
        replayed=replayed,
        reason=_reason(record),
        period_start=record.period_start,
        period_end=record.period_end,
    )


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


class UsageService:
    """Usage metering for one process over the shared ledger."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        clock: Clock,
        on_change: UsageChanged | None = None,
        announcer: UsageAnnouncer | None = None,
        counters: RedisCounters | None = None,
    ) -> None:
        self._db = db
        self._catalog = catalog
        # Built by the catalog on each read: read once, not per call.
        self._meters = catalog.all_meters
        self._clock = clock
        self._counters = counters
        self._on_change = on_change
        self._announcer = announcer
        self._exhausted = ExhaustedMeters(clock, self._announce_reset)
        # Redis counters serve PostgreSQL only: SQLite is one process, exact on its own.
        self._fast = (
            FastLedger(db, counters, catalog, clock)
            if counters is not None and db.is_postgres
            else None
        )
        self._batcher = ConsumeBatcher(db, catalog, self.periods_now, clock, self._fast)
        self._drainer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """With Redis counters: write answers left pending by stopped batches, now and then."""
        if self._fast is not None and self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain_forever())

    async def _drain_forever(self) -> None:
        assert self._fast is not None
        while True:
            try:
                await self._db.run(self._fast.drain)
            except Exception:
                log.warning("writing pending usage answers failed; retrying", exc_info=True)
            await asyncio.sleep(DRAIN_INTERVAL_SECONDS)

    async def close(self) -> None:
        """Stop draining, watching exhausted meters for their period end, announcing."""
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        await self._exhausted.close()
        if self._announcer is not None:
            await self._announcer.close()
        if self._counters is not None:
            self._counters.close()

    async def _announce_reset(self, user_id: str, meter: str) -> None:
        if self._on_change is None:
            return
        usage = (await self.usage(user_id, meter)).meters[0]
        self._on_change(user_id, usage)

    def period_now(self, user_id: str) -> Period:
        """The user's usage period now and the plan whose limits apply (on a db thread)."""
        row = current_subscription(user_id)
        now = self._clock()
        return usage_period(row, evaluate(row, self._catalog, now), self._catalog, now)

    async def period(self, user_id: str) -> Period:
        """The user's usage period now, and the plan whose limits apply in it."""
        return await self._db.run(self.period_now, user_id)

    def periods_now(self, user_ids: list[str], now: datetime) -> dict[str, Period]:
        """Each user's usage period at ``now`` (on a db thread; one query for all)."""
        rows = current_subscriptions(user_ids)
        return {
            user: usage_period(
                rows.get(user), evaluate(rows.get(user), self._catalog, now), self._catalog, now
            )
            for user in user_ids
        }

    async def consume(
        self,
        user_id: str,
        meter: str,
        quantity: int,
        key: str,
        occurred_at: datetime | None,
    ) -> ConsumeAnswer:
        """Check and count ``quantity`` units of ``meter`` for ``user_id`` (idempotent on key)."""
        validation.user_id(user_id)
        meter = requests.meter(self._meters, meter)
        requests.quantity(quantity)
        requests.idempotency_key(key)
        when = requests.occurred_at(
            None if occurred_at is None else _naive(occurred_at), self._clock()
        )
        record, replayed, limit = await self._batcher.submit(user_id, meter, quantity, key, when)
        if not replayed and record.counted:
            self._announce(record, limit, record.used_after - record.counted)
        return consume_answer(record, replayed=replayed)

    def _announce(self, record: Recorded, limit: MeterLimit, before: int) -> None:
        """Tell watchers when this change crossed the meter's limit (either way)."""
        if self._on_change is None or limit.unlimited:
            return
        after = record.used_after
        if (before < limit.included) != (after < limit.included):
            self._exhausted.reached(record.user_id, record.meter, record.period_end)
            self._on_change(
                record.user_id,
                MeterUsage.of(record.meter, after, limit, record.period_start, record.period_end),
            )

    async def refund(self, user_id: str, meter: str, key: str) -> RefundAnswer:
        """Give back the units of the consumption ``key``, once."""
        validation.user_id(user_id)
        meter = requests.meter(self._meters, meter)
        requests.idempotency_key(key)
        if self._fast is not None:
            result = await self._db.run(self._fast.refund, user_id, meter, key)
        else:
            result = await self._db.run(ledger.refund, self._db, user_id, meter, key)
        record = result.record
        limit = MeterLimit(included=record.limit, unlimited=record.unlimited)
        usage = MeterUsage.of(meter, result.used, limit, record.period_start, record.period_end)
        if result.refunded_now:
            self._announce_refund(user_id, usage, record.counted)
        return RefundAnswer(
            refunded=record.counted if result.refunded_now else 0,
            already_refunded=record.refunded_at is not None and not result.refunded_now,
            usage=usage,
        )

    def _announce_refund(self, user_id: str, usage: MeterUsage, counted: int) -> None:
        if self._on_change is None or usage.unlimited:
            return
        if usage.used < usage.limit <= usage.used + counted:
            self._exhausted.released(user_id, usage.meter)
            self._on_change(user_id, usage)

    def _used_now(self, user_id: str, meters: list[str]) -> tuple[Period, dict[str, int]]:
        period = self.period_now(user_id)
        return period, ledger.used_in(user_id, meters, period.start)

    async def usage(self, user_id: str, meter: str) -> UsageSummary:
        """Usage of ``meter`` (every meter when empty) in the user's current period."""
        validation.user_id(user_id)
        meters = [requests.meter(self._meters, meter)] if meter else sorted(self._meters)
        period, used = await self._db.run(self._used_now, user_id, meters)
        return UsageSummary(
            user_id=user_id,
            tier=period.plan.name,
            meters=[
                MeterUsage.of(m, used.get(m, 0), period.limit(m), period.start, period.end)
                for m in meters
            ],
        )

    async def check(self, user_id: str, meter: str, quantity: int) -> tuple[bool, MeterUsage]:
        """Whether ``quantity`` more units of ``meter`` would be allowed now; consumes nothing."""
        validation.user_id(user_id)
        meter = requests.meter(self._meters, meter)
        requests.quantity(quantity or 1)
        period, used = await self._db.run(self._used_now, user_id, [meter])
        limit = period.limit(meter)
        current = used.get(meter, 0)
        usage = MeterUsage.of(meter, current, limit, period.start, period.end)
        return limit.admits(current, quantity or 1), usage
