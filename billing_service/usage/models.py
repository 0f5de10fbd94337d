"""Peewee models of the usage ledger; the schema is migration 0005_usage.

``UsageRecord`` is the truth: one row per consumption attempt, unique on the
caller's idempotency key, holding the answer given. ``UsageCounter`` is the
sum of the counted records of one (user, meter, period), kept in the same
transaction; it is also the row each consumption locks. ``UsageReport`` is the
outbox of overage to report to Stripe Billing Meters.
"""

from __future__ import annotations

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    IntegerField,
    TextField,
)

from billing_service.storage.models import BaseModel, utcnow


class UsageCounter(BaseModel):
    """Units counted for one user's meter in one period (keyed by the period's start)."""

    id = AutoField()
    user_id = CharField(max_length=255)
    meter = CharField(max_length=64)
    period_start = DateTimeField()
    period_end = DateTimeField()
    used = BigIntegerField(default=0)
    # Units the newest consumption added (0 when refused): read back by the PostgreSQL upsert.
    last_delta = BigIntegerField(default=0)

    class Meta:
        indexes = ((("user_id", "meter", "period_start"), True),)


# The columns of one answer in usage_record, in table order (all but id and refunded_at).
RECORD_COLUMNS = (
    "idempotency_key",
    "user_id",
    "meter",
    "quantity",
    "allowed",
    "counted",
    "overage",
    "used_after",
    "limit",
    "unlimited",
    "period_start",
    "period_end",
    "occurred_at",
    "created_at",
)


class UsageRecord(BaseModel):
    """One ConsumeUsage answer, stored under its idempotency key (kept at least 35 days)."""

    id = AutoField()
    idempotency_key = CharField(max_length=255, unique=True)
    user_id = CharField(max_length=255, index=True)
    meter = CharField(max_length=64)
    quantity = BigIntegerField()
    allowed = BooleanField()
    # Units counted against the period (0 when refused), and of those, units past the included.
    counted = BigIntegerField(default=0)
    overage = BigIntegerField(default=0)
    used_after = BigIntegerField()
    limit = BigIntegerField()
    unlimited = BooleanField(default=False)
    period_start = DateTimeField()
    period_end = DateTimeField()
    occurred_at = DateTimeField()
    created_at = DateTimeField(default=utcnow)
    refunded_at = DateTimeField(null=True)


class UsageReport(BaseModel):
    """Overage waiting to be (or already) sent to Stripe as a meter event."""

    id = AutoField()
    identifier = CharField(max_length=255, unique=True)
    user_id = CharField(max_length=255)
    stripe_customer_id = CharField(max_length=255)
    event_name = CharField(max_length=100)
    value = BigIntegerField()
    timestamp = BigIntegerField()
    # pending -> sent | failed (outside Stripe's window or refused) | canceled (refunded first)
    state = CharField(max_length=16, default="pending", index=True)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)


USAGE_MODELS: tuple[type[BaseModel], ...] = (UsageCounter, UsageRecord, UsageReport)
