"""Opening the database named by DATABASE_URL, migrating it, running work on it.

peewee is synchronous and keeps one connection per thread, so the gRPC
server runs every database call on a small thread pool (``Database.run``)
sized like the connection pool. Each database thread keeps its connection
open between calls: checking a pooled connection out per call cost a
liveness ``SELECT 1`` under peewee's process-wide lock every time. A
connection is closed (and so checked again) only after a connection-level
error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse, urlsplit

import peewee
from playhouse.db_url import connect, parseresult_to_dict
from playhouse.migrations import Runner
from psycopg2 import extensions as psycopg2_extensions

from billing_service import deadlines
from billing_service.storage import prepared
from billing_service.storage.deferred import DeferringPostgresqlDatabase, deferring
from billing_service.storage.models import database as database_proxy

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_SPARE_CONNECTIONS = 4
_MIGRATION_LOCK_KEY = 0x62696C6C  # "bill": serializes concurrent `migrate` runs on PostgreSQL


class StorageUnavailable(Exception):
    """The database could not be reached or did not answer in time."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced, for logs and errors."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def open_database(url: str, max_connections: int = 8) -> peewee.Database:
    """Open (lazily) the database at ``url``: sqlite:///FILE or postgresql://..."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        # WAL lets readers run beside the single writer; busy_timeout makes a
        # writer wait for the lock instead of failing at once. Each database
        # thread holds its own connection, and SQLite's default page cache
        # (2 MiB each) cost 15 MB of RSS with no measured speed-up over 256 KiB:
        # the operating system's page cache holds the file anyway.
        return connect(
            url,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": 10000,
                "synchronous": "normal",
                "cache_size": -256,
            },
            check_same_thread=False,
        )
    if scheme in ("postgres", "postgresql"):
        params = parseresult_to_dict(urlparse(url))
        if not params.get("database"):
            raise ValueError(
                f"DATABASE_URL {redact_url(url)} has no database name "
                "(postgresql://user@host:port/dbname)"
            )
        # Off behind a pooler in transaction mode, which does not keep a session's statements.
        prepare = params.pop("prepared_statements", True)
        if prepare not in (True, False):
            raise ValueError(
                f"DATABASE_URL {redact_url(url)}: prepared_statements must be true or false"
            )
        # peewee's pool, able to send several statements in one round trip (storage/deferred).
        return DeferringPostgresqlDatabase(
            **params,
            prepared_statements=prepare,
            max_connections=max_connections,
            stale_timeout=300,
            timeout=10,
            connect_timeout=5,
        )
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported (sqlite or postgresql)")


def is_postgres(db: peewee.Database) -> bool:
    """True for a PostgreSQL database."""
    return isinstance(db, peewee.PostgresqlDatabase)


def migrate(db: peewee.Database) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    with db.connection_context():
        if is_postgres(db):
            db.execute_sql("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            return list(Runner(db, str(MIGRATIONS_DIR)).up())
        finally:
            if is_postgres(db):
                db.execute_sql("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))


def pending_migrations(db: peewee.Database) -> list[str]:
    """Names of migrations not yet applied."""
    with db.connection_context():
        return [m.name for m in Runner(db, str(MIGRATIONS_DIR)).status() if not m.applied]


class Database:
    """The process's database plus the thread pool that runs work on it."""

    def __init__(self, url: str, workers: int = 8) -> None:
        self.url = url
        # The pool's threads keep one connection each; the rest serve other threads.
        self.db = open_database(url, max_connections=workers + _SPARE_CONNECTIONS)
        database_proxy.initialize(self.db)
        self._own_threads = threading.local()
        self._shared = threading.local()
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="db", initializer=self._mark_own_thread
        )
        self._sqlite_writer = threading.Lock()

    def _mark_own_thread(self) -> None:
        self._own_threads.keep_open = True

    @property
    def is_postgres(self) -> bool:
        """True when running on PostgreSQL."""
        return is_postgres(self.db)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on this thread with a connection; database errors -> StorageUnavailable.

        On the pool's own threads (and always on SQLite) the thread's
        connection stays open after the call: no pool checkout, no liveness
        query next time. A connection-level failure closes it, so the next
        call on this thread gets a checked one. Work that failed because the
        connection's prepared statements were out of date (a migration under
        this replica, ``prepared.out_of_date``) rolled back whole and runs
        once more, with them prepared again.
        """
        try:
            return self._call_once(fn, *args)
        except peewee.DatabaseError as exc:
            if not prepared.out_of_date(exc):
                raise
            log.warning("prepared statements out of date (%s); running the work again", exc)
            return self._call_once(fn, *args)

    def _call_once(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            if getattr(self._own_threads, "keep_open", False) or not self.is_postgres:
                self.db.connect(reuse_if_open=True)
                return fn(*args)
            # Any other thread (a CLI, a test) borrows a pooled connection for the call.
            with self.db.connection_context():
                return fn(*args)
        except (peewee.OperationalError, peewee.InterfaceError) as exc:
            # Connection-level failures; integrity errors are the caller's business.
            with contextlib.suppress(Exception):
                self.db.close()
            raise StorageUnavailable(f"database unavailable: {type(exc).__name__}") from exc

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the database thread pool, unless the call's deadline passes first.

        Checked again when a thread picks the work up: work that waited in the
        queue past the deadline is never started (deadlines.py).
        """
        at = deadlines.deadline()
        deadlines.check("database work", at)
        loop = asyncio.get_running_loop()
        if at is None:
            return await loop.run_in_executor(self._executor, self.call, fn, *args)
        return await loop.run_in_executor(self._executor, self._call_before, at, fn, *args)

    def _call_before(self, at: float, fn: Callable[..., T], *args: Any) -> T:
        deadlines.check("database work", at)
        return self.call(fn, *args)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction; on SQLite it takes the write lock up front.

        SQLite has one writer at a time, and a connection that finds the lock
        taken sleeps in its busy handler (milliseconds at a time); queueing
        this process's writers on a thread lock first keeps them from sleeping
        on each other. Other processes still wait through busy_timeout.
        Nested in an open transaction it is a savepoint.
        """
        if self.db.in_transaction():
            if self.in_shared_transaction:
                yield  # the outer transaction is this unit's (see shared_transaction)
                return
            # Inside a group commit's second pass (or any outer transaction): a
            # savepoint, so this unit's failure rolls back only its own writes.
            with self.db.atomic():
                yield
        elif isinstance(self.db, peewee.SqliteDatabase):
            with self._sqlite_writer, self.db.atomic("IMMEDIATE"):
                yield
        else:
            with self.db.atomic():
                yield

    @contextlib.contextmanager
    def shared_transaction(self) -> Iterator[None]:
        """A write transaction in which a nested ``transaction()`` opens no savepoint.

        For a caller that runs several units of work in one transaction and,
        should any unit raise, lets the whole transaction roll back and runs
        them again each in its own savepoint (events/group_commit.py): on
        PostgreSQL a savepoint and its release are two round trips per unit.
        For the same reason, statements whose results nobody reads travel
        with the next round trip (``storage/deferred``).
        """
        with deferring(self.db), self.transaction():
            self._shared.active = True
            try:
                yield
            finally:
                self._shared.active = False

    @property
    def in_shared_transaction(self) -> bool:
        """True on this thread inside ``shared_transaction``: a unit's failure fails them all."""
        return getattr(self._shared, "active", False)

    def transaction_usable(self) -> bool:
        """False when this thread's PostgreSQL transaction is aborted by a failed statement."""
        if not self.is_postgres:
            return True  # SQLite rolls back only the failed statement
        conn = self.db.connection()
        return bool(conn.info.transaction_status != psycopg2_extensions.TRANSACTION_STATUS_INERROR)

    def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers ``SELECT 1``."""
        self.call(lambda: self.db.execute_sql("SELECT 1").fetchone())

    def close(self) -> None:
        """Stop the thread pool and close pooled connections."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(Exception):
            if hasattr(self.db, "close_all"):
                self.db.close_all()
            else:
                self.db.close()
        log.debug("database closed: %s", redact_url(self.url))
