"""The fast path's SQL and rows: statements, answer fields <-> ledger rows, counters, reports.

``fast.FastLedger`` runs these on one cursor inside its batch transaction;
the answer fields' order is the one ``counters.py`` stores in Redis.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from psycopg2.extras import execute_values

from billing_service.usage.consumption import Consumption, identifier_for
from billing_service.usage.counters import (
    COUNTER_GRACE_SECONDS,
    Reservation,
    answer_key,
    counter_key,
)
from billing_service.usage.limits import MeterLimit
from billing_service.usage.models import RECORD_COLUMNS

LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(k) FROM unnest(%s::bigint[]) AS k"
LOCK = "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k"
SUBSCRIPTIONS = "SELECT * FROM subscription WHERE user_id = ANY(%s)"
CUSTOMERS = "SELECT user_id, stripe_customer_id FROM customer WHERE user_id = ANY(%s)"
COUNTERS = (
    "SELECT user_id, meter, period_start, used FROM usage_counter "
    "WHERE user_id = ANY(%s) AND period_start = ANY(%s)"
)
# One array per column: psycopg2 adapts the arrays in C, where execute_values
# formats every row in Python.
INSERT_RECORDS = (
    "INSERT INTO usage_record (idempotency_key, user_id, meter, quantity, allowed, counted, "
    'overage, used_after, "limit", unlimited, period_start, period_end, occurred_at, created_at) '
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::boolean[], "
    "%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::boolean[], %s::timestamp[], "
    "%s::timestamp[], %s::timestamp[], %s::timestamp[]) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key"
)
STORED = (
    "SELECT idempotency_key, user_id, meter, quantity, allowed, counted, overage, used_after, "
    '"limit", unlimited, period_start, period_end, occurred_at, created_at FROM usage_record '
    "WHERE idempotency_key = ANY(%s)"
)
UPSERT_COUNTERS = (
    "INSERT INTO usage_counter AS c (user_id, meter, period_start, period_end, used, last_delta) "
    "SELECT u, m, s, e, n, 0 FROM unnest(%s::text[], %s::text[], %s::timestamp[], "
    "%s::timestamp[], %s::bigint[]) AS v(u, m, s, e, n) "
    "ON CONFLICT (user_id, meter, period_start) DO UPDATE SET used = c.used + EXCLUDED.used"
)
INSERT_REPORTS = (
    "INSERT INTO usage_report (identifier, user_id, stripe_customer_id, event_name, value, "
    "timestamp, state, attempts, next_attempt_at, last_error, created_at) VALUES %s "
    "ON CONFLICT (identifier) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """A ledger row as a plain value: what a batch answers from (a peewee model costs more)."""

    idempotency_key: str
    user_id: str
    meter: str
    quantity: int
    allowed: bool
    counted: int
    overage: int
    used_after: int
    limit: int
    unlimited: bool
    period_start: datetime
    period_end: datetime
    occurred_at: datetime
    created_at: datetime


def pair_lock(user_id: str, meter: str) -> int:
    """The advisory lock id of one user's meter (64-bit, signed as PostgreSQL wants)."""
    digest = hashlib.blake2b(f"{user_id}\0{meter}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@lru_cache(maxsize=4096)
def epoch(value: datetime) -> int:
    """Whole seconds since the epoch of a naive-UTC or aware time."""
    # Period bounds repeat across calls and batches: each is converted once.
    return int(value.replace(tzinfo=UTC).timestamp())


@lru_cache(maxsize=4096)
def _iso(value: datetime) -> str:
    return value.isoformat()


def record_of(key: str, fields: list[Any]) -> dict[str, Any]:
    """The ledger row of an answer's fields (see counters.py for their order)."""
    (user, meter, quantity, limit, unlimited, start, end, occurred, created) = fields[:9]
    allowed, counted, overage, used_after = fields[11:15]
    return {
        "idempotency_key": key,
        "user_id": user,
        "meter": meter,
        "quantity": quantity,
        "allowed": allowed,
        "counted": counted,
        "overage": overage,
        "used_after": used_after,
        "limit": limit,
        "unlimited": unlimited,
        "period_start": datetime.fromisoformat(start),
        "period_end": datetime.fromisoformat(end),
        "occurred_at": datetime.fromisoformat(occurred),
        "created_at": datetime.fromisoformat(created),
    }


def answer_of(row: dict[str, Any], customer: str, event_name: str) -> list[Any]:
    """The answer fields of a ledger row (the inverse of ``_record_of``)."""
    return [
        row["user_id"],
        row["meter"],
        row["quantity"],
        row["limit"],
        row["unlimited"],
        row["period_start"].isoformat(),
        row["period_end"].isoformat(),
        row["occurred_at"].isoformat(),
        row["created_at"].isoformat(),
        customer,
        event_name,
        row["allowed"],
        row["counted"],
        row["overage"],
        row["used_after"],
    ]


def insert_records(cur: Any, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ledger rows (keys already there are left alone); the keys inserted."""
    cur.execute(INSERT_RECORDS, [[row[c] for row in rows] for c in RECORD_COLUMNS])
    return {key for (key,) in cur.fetchall()}


def stored_records(cur: Any, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The ledger rows of ``keys``, by key."""
    cur.execute(STORED, (keys,))
    return {r[0]: dict(zip(RECORD_COLUMNS, r, strict=True)) for r in cur.fetchall()}


def pair_lock_of(pair: tuple[str, str]) -> int:
    """``pair_lock`` of a (user, meter) pair."""
    return pair_lock(*pair)


def customers(cur: Any, users: list[str]) -> dict[str, str]:
    """The Stripe customer id of each of ``users`` that has one."""
    if not users:
        return {}
    cur.execute(CUSTOMERS, (users,))
    return dict(cur.fetchall())


def database_counters(
    cur: Any, users: list[str], starts: Iterable[datetime]
) -> dict[tuple[str, str, datetime], int]:
    """The database counters of ``users`` for the periods starting at ``starts``."""
    cur.execute(COUNTERS, (users, sorted(starts)))
    return {(user, meter, start): int(used) for user, meter, start, used in cur.fetchall()}


def reservation(request: Consumption, seeds: dict[tuple[str, str, datetime], int]) -> Reservation:
    """What the Lua script needs to decide ``request`` (counters.py), seeded from ``seeds``."""
    limit: MeterLimit = request.limit
    static = json.dumps(
        [
            request.user_id,
            request.meter,
            request.quantity,
            limit.included,
            limit.unlimited,
            _iso(request.period_start),
            _iso(request.period_end),
            request.occurred_at.isoformat(),
            _iso(request.now),
            request.stripe_customer_id,
            limit.event_name,
        ]
    )[1:-1]
    return Reservation(
        counter=counter_key(request.user_id, request.meter, epoch(request.period_start)),
        answer=answer_key(request.key),
        quantity=request.quantity,
        included=limit.included,
        open=limit.unlimited or limit.bills_overage,
        bills=limit.bills_overage and not limit.unlimited,
        static=static,
        seed=seeds.get((request.user_id, request.meter, request.period_start), 0),
        # Relative to the usage clock, which a test may set anywhere.
        counter_ttl=max(0, epoch(request.period_end) - epoch(request.now)) + COUNTER_GRACE_SECONDS,
    )


def add_to_counters(cur: Any, rows: list[dict[str, Any]]) -> None:
    """Add the counted units of ``rows`` to their database counters (in key order: no deadlock)."""
    totals: dict[tuple[str, str, datetime], tuple[datetime, int]] = {}
    for row in rows:
        if row["counted"]:
            counter = (row["user_id"], row["meter"], row["period_start"])
            held = totals.get(counter, (row["period_end"], 0))
            totals[counter] = (held[0], held[1] + row["counted"])
    if totals:
        ordered = sorted(totals.items())
        cur.execute(
            UPSERT_COUNTERS,
            (
                [u for (u, _, _), _ in ordered],
                [m for (_, m, _), _ in ordered],
                [s for (_, _, s), _ in ordered],
                [end for _, (end, _) in ordered],
                [used for _, (_, used) in ordered],
            ),
        )


def report_of(row: dict[str, Any], fields: list[Any]) -> dict[str, Any]:
    """The overage report (outbox row) of a ledger row and its answer's fields."""
    return {
        "identifier": identifier_for(row["idempotency_key"]),
        "user_id": row["user_id"],
        "stripe_customer_id": fields[9],
        "event_name": fields[10],
        "value": row["overage"],
        "timestamp": epoch(row["occurred_at"]),
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": row["created_at"],
        "last_error": "",
        "created_at": row["created_at"],
    }


REPORT_COLUMNS = (
    "identifier",
    "user_id",
    "stripe_customer_id",
    "event_name",
    "value",
    "timestamp",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
)


def insert_reports(cur: Any, reports: list[dict[str, Any]]) -> None:
    """Insert overage reports (identifiers already there are left alone)."""
    if reports:
        rows = [tuple(r[c] for c in REPORT_COLUMNS) for r in reports]
        execute_values(cur, INSERT_REPORTS, rows, page_size=len(rows))
