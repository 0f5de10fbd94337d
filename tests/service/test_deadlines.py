"""Deadlines: no Stripe request or database work starts after a call's deadline."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from billing_service import deadlines
from billing_service.storage.database import Database, migrate
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.processes import ServiceProcess

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe_fixtures3.json"
CUSTOMER = json.loads(FIXTURES.read_text())["resources"]["customer"]


class SlowStripe:
    """A Stripe stand-in that holds customer creation until released; records every request.

    ``requests`` holds (method and path, parameters) in arrival order;
    ``customers`` maps each created customer's email to its id.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.customers: dict[str, str] = {}
        self.release = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _any(self, request: web.Request) -> web.Response:
        params = {**request.query, **(await request.post())}
        self.requests.append(
            (f"{request.method} {request.path}", {k: str(v) for k, v in params.items()})
        )
        if request.path == "/v1/customers" and request.method == "POST":
            await self.release.wait()
            customer_id = f"cus_{uuid.uuid4().hex[:14]}"
            self.customers[str(params.get("email", ""))] = customer_id
            return web.json_response({**CUSTOMER, "id": customer_id})
        return web.json_response(
            {"error": {"type": "invalid_request_error", "message": "not here"}}, status=404
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self.release.set()  # a held answer must not keep the server from stopping
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def slow_stripe() -> AsyncIterator[SlowStripe]:
    stand_in = SlowStripe()
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
def service_with_budget(tmp_path: Path, slow_stripe: SlowStripe) -> Iterator[ServiceProcess]:
    """A service whose default deadline (callers that set none) ends before Stripe answers."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/billing.db",
        "STRIPE_API_BASE": slow_stripe.url,
        "STRIPE_SECRET_KEY": "sk_test_slow_stand_in",
        "BILLING_DEFAULT_DEADLINE_SECONDS": "0.5",
    }
    with ServiceProcess(env) as process:
        yield process


def checkout_request(email: str) -> pb.CreateCheckoutRequest:
    """CreateCheckout for a new user paying with ``email``."""
    return pb.CreateCheckoutRequest(
        user_id=f"user-{uuid.uuid4().hex[:8]}",
        email=email,
        plan="pro",
        success_url="https://app.example.com/ok",
        cancel_url="https://app.example.com/back",
        request_id=uuid.uuid4().hex,
    )


async def test_no_stripe_call_starts_after_the_default_deadline(
    service_with_budget: ServiceProcess, slow_stripe: SlowStripe
) -> None:
    async with grpc.aio.insecure_channel(service_with_budget.target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            # No deadline from this caller: the server's default budget applies.
            await stub.CreateCheckout(checkout_request("ada@example.com"))
        assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert "customers.create" in (raised.value.details() or "")
        assert [call for call, _ in slow_stripe.requests] == ["POST /v1/customers"]
        # Stripe answers late; a second caller, with time to spare, is the sentinel:
        # its customer is created and the requests that follow reach the stand-in.
        slow_stripe.release.set()
        with pytest.raises(grpc.aio.AioRpcError):  # the stand-in has no Checkout
            await stub.CreateCheckout(checkout_request("sentinel@example.com"), timeout=10)
    late, sentinel = (
        slow_stripe.customers["ada@example.com"],
        slow_stripe.customers["sentinel@example.com"],
    )
    assert any(sentinel in params.values() for _, params in slow_stripe.requests)
    # Ada's customer exists only after her deadline: no request ever used it.
    assert not any(late in params.values() for _, params in slow_stripe.requests)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path}/d.db", workers=1)
    migrate(db.db)
    yield db
    db.close()


async def test_database_work_is_not_started_after_the_deadline(database: Database) -> None:
    started: list[str] = []

    async def call(budget: float) -> None:
        deadlines.begin(None, budget)
        await database.run(started.append, "work")

    await asyncio.create_task(call(30))
    assert started == ["work"]
    with pytest.raises(deadlines.DeadlineExceeded):
        await asyncio.create_task(call(0))
    assert started == ["work"]


async def test_queued_database_work_is_dropped_once_its_deadline_passed(
    database: Database,
) -> None:
    release = asyncio.Event()
    started: list[str] = []
    loop = asyncio.get_running_loop()

    def block() -> None:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()

    async def call(budget: float) -> None:
        deadlines.begin(None, budget)
        await database.run(started.append, "late")

    blocker = asyncio.create_task(database.run(block))  # the only worker is busy
    queued = asyncio.create_task(call(0.2))
    # Time passing is the subject: the queued call's 0.2 s budget runs out while it waits.
    await asyncio.sleep(0.3)
    release.set()
    await blocker
    with pytest.raises(deadlines.DeadlineExceeded):
        await queued
    assert started == []


async def test_tasks_a_call_spawns_do_not_inherit_its_deadline() -> None:
    async def spawned() -> float | None:
        return deadlines.remaining()

    async def call() -> float | None:
        deadlines.begin(None, 5)
        assert deadlines.remaining() is not None
        return await asyncio.create_task(spawned())

    assert await asyncio.create_task(call()) is None
