"""``billing-service`` with every SQL statement and commit counted, for the webhook bench.

PostgreSQL's pg_stat_statements needs a server restart to load, which a
shared server cannot have; this wrapper counts at the driver boundary
instead (peewee's ``execute_sql`` and ``commit``) and exports the counts as
Prometheus counters next to the service's own metrics::

    BILLING_METRICS_ADDR=127.0.0.1:0 python -m bench.counted_service serve

A statement run outside a transaction is counted as a commit of its own
(autocommit), as PostgreSQL counts it. Statements deferred to the next round
trip (``billing_service/storage/deferred``) count as statements when queued;
round trips are counted separately, as the driver's cursor executions (BEGIN,
COMMIT and ROLLBACK included).
"""

from __future__ import annotations

import sys
from typing import Any

import peewee
from prometheus_client import Counter

from billing_service import cli
from billing_service.storage.deferred import DeferringPostgresqlDatabase

STATEMENTS = Counter("bench_sql_statements", "SQL statements sent to the database")
COMMITS = Counter("bench_sql_commits", "Transactions committed, autocommit statements included")
ROUND_TRIPS = Counter("bench_sql_round_trips", "Queries sent to the database, each one round trip")

_execute_sql = peewee.Database.execute_sql
_commit = peewee.Database.commit
_cursor = peewee.Database.cursor
_execute_later = DeferringPostgresqlDatabase.execute_later


def _counted_execute_sql(self: peewee.Database, sql: str, params: Any = None) -> Any:
    # A COMMIT that carries deferred statements is a commit; they were counted when queued.
    if not sql.endswith("; COMMIT"):
        STATEMENTS.inc()
    if not self.in_transaction():
        COMMITS.inc()
    return _execute_sql(self, sql, params)


def _counted_commit(self: peewee.Database) -> Any:
    COMMITS.inc()
    return _commit(self)


def _counted_execute_later(self: DeferringPostgresqlDatabase, sql: str, params: Any = None) -> None:
    if self.queues:
        STATEMENTS.inc()  # sent later, inside another statement's round trip
    _execute_later(self, sql, params)


class _CountedCursor:
    """A driver cursor whose every ``execute`` counts one round trip."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, *args: Any) -> Any:
        ROUND_TRIPS.inc()
        self._cursor.execute(*args)
        return self

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def _counted_cursor(self: peewee.Database, *args: Any, **kwargs: Any) -> Any:
    return _CountedCursor(_cursor(self, *args, **kwargs))


peewee.Database.execute_sql = _counted_execute_sql  # type: ignore[method-assign]
peewee.Database.commit = _counted_commit  # type: ignore[method-assign]
peewee.Database.cursor = _counted_cursor  # type: ignore[method-assign]
DeferringPostgresqlDatabase.execute_later = _counted_execute_later  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(cli.main())
