"""Invoices kept from invoice events, and an index to find a subscription's ignored events.

The model is a frozen copy, independent of the application model.
"""

from peewee import (
    AutoField,
    BigIntegerField,
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

    class Invoice(Base):
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
        last_event_created = BigIntegerField(default=0)
        last_event_id = CharField(max_length=255, default="")
        updated_at = DateTimeField()

        class Meta:
            # ListInvoices: a user's invoices, newest first.
            indexes = ((("user_id", "stripe_created", "id"), False),)

    db.create_tables([Invoice])
    # A checkout event asks whether an earlier event of its subscription was ignored.
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS processed_event_stripe_subscription_id "
        "ON processed_event (stripe_subscription_id)"
    )


def down(migrator, db):  # type: ignore[no-untyped-def]
    db.execute_sql("DROP INDEX IF EXISTS processed_event_stripe_subscription_id")
    db.execute_sql("DROP TABLE IF EXISTS invoice")
