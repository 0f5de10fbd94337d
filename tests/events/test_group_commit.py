"""Group commit on real databases: one commit, a failing unit rolls back alone, answers after it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import peewee
import psycopg2
import pytest
from prometheus_client import REGISTRY

from billing_service.events.group_commit import GroupCommitter
from billing_service.storage import fixed_sql
from billing_service.storage.database import Database, migrate
from billing_service.storage.models import Customer, utcnow

BATCHES = "billing_event_group_commit_size_count"
RERUNS = "billing_event_group_commit_reruns_total"
T = TypeVar("T")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """The module's migrated database (SQLite, then PostgreSQL) with its thread pool."""
    database = Database(database_url, workers=2)
    yield database
    database.close()


def committed_users(db: Database, users: Iterable[str]) -> set[str]:
    """Those of ``users`` whose customer row another connection sees (i.e. committed)."""
    return _committed(db, "SELECT user_id FROM customer", users)


def _committed(db: Database, select: str, wanted: Iterable[str]) -> set[str]:
    """Those of ``wanted`` that ``select`` finds on another connection (i.e. committed)."""
    if db.is_postgres:
        with contextlib.closing(psycopg2.connect(db.url)) as pg, pg.cursor() as cur:
            cur.execute(select)
            return {row[0] for row in cur.fetchall()} & set(wanted)
    with contextlib.closing(sqlite3.connect(db.url.removeprefix("sqlite:///"))) as lite:
        return {row[0] for row in lite.execute(select)} & set(wanted)


class Boom(Exception):
    """A unit's own failure."""


def link(db: Database, user: str, *, fail: bool = False) -> str:
    """A unit that writes one customer inside its own savepoint, and may then fail."""
    with db.transaction():
        Customer.insert(user_id=user, stripe_customer_id=f"cus_{user}").execute()
        if fail:
            raise Boom(user)
    return user


async def test_concurrent_units_share_one_commit_and_a_failing_one_rolls_back_alone(
    db: Database,
) -> None:
    committer = GroupCommitter(db, max_batch=64, max_wait=0.2)
    batches_before, reruns_before = _sample(BATCHES), _sample(RERUNS)
    users = [f"u{i}" for i in range(10)]
    results = await asyncio.gather(
        *(committer.submit(functools.partial(link, db, u, fail=u == "u3")) for u in users),
        return_exceptions=True,
    )
    await committer.close()
    assert [r for r in results if isinstance(r, BaseException)] == [results[3]]
    assert isinstance(results[3], Boom)
    assert committed_users(db, users) == set(users) - {"u3"}
    assert _sample(BATCHES) - batches_before == 1
    assert _sample(RERUNS) - reruns_before == 1  # the shared pass failed; savepoints decided


async def test_a_batch_whose_units_all_succeed_runs_once(db: Database) -> None:
    committer = GroupCommitter(db, max_batch=64, max_wait=0.2)
    reruns_before = _sample(RERUNS)
    users = [f"s{i}" for i in range(8)]
    results = await asyncio.gather(
        *(committer.submit(functools.partial(link, db, u)) for u in users)
    )
    await committer.close()
    assert results == users
    assert committed_users(db, users) == set(users)
    assert _sample(RERUNS) == reruns_before


def record(db: Database, event_id: str) -> str:
    """A unit that records an event as processed: a write whose result nobody reads."""
    with db.transaction():
        fixed_sql.insert_processed(event_id, "test.event", 1, "applied", "", "", "", utcnow())
    return event_id


def committed_events(db: Database, event_ids: Iterable[str]) -> set[str]:
    """Those of ``event_ids`` whose processed row another connection sees."""
    return _committed(db, "SELECT event_id FROM processed_event", event_ids)


@pytest.mark.parametrize("position", [0, 2, 4], ids=["first", "middle", "last"])
async def test_a_deferred_write_that_fails_fails_its_own_unit_alone(
    db: Database, position: int
) -> None:
    # On PostgreSQL the processed row's insert travels with the batch's next round
    # trip (or its COMMIT), so its unique-index failure surfaces there, in another
    # unit's statement; the batch then runs again unit by unit, and only the unit
    # that wrote the taken id fails.
    taken = f"evt_taken_{position}"
    await GroupCommitter(db).submit(lambda: record(db, taken))
    committer = GroupCommitter(db, max_batch=64, max_wait=0.2)
    reruns_before = _sample(RERUNS)
    events = [f"evt_{position}_{i}" for i in range(5)]
    events[position] = taken
    results = await asyncio.gather(
        *(committer.submit(functools.partial(record, db, e)) for e in events),
        return_exceptions=True,
    )
    await committer.close()
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [position]
    assert isinstance(results[position], peewee.IntegrityError)
    assert committed_events(db, events) == set(events)  # the taken one was already there
    assert _sample(RERUNS) - reruns_before == 1


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_caller_hears_its_result_only_once_it_is_committed(db: Database) -> None:
    committer = GroupCommitter(db, max_batch=4, max_wait=0.01)

    async def submit_and_look(user: str) -> bool:
        await committer.submit(lambda: link(db, user))
        return user in committed_users(db, [user])

    seen = await asyncio.gather(*(submit_and_look(f"v{i}") for i in range(12)))
    await committer.close()
    assert all(seen)


async def test_a_unit_is_not_applied_twice_when_the_same_user_is_linked_again(
    db: Database,
) -> None:
    # The unique index fails the second unit inside its savepoint; the first commits.
    committer = GroupCommitter(db, max_batch=8, max_wait=0.05)
    first, second = await asyncio.gather(
        committer.submit(lambda: link(db, "w")),
        committer.submit(lambda: link(db, "w")),
        return_exceptions=True,
    )
    await committer.close()
    assert first == "w"
    assert isinstance(second, Exception)
    assert committed_users(db, ["w"]) == {"w"}


CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


class RecordingDatabase(Database):
    """A Database that remembers the context each ``run`` was called in."""

    seen: list[str]

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Record the caller context variable, then run as usual."""
        self.seen.append(CALLER.get())
        return await super().run(fn, *args)


async def test_the_writer_does_not_run_in_the_context_of_the_call_that_started_it(
    tmp_path: Path,
) -> None:
    # The first caller's context (its deadline, its log fields) must not leak into
    # every later batch.
    db = RecordingDatabase(f"sqlite:///{tmp_path / 'billing.db'}", workers=1)
    db.seen = []
    migrate(db.db)
    committer = GroupCommitter(db, max_batch=1, max_wait=0)
    CALLER.set("first-call")
    assert await committer.submit(lambda: link(db, "x")) == "x"
    await committer.close()
    db.close()
    assert db.seen == [""]


def link_after(db: Database, user: str, previous: str | None) -> bool:
    """Write ``user``; True when the unit queued before it under the same key is visible."""
    visible = previous is None or Customer.select().where(Customer.user_id == previous).exists()
    link(db, user)
    return bool(visible)


async def test_units_of_one_key_run_in_queue_order_and_each_sees_the_one_before(
    db: Database,
) -> None:
    # On PostgreSQL four writers commit at once; a key's units must still follow
    # each other, or a customer's next event would miss the previous one's writes.
    committer = GroupCommitter(db, max_batch=3, max_wait=0.005)
    keys = [f"k{k}" for k in range(6)]
    units = []
    for step in range(8):
        for key in keys:
            previous = f"{key}-{step - 1}" if step else None
            unit = functools.partial(link_after, db, f"{key}-{step}", previous)
            units.append(committer.enqueue(unit, key=key))
    results = await asyncio.gather(*units)
    await committer.close()
    assert all(results)
    assert len(committed_users(db, [f"{k}-{s}" for k in keys for s in range(8)])) == 48
