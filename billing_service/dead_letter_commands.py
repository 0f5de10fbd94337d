"""``billing-service events dead-letters|replay``: the operator's side of dead letters.

The webhook gateway stores a verified event as a dead letter when
ApplyStripeEvent refuses it as INVALID_ARGUMENT (Stripe is then answered 200
and stops retrying). After the cause is fixed (usually a deploy of the
service), ``events replay ID`` submits the stored payload again through
ApplyStripeEvent on BILLING_SERVICE_TARGET and records the outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import json

import grpc

from billing_service.caller_credentials import call_metadata, sync_channel
from billing_service.settings import Settings
from billing_service.storage.database import Database
from billing_service.storage.dead_letters import (
    DeadLetterView,
    get_dead_letter,
    list_dead_letters,
    mark_replayed,
)
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

REPLAY_CALLER = "billing-service-cli"
REPLAY_DEADLINE_SECONDS = 30.0


def add_events_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``events dead-letters`` and ``events replay ID`` to the CLI."""
    events = commands.add_parser("events", help="inspect and replay dead-lettered Stripe events")
    actions = events.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "dead-letters", help="list dead letters (id, event id, type, received, error)"
    )
    listing.add_argument("--pending", action="store_true", help="only those not replayed yet")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = actions.add_parser(
        "replay",
        help="re-submit a dead letter through ApplyStripeEvent on BILLING_SERVICE_TARGET "
        "(default: BILLING_GRPC_ADDR) with the gateway's credentials (BILLING_SERVICE_TOKEN "
        "or BILLING_SERVICE_TLS_CA/CERT/KEY_FILE) and record the outcome",
    )
    replay.add_argument("id", type=int, help="dead letter id (from `events dead-letters`)")


def _state(row: DeadLetterView) -> str:
    if row.replayed_at is not None:
        return f"replayed:{row.replay_outcome}"
    return f"pending (last replay: {row.replay_outcome})" if row.replay_outcome else "pending"


def _as_json(row: DeadLetterView) -> str:
    return json.dumps(
        {
            "id": row.id,
            "event_id": row.event_id,
            "event_type": row.event_type,
            "received_at": row.received_at.isoformat() + "Z",
            "deliveries": row.deliveries,
            "error": row.error,
            "replayed_at": row.replayed_at.isoformat() + "Z" if row.replayed_at else None,
            "replay_outcome": row.replay_outcome,
            "replay_detail": row.replay_detail,
        }
    )


def _list(args: argparse.Namespace) -> int:
    rows = list_dead_letters(pending_only=args.pending)
    if args.json:
        for row in rows:
            print(_as_json(row))
        return 0
    if not rows:
        print("no dead letters")
        return 0
    print(f"{'ID':>5}  {'EVENT ID':<32} {'TYPE':<38} {'RECEIVED (UTC)':<19}  {'STATE':<18} ERROR")
    for row in rows:
        received = row.received_at.strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{row.id:>5}  {row.event_id:<32} {row.event_type:<38} {received:<19}  "
            f"{_state(row):<18} {row.error[:80]}"
        )
    return 0


def _replay(settings: Settings, dead_letter_id: int) -> int:
    row = get_dead_letter(dead_letter_id)
    if row is None:
        print(f"no dead letter with id {dead_letter_id}")
        return 1
    target = settings.service_target
    metadata = call_metadata(REPLAY_CALLER)
    with sync_channel(target) as channel:
        try:
            response = pb_grpc.BillingServiceStub(channel).ApplyStripeEvent(
                pb.ApplyStripeEventRequest(payload=row.payload.encode("utf-8")),
                timeout=REPLAY_DEADLINE_SECONDS,
                metadata=metadata,
            )
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            details: str = exc.details() or ""
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                mark_replayed(row.id, code.name, details, done=False)
                print(f"dead letter {row.id} ({row.event_id}) still refused: {details}")
            else:
                print(f"dead letter {row.id} not replayed: {code.name} {details} (retry later)")
            return 1
    outcome = pb.EventOutcome.Name(response.outcome).removeprefix("EVENT_OUTCOME_")
    mark_replayed(row.id, outcome, response.reason, done=True)
    print(f"dead letter {row.id} ({row.event_id}) replayed: {outcome} {response.reason}".rstrip())
    return 0


def cmd_events(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``events dead-letters`` or ``events replay ID`` against DATABASE_URL."""
    with contextlib.closing(Database(settings.database_url, workers=1)) as db:
        if args.events_command == "dead-letters":
            return db.call(_list, args)
        return db.call(_replay, settings, args.id)
