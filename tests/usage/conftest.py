"""Fixtures for usage tests: a service with a test clock over each database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from devtools.redis_server import RedisServer
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import migrated_database
from tests.entitlements.conftest import service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess
from tests.usage.support import TestClock, Usage


@pytest.fixture(scope="module")
def stripe_standin() -> Iterator[StripeStandIn]:
    """A local Stripe stand-in (ApplyStripeEvent may ask Stripe), one per module."""
    with StripeStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def clock_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's service reads its test clock."""
    return tmp_path_factory.mktemp("clock") / "now"


# SQLite counts in the database with or without Redis; PostgreSQL runs both paths.
BACKENDS = {"sqlite": False, "postgresql": False, "postgresql+redis": True}


@pytest.fixture(scope="module", params=list(BACKENDS))
def usage_service(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    stripe_standin: StripeStandIn,
    clock_path: Path,
) -> Iterator[ServiceProcess]:
    """One billing-service process with a test clock, on each backend.

    On PostgreSQL also with a Redis, so the same tests run on the Redis fast path.
    """
    kind = request.param.split("+")[0]
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(migrated_database(kind, tmp_path_factory))
        redis_url = stack.enter_context(RedisServer()).url if BACKENDS[request.param] else ""
        env = {
            **service_env(database_url, stripe_standin, redis_url),
            "BILLING_TEST_CLOCK_FILE": str(clock_path),
        }
        yield stack.enter_context(ServiceProcess(env))


@pytest.fixture
def clock(clock_path: Path) -> Iterator[TestClock]:
    """The service's clock; back to real time after the test."""
    test_clock = TestClock(clock_path)
    try:
        yield test_clock
    finally:
        test_clock.real()


@pytest.fixture
async def usage(usage_service: ServiceProcess) -> AsyncIterator[Usage]:
    """Usage calls on a fresh channel to ``usage_service``."""
    async with grpc.aio.insecure_channel(usage_service.target) as channel:
        yield Usage(pb_grpc.BillingServiceStub(channel))
