"""Peewee models. The schema itself is owned by ``billing_service/migrations``.

Times are stored as UTC ``datetime`` values without tzinfo; Stripe's own
timestamps that order events are kept as integers (seconds since the epoch).
"""

from __future__ import annotations

from datetime import UTC, datetime

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    IntegerField,
    Model,
    TextField,
)

database = DatabaseProxy()


def utcnow() -> datetime:
    """Now, as the naive UTC datetime the database stores."""
    return datetime.now(UTC).replace(tzinfo=None)


class BaseModel(Model):
    """Binds every model to the process's database."""

    class Meta:
        database = database
        legacy_table_names = False


class Customer(BaseModel):
    """Our user id <-> Stripe customer id, unique both ways."""

    id = AutoField()
    user_id = CharField(max_length=255, unique=True)
    stripe_customer_id = CharField(max_length=255, unique=True)
    email = CharField(max_length=320, default="")
    created_at = DateTimeField(default=utcnow)


class Subscription(BaseModel):
    """Local copy of one Stripe subscription; one row per Stripe subscription id."""

    id = AutoField()
    stripe_subscription_id = CharField(max_length=255, unique=True)
    user_id = CharField(max_length=255, index=True)
    stripe_customer_id = CharField(max_length=255, index=True)
    status = CharField(max_length=32)
    plan = CharField(max_length=64, default="")
    price_id = CharField(max_length=255, default="")
    current_period_start = DateTimeField(null=True)
    current_period_end = DateTimeField(null=True)
    cancel_at_period_end = BooleanField(default=False)
    canceled_at = DateTimeField(null=True)
    stripe_created = BigIntegerField(default=0)
    # Ordering data: the newest Stripe event (by `created`) that set this row,
    # and a digest of the state it set, so equal-second conflicts are detectable.
    last_event_created = BigIntegerField(default=0)
    last_event_id = CharField(max_length=255, default="")
    last_state_digest = CharField(max_length=64, default="")
    # Issue 13 (migration 0010): what product pages show; discount is JSON ("" = none).
    interval = CharField(max_length=8, default="")
    quantity = IntegerField(default=1)
    unit_amount = BigIntegerField(default=0)
    currency = CharField(max_length=3, default="")
    trial_end = DateTimeField(null=True)
    discount = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class Invoice(BaseModel):
    """Local copy of one Stripe invoice of a subscription, kept from invoice events."""

    id = AutoField()
    stripe_invoice_id = CharField(max_length=255, unique=True)
    user_id = CharField(max_length=255)
    stripe_customer_id = CharField(max_length=255, default="")
    stripe_subscription_id = CharField(max_length=255, default="", index=True)
    status = CharField(max_length=32, default="")
    amount_due = BigIntegerField(default=0)
    amount_paid = BigIntegerField(default=0)
    currency = CharField(max_length=8, default="")
    hosted_invoice_url = TextField(default="")
    invoice_pdf = TextField(default="")
    period_start = DateTimeField(null=True)
    period_end = DateTimeField(null=True)
    attempt_count = IntegerField(default=0)
    next_payment_attempt = DateTimeField(null=True)
    stripe_created = BigIntegerField(default=0)
    # Ordering data, as for subscriptions: the newest event that set this row.
    last_event_created = BigIntegerField(default=0)
    last_event_id = CharField(max_length=255, default="")
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user_id", "stripe_created", "id"), False),)


class ProcessedEvent(BaseModel):
    """A Stripe event this service has finished with, whatever the outcome."""

    id = AutoField()
    event_id = CharField(max_length=255, unique=True)
    event_type = CharField(max_length=128)
    stripe_created = BigIntegerField()
    outcome = CharField(max_length=16)
    reason = TextField(default="")
    user_id = CharField(max_length=255, default="", index=True)
    stripe_subscription_id = CharField(max_length=255, default="")
    processed_at = DateTimeField(default=utcnow)


class CheckoutRequest(BaseModel):
    """What a CreateCheckout request_id was used for, and the session it created."""

    id = AutoField()
    request_id = CharField(max_length=255, unique=True)
    user_id = CharField(max_length=255, index=True)
    email = CharField(max_length=320, default="")
    plan = CharField(max_length=64)
    success_url = TextField()
    cancel_url = TextField()
    interval = CharField(max_length=8, default="month")
    quantity = IntegerField(default=1)
    promotion_code = CharField(max_length=255, default="")
    # Trial days granted to the session created for this request_id (0: none).
    trial_days = IntegerField(default=0)
    # Empty until Stripe answered; a retry with the same parameters then creates it.
    session_id = CharField(max_length=255, default="")
    checkout_url = TextField(default="")
    created_at = DateTimeField(default=utcnow)


class AuditRecord(BaseModel):
    """One change to a subscription and its cause; records are hash-chained."""

    id = AutoField()
    user_id = CharField(max_length=255, index=True)
    stripe_subscription_id = CharField(max_length=255, default="")
    stripe_event_id = CharField(max_length=255, default="")
    stripe_event_type = CharField(max_length=128, default="")
    caller = CharField(max_length=255, default="")
    rpc = CharField(max_length=128, default="")
    status_before = CharField(max_length=32)
    status_after = CharField(max_length=32)
    tier_before = CharField(max_length=64)
    tier_after = CharField(max_length=64)
    detail = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    prev_hash = CharField(max_length=64)
    hash = CharField(max_length=64, unique=True)


# What a record says (hashed into the chain by audit.record_hash); the record
# stores these, then ``prev_hash`` and ``hash``.
AUDIT_CONTENT_COLUMNS = (
    "user_id",
    "stripe_subscription_id",
    "stripe_event_id",
    "stripe_event_type",
    "caller",
    "rpc",
    "status_before",
    "status_after",
    "tier_before",
    "tier_after",
    "detail",
    "created_at",
)


class AuditChainHead(BaseModel):
    """Head of the global chain that records before per-user chains formed (frozen since 0004).

    Records up to ``last_record_id`` are verified as that one chain.
    """

    id = IntegerField(primary_key=True)
    last_hash = CharField(max_length=64)
    last_record_id = BigIntegerField(default=0)


class AuditChain(BaseModel):
    """Head of one user's audit chain: the newest record's hash and id."""

    user_id = CharField(max_length=255, primary_key=True)
    last_hash = CharField(max_length=64)
    last_record_id = BigIntegerField(default=0)
