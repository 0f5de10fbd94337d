"""Group commit: concurrent units of database work share one transaction and one commit.

::

    submit(unit) --queue--> writer: take what is queued (up to ``max_batch``,
        waiting at most ``max_wait`` for more) -> one thread hop ->
        BEGIN; for each unit: apply; COMMIT
        [a unit raised: ROLLBACK; BEGIN; for each unit: SAVEPOINT; apply;
         RELEASE (or ROLLBACK TO); COMMIT]
        -> answer every caller

A unit is "apply one event inside the given transaction": the writer owns
the transaction. The units of a batch first run in it one after the other
with no savepoint (``Database.shared_transaction``: a savepoint and its
release are two round trips per unit on PostgreSQL). Units rarely fail (a
same-second conflict that needs Stripe, a concurrent duplicate, a bug);
when one raises, that transaction rolls back whole and the batch runs
again with each unit in its own savepoint (``Database.transaction()``
nested in a transaction is one, which is how ``apply_event`` writes), so
the failing unit rolls back only its own writes and its caller gets the
exception, while the others commit
(``billing_event_group_commit_reruns_total`` counts these second runs).
Should a statement fail outside a unit's savepoint, leaving a PostgreSQL
transaction unusable, the whole batch fails as below. No caller hears its
result before the commit that made it durable; when the commit (or the
connection) fails, every caller of the batch gets StorageUnavailable and
nothing of the batch was written, so their retries apply the events.

A unit may name a key (the event's customer): the units of one key go to
one writer, in the order they were queued, so they run one after the other
in one batch or in batches that follow each other, never in two
transactions at once. That lets a customer's next event queue as soon as
the previous one has (``locks.Claim.queued``) instead of waiting for its
commit: each unit reads what the units before it wrote, and the ordering
per subscription is decided exactly as with one transaction per event. On
PostgreSQL there are four writers by default (``concurrency``,
``BILLING_EVENT_WRITERS``), each on its own connection, units spread over
them by key (units with no key share one);
the database's locks (unique processed-event id, per-subscription advisory
lock, per-chain audit heads) keep their batches apart. SQLite has one
writer, so one batch at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import peewee

from billing_service import metrics
from billing_service.storage.database import Database, StorageUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Pending(Generic[T]):
    unit: Callable[[], T]
    future: asyncio.Future[T] = field(repr=False)


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class GroupCommitter:
    """Collects units of work from concurrent callers and commits them together."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 64,
        max_wait: float = 0.002,
        concurrency: int | None = None,
    ) -> None:
        self._db = db
        self._max_batch = max(1, max_batch)
        self._max_wait = max(0.0, max_wait)
        writers = concurrency if concurrency is not None else (4 if db.is_postgres else 1)
        self._concurrency = 1 if not db.is_postgres else max(1, writers)
        self._queues: list[asyncio.Queue[_Pending[Any]]] = []
        self._writers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, unit: Callable[[], T], key: str = "") -> T:
        """Run ``unit()`` in the next batch's transaction; its result once that committed."""
        return await self.enqueue(unit, key)

    def enqueue(self, unit: Callable[[], T], key: str = "") -> asyncio.Future[T]:
        """Queue ``unit()`` behind the queued units of ``key``; settled once its batch committed.

        Await the future for the result (or the exception); cancelling it before
        its batch starts drops the unit.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # First use, or a new event loop (tests run one per case): writers live on it.
            self._start(loop)
        future: asyncio.Future[T] = loop.create_future()
        queue = self._queues[hash(key) % len(self._queues)]
        queue.put_nowait(_Pending(unit, future))
        return future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues = [asyncio.Queue() for _ in range(self._concurrency)]
        # A fresh context: the writers outlive the call that started them, so they
        # must not carry its context variables (its deadline, its log fields).
        self._writers = [
            loop.create_task(
                self._write_forever(queue), name=f"group-commit-{i}", context=contextvars.Context()
            )
            for i, queue in enumerate(self._queues)
        ]

    async def _collect(self, queue: asyncio.Queue[_Pending[Any]]) -> list[_Pending[Any]]:
        loop = asyncio.get_running_loop()
        batch = [await queue.get()]
        deadline = loop.time() + self._max_wait
        while len(batch) < self._max_batch:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                # asyncio.timeout, not wait_for: no task per wait. A get cut short
                # leaves its item in the queue for the next batch.
                async with asyncio.timeout(remaining):
                    batch.append(await queue.get())
            except TimeoutError:
                break
        return batch

    async def _write_forever(self, queue: asyncio.Queue[_Pending[Any]]) -> None:
        while True:
            batch = await self._collect(queue)
            # Callers that gave up (deadline, hang-up) are not applied at all.
            batch = [p for p in batch if not p.future.done()]
            if not batch:
                continue
            try:
                outcomes = await self._db.run(self._run_batch, [p.unit for p in batch])
            except asyncio.CancelledError:
                # Shutting down: the batch may still commit on its thread; a caller's
                # retry then answers DUPLICATE, so UNAVAILABLE is safe either way.
                for pending in batch:
                    _settle(pending.future, _Failed(StorageUnavailable("shutting down")))
                raise
            except StorageUnavailable as exc:
                for pending in batch:
                    _settle(pending.future, _Failed(StorageUnavailable(str(exc))))
                continue
            except Exception as exc:  # a bug: answer each caller, keep the writer alive
                log.exception("group commit failed")
                for pending in batch:
                    _settle(pending.future, _Failed(exc))
                continue
            metrics.GROUP_COMMIT_SIZE.observe(len(batch))
            for pending, outcome in zip(batch, outcomes, strict=True):
                _settle(pending.future, outcome)

    def _run_batch(self, units: list[Callable[[], Any]]) -> list[Any]:
        """One transaction for the batch; runs on a database thread.

        The units first share it with no savepoint of their own. Should one
        raise, that transaction rolls back whole and the batch runs again,
        each unit in its own savepoint, so that only the failing unit fails.
        """
        try:
            with self._db.shared_transaction():
                return [unit() for unit in units]
        except (peewee.OperationalError, peewee.InterfaceError):
            raise  # the connection or the database is gone: the batch fails
        except Exception as exc:
            log.debug("a unit failed (%s); running its batch again unit by unit", exc)
        metrics.GROUP_COMMIT_RERUNS.inc()
        return self._run_isolated(units)

    def _run_isolated(self, units: list[Callable[[], Any]]) -> list[Any]:
        """One transaction, one savepoint per unit."""
        outcomes: list[Any] = []
        with self._db.transaction():
            for unit in units:
                try:
                    outcomes.append(unit())
                except (peewee.OperationalError, peewee.InterfaceError):
                    raise  # the connection or the transaction is gone: the batch fails
                except Exception as exc:
                    if not self._db.transaction_usable():
                        raise StorageUnavailable("a failed statement outside a savepoint") from exc
                    outcomes.append(_Failed(exc))
        return outcomes

    async def close(self) -> None:
        """Stop the writers; pending callers get StorageUnavailable."""
        for task in self._writers:
            task.cancel()
        for task in self._writers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._writers = []
        self._loop = None
        for queue in self._queues:
            while not queue.empty():
                _settle(queue.get_nowait().future, _Failed(StorageUnavailable("shutting down")))


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, _Failed):
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome)
