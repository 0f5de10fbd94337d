"""Fixed statements run prepared on real PostgreSQL: once per connection, recovered when lost."""

from __future__ import annotations

import contextlib

import peewee
import psycopg2
import pytest

from billing_service.storage import fixed_lookup_sql, fixed_sql, prepared
from billing_service.storage.database import open_database
from billing_service.storage.deferred import DeferringPostgresqlDatabase
from billing_service.storage.models import database as database_proxy
from billing_service.storage.models import utcnow

# Valid on any connection, so registering it here harms no later test's batch.
ONE_MORE = prepared.preparable("SELECT %s::int + 1")
# Registered as the service's first use would, so the tests below start with a full registry.
LINK = fixed_sql._link_customer_sql("%s")
CUSTOMER_USER = fixed_lookup_sql._customer_user_sql("%s")


def test_placeholders_become_numbered_parameters_and_execute_takes_them_in_order() -> None:
    found = prepared.as_prepared("p", 'SELECT "a" FROM "t" WHERE "b" = %s AND "c" IN (%s, %s)')
    assert found.prepare == 'PREPARE p AS SELECT "a" FROM "t" WHERE "b" = $1 AND "c" IN ($2, $3)'
    assert found.execute == "EXECUTE p(%s, %s, %s)"
    assert prepared.as_prepared("q", "SELECT 1").execute == "EXECUTE q"


@pytest.mark.parametrize("sql", ["SELECT '50%' WHERE 1 = %s", "SELECT '%%' WHERE 1 = %s"])
def test_a_statement_with_a_literal_percent_sign_is_refused(sql: str) -> None:
    with pytest.raises(ValueError, match="literal %"):
        prepared.as_prepared("p", sql)


def test_registering_a_text_twice_keeps_one_statement() -> None:
    before = prepared.registered()
    assert prepared.preparable(ONE_MORE) is ONE_MORE
    assert prepared.registered() == before
    count, batch = prepared.preparing_batch()
    assert count == before
    assert batch.startswith("DEALLOCATE ALL; ")
    assert batch.count("PREPARE billing_") == count


def open_bound(url: str) -> DeferringPostgresqlDatabase:
    database = open_database(url)
    assert isinstance(database, DeferringPostgresqlDatabase)
    database_proxy.initialize(database)
    database.connect()
    return database


def prepared_here(database: peewee.Database) -> set[str]:
    """Names of the statements prepared on the current connection."""
    rows = database.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()
    return {str(name) for (name,) in rows}


def name_of(sql: str) -> str:
    found = prepared.lookup(sql)
    assert found is not None
    return found.name


def one_more(value: int) -> int:
    return int(database_proxy.obj.execute_sql(ONE_MORE, (value,)).fetchone()[0])


def test_a_fixed_statement_is_prepared_with_the_first_use_and_executed_after(
    pg: DeferringPostgresqlDatabase, sent: list[str]
) -> None:
    with pg.deferring(), pg.atomic():
        fixed_sql.link_customer("u1", "cus_1", utcnow(), "a@example.com")
        assert fixed_lookup_sql.customer_user("cus_1") == "u1"
    # One round trip: BEGIN, the PREPARE batch, the link and the read (the COMMIT is its own).
    assert len(sent) == 1
    assert sent[0].startswith("BEGIN; DEALLOCATE ALL; PREPARE billing_")
    assert sent[0].count("DEALLOCATE ALL") == 1
    assert f"EXECUTE {name_of(LINK)}(" in sent[0]
    assert sent[0].endswith(f"EXECUTE {name_of(CUSTOMER_USER)}(%s)")
    sent.clear()
    with pg.deferring(), pg.atomic():
        assert fixed_lookup_sql.customer_user("cus_1") == "u1"
    assert "PREPARE" not in " ".join(sent)  # the connection holds them now
    assert name_of(CUSTOMER_USER) in prepared_here(pg)


def test_a_statement_registered_later_brings_the_whole_batch_again(
    pg: DeferringPostgresqlDatabase, sent: list[str]
) -> None:
    assert fixed_lookup_sql.customer_user("cus_none") is None
    later = prepared.preparable("SELECT %s::int + 2")
    sent.clear()
    assert int(pg.execute_sql(later, (1,)).fetchone()[0]) == 3
    assert sent[0].startswith("DEALLOCATE ALL; ")
    assert {name_of(later), name_of(ONE_MORE)} <= prepared_here(pg)


def test_statements_lost_from_the_connection_fail_once_then_are_prepared_again(
    pg: DeferringPostgresqlDatabase,
) -> None:
    assert one_more(1) == 2
    pg.execute_sql("DEALLOCATE ALL")  # as a pooler handing over another session would
    with pytest.raises(peewee.DatabaseError) as lost:
        one_more(2)
    assert prepared.out_of_date(lost.value)  # Database.call runs such work again
    assert one_more(3) == 4


def test_a_queue_dropped_before_it_was_sent_does_not_count_as_prepared(
    pg: DeferringPostgresqlDatabase, sent: list[str]
) -> None:
    pg.close()
    pg.connect()  # a new connection: nothing prepared on it yet
    with pytest.raises(RuntimeError), pg.deferring(), pg.atomic():
        fixed_sql.link_customer("u1", "cus_1", utcnow())  # queued with the PREPARE batch
        raise RuntimeError("the unit's own failure")
    assert sent == []
    assert fixed_lookup_sql.customer_user("cus_1") is None
    assert sent[0].startswith("DEALLOCATE ALL; ")


def test_a_failed_round_trip_sends_the_batch_again_with_the_next_statement(
    pg: DeferringPostgresqlDatabase, sent: list[str]
) -> None:
    with pytest.raises(peewee.IntegrityError) as refused, pg.deferring(), pg.atomic():
        fixed_sql.link_customer("u1", "cus_1", utcnow())
        pg.execute_sql(  # the same user again: refused by the unique user_id
            'INSERT INTO "customer" ("user_id", "stripe_customer_id", "email", "created_at") '
            "VALUES ('u1', 'cus_2', '', now())"
        )
    assert not prepared.out_of_date(refused.value)  # not run again: it would fail again
    sent.clear()
    assert fixed_lookup_sql.customer_user("cus_1") is None  # the link rolled back
    assert sent[0].startswith("DEALLOCATE ALL; ")


def store_and_read_a_subscription() -> None:
    """One subscription row, read back once, so the read is prepared on this connection."""
    with database_proxy.obj.atomic():
        fixed_sql.upsert_subscription(
            "sub_1", utcnow(), ("u1", "cus_1", "active", "pro", "price_1", None, None, False,
                                None, 1, utcnow(), "month", 1, 1000, "usd", None),
            None, None,
        )  # fmt: skip
    assert fixed_sql.subscription_by_stripe_id("sub_1") is not None


def alter_subscription_table(url: str, change: str) -> None:
    """``ALTER TABLE "subscription" change`` from another connection, as a migration would."""
    with contextlib.closing(psycopg2.connect(url)) as other, other.cursor() as cur:
        cur.execute(f'ALTER TABLE "subscription" {change}')
        other.commit()


def test_a_column_added_under_a_prepared_statement_does_not_break_it(
    pg: DeferringPostgresqlDatabase, shared_postgres: str
) -> None:
    """A migration run by a newer replica leaves the running ones' statements working."""
    store_and_read_a_subscription()
    alter_subscription_table(shared_postgres, 'ADD COLUMN "added_later" text')
    try:
        found = fixed_sql.subscription_by_stripe_id("sub_1")
        assert found is not None and found.status == "active"
    finally:
        alter_subscription_table(shared_postgres, 'DROP COLUMN "added_later"')
        pg.execute_sql('DELETE FROM "subscription"')


def test_a_returned_column_changing_type_fails_once_as_out_of_date(
    pg: DeferringPostgresqlDatabase, shared_postgres: str
) -> None:
    store_and_read_a_subscription()
    alter_subscription_table(shared_postgres, 'ALTER COLUMN "plan" TYPE varchar(80)')
    try:
        with pytest.raises(peewee.DatabaseError) as stale:
            fixed_sql.subscription_by_stripe_id("sub_1")
        assert prepared.out_of_date(stale.value)
        found = fixed_sql.subscription_by_stripe_id("sub_1")  # prepared again
        assert found is not None and found.plan == "pro"
    finally:
        alter_subscription_table(shared_postgres, 'ALTER COLUMN "plan" TYPE varchar(64)')
        pg.execute_sql('DELETE FROM "subscription"')


def test_the_url_option_turns_preparing_off(shared_postgres: str) -> None:
    previous = database_proxy.obj
    database = open_bound(f"{shared_postgres}?prepared_statements=false")
    try:
        assert one_more(1) == 2
        assert fixed_lookup_sql.customer_user("cus_none") is None
        assert prepared_here(database) == set()
    finally:
        database.close_all()
        database_proxy.initialize(previous)


def test_a_misspelt_option_value_is_refused_by_name_without_the_password() -> None:
    with pytest.raises(ValueError, match="prepared_statements must be true or false") as refused:
        open_database("postgresql://billing:s3cret@127.0.0.1:5432/pg?prepared_statements=maybe")
    assert "s3cret" not in str(refused.value)
