"""Reading every user's current subscription into compact entries, fast, for complete mode.

One raw SQL statement, no ORM objects: the rows arrive ordered by user with
the subscription that matters first (the order of
``repository.current_subscription``: live before ended, then newest by
``(stripe_created, id)``), so the first row of each user is the one kept.
On PostgreSQL the result streams through ``COPY ... TO STDOUT`` (one round
trip, text rows parsed as they arrive); on SQLite a plain cursor is iterated.
Each row becomes an ``Entry`` through ``subscriptions.evaluate_values`` (the
one access policy) and ``EntryBook`` (shared entries), straight into a dict
the caller swaps in, so memory holds the entries and nothing else.

This runs on a thread of its own: it never touches the live cache.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from datetime import datetime
from typing import Any

from billing_service.entitlements.model import STATUS_BY_VALUE, Entry, EntryBook
from billing_service.lifecycle import TERMINAL
from billing_service.storage.database import Database
from billing_service.subscriptions import evaluate_values

# Built from the TERMINAL enum, never from input.
_ENDED = ", ".join(f"'{status.value}'" for status in sorted(TERMINAL))
CURRENT_ROWS_SQL = (
    "SELECT user_id, status, plan, current_period_end, cancel_at_period_end FROM subscription "  # noqa: S608
    f"ORDER BY user_id, status IN ({_ENDED}), stripe_created DESC, id DESC"
)


class WarmStopped(Exception):
    """The warm-up was told to stop (its lease ended) before it finished."""


class CurrentEntries:
    """Collects the first row of each user as an Entry; fed row by row."""

    def __init__(self, entries: EntryBook, now: datetime, should_stop: Callable[[], bool]) -> None:
        self.entries: dict[str, Entry] = {}
        self.rows = 0
        self._book = entries
        self._catalog = entries.book.catalog
        self._now = now
        self._previous = ""
        self._should_stop = should_stop

    def add(self, user: str, status: str, plan: str, end: Any, cancel: Any) -> None:
        """One row, in CURRENT_ROWS_SQL order; ``end`` is a datetime, ISO text or None."""
        self.rows += 1
        if user == self._previous:
            return  # not the user's current subscription
        self._previous = user
        if self.rows % 65536 == 0 and self._should_stop():
            raise WarmStopped
        state = STATUS_BY_VALUE[status]
        if end is not None and not isinstance(end, datetime):
            end = datetime.fromisoformat(end)
        grant = evaluate_values(state, plan, end, bool(cancel), self._catalog, self._now)
        self.entries[user] = self._book.from_grant(grant, state)


class _CopySink:
    """A file-like target for psycopg2's copy_expert: parses each text row as it arrives."""

    def __init__(self, into: CurrentEntries) -> None:
        self._into = into
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._partial = ""

    def write(self, data: bytes | str) -> int:
        text = data if isinstance(data, str) else self._decoder.decode(data)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        add = self._into.add
        for line in lines:
            user, status, plan, end, cancel = line.split("\t")
            # COPY text format: \N is NULL; user ids and plans never hold tabs or backslashes
            # (validation.user_id admits printable characters without spaces).
            add(
                _unescape(user),
                status,
                _unescape(plan),
                None if end == r"\N" else end,
                cancel == "t",
            )
        return len(data)


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    return field.encode("latin-1", "backslashreplace").decode("unicode_escape")


def read_current_entries(
    db: Database, entries: EntryBook, now: datetime, should_stop: Callable[[], bool]
) -> CurrentEntries:
    """Every user's current entry at ``now``; needs a connection (run through ``db.call``)."""
    into = CurrentEntries(entries, now, should_stop)
    connection = db.db.connection()
    if db.is_postgres:
        with connection.cursor() as cursor:
            cursor.copy_expert(f"COPY ({CURRENT_ROWS_SQL}) TO STDOUT", _CopySink(into))
        return into
    cursor = connection.execute(CURRENT_ROWS_SQL)
    try:
        while True:
            chunk = cursor.fetchmany(10_000)
            if not chunk:
                return into
            for user, status, plan, end, cancel in chunk:
                into.add(user, status, plan, end, cancel)
    finally:
        cursor.close()
