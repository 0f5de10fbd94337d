"""Fixtures for entitlement tests: servers over a shared database, Redis, a Stripe stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.entitlements.support import Billing, RedisServer
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def stripe_standin() -> Iterator[StripeStandIn]:
    """A local Stripe stand-in (ApplyStripeEvent may ask Stripe), one per module."""
    with StripeStandIn() as standin:
        yield standin


def service_env(database_url: str, standin: StripeStandIn, redis_url: str = "") -> dict[str, str]:
    """Environment of a billing-service process."""
    return {
        "DATABASE_URL": database_url,
        "STRIPE_API_BASE": standin.base_url,
        "STRIPE_SECRET_KEY": "sk_test_standin",
        "REDIS_URL": redis_url,
        "BILLING_LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server owned by this module, on a free port."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def single(database_url: str, stripe_standin: StripeStandIn) -> Iterator[ServiceProcess]:
    """One billing-service process without Redis, over ``database_url``."""
    with ServiceProcess(service_env(database_url, stripe_standin)) as process:
        yield process


@pytest.fixture
async def billing(single: ServiceProcess) -> AsyncIterator[Billing]:
    """Calls on a fresh channel to ``single``."""
    async with grpc.aio.insecure_channel(single.target) as channel:
        yield Billing(pb_grpc.BillingServiceStub(channel))
