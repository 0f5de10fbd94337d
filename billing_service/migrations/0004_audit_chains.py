"""Per-user audit chains: one head row per user instead of one row every write locks.

Records written before this migration stay verified as the one global chain
that ``audit_chain_head`` (row 1) still names; that row is frozen from now
on and marks where the per-user chains begin. The model is a frozen copy.
"""

from peewee import BigIntegerField, CharField, Model


def up(migrator, db):  # type: ignore[no-untyped-def]
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class AuditChain(Base):
        user_id = CharField(max_length=255, primary_key=True)
        last_hash = CharField(max_length=64)
        last_record_id = BigIntegerField(default=0)

    db.create_tables([AuditChain])


def down(migrator, db):  # type: ignore[no-untyped-def]
    db.execute_sql("DROP TABLE IF EXISTS audit_chain")
