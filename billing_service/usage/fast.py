"""ConsumeUsage on PostgreSQL + Redis: counters decided in Redis, the ledger in the same batch.

One batch (``batch.ConsumeBatcher``) is one PostgreSQL transaction::

    lock (shared, advisory): the generation lock + one lock per (user, meter)
    read the batch's subscriptions (period, limit) and their counters' database values
    Redis: one Lua call checks and counts every call in arrival order  (counters.py)
    INSERT the ledger records ... ON CONFLICT (idempotency_key) DO NOTHING
    UPSERT the counters by the units counted; INSERT the overage reports
    COMMIT, then answer; then drop the batch's answers from Redis's pending hash

Why it stays exact across replicas (docs/usage.md, "Redis fast path"):

* The decision is the Lua script's, atomic in Redis: never over a hard limit,
  a key answered once (its first answer is stored with it).
* Redis lost (flushed, restarted): ``usage:generation`` is gone, the script
  refuses to count, and a new generation is started under the *exclusive*
  generation lock, which waits for every batch still in flight on any replica.
  From then on a missing counter is seeded from the database value read under
  the batch's locks, which already holds every committed unit.
* A refund takes its (user, meter) lock exclusively, so no batch reads a
  counter's database value on one side of the refund and seeds it on the other.
* The process dying between the Lua call and the commit leaves the answers in
  the pending hash; any replica writes answers pending for more than
  ``DRAIN_AFTER`` to the ledger (``drain``), so the ledger catches up with the
  units Redis counted and a retry replays the same answer.
* A key the ledger already holds but Redis forgot (answer expired, or Redis
  lost) loses on the unique key: its units are taken back in Redis and the
  stored answer is replayed.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis

from billing_service.access import evaluate
from billing_service.errors import Unavailable
from billing_service.plans import Catalog
from billing_service.storage.database import Database
from billing_service.storage.models import Subscription
from billing_service.usage import fast_rows as sql
from billing_service.usage import ledger
from billing_service.usage.clock import Clock
from billing_service.usage.counters import (
    CountersLost,
    RedisCounters,
    Reserved,
    answer_key,
    counter_key,
)
from billing_service.usage.current import pick_current
from billing_service.usage.period import Period, usage_period

if TYPE_CHECKING:
    from billing_service.usage.batch import Decided, Pending

log = logging.getLogger(__name__)

GENERATION_LOCK = 0x7573616765  # "usage"
# An answer still pending after this long belongs to a batch that died: write it to the ledger.
DRAIN_AFTER = timedelta(seconds=30)


class FastLedger:
    """Check-and-consume through Redis counters, the ledger written in the same batch."""

    def __init__(
        self, db: Database, counters: RedisCounters, catalog: Catalog, clock: Clock
    ) -> None:
        self._db = db
        self._counters = counters
        self._catalog = catalog
        self._clock = clock

    # -- consume (on a database thread) ------------------------------------------------

    def apply(self, batch: Sequence[Pending]) -> list[Decided]:
        """Decide and record a batch; a Redis outage is UNAVAILABLE (nothing answered)."""
        try:
            for _ in range(3):
                try:
                    return self._attempt(batch)
                except CountersLost:
                    self._renew_generation()
        except redis.RedisError as exc:
            raise Unavailable(f"usage counters unavailable (Redis: {type(exc).__name__})") from exc
        raise Unavailable("usage counters: Redis lost its counters three times in a row")

    def _attempt(self, batch: Sequence[Pending]) -> list[Decided]:
        from billing_service.usage.batch import Decided, consumption, replay_of

        now = self._clock()
        users = sorted({p.user_id for p in batch})
        pairs = {(p.user_id, p.meter) for p in batch}
        conn = self._db.db.connection()
        with self._db.db.atomic(), conn.cursor() as cur:
            cur.execute(
                sql.LOCK_SHARED, (sorted([GENERATION_LOCK, *map(sql.pair_lock_of, pairs)]),)
            )
            periods = self._periods(cur, users, now)
            limits = [periods[p.user_id].limit(p.meter) for p in batch]
            billed = sorted(
                {p.user_id for p, lim in zip(batch, limits, strict=True) if lim.bills_overage}
            )
            customers = sql.customers(cur, billed)
            seeds = sql.database_counters(cur, users, {periods[u].start for u in users})
            requests = [
                consumption(p, periods[p.user_id], lim, customers.get(p.user_id, ""), now)
                for p, lim in zip(batch, limits, strict=True)
            ]
            reserved = self._counters.reserve([sql.reservation(r, seeds) for r in requests])
            decided: list[Decided] = []
            unwritten: dict[str, Reserved] = {}
            rows: dict[str, dict[str, Any]] = {}
            for p, limit, got in zip(batch, limits, reserved, strict=True):
                row = sql.record_of(p.key, got.fields)
                record = sql.LedgerRecord(**row)
                if got.new:
                    decided.append(Decided((record, False, limit)))
                else:
                    decided.append(replay_of(record, p, limit))
                if got.pending:
                    # A replay of an answer not yet committed is written here too: no
                    # answer leaves before the ledger holds it.
                    unwritten.setdefault(p.key, got)
                    rows.setdefault(p.key, row)
            replays = self._write(cur, unwritten, rows)
            for index, p in enumerate(batch):
                if p.key in replays:
                    decided[index] = replay_of(replays[p.key], p, limits[index])
        self._counters.settle([answer_key(key) for key in unwritten])
        return decided

    def _periods(self, cur: Any, users: list[str], now: datetime) -> dict[str, Period]:
        cur.execute(sql.SUBSCRIPTIONS, (users,))
        names = [column[0] for column in cur.description]
        rows = pick_current(
            Subscription(**dict(zip(names, row, strict=True))) for row in cur.fetchall()
        )
        return {
            user: usage_period(
                rows.get(user), evaluate(rows.get(user), self._catalog, now), self._catalog, now
            )
            for user in users
        }

    def _write(
        self,
        cur: Any,
        answers: dict[str, Reserved],
        parsed: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, sql.LedgerRecord]:
        """Write pending answers to the ledger; the older ledger record of each key that lost.

        ``parsed`` holds ledger rows the caller already made of some answers.

        A key already in the ledger with the same answer (``created_at``) was
        written by another batch or ``drain``: nothing to do. One with another
        answer is older than Redis's memory of it: its units are taken back and
        the ledger's answer is the one given.
        """
        if not answers:
            return {}
        # In key order: two batches writing the same keys (one adopting the other's
        # pending answers) wait on each other's unique index entries in one order.
        known = parsed or {}
        rows = {
            key: known[key] if key in known else sql.record_of(key, answers[key].fields)
            for key in sorted(answers)
        }
        inserted = sql.insert_records(cur, list(rows.values()))
        replays: dict[str, sql.LedgerRecord] = {}
        lost = [key for key in rows if key not in inserted]
        if lost:
            stored = sql.stored_records(cur, lost)
            for key in lost:
                row, found, got = rows[key], stored[key], answers[key]
                if found["created_at"] == row["created_at"]:
                    continue
                self._counters.undo(
                    counter_key(row["user_id"], row["meter"], sql.epoch(row["period_start"])),
                    row["counted"],
                    answer_key(key),
                    got.raw,
                    sql.answer_of(found, got.fields[9], got.fields[10]),
                )
                replays[key] = sql.LedgerRecord(**found)
        ours = [rows[key] for key in rows if key in inserted]
        sql.add_to_counters(cur, ours)
        reports = [
            sql.report_of(row, answers[row["idempotency_key"]].fields)
            for row in ours
            if row["overage"]
        ]
        reports.sort(key=lambda report: str(report["identifier"]))
        sql.insert_reports(cur, reports)
        return replays

    def _renew_generation(self) -> None:
        """Redis lost its counters: wait for every batch in flight, then trust Redis again."""
        with self._db.db.atomic(), self._db.db.connection().cursor() as cur:
            cur.execute(sql.LOCK, ([GENERATION_LOCK],))
            if not self._counters.generation_exists():
                self._counters.forget_counters()
                self._counters.start_generation(uuid.uuid4().hex)
                log.warning("usage counters lost in Redis; rebuilding them from the ledger")

    # -- pending answers of batches that died --------------------------------------------

    def drain(self) -> int:
        """Write answers pending longer than DRAIN_AFTER to the ledger; how many were new."""
        cutoff = self._clock() - DRAIN_AFTER
        with self._db.db.atomic(), self._db.db.connection().cursor() as cur:
            cur.execute(sql.LOCK_SHARED, ([GENERATION_LOCK],))
            # Read under the lock: a generation started after a flush waits for this write.
            pending = self._counters.pending()
            stale: dict[str, Reserved] = {}
            for key, raw in pending.items():
                fields = json.loads(raw)
                if datetime.fromisoformat(fields[8]) < cutoff:
                    stale[key.removeprefix("usage:k:")] = Reserved(fields, raw, False, True)
            if not stale:
                return 0
            self._write(cur, stale)
        self._counters.settle([answer_key(key) for key in stale])
        log.warning("wrote %d usage answers left pending by a stopped batch", len(stale))
        return len(stale)

    # -- refund -------------------------------------------------------------------------

    def refund(self, user_id: str, meter: str, key: str) -> ledger.Refund:
        """``ledger.refund`` under the (user, meter) lock, giving the units back in Redis too."""
        released = 0
        counter = ""
        body_done = False
        try:
            with self._db.db.atomic(), self._db.db.connection().cursor() as cur:
                cur.execute(sql.LOCK_SHARED, ([GENERATION_LOCK],))
                cur.execute(sql.LOCK, ([sql.pair_lock(user_id, meter)],))
                result = ledger.refund(self._db, user_id, meter, key)
                if result.refunded_now:
                    start = sql.epoch(result.record.period_start)
                    counter = counter_key(user_id, meter, start)
                    released = int(result.record.counted)
                    self._counters.release(counter, released)
                body_done = True
        except redis.RedisError as exc:
            raise Unavailable(f"usage counters unavailable (Redis: {type(exc).__name__})") from exc
        except BaseException:
            if body_done and released:
                # The commit failed after Redis gave the units back: take them again.
                self._counters.release(counter, -released)
            raise
        return result
