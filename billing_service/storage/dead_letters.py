"""Dead letters: verified Stripe events that ApplyStripeEvent refused as invalid.

The webhook gateway records them so Stripe can be answered 200 (it stops
retrying an event that can never be applied) without the event being lost;
an operator lists and replays them with ``billing-service events``. One row
per distinct payload: a redelivery of the same bytes only bumps ``deliveries``.
The schema is owned by ``migrations/0002_dead_letters.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from peewee import AutoField, CharField, DateTimeField, IntegerField, TextField

from billing_service.storage.models import BaseModel, utcnow


class DeadLetter(BaseModel):
    """One verified event the billing service could not apply."""

    id = AutoField()
    event_id = CharField(max_length=255, default="", index=True)
    event_type = CharField(max_length=128, default="")
    payload = TextField()
    payload_sha256 = CharField(max_length=64, unique=True)
    error = TextField(default="")
    deliveries = IntegerField(default=1)
    received_at = DateTimeField(default=utcnow)
    last_received_at = DateTimeField(default=utcnow)
    replayed_at = DateTimeField(null=True)
    replay_outcome = CharField(max_length=32, default="")
    replay_detail = TextField(default="")


@dataclass(frozen=True)
class DeadLetterView:
    """A dead letter as the CLI and tests see it."""

    id: int
    event_id: str
    event_type: str
    payload: str
    error: str
    deliveries: int
    received_at: datetime
    replayed_at: datetime | None
    replay_outcome: str
    replay_detail: str


def _view(row: DeadLetter) -> DeadLetterView:
    return DeadLetterView(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        payload=row.payload,
        error=row.error,
        deliveries=row.deliveries,
        received_at=row.received_at,
        replayed_at=row.replayed_at,
        replay_outcome=row.replay_outcome,
        replay_detail=row.replay_detail,
    )


def storable(text: str, limit: int | None = None) -> str:
    """``text`` as every backend stores it: no NUL (PostgreSQL refuses it), at most ``limit``.

    A dead letter is the one place hostile content must be kept, so it is
    made storable rather than refused: NUL becomes its JSON escape (the
    payload stays readable JSON), and lone surrogates are replaced.
    """
    cleaned = text.replace("\x00", "\\u0000")
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    return cleaned if limit is None else cleaned[:limit]


def record_dead_letter(payload: str, event_id: str, event_type: str, error: str) -> int:
    """Store ``payload`` (or count one more delivery of it); returns the row id.

    Whatever the delivery held, the row can be written: see ``storable``.
    """
    digest = hashlib.sha256(payload.encode("utf-8", "replace")).hexdigest()
    payload, error = storable(payload), storable(error, 4000)
    event_id, event_type = storable(event_id, 255), storable(event_type, 128)
    now = utcnow()
    # One atomic upsert, so two gateways dead-lettering the same delivery at
    # once still leave one row.
    (
        DeadLetter.insert(
            event_id=event_id,
            event_type=event_type,
            payload=payload,
            payload_sha256=digest,
            error=error,
            received_at=now,
            last_received_at=now,
        )
        .on_conflict(
            conflict_target=[DeadLetter.payload_sha256],
            update={
                DeadLetter.deliveries: DeadLetter.deliveries + 1,
                DeadLetter.last_received_at: now,
                DeadLetter.error: error,
            },
        )
        .execute()
    )
    row_id: int = DeadLetter.get(DeadLetter.payload_sha256 == digest).id
    return row_id


def list_dead_letters(pending_only: bool = False) -> list[DeadLetterView]:
    """Every dead letter, oldest first (only those not replayed with ``pending_only``)."""
    query = DeadLetter.select().order_by(DeadLetter.id)
    if pending_only:
        query = query.where(DeadLetter.replayed_at.is_null())
    return [_view(row) for row in query]


def get_dead_letter(dead_letter_id: int) -> DeadLetterView | None:
    """The dead letter with ``dead_letter_id``, or None."""
    row = DeadLetter.get_or_none(DeadLetter.id == dead_letter_id)
    return None if row is None else _view(row)


def mark_replayed(dead_letter_id: int, outcome: str, detail: str, done: bool) -> None:
    """Record a replay attempt; ``done`` marks the event as handled (no longer pending)."""
    update: dict[object, object] = {
        DeadLetter.replay_outcome: outcome[:32],
        DeadLetter.replay_detail: detail,
    }
    if done:
        update[DeadLetter.replayed_at] = utcnow()
    DeadLetter.update(update).where(DeadLetter.id == dead_letter_id).execute()
