"""The Redis fast path (PostgreSQL + Redis): lost counters rebuilt, stopped batches completed.

Through a service process: Redis flushed (or restarted empty) between calls
loses nothing, the hard limit holds and a retry of a key counted before the
loss still replays. In process, at the seam ``FastLedger._write``: a batch
that stops after Redis counted (a killed process) is written to the ledger by
``drain`` or by the first retry of one of its keys, never counted twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import redis

from billing_service.plans import load_catalog
from billing_service.storage.database import Database
from billing_service.storage.models import utcnow
from billing_service.usage.batch import Pending
from billing_service.usage.counters import PENDING, RedisCounters, answer_key, counter_key
from billing_service.usage.fast import DRAIN_AFTER, FastLedger
from billing_service.usage.models import UsageCounter, UsageRecord
from devtools.redis_server import RedisServer
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.entitlements.conftest import service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import PLANS_FILE, ServiceProcess
from tests.usage.support import Usage, new_key

LIMIT = 20  # free api_calls in plans.example.toml


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server owned by this module."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fast_service(
    shared_postgres: str, stripe_standin: StripeStandIn, redis_server: RedisServer
) -> Iterator[ServiceProcess]:
    """A service counting usage in Redis."""
    with ServiceProcess(service_env(shared_postgres, stripe_standin, redis_server.url)) as process:
        yield process


def _flush(server: RedisServer) -> None:
    with redis.Redis.from_url(server.url) as client:
        client.flushall()


async def test_counters_flushed_between_calls_are_rebuilt_from_the_ledger(
    fast_service: ServiceProcess, redis_server: RedisServer, shared_postgres: str
) -> None:
    user = f"user-{uuid.uuid4().hex[:10]}"
    async with grpc.aio.insecure_channel(fast_service.target) as channel:
        usage = Usage(pb_grpc.BillingServiceStub(channel))
        first_key = new_key()
        assert (await usage.consume(user, 15, key=first_key)).used == 15
        _flush(redis_server)
        refused = await usage.consume(user, 6)
        assert not refused.allowed and refused.used == 15
        _flush(redis_server)
        # A retry of a key Redis forgot replays the ledger's answer and counts nothing.
        retry = await usage.consume(user, 15, key=first_key)
        assert retry.replayed and retry.allowed and retry.used == 15
        assert (await usage.consume(user, 5)).used == LIMIT
        assert not (await usage.consume(user, 1)).allowed
        assert await usage.used(user) == LIMIT
    with redis.Redis.from_url(redis_server.url) as client:
        [start] = {r.period_start for r in _records(shared_postgres, user)}
        counter = client.get(counter_key(user, "api_calls", int(_epoch(start))))
        assert counter is not None and int(counter) == LIMIT


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def _records(url: str, user: str) -> list[UsageRecord]:
    db = Database(url, workers=1)
    try:
        return db.call(lambda: list(UsageRecord.select().where(UsageRecord.user_id == user)))
    finally:
        db.close()


class Stopped(Exception):
    """Raised where a killed process would stop."""


class StoppingLedger(FastLedger):
    """Stops like a killed process after Redis counted, before the ledger write."""

    def _write(self, cur: Any, answers: Any, parsed: Any = None) -> Any:
        raise Stopped


class Clock:
    """A settable usage clock."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def in_process(
    shared_postgres: str, redis_server: RedisServer
) -> Iterator[tuple[Database, RedisCounters, Clock]]:
    """A database, Redis counters and a clock for FastLedgers run in this process."""
    db = Database(shared_postgres, workers=1)
    counters = RedisCounters(redis.Redis.from_url(redis_server.url))
    try:
        yield db, counters, Clock()
    finally:
        counters.close()
        db.close()


def _pending(user: str, quantity: int, key: str) -> Pending:
    loop = asyncio.new_event_loop()
    try:
        return Pending(user, "api_calls", quantity, key, utcnow(), loop.create_future())
    finally:
        loop.close()


def _state(db: Database, counters: RedisCounters, user: str, key: str) -> tuple[Any, ...]:
    """(ledger record's counted or None, database counter, Redis counter, key still pending)."""

    def read() -> tuple[Any, Any]:
        record = UsageRecord.get_or_none(UsageRecord.idempotency_key == key)
        counter = UsageCounter.get_or_none(UsageCounter.user_id == user)
        return record, counter

    record, counter = db.call(read)
    client = counters._client
    start = counter.period_start if counter is not None else None
    in_redis = (
        client.get(counter_key(user, "api_calls", int(_epoch(start))))
        if start is not None
        else None
    )
    return (
        None if record is None else record.counted,
        None if counter is None else counter.used,
        None if in_redis is None else int(in_redis),
        bool(client.hexists(PENDING, answer_key(key))),
    )


def test_a_batch_stopped_after_redis_counted_is_written_by_drain(
    in_process: tuple[Database, RedisCounters, Clock],
) -> None:
    db, counters, clock = in_process
    fast = FastLedger(db, counters, load_catalog(PLANS_FILE), clock)
    stopping = StoppingLedger(db, counters, load_catalog(PLANS_FILE), clock)
    user, key = f"user-{uuid.uuid4().hex[:10]}", new_key()
    db.call(fast.apply, [_pending(user, 2, new_key())])
    with pytest.raises(Stopped):
        db.call(stopping.apply, [_pending(user, 3, key)])
    # Redis counted it and keeps the answer pending; the ledger does not have it.
    assert _state(db, counters, user, key) == (None, 2, 5, True)
    assert db.call(fast.drain) == 0  # not yet: its batch may still be running
    clock.now += DRAIN_AFTER + timedelta(seconds=1)
    assert db.call(fast.drain) == 1
    assert _state(db, counters, user, key) == (3, 5, 5, False)
    [retry] = db.call(fast.apply, [_pending(user, 3, key)])
    assert retry.outcome is not None and retry.outcome[1] is True
    assert _state(db, counters, user, key) == (3, 5, 5, False)


def test_a_retry_of_a_stopped_batch_writes_its_answer_before_replaying_it(
    in_process: tuple[Database, RedisCounters, Clock],
) -> None:
    db, counters, clock = in_process
    fast = FastLedger(db, counters, load_catalog(PLANS_FILE), clock)
    stopping = StoppingLedger(db, counters, load_catalog(PLANS_FILE), clock)
    user, key = f"user-{uuid.uuid4().hex[:10]}", new_key()
    with pytest.raises(Stopped):
        db.call(stopping.apply, [_pending(user, 4, key)])
    [retry] = db.call(fast.apply, [_pending(user, 4, key)])
    assert retry.outcome is not None
    record, replayed, _ = retry.outcome
    assert replayed and record.allowed and record.used_after == 4
    assert _state(db, counters, user, key) == (4, 4, 4, False)
    clock.now += DRAIN_AFTER + timedelta(seconds=1)
    assert db.call(fast.drain) == 0
    assert _state(db, counters, user, key) == (4, 4, 4, False)
