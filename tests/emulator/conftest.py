"""Fixtures for the Stripe emulator tests: emulator subprocesses, SDK clients, receivers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import stripe
from aiohttp import web

from devtools.stripe_emulator.process import EmulatorProcess
from devtools.waiting import wait_until_async

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "plans.example.toml"
FIXTURES = json.loads((REPO / "tests/fixtures/stripe_fixtures3.json").read_text())["resources"]
API_KEY = "sk_test_emulator_123456789"
PRO = "price_pro_monthly"
STUDIO = "price_studio_monthly"
DAY = 86400


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    """One emulator shared by the API tests (its clock only moves forward)."""
    with EmulatorProcess(PLANS) as process:
        yield process


def make_client(base_url: str, http_client: stripe.AIOHTTPClient, key: str = API_KEY) -> Any:
    """The official SDK pointed at the emulator."""
    return stripe.StripeClient(
        key, base_addresses={"api": base_url}, http_client=http_client, max_network_retries=0
    )


@pytest.fixture
async def http_client() -> AsyncIterator[stripe.AIOHTTPClient]:
    client = stripe.AIOHTTPClient()
    yield client
    await client.close_async()


@pytest.fixture
def client(emulator: EmulatorProcess, http_client: stripe.AIOHTTPClient) -> Any:
    return make_client(emulator.base_url, http_client)


async def checkout_subscription(
    client: Any,
    emulator: EmulatorProcess,
    *,
    price: str = PRO,
    payment: str = "succeed",
    trial_days: int | None = None,
    email: str = "buyer@example.com",
) -> tuple[Any, Any]:
    """Create and pay a Checkout Session; returns (session, subscription)."""
    sub_data: dict[str, Any] = {"metadata": {"user_id": "u1"}}
    if trial_days:
        sub_data["trial_period_days"] = trial_days
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "subscription",
            "customer_email": email,
            "line_items": [{"price": price, "quantity": 1}],
            "client_reference_id": "u1",
            "metadata": {"user_id": "u1"},
            "subscription_data": sub_data,
            "success_url": "http://localhost/success?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://localhost/cancel",
        }
    )
    emulator.complete_checkout(session.id, payment)
    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    sub = await client.v1.subscriptions.retrieve_async(session.subscription)
    return session, sub


@dataclass
class Receiver:
    """A webhook endpoint running in the test's event loop."""

    url: str = ""
    received: list[tuple[bytes, str]] = field(default_factory=list)
    fail_first: int = 0

    async def wait_for(self, count: int) -> None:
        """Wait until at least ``count`` deliveries arrived (raises on timeout)."""
        await wait_until_async(f"{count} deliveries", self._count, lambda n: n >= count, within=10)

    async def _count(self) -> int:
        return len(self.received)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        state.received.append((body, request.headers.get("Stripe-Signature", "")))
        if len(state.received) <= state.fail_first:
            return web.Response(status=500, text="boom")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/webhook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    state.url = f"http://127.0.0.1:{port}/webhook"
    yield state
    await runner.cleanup()
