"""The usage ledger: atomic check-and-consume, refund and reads, on SQLite or PostgreSQL.

Every function runs on a database thread (``Database.run``). A consumption
locks its counter row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's single
writer, taken up front by ``Database.transaction``), re-checks its
idempotency key under that lock, then writes the ledger record, the counter
and (for overage) the outbox row in one transaction. So across any number of
replicas the counter equals the sum of the counted records and a hard limit
is never passed; a key raced on two different counters is settled by the
record's unique constraint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from peewee import IntegrityError

from billing_service.errors import FailedPrecondition, NotFound
from billing_service.storage.database import Database
from billing_service.storage.models import utcnow
from billing_service.usage.consumption import Consumption, identifier_for
from billing_service.usage.ledger_pg import consume_postgres
from billing_service.usage.models import UsageCounter, UsageRecord, UsageReport


@dataclass(frozen=True)
class Refund:
    """What RefundUsage did: the record and whether this call gave the units back."""

    record: UsageRecord
    used: int
    refunded_now: bool


def _counter_where(user_id: str, meter: str, period_start: datetime) -> object:
    return (
        (UsageCounter.user_id == user_id)
        & (UsageCounter.meter == meter)
        & (UsageCounter.period_start == period_start)
    )


def _lock_counter(db: Database, user_id: str, meter: str, start: datetime, end: datetime) -> int:
    """Create the counter if needed, lock it, and return its ``used``."""
    UsageCounter.insert(
        user_id=user_id, meter=meter, period_start=start, period_end=end, used=0, last_delta=0
    ).on_conflict_ignore().execute()
    query = UsageCounter.select(UsageCounter.used).where(_counter_where(user_id, meter, start))
    if db.is_postgres:
        query = query.for_update()
    return int(query.scalar() or 0)


def _same_request(record: UsageRecord, request: Consumption) -> UsageRecord:
    found = replay(request.user_id, request.meter, request.quantity, request.key)
    assert found is not None
    return found


def key_reused() -> FailedPrecondition:
    """The error for a key already used by another consumption."""
    return FailedPrecondition(
        "idempotency_key: already used for a different consumption "
        "(another user_id, meter or quantity)"
    )


def replay(user_id: str, meter: str, quantity: int, key: str) -> UsageRecord | None:
    """The stored answer for ``key``, if any; FAILED_PRECONDITION when it was another request."""
    found = UsageRecord.get_or_none(UsageRecord.idempotency_key == key)
    if found is not None and (found.user_id, found.meter, found.quantity) != (
        user_id,
        meter,
        quantity,
    ):
        raise key_reused()
    return found


def consume(db: Database, request: Consumption) -> tuple[UsageRecord, bool]:
    """Check and consume atomically; returns the record and True when it is a replay."""
    try:
        if db.is_postgres:
            return consume_postgres(db, request), False
        with db.transaction():
            used = _lock_counter(
                db, request.user_id, request.meter, request.period_start, request.period_end
            )
            found = UsageRecord.get_or_none(UsageRecord.idempotency_key == request.key)
            if found is not None:
                return _same_request(found, request), True
            return _write(request, used), False
    except IntegrityError:
        # The same key won on another counter (another user or meter) meanwhile.
        found = UsageRecord.get_or_none(UsageRecord.idempotency_key == request.key)
        if found is None:
            raise
        return _same_request(found, request), True


def decide(request: Consumption, used: int) -> dict[str, Any]:
    """The ledger record of ``request`` against ``used`` units already counted (not written)."""
    limit = request.limit
    allowed = limit.admits(used, request.quantity)
    counted = request.quantity if allowed else 0
    return {
        "idempotency_key": request.key,
        "user_id": request.user_id,
        "meter": request.meter,
        "quantity": request.quantity,
        "allowed": allowed,
        "counted": counted,
        "overage": limit.overage_of(used, request.quantity) if allowed else 0,
        "used_after": used + counted,
        "limit": limit.included,
        "unlimited": limit.unlimited,
        "period_start": request.period_start,
        "period_end": request.period_end,
        "occurred_at": request.occurred_at,
        "created_at": request.now,
    }


def report_row(request: Consumption, overage: int) -> dict[str, Any]:
    """The outbox row reporting ``overage`` units of ``request`` to Stripe (not written)."""
    return {
        "identifier": identifier_for(request.key),
        "user_id": request.user_id,
        "stripe_customer_id": request.stripe_customer_id,
        "event_name": request.limit.event_name,
        "value": overage,
        "timestamp": int(request.occurred_at.replace(tzinfo=UTC).timestamp()),
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": request.now,
        "last_error": "",
        "created_at": request.now,
    }


def _write(request: Consumption, used: int) -> UsageRecord:
    row = decide(request, used)
    record = UsageRecord.create(**row)
    if row["counted"]:
        UsageCounter.update(used=UsageCounter.used + row["counted"]).where(
            _counter_where(request.user_id, request.meter, request.period_start)
        ).execute()
    if row["overage"]:
        UsageReport.insert(report_row(request, row["overage"])).execute()
    return record


def refund(db: Database, user_id: str, meter: str, key: str) -> Refund:
    """Give back the units counted under ``key``, once; NOT_FOUND/FAILED_PRECONDITION else."""
    found = UsageRecord.get_or_none(UsageRecord.idempotency_key == key)
    if found is None or found.user_id != user_id:
        raise NotFound(f"idempotency_key: no consumption {key!r} for this user_id")
    if found.meter != meter:
        raise FailedPrecondition(f"meter: the consumption {key!r} was on meter {found.meter!r}")
    with db.transaction():
        used = _lock_counter(db, user_id, meter, found.period_start, found.period_end)
        record = UsageRecord.get(UsageRecord.id == found.id)
        if record.refunded_at is not None or not record.counted:
            return Refund(record, used, refunded_now=False)
        UsageRecord.update(refunded_at=utcnow()).where(UsageRecord.id == record.id).execute()
        UsageCounter.update(used=UsageCounter.used - record.counted).where(
            _counter_where(user_id, meter, record.period_start)
        ).execute()
        # Overage not yet reported is not billed; once sent, Stripe keeps it (see docs/usage.md).
        UsageReport.update(state="canceled").where(
            (UsageReport.identifier == identifier_for(key)) & (UsageReport.state == "pending")
        ).execute()
        return Refund(UsageRecord.get(UsageRecord.id == record.id), used - record.counted, True)


def used_in(user_id: str, meters: list[str], period_start: datetime) -> dict[str, int]:
    """Units counted per meter of ``meters`` in the period starting at ``period_start``."""
    rows = UsageCounter.select(UsageCounter.meter, UsageCounter.used).where(
        (UsageCounter.user_id == user_id)
        & (UsageCounter.meter.in_(meters))
        & (UsageCounter.period_start == period_start)
    )
    return {row.meter: int(row.used) for row in rows}
