"""Checkout requests: what each CreateCheckout request_id was used for, and the session it made.

So a repeated request_id is decided locally: the same parameters get the same
session, different ones FAILED_PRECONDITION naming the field. The model is a
frozen copy, independent of the application model.
"""

from peewee import AutoField, CharField, DateTimeField, Model, TextField


def up(migrator, db):  # type: ignore[no-untyped-def]
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class CheckoutRequest(Base):
        id = AutoField()
        request_id = CharField(max_length=255, unique=True)
        user_id = CharField(max_length=255, index=True)
        email = CharField(max_length=320, default="")
        plan = CharField(max_length=64)
        success_url = TextField()
        cancel_url = TextField()
        session_id = CharField(max_length=255, default="")
        checkout_url = TextField(default="")
        created_at = DateTimeField()

    db.create_tables([CheckoutRequest])


def down(migrator, db):  # type: ignore[no-untyped-def]
    db.execute_sql("DROP TABLE IF EXISTS checkout_request")
