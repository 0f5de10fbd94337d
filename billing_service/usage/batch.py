"""Group commit for ConsumeUsage: the consumptions queued while a batch ran, in one transaction.

Requests queue up; while a batch runs on a database thread (two at once on
the database path, see ``IN_FLIGHT``), the next batch accumulates. One batch
costs a fixed handful of statements whatever its size: read the subscriptions
and the already-used keys, create and lock (``FOR UPDATE``, in id order, so
batches on several replicas never deadlock) the counters involved, decide
every request in arrival order against the locked values, then write the
records, the counters and the overage reports, and commit. A hot user's
counter is therefore locked once per batch instead of once per call. A batch
that hits a key inserted meanwhile by another replica on another counter (a
unique violation) is rolled back whole and its requests are applied one at a
time by ``ledger.consume``. A call whose caller hung up, or whose deadline
(``deadlines``) passed while it queued, is left out of its batch: nothing is counted for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from peewee import IntegrityError, Tuple

from billing_service import deadlines
from billing_service.errors import BillingError
from billing_service.plans import Catalog
from billing_service.storage.database import Database
from billing_service.storage.models import Customer
from billing_service.usage import ledger
from billing_service.usage.consumption import Consumption
from billing_service.usage.fast_rows import LedgerRecord
from billing_service.usage.limits import MeterLimit
from billing_service.usage.models import UsageCounter, UsageRecord, UsageReport
from billing_service.usage.period import Period

if TYPE_CHECKING:
    from billing_service.usage.fast import FastLedger

log = logging.getLogger(__name__)

MAX_BATCH = 256
# Batches running at once. On the database path a second batch overlaps the first's round
# trips; on the Redis path (fast.py) one at a time lets the next batch grow while the first
# waits on its round trips: ~2.5x larger batches and ~20% less CPU per call, measured in
# bench/usage.py (docs/performance.md, "Step 7").
IN_FLIGHT = {"database": 2, "redis": 1}

# The database path answers from peewee rows, the Redis fast path from plain values.
Recorded = UsageRecord | LedgerRecord
Outcome = tuple[Recorded, bool, MeterLimit]
Periods = Callable[[list[str], datetime], dict[str, Period]]


@dataclass(eq=False)
class Pending:
    """One ConsumeUsage waiting for its batch."""

    user_id: str
    meter: str
    quantity: int
    key: str
    occurred_at: datetime
    future: asyncio.Future[Outcome] = field(repr=False)
    # The caller's deadline (time.monotonic()); a call past it is not started.
    deadline: float | None = None


@dataclass
class Decided:
    """One call's outcome, or the error to answer it with."""

    outcome: Outcome | None = None
    error: BaseException | None = None


class ConsumeBatcher:
    """Applies queued consumptions in batches on the database thread pool."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        periods: Periods,
        clock: Any,
        fast: FastLedger | None = None,
    ) -> None:
        self._db = db
        # PostgreSQL + Redis: the counters live in Redis (fast.py); else the database path below.
        self._fast = fast
        self._catalog = catalog
        self._periods = periods
        self._clock = clock
        self._queue: list[Pending] = []
        self._in_flight = 0
        self._max_in_flight = IN_FLIGHT["database" if fast is None else "redis"]

    async def submit(
        self, user_id: str, meter: str, quantity: int, key: str, occurred_at: datetime
    ) -> Outcome:
        """Queue one consumption; its outcome once its batch committed."""
        loop = asyncio.get_running_loop()
        pending = Pending(
            user_id, meter, quantity, key, occurred_at, loop.create_future(), deadlines.deadline()
        )
        self._queue.append(pending)
        if self._in_flight < self._max_in_flight and len(self._queue) == 1:
            loop.call_soon(self._launch)
        return await pending.future

    def _launch(self) -> None:
        while self._queue and self._in_flight < self._max_in_flight:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[Pending]) -> None:
        batch = [p for p in batch if not self._expired(p)]
        try:
            decided = await self._db.run(self._apply, batch) if batch else []
        except Exception as exc:
            decided = [Decided(error=exc) for _ in batch]
        finally:
            self._in_flight -= 1
            if self._queue:
                self._launch()
        for pending, result in zip(batch, decided, strict=True):
            if pending.future.done():
                continue
            if result.error is not None:
                pending.future.set_exception(result.error)
            else:
                assert result.outcome is not None
                pending.future.set_result(result.outcome)

    @staticmethod
    def _expired(pending: Pending) -> bool:
        """Fail a call whose caller gave up or whose deadline passed while it queued."""
        if pending.future.done():
            return True
        try:
            deadlines.check("usage consumption", pending.deadline)
        except deadlines.DeadlineExceeded as exc:
            pending.future.set_exception(exc)
            return True
        return False

    # -- on a database thread ----------------------------------------------------------

    def _apply(self, batch: list[Pending]) -> list[Decided]:
        if self._fast is not None:
            return self._fast.apply(batch)
        now = self._clock()
        periods = self._periods(sorted({p.user_id for p in batch}), now)
        limits = [periods[p.user_id].limit(p.meter) for p in batch]
        customers = self._customers(
            sorted({p.user_id for p, lim in zip(batch, limits, strict=True) if lim.bills_overage})
        )
        try:
            with self._db.transaction():
                return self._decide_and_write(batch, periods, limits, customers, now)
        except IntegrityError:
            log.info("usage batch of %d hit a concurrent key; applying one by one", len(batch))
        return [
            self._one(p, periods[p.user_id], lim, customers, now)
            for p, lim in zip(batch, limits, strict=True)
        ]

    def _one(
        self,
        p: Pending,
        period: Period,
        limit: MeterLimit,
        customers: dict[str, str],
        now: datetime,
    ) -> Decided:
        request = consumption(p, period, limit, customers.get(p.user_id, ""), now)
        try:
            record, replayed = ledger.consume(self._db, request)
        except BillingError as exc:
            return Decided(error=exc)
        return Decided((record, replayed, limit))

    @staticmethod
    def _customers(users: list[str]) -> dict[str, str]:
        if not users:
            return {}
        rows = Customer.select(Customer.user_id, Customer.stripe_customer_id).where(
            Customer.user_id.in_(users)
        )
        return {row.user_id: row.stripe_customer_id for row in rows}

    def _lock_counters(self, wanted: list[tuple[str, str, datetime, datetime]]) -> dict[Any, Any]:
        UsageCounter.insert_many(
            [
                {
                    "user_id": user,
                    "meter": meter,
                    "period_start": start,
                    "period_end": end,
                    "used": 0,
                    "last_delta": 0,
                }
                for user, meter, start, end in wanted
            ]
        ).on_conflict_ignore().execute()
        query = (
            UsageCounter.select(
                UsageCounter.id,
                UsageCounter.user_id,
                UsageCounter.meter,
                UsageCounter.period_start,
                UsageCounter.used,
            )
            .where(
                Tuple(UsageCounter.user_id, UsageCounter.meter, UsageCounter.period_start).in_(
                    [(u, m, s) for u, m, s, _ in wanted]
                )
            )
            .order_by(UsageCounter.id)
        )
        if self._db.is_postgres:
            query = query.for_update()
        return {(c.user_id, c.meter, c.period_start): c for c in query}

    def _write_counters(self, changes: list[tuple[int, int]]) -> None:
        if not changes:
            return
        if self._db.is_postgres and len(changes) > 1:
            values = ", ".join(["(%s, %s)"] * len(changes))
            # Only "%s" placeholders are formatted in; the values go as parameters.
            self._db.db.execute_sql(
                "UPDATE usage_counter AS c SET used = v.used "  # noqa: S608
                f"FROM (VALUES {values}) AS v(id, used) WHERE c.id = v.id",
                [x for change in changes for x in change],
            )
            return
        for counter_id, used in changes:
            UsageCounter.update(used=used).where(UsageCounter.id == counter_id).execute()

    def _decide_and_write(
        self,
        batch: list[Pending],
        periods: dict[str, Period],
        limits: list[MeterLimit],
        customers: dict[str, str],
        now: datetime,
    ) -> list[Decided]:
        wanted = sorted(
            {(p.user_id, p.meter, periods[p.user_id].start, periods[p.user_id].end) for p in batch}
        )
        counters = self._lock_counters(wanted)
        # Read the keys under the locks: a key committed meanwhile on the same counter is a replay.
        stored = {
            r.idempotency_key: r
            for r in UsageRecord.select().where(
                UsageRecord.idempotency_key.in_(sorted({p.key for p in batch}))
            )
        }
        used = {key: int(c.used) for key, c in counters.items()}
        records: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        decided: list[Decided] = []
        for p, limit in zip(batch, limits, strict=True):
            found = stored.get(p.key)
            if found is not None:
                decided.append(replay_of(found, p, limit))
                continue
            period = periods[p.user_id]
            counter = (p.user_id, p.meter, period.start)
            request = consumption(p, period, limit, customers.get(p.user_id, ""), now)
            row = ledger.decide(request, used[counter])
            used[counter] = row["used_after"]
            record = UsageRecord(**row)
            stored[p.key] = record
            records.append(row)
            if row["overage"]:
                reports.append(ledger.report_row(request, row["overage"]))
            decided.append(Decided((record, False, limit)))
        if records:
            UsageRecord.insert_many(records).execute()
        self._write_counters(
            [(counters[k].id, v) for k, v in used.items() if v != int(counters[k].used)]
        )
        if reports:
            UsageReport.insert_many(reports).execute()
        return decided


def consumption(
    p: Pending, period: Period, limit: MeterLimit, customer: str, now: datetime
) -> Consumption:
    """The ledger's request for one queued call in ``period`` under ``limit``."""
    return Consumption(
        user_id=p.user_id,
        meter=p.meter,
        quantity=p.quantity,
        key=p.key,
        occurred_at=p.occurred_at,
        period_start=period.start,
        period_end=period.end,
        limit=limit,
        now=now,
        stripe_customer_id=customer,
    )


def replay_of(found: Recorded, p: Pending, limit: MeterLimit) -> Decided:
    """The stored answer ``found`` for ``p``'s key: a replay, or FAILED_PRECONDITION if reused."""
    if (found.user_id, found.meter, found.quantity) != (p.user_id, p.meter, p.quantity):
        return Decided(error=ledger.key_reused())
    return Decided((found, True, limit))
