"""``billing-service`` with every SQL statement and commit counted, for the webhook bench.

PostgreSQL's pg_stat_statements needs a server restart to load, which a
shared server cannot have; this wrapper counts at the driver boundary
instead (peewee's ``execute_sql`` and ``commit``) and exports the counts as
Prometheus counters next to the service's own metrics::

    BILLING_METRICS_ADDR=127.0.0.1:0 python -m bench.counted_service serve

A statement run outside a transaction is counted as a commit of its own
(autocommit), as PostgreSQL counts it.
"""

from __future__ import annotations

import sys
from typing import Any

import peewee
from prometheus_client import Counter

from billing_service import cli

STATEMENTS = Counter("bench_sql_statements", "SQL statements sent to the database")
COMMITS = Counter("bench_sql_commits", "Transactions committed, autocommit statements included")

_execute_sql = peewee.Database.execute_sql
_commit = peewee.Database.commit


def _counted_execute_sql(self: peewee.Database, sql: str, params: Any = None) -> Any:
    STATEMENTS.inc()
    if not self.in_transaction():
        COMMITS.inc()
    return _execute_sql(self, sql, params)


def _counted_commit(self: peewee.Database) -> Any:
    COMMITS.inc()
    return _commit(self)


peewee.Database.execute_sql = _counted_execute_sql  # type: ignore[method-assign]
peewee.Database.commit = _counted_commit  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(cli.main())
