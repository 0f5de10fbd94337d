"""Overage on a meter with ``overage = "bill"`` reaches Stripe Billing Meters, once.

The service reports to the project's Stripe emulator through the official SDK.
studio's ``tokens`` include 10000 per period, then bill ``studio_tokens`` events.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import stripe

from devtools.redis_server import RedisServer
from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import EMULATOR_KEY
from tests.events import factory
from tests.support.processes import REPO_ROOT, ServiceProcess
from tests.usage.support import Usage, new_key


def _listing(emulator: Any) -> Any:
    return emulator.control("GET", "/billing/meter_events")


def _fail_next(emulator: Any, count: int) -> None:
    emulator.control("POST", "/billing/meter_events/fail", {"count": count})


@pytest.fixture(scope="module", params=["database", "redis"])
def overage_service(
    request: pytest.FixtureRequest, shared_postgres: str, emulator: Any
) -> Iterator[ServiceProcess]:
    """A service reporting to the emulator every 0.1 s, counting in the database or in Redis."""
    redis_server = RedisServer().start() if request.param == "redis" else None
    env = {
        "DATABASE_URL": shared_postgres,
        "STRIPE_API_BASE": emulator.base_url,
        "STRIPE_SECRET_KEY": EMULATOR_KEY,
        "BILLING_USAGE_REPORT_INTERVAL_SECONDS": "0.1",
        "BILLING_METRICS_ADDR": "127.0.0.1:0",
        "BILLING_LOG_LEVEL": "WARNING",
        "REDIS_URL": redis_server.url if redis_server is not None else "",
    }
    try:
        with ServiceProcess(env) as process:
            yield process
    finally:
        if redis_server is not None:
            redis_server.stop()


@pytest.fixture
async def usage(overage_service: ServiceProcess) -> AsyncIterator[Usage]:
    """Usage calls on the overage service."""
    async with grpc.aio.insecure_channel(overage_service.target) as channel:
        yield Usage(pb_grpc.BillingServiceStub(channel))


async def _studio_customer(usage: Usage, emulator: Any, user_id: str) -> str:
    client = stripe.StripeClient(
        EMULATOR_KEY, base_addresses={"api": emulator.base_url}, max_network_retries=0
    )
    customer = await client.v1.customers.create_async({"metadata": {"user_id": user_id}})
    await usage.subscribe(
        user_id, factory.new_id("sub"), price="price_studio_monthly", customer=customer.id
    )
    return str(customer.id)


async def _events_of(emulator: Any, customer: str, expected: int) -> list[dict[str, Any]]:
    async def mine() -> list[dict[str, Any]]:
        listing = await asyncio.to_thread(_listing, emulator)
        return [e for e in listing["data"] if e["payload"]["stripe_customer_id"] == customer]

    return await wait_until_async(
        f"{expected} meter events of {customer}", mine, lambda events: len(events) >= expected
    )


async def test_overage_is_reported_once_even_when_the_meter_endpoint_fails_a_while(
    usage: Usage, emulator: Any, user_id: str
) -> None:
    customer = await _studio_customer(usage, emulator, user_id)
    included = await usage.consume(user_id, 10000, meter="tokens")
    assert (included.allowed, included.overage) == (True, 0)
    before = _listing(emulator)
    _fail_next(emulator, 3)
    keys = [new_key() for _ in range(3)]
    answers = [
        await usage.consume(user_id, 100 * (i + 1), meter="tokens", key=k)
        for i, k in enumerate(keys)
    ]
    assert [a.overage for a in answers] == [100, 200, 300]
    assert all(a.allowed and a.remaining == 0 for a in answers)
    # A retry of the same consumption reports nothing more.
    assert (await usage.consume(user_id, 200, meter="tokens", key=keys[1])).replayed
    events = await _events_of(emulator, customer, 3)
    assert sorted((e["identifier"], e["payload"]["value"]) for e in events) == sorted(
        zip(keys, ["100", "200", "300"], strict=True)
    )
    assert {e["event_name"] for e in events} == {"studio_tokens"}
    after = _listing(emulator)
    assert after["failed"] - before["failed"] == 3
    assert after["duplicates"] == before["duplicates"]


async def test_refunded_overage_not_yet_sent_is_never_reported(
    usage: Usage, emulator: Any, user_id: str
) -> None:
    customer = await _studio_customer(usage, emulator, user_id)
    await usage.consume(user_id, 10000, meter="tokens")
    _fail_next(emulator, 1000)
    refunded, kept = new_key(), new_key()
    await usage.consume(user_id, 50, meter="tokens", key=refunded)
    await usage.refund(user_id, refunded, meter="tokens")
    await usage.consume(user_id, 70, meter="tokens", key=kept)
    _fail_next(emulator, 0)
    events = await _events_of(emulator, customer, 1)
    assert [(e["identifier"], e["payload"]["value"]) for e in events] == [(kept, "70")]


def _failed_gauge(service: ServiceProcess) -> float:
    return service.metric("billing_usage_reports", 'state="failed"')


async def test_overage_stripe_refuses_is_failed_counted_and_listed(
    usage: Usage, overage_service: ServiceProcess, shared_postgres: str, user_id: str
) -> None:
    # A customer the emulator (Stripe) does not know: the meter event is refused for good.
    await usage.subscribe(
        user_id, factory.new_id("sub"), price="price_studio_monthly", customer="cus_unknown1"
    )
    await usage.consume(user_id, 10001, meter="tokens")
    await wait_until_async(
        "the refused overage to be counted as failed",
        lambda: asyncio.to_thread(_failed_gauge, overage_service),
        lambda failed: failed >= 1,
    )
    result = subprocess.run(
        [sys.executable, "-m", "billing_service.cli", "usage", "report-status"],
        env={"DATABASE_URL": shared_postgres, "PATH": ""},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"user={user_id} studio_tokens=1" in result.stdout
    assert "Stripe refused it" in result.stdout


def test_report_status_counts_sent_and_lists_failed(shared_postgres: str, emulator: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "billing_service.cli", "usage", "report-status", "--json"],
        env={"DATABASE_URL": shared_postgres, "PATH": ""},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    assert report["counts"]["sent"] >= 4
    assert report["counts"]["canceled"] >= 1
    assert result.returncode == (1 if report["counts"]["failed"] else 0)
