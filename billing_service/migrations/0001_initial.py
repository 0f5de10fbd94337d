"""Initial schema: customers, subscriptions, processed events, audit chain.

Models are frozen copies, independent of billing_service.storage.models, so
later changes to the application models never rewrite history.
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

    class Customer(Base):
        id = AutoField()
        user_id = CharField(max_length=255, unique=True)
        stripe_customer_id = CharField(max_length=255, unique=True)
        email = CharField(max_length=320, default="")
        created_at = DateTimeField()

    class Subscription(Base):
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
        last_event_created = BigIntegerField(default=0)
        last_event_id = CharField(max_length=255, default="")
        last_state_digest = CharField(max_length=64, default="")
        created_at = DateTimeField()
        updated_at = DateTimeField()

    class ProcessedEvent(Base):
        id = AutoField()
        event_id = CharField(max_length=255, unique=True)
        event_type = CharField(max_length=128)
        stripe_created = BigIntegerField()
        outcome = CharField(max_length=16)
        reason = TextField(default="")
        user_id = CharField(max_length=255, default="", index=True)
        stripe_subscription_id = CharField(max_length=255, default="")
        processed_at = DateTimeField()

    class AuditRecord(Base):
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
        created_at = DateTimeField()
        prev_hash = CharField(max_length=64)
        hash = CharField(max_length=64, unique=True)

    class AuditChainHead(Base):
        id = IntegerField(primary_key=True)
        last_hash = CharField(max_length=64)
        last_record_id = BigIntegerField(default=0)

    db.create_tables([Customer, Subscription, ProcessedEvent, AuditRecord, AuditChainHead])
    AuditChainHead.create(id=1, last_hash="0" * 64, last_record_id=0)


def down(migrator, db):  # type: ignore[no-untyped-def]
    for table in (
        "audit_chain_head",
        "audit_record",
        "processed_event",
        "subscription",
        "customer",
    ):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")
