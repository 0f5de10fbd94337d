"""``billing-service usage report-status``: overage pending or failed on its way to Stripe."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta

from billing_service.settings import Settings
from billing_service.storage.database import Database
from billing_service.storage.models import utcnow
from billing_service.usage.models import UsageCounter, UsageRecord, UsageReport
from billing_service.usage.reporter import counts

STATES = ("pending", "failed", "sent", "canceled")
# Idempotency keys answer retries for at least 35 days (Stripe's meter event window).
MIN_RETENTION_DAYS = 35


def add_usage_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``usage report-status`` to the CLI."""
    usage = commands.add_parser("usage", help="usage metering: overage reports to Stripe")
    actions = usage.add_subparsers(dest="usage_command", metavar="ACTION", required=True)
    status = actions.add_parser(
        "report-status",
        help="count overage reports per state and list the failed ones; exit 1 when any failed",
    )
    status.add_argument("--limit", type=int, default=50, help="failed rows to list (default 50)")
    status.add_argument("--json", action="store_true", help="one JSON object")
    prune = actions.add_parser(
        "prune",
        help="delete consumption records, sent or canceled reports and counters of periods "
        "ended more than --days ago; their idempotency keys are forgotten",
    )
    prune.add_argument(
        "--days", type=int, default=40, help=f"age in days, at least {MIN_RETENTION_DAYS}"
    )


def _failed(limit: int) -> list[dict[str, object]]:
    rows = (
        UsageReport.select()
        .where(UsageReport.state == "failed")
        .order_by(UsageReport.id.desc())
        .limit(max(0, limit))
    )
    return [
        {
            "id": r.id,
            "identifier": r.identifier,
            "user_id": r.user_id,
            "event_name": r.event_name,
            "value": r.value,
            "timestamp": r.timestamp,
            "attempts": r.attempts,
            "error": r.last_error,
        }
        for r in rows
    ]


def _prune(cutoff: datetime) -> tuple[int, int]:
    UsageCounter.delete().where(UsageCounter.period_end < cutoff).execute()
    records = UsageRecord.delete().where(UsageRecord.created_at < cutoff).execute()
    reports = (
        UsageReport.delete()
        .where((UsageReport.created_at < cutoff) & UsageReport.state.in_(("sent", "canceled")))
        .execute()
    )
    return int(records), int(reports)


def cmd_usage(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``usage report-status`` or ``usage prune``."""
    if args.usage_command == "prune":
        if args.days < MIN_RETENTION_DAYS:
            print(f"billing-service: --days must be at least {MIN_RETENTION_DAYS}")
            return 2
        db = Database(settings.database_url, workers=1)
        try:
            records, reports = db.call(_prune, utcnow() - timedelta(days=args.days))
        finally:
            db.close()
        print(f"deleted {records} consumption records and {reports} sent or canceled reports")
        return 0
    db = Database(settings.database_url, workers=1)
    try:
        found = db.call(counts)
        failed = db.call(_failed, args.limit)
    finally:
        db.close()
    totals = {state: found.get(state, 0) for state in STATES}
    if args.json:
        print(json.dumps({"counts": totals, "failed": failed}))
    else:
        print("  ".join(f"{state}={n}" for state, n in totals.items()))
        for row in failed:
            print(
                f"failed #{row['id']} {row['identifier']} user={row['user_id']} "
                f"{row['event_name']}={row['value']} at={row['timestamp']} "
                f"attempts={row['attempts']}: {row['error']}"
            )
    return 1 if totals["failed"] else 0
