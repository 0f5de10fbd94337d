"""Dead letters: verified Stripe events the billing service refused as invalid.

The webhook gateway writes them (and answers Stripe 200 so it stops retrying);
``billing-service events dead-letters`` lists them, ``events replay`` re-submits.
The model is a frozen copy, independent of the application model.
"""

from peewee import AutoField, CharField, DateTimeField, IntegerField, Model, TextField


def up(migrator, db):  # type: ignore[no-untyped-def]
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class DeadLetter(Base):
        id = AutoField()
        event_id = CharField(max_length=255, default="", index=True)
        event_type = CharField(max_length=128, default="")
        payload = TextField()
        payload_sha256 = CharField(max_length=64, unique=True)
        error = TextField(default="")
        deliveries = IntegerField(default=1)
        received_at = DateTimeField()
        last_received_at = DateTimeField()
        replayed_at = DateTimeField(null=True)
        replay_outcome = CharField(max_length=32, default="")
        replay_detail = TextField(default="")

    db.create_tables([DeadLetter])


def down(migrator, db):  # type: ignore[no-untyped-def]
    db.execute_sql("DROP TABLE IF EXISTS dead_letter")
