"""Fixtures for the operations tests: a private emulator whose webhooks are never delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from tests.support.flows import stripe_client
from tests.support.processes import PLANS_FILE


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """This module's own emulator: no webhook endpoints and delivery held, so every
    event exists in Stripe's Events API but never reaches the service by itself."""
    with EmulatorProcess(PLANS_FILE) as process:
        process.hold_webhooks(True)
        yield process


@pytest.fixture
async def client(emulator: EmulatorProcess) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk
