"""Statements whose results nobody reads, sent with the next statement that has one.

A group commit's batch on PostgreSQL is a string of round trips, one after
the other on one connection: BEGIN, then per event its lock, reads and
writes, then COMMIT. Several of those answer nothing the apply reads (the
advisory lock, the processed record, the audit record, the invoice), and
each round trip costs the batch far more in waiting (the server, the
thread's wake-up, the GIL) than in work. Inside ``deferring()`` such a
statement is queued on the thread's connection instead (``execute_later``),
and so is the transaction's BEGIN; the next statement that returns
something, or the COMMIT, takes the queue with it as one multi-statement
query::

    with db.deferring(), db.atomic():
        execute_later("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (1, "sub_1"))
        row = db.execute_sql("SELECT * FROM subscription WHERE ...", (...)).fetchone()
        # one round trip: BEGIN; SELECT pg_advisory_xact_lock(...); SELECT * FROM ...
        execute_later('INSERT INTO "processed_event" ...', (...))
    # one round trip: INSERT INTO "processed_event" ...; COMMIT

PostgreSQL runs the statements of such a query in order, each with a
snapshot of its own (so a read after the lock sees what the lock's last
holder committed, as it would in a round trip of its own), and stops at
the first error, which aborts the transaction. That error surfaces at the
statement the queue travelled with, not at the one that caused it: deferring
is only for a transaction that fails whole on any error. The group commit's
shared transaction is one (events/group_commit.py): a failure anywhere
rolls the batch back and runs it again, each unit in its own savepoint and
nothing deferred.

Outside ``deferring()`` (and on SQLite, which has no round trips to save)
``execute_later`` runs the statement at once.

A statement registered in ``storage/prepared`` goes out as an ``EXECUTE`` of
its prepared form, by either path; a connection that lacks the prepared
statements gets them in the same round trip, ahead of it.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import peewee
from playhouse.pool import PooledPostgresqlDatabase

from billing_service.storage import prepared
from billing_service.storage.models import database as database_proxy

Params = Sequence[Any] | None


class _Queue(threading.local):
    """One thread's (so one connection's) queued statements."""

    def __init__(self) -> None:
        self.active = False
        self.began = False  # the transaction's BEGIN is queued, not yet sent
        self.statements: list[tuple[str, Params]] = []
        # The connection that holds this thread's prepared statements, and how many.
        self.prepared_on: weakref.ref[Any] | None = None
        self.prepared_count = 0

    def forget_prepared(self) -> None:
        """Whatever was prepared on this thread's connection is no longer known."""
        self.prepared_on = None
        self.prepared_count = 0

    def drop(self) -> None:
        """Drop what is queued, unsent (it may hold a PREPARE batch that never went out)."""
        if self.statements:
            self.statements.clear()
            self.forget_prepared()
        self.began = False


class DeferringPostgresqlDatabase(PooledPostgresqlDatabase):  # type: ignore[misc]  # untyped
    """peewee's pooled PostgreSQL database that can send statements in one round trip.

    With ``prepared_statements`` (the default) it also runs the statements
    registered in ``storage/prepared`` as prepared statements.
    """

    def __init__(self, *args: Any, prepared_statements: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue = _Queue()
        self.prepared_statements = prepared_statements

    @contextlib.contextmanager
    def deferring(self) -> Iterator[None]:
        """Queue BEGIN and ``execute_later`` statements on this thread until the next round trip.

        Whatever is still queued on leaving (after a failure) is dropped: it
        belonged to a transaction that rolled back.
        """
        queue = self._queue
        if queue.active:
            yield
            return
        queue.active = True
        try:
            yield
        finally:
            queue.active = False
            queue.drop()

    @property
    def queues(self) -> bool:
        """True when ``execute_later`` would queue its statement rather than send it."""
        return self._queue.active and self.in_transaction()

    def execute_later(self, sql: str, params: Params = None) -> None:
        """Run ``sql``, sending it with the next round trip when ``deferring()``; no result."""
        if self.queues:
            self._queue.statements.append((self._prepared_form(sql), params))
        else:
            self.execute_sql(sql, params)

    def begin(self, isolation_level: Any = None) -> None:
        """BEGIN, queued when ``deferring()`` (peewee calls this on entering a transaction)."""
        queue = self._queue
        if queue.active and isolation_level is None and not self._isolation_level:
            queue.began = True
            queue.statements.append(("BEGIN", None))
            return
        super().begin(isolation_level)

    def execute_sql(self, sql: str, params: Params | Mapping[str, Any] = None) -> Any:
        """Run ``sql`` (after whatever is queued, in the same round trip); its cursor."""
        sql = self._prepared_form(sql)
        try:
            if not self._queue.statements:
                return super().execute_sql(sql, params)
            prefix, queued_params = self._take_queue()
            return super().execute_sql(prefix + sql, [*queued_params, *_positional(params)])
        except Exception:
            # The round trip may have stopped anywhere, before or after a PREPARE.
            self._queue.forget_prepared()
            raise

    def commit(self) -> None:
        """COMMIT, with whatever is queued in front of it."""
        if not self._queue.statements:
            super().commit()
            return
        if self.is_closed():
            raise peewee.InterfaceError("Cannot commit, database connection not open.")
        try:
            prefix, queued_params = self._take_queue()
            super().execute_sql(prefix + "COMMIT", queued_params)
        except Exception:
            self._queue.forget_prepared()
            raise

    def rollback(self) -> None:
        """ROLLBACK; the queue is dropped, and nothing is sent when BEGIN never went out."""
        began_here = self._queue.began
        self._queue.drop()
        if not began_here:
            super().rollback()

    def _prepared_form(self, sql: str) -> str:
        """``sql``, or the ``EXECUTE`` of its prepared form (registered in ``storage/prepared``).

        When this thread's connection lacks the registry's statements, their
        ``PREPARE`` batch is queued ahead, to travel in the same round trip.
        """
        found = prepared.lookup(sql) if self.prepared_statements else None
        if found is None:
            return sql
        queue = self._queue
        connection = self.connection()
        holder = queue.prepared_on() if queue.prepared_on is not None else None
        if holder is not connection or queue.prepared_count < prepared.registered():
            count, batch = prepared.preparing_batch()
            queue.statements.append((batch, None))
            queue.prepared_on = weakref.ref(connection)
            queue.prepared_count = count
        return found.execute

    def _take_queue(self) -> tuple[str, list[Any]]:
        """The queued statements as one SQL prefix (ends with "; ") and their parameters in order.

        The queue is emptied. The driver renders every statement's ``%s``
        placeholders (and ``%%``) whether it has parameters or not (peewee
        passes ``params or ()``), so the prefix and the statement it travels
        with are rendered once, together, with the parameters concatenated.
        """
        queued, self._queue.statements = self._queue.statements, []
        self._queue.began = False
        params: list[Any] = []
        for _, statement_params in queued:
            params.extend(_positional(statement_params))
        return "; ".join(sql for sql, _ in queued) + "; ", params


def _positional(params: Params | Mapping[str, Any]) -> Sequence[Any]:
    """``params`` as a sequence to concatenate; named ones (``%(name)s``) cannot be."""
    if isinstance(params, Mapping):
        raise TypeError("a statement with named parameters cannot travel with deferred ones")
    return params or ()


def execute_later(sql: str, params: Params = None) -> None:
    """Run a statement whose result nobody reads on the bound database, deferred where it can be."""
    db = database_proxy.obj
    if isinstance(db, DeferringPostgresqlDatabase):
        db.execute_later(sql, params)
    else:
        db.execute_sql(sql, params)


@contextlib.contextmanager
def deferring(db: peewee.Database) -> Iterator[None]:
    """``DeferringPostgresqlDatabase.deferring`` where ``db`` has it; else nothing changes."""
    if isinstance(db, DeferringPostgresqlDatabase):
        with db.deferring():
            yield
    else:
        yield
