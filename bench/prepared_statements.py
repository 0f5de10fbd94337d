"""PostgreSQL's CPU per hot statement, sent as text against prepared, in one run.

::

    .venv/bin/python -m bench.prepared_statements              # 4,000 calls per statement
    .venv/bin/python -m bench.prepared_statements --calls 10000

On a new, migrated database holding 2,000 subscriptions, each of the event
apply's fixed statements (``storage/fixed_sql`` and its siblings) is called
through its own function, ``--calls`` times over the 2,000 ids, first on a
database opened with ``?prepared_statements=false`` (the baseline: text, parsed
and planned on every call), then on one opened as the service opens it
(prepared once per connection). The cost is the server backend's CPU
(Linux /proc, so PostgreSQL must run on this machine) and the wall time per
call. Prints a table and writes bench/results/prepared_statements.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peewee

from bench.proc_stats import cpu_seconds
from bench.webhooks import empty_postgres_database
from billing_service.storage import fixed_invoice_sql, fixed_lookup_sql, fixed_sql
from billing_service.storage.database import migrate, open_database
from billing_service.storage.models import database as database_proxy

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "prepared_statements.json"
SUBSCRIPTIONS = 2000
NOW = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)


def state(i: int) -> tuple[Any, ...]:
    """``fixed_sql.SUBSCRIPTION_STATE_COLUMNS`` of subscription ``i``."""
    return (f"user_{i}", f"cus_{i}", "active", "pro", "price_pro", NOW, NOW, False, None,
            1_764_547_200, NOW, "month", 1, 1000, "usd", None)  # fmt: skip


def invoice(i: int) -> dict[str, Any]:
    """An invoice row's values for ``fixed_invoice_sql.upsert_invoice``."""
    return {
        "stripe_invoice_id": f"in_{i}",
        "user_id": f"user_{i}",
        "stripe_customer_id": f"cus_{i}",
        "stripe_subscription_id": f"sub_{i}",
        "status": "paid",
        "amount_due": 1000,
        "amount_paid": 1000,
        "currency": "usd",
        "hosted_invoice_url": "",
        "invoice_pdf": "",
        "period_start": NOW,
        "period_end": NOW,
        "attempt_count": 1,
        "next_payment_attempt": None,
        "stripe_created": 1_764_547_200,
        "last_event_created": 1_764_547_200 + i,
        "last_event_id": f"evt_{i}",
        "updated_at": NOW,
    }


# Each statement as the apply calls it, for subscription i (each its own transaction here).
STATEMENTS: dict[str, Callable[[int], object]] = {
    "known (checkout/invoice lookup)": lambda i: fixed_lookup_sql.known(
        f"sub_{i}", f"cus_{i}", f"in_{i}", check_ignored=False
    ),
    "subscription upsert": lambda i: fixed_sql.upsert_subscription(
        f"sub_{i}", NOW, state(i), None, (1_764_547_200 + i, f"evt_{i}", "digest")
    ),
    "subscription with customer's user": lambda i: fixed_sql.subscription_with_customer_user(
        f"sub_{i}", f"cus_{i}"
    ),
    "duplicate's processed row": lambda i: fixed_sql.processed_with_subscription(f"evt_{i}"),
    "invoice upsert": lambda i: fixed_invoice_sql.upsert_invoice(invoice(i)),
    "audit head lock": lambda i: fixed_sql.lock_audit_head(f"user_{i}", "0" * 64),
}


def measure(db: peewee.Database, call: Callable[[int], object], calls: int) -> tuple[float, float]:
    """(backend CPU ms, wall ms) per call of ``call`` on ``db``'s connection."""
    backend = int(db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
    for i in range(200):  # warm: the first call prepares, caches fill
        call(i)
    cpu, wall = cpu_seconds(backend), time.perf_counter()
    for n in range(calls):
        call(n % SUBSCRIPTIONS)
    return (
        (cpu_seconds(backend) - cpu) * 1000 / calls,
        (time.perf_counter() - wall) * 1000 / calls,
    )


def main() -> None:
    """Measure every statement both ways and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with empty_postgres_database("bench_prepared") as url:
        setup = open_database(url)
        migrate(setup)
        database_proxy.initialize(setup)
        with setup.atomic():
            for i in range(SUBSCRIPTIONS):
                STATEMENTS["subscription upsert"](i)
                fixed_sql.link_customer(f"user_{i}", f"cus_{i}", NOW)
        setup.close_all()
        for name, call in STATEMENTS.items():
            row: dict[str, Any] = {"statement": name}
            for mode, option in (("text", "?prepared_statements=false"), ("prepared", "")):
                db = open_database(url + option)
                database_proxy.initialize(db)
                with db.connection_context():
                    cpu, wall = measure(db, call, args.calls)
                db.close_all()
                row[f"{mode}_pg_cpu_ms"] = round(cpu, 4)
                row[f"{mode}_wall_ms"] = round(wall, 4)
            row["pg_cpu_ratio"] = round(row["prepared_pg_cpu_ms"] / row["text_pg_cpu_ms"], 2)
            rows.append(row)
    print(
        "| statement | PostgreSQL CPU ms per call, text / prepared | ratio "
        "| wall ms, text / prepared |"
    )
    print("|---|---|---:|---|")
    for row in rows:
        print(
            f"| {row['statement']} | {row['text_pg_cpu_ms']} / {row['prepared_pg_cpu_ms']} "
            f"| {row['pg_cpu_ratio']} | {row['text_wall_ms']} / {row['prepared_wall_ms']} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"machine": platform.platform(), "calls": args.calls, "rows": rows}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
