"""Deferred statements on real PostgreSQL: one round trip, the same effect, errors never lost."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import peewee
import psycopg2
import pytest
from psycopg2 import extensions

from billing_service.storage.database import open_database
from billing_service.storage.deferred import DeferringPostgresqlDatabase, deferring, execute_later
from billing_service.storage.models import Customer
from billing_service.storage.models import database as database_proxy
from devtools.waiting import wait_until


def insert_customer(user: str, email: str = "") -> None:
    execute_later(
        'INSERT INTO "customer" ("user_id", "stripe_customer_id", "email", "created_at") '
        "VALUES (%s, %s, %s, now())",
        (user, f"cus_{user}", email),
    )


def committed(url: str) -> dict[str, str]:
    """user -> email of the customer rows another connection sees."""
    with contextlib.closing(psycopg2.connect(url)) as pg, pg.cursor() as cur:
        cur.execute('SELECT "user_id", "email" FROM "customer"')
        return dict(cur.fetchall())


def test_deferred_statements_travel_with_the_next_read_and_with_the_commit(
    pg: DeferringPostgresqlDatabase, sent: list[str], shared_postgres: str
) -> None:
    with pg.deferring(), pg.atomic():
        insert_customer("u1")
        assert sent == []  # neither BEGIN nor the insert went out
        count = pg.execute_sql('SELECT count(*) FROM "customer"').fetchone()[0]
        assert count == 1  # the read ran after the insert, in the same round trip
        insert_customer("u2")
    assert len(sent) == 2
    assert sent[0].startswith("BEGIN; INSERT INTO") and "SELECT count(*)" in sent[0]
    assert sent[1].startswith("INSERT INTO") and sent[1].endswith("; COMMIT")
    assert set(committed(shared_postgres)) == {"u1", "u2"}


def test_values_with_quotes_and_percent_signs_are_stored_as_given(
    pg: DeferringPostgresqlDatabase, shared_postgres: str
) -> None:
    awkward = "50% off; it's %s and %% and \\ too"
    with pg.deferring(), pg.atomic():
        insert_customer("u1", awkward)
        # The read carries the insert: both are rendered at once, parameters in order.
        cursor = pg.execute_sql('SELECT "email" FROM "customer" WHERE "user_id" = %s', ("u1",))
        assert cursor.fetchone()[0] == awkward
        insert_customer("u2", awkward)
    assert committed(shared_postgres) == {"u1": awkward, "u2": awkward}


def test_a_statement_with_named_parameters_cannot_travel_with_deferred_ones(
    pg: DeferringPostgresqlDatabase, shared_postgres: str
) -> None:
    with pytest.raises(TypeError, match="named parameters"), pg.deferring(), pg.atomic():
        insert_customer("u1")
        pg.execute_sql('SELECT count(*) FROM "customer" WHERE "user_id" = %(user)s', {"user": "u1"})
    assert committed(shared_postgres) == {}  # nothing was sent, the insert included


@pytest.mark.parametrize("carrier", ["a read", "the commit"])
def test_a_failing_deferred_statement_fails_the_round_trip_it_travels_with_and_rolls_back(
    pg: DeferringPostgresqlDatabase, shared_postgres: str, carrier: str
) -> None:
    with pg.atomic():
        insert_customer("taken")
    with pytest.raises(peewee.IntegrityError), pg.deferring(), pg.atomic():
        insert_customer("u1")
        insert_customer("taken")  # unique user_id: fails, but only once sent
        if carrier == "a read":
            pg.execute_sql("SELECT 1")
    assert set(committed(shared_postgres)) == {"taken"}
    assert pg.connection().info.transaction_status == extensions.TRANSACTION_STATUS_IDLE


def test_a_transaction_that_fails_before_sending_anything_sends_nothing(
    pg: DeferringPostgresqlDatabase, sent: list[str], shared_postgres: str
) -> None:
    with pytest.raises(RuntimeError), pg.deferring(), pg.atomic():
        insert_customer("u1")
        raise RuntimeError("the unit's own failure")
    assert sent == []
    assert committed(shared_postgres) == {}
    # The connection is clean: the next transaction works as usual.
    with pg.atomic():
        insert_customer("u2")
    assert set(committed(shared_postgres)) == {"u2"}


def test_outside_deferring_a_statement_runs_at_once(
    pg: DeferringPostgresqlDatabase, sent: list[str], shared_postgres: str
) -> None:
    insert_customer("u1")
    assert len(sent) == 1
    assert set(committed(shared_postgres)) == {"u1"}  # autocommit: already visible
    with pg.atomic():
        insert_customer("u2")
        assert len(sent) == 2  # in a transaction without deferring(): sent at once too


def test_a_read_after_a_deferred_advisory_lock_sees_what_the_locks_holder_committed(
    pg: DeferringPostgresqlDatabase, shared_postgres: str
) -> None:
    """Each statement of a multi-statement query takes its own snapshot, after the lock's wait."""
    holder = psycopg2.connect(shared_postgres)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7, 7)")
            cur.execute(
                'INSERT INTO "customer" ("user_id", "stripe_customer_id", "email", "created_at") '
                "VALUES ('held', 'cus_held', '', now())"
            )

        def locked_read() -> list[tuple[str]]:
            with pg.connection_context(), pg.deferring(), pg.atomic():
                execute_later("SELECT pg_advisory_xact_lock(7, 7)")
                return list(pg.execute_sql('SELECT "user_id" FROM "customer"').fetchall())

        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(locked_read)
            wait_until("the deferred lock to wait", lambda: _lock_waiters(shared_postgres) == 1)
            holder.commit()
            assert read.result(timeout=30) == [("held",)]
    finally:
        holder.close()


def test_the_bound_database_without_deferring_support_runs_statements_at_once() -> None:
    lite = peewee.SqliteDatabase(":memory:")
    previous = database_proxy.obj
    database_proxy.initialize(lite)
    try:
        Customer.create_table()
        with deferring(lite), lite.atomic():
            execute_later(
                'INSERT INTO "customer" ("user_id", "stripe_customer_id", "email", "created_at") '
                "VALUES (?, ?, '', '2026-01-01')",
                ("u1", "cus_u1"),
            )
            assert Customer.select().count() == 1
    finally:
        lite.close()
        database_proxy.initialize(previous)


def _lock_waiters(url: str) -> int:
    with contextlib.closing(psycopg2.connect(url)) as pg, pg.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND wait_event = 'advisory' AND datname = current_database()"
        )
        (count,) = cur.fetchall()[0]
        return int(count)


def test_a_postgresql_url_without_a_database_name_is_refused_without_its_password() -> None:
    with pytest.raises(ValueError, match="has no database name") as refused:
        open_database("postgresql://billing:s3cret@127.0.0.1:5432")
    assert "s3cret" not in str(refused.value)
    assert "billing:***@127.0.0.1" in str(refused.value)
