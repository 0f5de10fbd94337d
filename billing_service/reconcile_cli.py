"""``billing-service reconcile``: the command line over the reconcile engine (reconcile.py).

It parses the arguments, runs the engine and prints what it saw and did;
it exits 1 when anything was not done (never a silent success)::

    billing-service reconcile --since 2026-11-01T00:00:00Z
    billing-service reconcile --since 3d
    billing-service reconcile --user USER_ID
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

import grpc

from billing_service.reconcile import (
    ReconcileError,
    Summary,
    call_reconcile_user,
    describe,
    parse_since,
    reconcile_since,
)
from billing_service.settings import Settings
from generated.billing.v1 import billing_pb2 as pb


def summary_lines(summary: Summary) -> Iterator[str]:
    """The human-readable report of a ``--since`` run."""
    if summary.listing_error:
        yield f"could not list Stripe events: {summary.listing_error}; nothing was applied"
    yield f"seen: {summary.seen}"
    yield f"already processed: {summary.already_processed}"
    for name, count in summary.counts.items():
        yield f"{name}: {count}"
    yield f"failed: {len(summary.failed)}"
    for event_id, reason in summary.failed:
        yield f"  {event_id}: {reason}"
    yield "result: OK" if summary.ok else "result: INCOMPLETE (rerun after fixing the cause)"


def user_line(user_id: str, answer: pb.ReconcileUserResponse) -> str:
    """The one-line report of a ``--user`` run."""
    sub = answer.subscription
    status = pb.SubscriptionStatus.Name(sub.status).removeprefix("SUBSCRIPTION_STATUS_").lower()
    return (
        f"user {user_id}: {answer.subscriptions_seen} subscription(s) in Stripe, "
        f"{answer.subscriptions_changed} changed; now "
        f"{status} tier {sub.tier} {sub.stripe_subscription_id}".rstrip()
    )


async def _reconcile_user(settings: Settings, user_id: str, out: TextIO) -> bool:
    try:
        answer = await call_reconcile_user(settings, user_id, lambda line: print(line, file=out))
    except grpc.aio.AioRpcError as exc:
        print(f"user {user_id} not reconciled: {describe(exc)}", file=out)
        return False
    print(user_line(user_id, answer), file=out)
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
        return 0 if asyncio.run(_reconcile_user(settings, args.user, out)) else 1
    try:
        since = parse_since(args.since, datetime.now(UTC))
    except ReconcileError as exc:
        print(f"billing-service: {exc}", file=sys.stderr)
        return 2
    print(f"reconciling Stripe events created since {since.isoformat()}", file=out)
    summary = asyncio.run(reconcile_since(settings, since, lambda line: print(line, file=out)))
    for line in summary_lines(summary):
        print(line, file=out)
    return 0 if summary.ok else 1
