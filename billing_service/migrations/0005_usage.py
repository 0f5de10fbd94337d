"""Usage metering: counters, the consumption ledger and the overage outbox.

Models are frozen copies, independent of billing_service.usage.models.
"""

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    IntegerField,
    Model,
    TextField,
)


def up(migrator, db):  # type: ignore[no-untyped-def]
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class UsageCounter(Base):
        id = AutoField()
        user_id = CharField(max_length=255)
        meter = CharField(max_length=64)
        period_start = DateTimeField()
        period_end = DateTimeField()
        used = BigIntegerField(default=0)
        last_delta = BigIntegerField(default=0)

        class Meta:
            indexes = ((("user_id", "meter", "period_start"), True),)

    class UsageRecord(Base):
        id = AutoField()
        idempotency_key = CharField(max_length=255, unique=True)
        user_id = CharField(max_length=255, index=True)
        meter = CharField(max_length=64)
        quantity = BigIntegerField()
        allowed = BooleanField()
        counted = BigIntegerField(default=0)
        overage = BigIntegerField(default=0)
        used_after = BigIntegerField()
        limit = BigIntegerField()
        unlimited = BooleanField(default=False)
        period_start = DateTimeField()
        period_end = DateTimeField()
        occurred_at = DateTimeField()
        created_at = DateTimeField()
        refunded_at = DateTimeField(null=True)

    class UsageReport(Base):
        id = AutoField()
        identifier = CharField(max_length=255, unique=True)
        user_id = CharField(max_length=255)
        stripe_customer_id = CharField(max_length=255)
        event_name = CharField(max_length=100)
        value = BigIntegerField()
        timestamp = BigIntegerField()
        state = CharField(max_length=16, default="pending", index=True)
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField()
        last_error = TextField(default="")
        created_at = DateTimeField()
        sent_at = DateTimeField(null=True)

    db.create_tables([UsageCounter, UsageRecord, UsageReport])


def down(migrator, db):  # type: ignore[no-untyped-def]
    for table in ("usage_report", "usage_record", "usage_counter"):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")
