"""The hot path's fixed statements, prepared once per PostgreSQL connection.

psycopg2 sends every statement as text, so PostgreSQL parses and plans it
on each call. For the apply path's fixed statements (``fixed_sql`` and its
siblings) that was most of the server's work per statement: the lookup of
a checkout or invoice event took 0.13 ms of PostgreSQL CPU as text and
0.04 ms as a prepared statement, the subscription upsert 0.22 and 0.12
(``bench/prepared_statements.py``, docs/performance.md). A statement
registered here (``preparable``, once, when its text is first built) is
therefore run as ``EXECUTE name(...)`` by the pooled database
(``storage/deferred``), which first sends this registry's ``PREPARE``
statements on each connection that lacks them.

The ``PREPARE`` batch begins with ``DEALLOCATE ALL``, so sending it again
is always safe: a connection whose state is unknown (a round trip that
failed, a queue that was dropped) just gets the whole batch again.
Statements list their columns rather than ``*``, so a migration that adds
a column does not change a prepared statement's result type under a
running replica; one that changes a returned column's type makes the next
use fail once (``out_of_date``), and ``Database.call`` runs that work
again. Behind a pooler in transaction mode (PgBouncer), where a session's
prepared statements do not follow it, the URL option
``prepared_statements=false`` turns this off (``storage/database``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

_PLACEHOLDER = re.compile(r"%s")


@dataclass(frozen=True)
class Prepared:
    """One registered statement: its name, its ``PREPARE`` and its ``EXECUTE`` text."""

    name: str
    prepare: str
    execute: str


_lock = threading.Lock()
_by_text: dict[str, Prepared] = {}
# (statements registered, DEALLOCATE ALL and their PREPAREs): rebuilt, whole, on each registration.
_batch: tuple[int, str] = (0, "DEALLOCATE ALL")


def as_prepared(name: str, sql: str) -> Prepared:
    """``sql`` (``%s`` placeholders, no literal ``%``) as a ``PREPARE``/``EXECUTE`` pair."""
    if "%%" in sql or "%" in _PLACEHOLDER.sub("", sql):
        raise ValueError(f"statement {name} holds a literal %; it cannot be prepared")
    count = 0

    def numbered(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    body = _PLACEHOLDER.sub(numbered, sql)
    arguments = f"({', '.join(['%s'] * count)})" if count else ""
    return Prepared(name, f"PREPARE {name} AS {body}", f"EXECUTE {name}{arguments}")


def preparable(sql: str) -> str:
    """Register ``sql`` (PostgreSQL placeholders) to run prepared; returns it unchanged."""
    global _batch
    with _lock:
        if sql not in _by_text:
            _by_text[sql] = as_prepared(f"billing_{len(_by_text) + 1}", sql)
            prepares = [found.prepare for found in _by_text.values()]
            _batch = (len(prepares), "; ".join(["DEALLOCATE ALL", *prepares]))
    return sql


def lookup(sql: str) -> Prepared | None:
    """The registered statement whose text is ``sql``, if any."""
    return _by_text.get(sql)


def registered() -> int:
    """How many statements are registered (it only grows)."""
    return len(_by_text)


def out_of_date(error: BaseException) -> bool:
    """True when ``error`` says a connection's prepared statement is gone or stale.

    That is "prepared statement does not exist" (the session lost it) or
    "cached plan must not change result type" (a migration changed a column
    it returns). The statement did not run; once the connection has prepared
    everything again (``storage/deferred`` forgets on any failed round trip),
    the same work succeeds.
    """
    driver_error = getattr(error, "orig", error)  # peewee wraps the driver's error
    code = getattr(driver_error, "pgcode", None)
    if code == "26000":  # invalid_sql_statement_name
        return True
    return code == "0A000" and "cached plan must not change result type" in str(driver_error)


def preparing_batch() -> tuple[int, str]:
    """(how many statements it prepares, ``DEALLOCATE ALL`` then a ``PREPARE`` of each)."""
    return _batch
