"""Reading every user's current subscription into compact entries, fast, for complete mode.

One raw SQL statement, no ORM objects: the rows arrive ordered by user with
the subscription that matters first (the order of
``repository.current_subscription``: live before ended, then newest by
``(stripe_created, id)``), so the first row of each user is the one kept.
On PostgreSQL the result streams through ``COPY ... TO STDOUT`` (one round
trip, text rows parsed as they arrive); on SQLite a plain cursor is iterated.
Each row becomes an ``Entry`` through ``lifecycle.grant`` (the one access
policy, applied as ``access.evaluate`` applies it) and ``EntryBook``
(shared entries), straight into a dict
the caller swaps in, so memory holds the entries and nothing else.

A user with a second unended subscription (a duplicate, rare) is noted while
reading and chosen for afterwards from all their rows
(``best_subscription.choose``, through ``EntryBook.from_rows``).

This runs on a thread of its own: it never touches the live cache.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from billing_service.entitlements.model import STATUS_BY_VALUE, Entry, EntryBook
from billing_service.lifecycle import TERMINAL, grant
from billing_service.storage.database import Database
from billing_service.storage.models import Subscription

A = TypeVar("A")

_ENDED_VALUES = frozenset(status.value for status in TERMINAL)

# Built from the TERMINAL enum, never from input.
_ENDED = ", ".join(f"'{status.value}'" for status in sorted(TERMINAL))
CURRENT_ROWS_SQL = (
    "SELECT user_id, status, plan, current_period_end, cancel_at_period_end FROM subscription "  # noqa: S608
    f"ORDER BY user_id, status IN ({_ENDED}), stripe_created DESC, id DESC"
)


class WarmStopped(Exception):
    """The warm-up was told to stop (its lease ended) before it finished."""


class CurrentEntries(Generic[A]):
    """Collects the first row of each user as an Entry; fed row by row.

    ``add`` runs a million times per warm-up, so it is written flat: the
    per-row work is a status lookup, ``lifecycle.grant`` (the one policy, as
    ``access.evaluate`` calls it) and a lookup of the shared entry.
    """

    def __init__(
        self, entries: EntryBook[A], now: datetime, should_stop: Callable[[], bool]
    ) -> None:
        self.entries: dict[str, Entry[A]] = {}
        self.rows = 0
        self.cpu_seconds = 0.0
        self._book = entries
        self._plans = entries.book.catalog.plans
        self._policy = entries.book.catalog.access
        self._now = now
        self._previous = ""
        self._previous_unended = False
        self._should_stop = should_stop
        # Users with more than one unended subscription: chosen for from all their rows.
        self.several: set[str] = set()

    def add(self, user: str, status: str, plan: str, end: Any, cancel: bool) -> None:
        """One row, in CURRENT_ROWS_SQL order; ``end`` is a datetime, ISO text or None."""
        self.rows += 1
        if user == self._previous:
            # Not the user's current subscription; unended rows come first, so a
            # second unended one means the user has several.
            if self._previous_unended and status not in _ENDED_VALUES:
                self.several.add(user)
            return
        self._previous = user
        self._previous_unended = status not in _ENDED_VALUES
        if not self.rows & 0xFFFF and self._should_stop():
            raise WarmStopped
        state = STATUS_BY_VALUE[status]
        if end.__class__ is str:
            end = datetime.fromisoformat(end)
        granted = grant(
            state, plan if plan in self._plans else "", end, cancel, self._now, self._policy
        )
        until = granted.access_until
        self.entries[user] = self._book.entry(
            granted.tier,
            state,
            math.inf if until is None else until.replace(tzinfo=UTC).timestamp(),
        )


class _CopySink(io.TextIOBase):
    """A text file for psycopg2's copy_expert: each row (one write per row) is parsed at once."""

    def __init__(self, into: CurrentEntries[Any]) -> None:
        super().__init__()
        self._add = into.add
        self._partial = ""

    def write(self, text: str) -> int:
        """Parse the complete rows in ``text``; keep an incomplete tail for the next call."""
        if self._partial or not text.endswith("\n"):
            text, self._partial = self._partial + text, ""
            head, sep, tail = text.rpartition("\n")
            self._partial = tail
            if not sep:
                return len(text)
            text = head + sep
        add = self._add
        for line in text[:-1].split("\n"):
            user, status, plan, end, cancel = line.split("\t")
            # COPY text format: \N is NULL, and backslash escapes (which user ids and plan
            # names, printable without spaces, practically never need) are undone.
            if "\\" in line:
                user, plan = _unescape(user), _unescape(plan)
            add(user, status, plan, None if end == "\\N" else end, cancel == "t")
        return len(text)


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    return field.encode("latin-1", "backslashreplace").decode("unicode_escape")


def read_current_entries(
    db: Database, entries: EntryBook[A], now: datetime, should_stop: Callable[[], bool]
) -> CurrentEntries[A]:
    """Every user's current entry at ``now``; needs a connection (run through ``db.call``)."""
    into = CurrentEntries(entries, now, should_stop)
    started = time.thread_time()
    connection = db.db.connection()
    if db.is_postgres:
        with connection.cursor() as cursor:
            cursor.copy_expert(f"COPY ({CURRENT_ROWS_SQL}) TO STDOUT", _CopySink(into))
    else:
        cursor = connection.execute(CURRENT_ROWS_SQL)
        try:
            add = into.add
            while chunk := cursor.fetchmany(10_000):
                for user, status, plan, end, cancel in chunk:
                    add(user, status, plan, end, bool(cancel))
        finally:
            cursor.close()
    if into.several:
        by_user: dict[str, list[Subscription]] = {}
        for row in Subscription.select().where(Subscription.user_id.in_(sorted(into.several))):
            by_user.setdefault(str(row.user_id), []).append(row)
        for user, rows in by_user.items():
            into.entries[user] = entries.from_rows(rows, now)
    into.cpu_seconds = time.thread_time() - started
    return into
