"""SIGTERM: the call in flight finishes, new calls are refused, the process exits 0."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import checkout
from tests.support.processes import ServiceProcess


class SlowStripe:
    """A local Stripe-compatible server that answers customer creation once released."""

    def __init__(self) -> None:
        self.customer_requested = asyncio.Event()
        self.release = asyncio.Event()

    async def customers(self, request: web.Request) -> web.Response:
        self.customer_requested.set()
        await self.release.wait()
        return web.json_response({"id": "cus_slow", "object": "customer"})

    async def sessions(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"id": "cs_test_slow", "object": "checkout.session", "url": "https://pay.example/cs"}
        )

    async def open_sessions(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [], "has_more": False})


@pytest.fixture
async def slow_stripe() -> AsyncIterator[tuple[SlowStripe, str]]:
    fake = SlowStripe()
    app = web.Application()
    app.router.add_post("/v1/customers", fake.customers)
    app.router.add_post("/v1/checkout/sessions", fake.sessions)
    app.router.add_get("/v1/checkout/sessions", fake.open_sessions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield fake, f"http://127.0.0.1:{runner.addresses[0][1]}"
    fake.release.set()
    await runner.cleanup()


async def test_sigterm_lets_the_call_in_flight_finish(
    tmp_path: Path, slow_stripe: tuple[SlowStripe, str]
) -> None:
    fake, base_url = slow_stripe
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        "STRIPE_API_BASE": base_url,
        "STRIPE_SECRET_KEY": "sk_test_slow",
        "BILLING_SHUTDOWN_GRACE_SECONDS": "10",
    }
    with ServiceProcess(env) as service:
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            in_flight = asyncio.ensure_future(checkout(stub, "u-shutdown"))
            await asyncio.wait_for(fake.customer_requested.wait(), 10)
            service.signal(signal.SIGTERM)
            # A new call while the first is still in flight is refused.
            async with grpc.aio.insecure_channel(service.target) as late:
                health = health_pb2_grpc.HealthStub(late)

                async def refusal() -> grpc.StatusCode | None:
                    try:
                        await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    except grpc.aio.AioRpcError as refused:
                        return refused.code()
                    return None

                code = await wait_until_async(
                    "the server to refuse new calls after SIGTERM",
                    refusal,
                    lambda code: code is not None,
                    within=10,
                )
                # grpc core cancels calls that arrive during shutdown.
                assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            assert not in_flight.done()
            fake.release.set()  # Stripe answers: the call in flight may now finish
            response = await in_flight
            assert response.session_id == "cs_test_slow"
        assert service.proc is not None
        assert service.proc.wait(15) == 0
