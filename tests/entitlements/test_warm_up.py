"""Warming while serving: a replica whose cache is still filling answers correctly and says so.

The service runs in this process so that the warm-up can be held at a chosen
stage (before its snapshot is read, or after it was read and before it is
swapped in) with an event, not a sleep. Calls go over real gRPC.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from billing_service.best_subscription import relevant
from billing_service.entitlements.model import EntryBook
from billing_service.entitlements.warmup import read_current_entries
from billing_service.entitlements.wire import ResponseBook
from billing_service.health import CACHE_HEALTH_NAME
from billing_service.lifecycle import Status
from billing_service.plans import load_catalog
from billing_service.server import App, start
from billing_service.settings import Settings
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.storage.models import Subscription, utcnow
from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.entitlements.conftest import service_env
from tests.entitlements.entries import same_answer
from tests.entitlements.support import Billing
from tests.events import factory
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import PLANS_FILE

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Gate:
    """Holds the warm-up when it reaches ``stage``, until ``open()``."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.reached = asyncio.Event()
        self._opened = asyncio.Event()

    async def __call__(self, stage: str) -> None:
        if stage == self.stage and not self._opened.is_set():
            self.reached.set()
            await self._opened.wait()

    def open(self) -> None:
        """Let the warm-up go on."""
        self._opened.set()


def settings(database_url: str, standin: StripeStandIn) -> Settings:
    env = {
        **service_env(database_url, standin),
        "BILLING_GRPC_ADDR": "127.0.0.1:0",
        "BILLING_PLANS_FILE": str(PLANS_FILE),
        "BILLING_INSECURE_NO_AUTH": "true",
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "BILLING_SHUTDOWN_GRACE_SECONDS": "1",
    }
    return Settings.from_env(env)


@pytest.fixture
async def running(database_url: str, stripe_standin: StripeStandIn) -> AsyncIterator[list[App]]:
    apps: list[App] = []
    yield apps
    for app in apps:
        await app.stop(0)


async def cache_health(channel: grpc.aio.Channel) -> int:
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=CACHE_HEALTH_NAME))
    return int(answer.status)


@pytest.mark.parametrize("stage", ["read", "merge"])
async def test_users_changed_during_warm_up_are_never_answered_from_before(
    database_url: str, stripe_standin: StripeStandIn, running: list[App], stage: str
) -> None:
    config = settings(database_url, stripe_standin)
    run = factory.new_id("w")
    paying, leaving, quiet_leaver = f"{run}-paying", f"{run}-leaving", f"{run}-quiet-leaver"
    leaving_sub, quiet_sub = factory.new_id("sub"), factory.new_id("sub")
    first = await start(config)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
            billing = Billing(pb_grpc.BillingServiceStub(channel))
            await billing.subscribe(paying, factory.new_id("sub"), "active")
            await billing.subscribe(leaving, leaving_sub, "active")
            await billing.subscribe(quiet_leaver, quiet_sub, "active")
    finally:
        await first.stop(0)

    # A fresh replica, its warm-up held at ``stage``.
    gate = Gate(stage)
    app = await start(config, entitlement_warm_gate=gate)
    running.append(app)
    await asyncio.wait_for(gate.reached.wait(), 30)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        billing = Billing(pb_grpc.BillingServiceStub(channel))
        assert await cache_health(channel) == NOT_SERVING
        assert REGISTRY.get_sample_value("billing_entitlement_cache_warming") == 1
        newcomer = f"{run}-newcomer"
        # While warming: every answer is right, changes included, the moment the write returns.
        assert await billing.tier(paying) == "pro"
        assert await billing.tier(newcomer) == "free"
        await billing.subscribe(newcomer, factory.new_id("sub"), "active")
        assert await billing.tier(newcomer) == "pro"
        await billing.subscribe(leaving, leaving_sub, "canceled")
        assert await billing.tier(leaving) == "free"
        # Changed during the warm-up and not asked about before it completes.
        quiet_newcomer = f"{run}-quiet-newcomer"
        await billing.subscribe(quiet_newcomer, factory.new_id("sub"), "active")
        await billing.subscribe(quiet_leaver, quiet_sub, "canceled")

        gate.open()
        await wait_until_async(
            "the cache to report complete", lambda: cache_health(channel), lambda s: s == SERVING
        )
        assert REGISTRY.get_sample_value("billing_entitlement_cache_warming") == 0
        # Complete: the snapshot may predate both changes; neither shows through it.
        assert await billing.tier(newcomer) == "pro"
        assert await billing.tier(leaving) == "free"
        assert await billing.tier(quiet_newcomer) == "pro"
        assert await billing.tier(quiet_leaver) == "free"
        assert await billing.tier(paying) == "pro"
        assert await billing.tier(f"{run}-stranger") == "free"
        full = await billing.get(newcomer)
        assert (full.user_id, full.tier) == (newcomer, "pro")


def test_the_warm_up_reads_what_the_repository_and_the_policy_say(database_url: str) -> None:
    """The raw-SQL snapshot agrees with current_subscription + evaluate, user by user."""
    db = Database(database_url, workers=1)
    rng = random.Random(14)
    statuses = [s.value for s in Status if s is not Status.NONE]
    now = utcnow()
    prefix = factory.new_id("snap")
    # Odd but valid user ids exercise COPY's escaping on PostgreSQL.
    users = [f"{prefix}-{n}" for n in range(60)] + [
        f"{prefix}\\back",
        f"{prefix}-é",
        f"{prefix}\\t",
    ]
    try:
        rows = [
            {
                "stripe_subscription_id": f"{prefix}_sub_{i}",
                "user_id": rng.choice(users),
                "stripe_customer_id": "cus",
                "status": rng.choice(statuses),
                "plan": rng.choice(["pro", "studio", "retired"]),
                "current_period_end": rng.choice(
                    [None, now + timedelta(hours=rng.randint(-48, 48))]
                ),
                "cancel_at_period_end": rng.random() < 0.3,
                "stripe_created": rng.randrange(6),
            }
            for i in range(400)
        ]
        with db.db.connection_context():
            Subscription.insert_many(rows).execute()
        book = EntryBook(ResponseBook(load_catalog(PLANS_FILE)))
        snapshot = db.call(read_current_entries, db, book, now, lambda: False)
        with db.db.connection_context():
            for user in users:
                user_rows = relevant(repository.subscriptions_of_user(user))
                expected = book.from_rows(user_rows, now) if user_rows else None
                got = snapshot.entries.get(user)
                assert (got is None) == (expected is None), user
                if got is not None and expected is not None:
                    assert same_answer(got, expected), user
    finally:
        db.close()
