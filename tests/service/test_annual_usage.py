"""Issue 13: on an annual plan, usage limits are monthly slices of the billing year.

A year of the emulator clock, month by month, with the service's usage clock
(BILLING_TEST_CLOCK_FILE) following it. Over gRPC, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import stripe

from billing_service.usage.period import add_months
from devtools.stripe_emulator.process import EmulatorProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import EMULATOR_KEY
from tests.support.flows import CALLER, apply_all_events, stripe_client
from tests.support.processes import PLANS_FILE, ServiceProcess

HOUR = 3600


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """This module's own emulator: its clock moves by weeks (or a year), which would
    push other modules' real-time objects (meter events) out of a shared one's window."""
    with EmulatorProcess(PLANS_FILE) as process:
        yield process


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service's usage clock: the test writes the emulator's time here."""
    return tmp_path_factory.mktemp("clock") / "now"


@pytest.fixture(scope="module")
def clocked_service(database_url: str, emulator: Any, clock_file: Path) -> Iterator[ServiceProcess]:
    """A service whose usage clock is ``clock_file``."""
    env = {
        "DATABASE_URL": database_url,
        "STRIPE_API_BASE": emulator.base_url,
        "STRIPE_SECRET_KEY": EMULATOR_KEY,
        "BILLING_TEST_CLOCK_FILE": str(clock_file),
    }
    with ServiceProcess(env) as process:
        yield process


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def _seconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


async def _consume(stub: pb_grpc.BillingServiceStub, user_id: str, quantity: int) -> Any:
    return await stub.ConsumeUsage(
        pb.ConsumeUsageRequest(
            user_id=user_id, meter="exports", quantity=quantity, idempotency_key=uuid.uuid4().hex
        ),
        timeout=10,
    )


async def test_annual_plan_usage_resets_every_month_of_the_year(
    clocked_service: ServiceProcess,
    clock_file: Path,
    emulator: Any,
    client: stripe.StripeClient,
    user_id: str,
) -> None:
    def move_to(target: int) -> None:
        emulator.advance_clock(max(0, target - int(emulator.health()["now"])))
        clock_file.write_text(str(target), encoding="utf-8")

    async with grpc.aio.insecure_channel(clocked_service.target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        session = await stub.CreateCheckout(
            pb.CreateCheckoutRequest(
                user_id=user_id,
                plan="pro",
                interval=pb.BILLING_INTERVAL_YEAR,
                success_url="https://app.example.com/ok",
                cancel_url="https://app.example.com/back",
            ),
            metadata=CALLER,
            timeout=10,
        )
        emulator.complete_checkout(session.session_id)
        await apply_all_events(stub, client)
        sub = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
        start, end = _at(sub.current_period_start.seconds), _at(sub.current_period_end.seconds)
        assert end == add_months(start, 12)

        for month in range(12):
            slice_start, slice_end = add_months(start, month), add_months(start, month + 1)
            move_to(_seconds(slice_start) + HOUR)
            first = await _consume(stub, user_id, 10)  # pro: 10 exports a month
            assert first.allowed, (month, first.reason)
            assert (first.used, first.limit) == (10, 10)
            assert (_at(first.period_start.seconds), _at(first.period_end.seconds)) == (
                slice_start,
                slice_end,
            ), month
            assert not (await _consume(stub, user_id, 1)).allowed

        # The year renews: the next year's first month starts at the old end.
        move_to(_seconds(end) + HOUR)
        await apply_all_events(stub, client)
        renewed = await _consume(stub, user_id, 1)
        assert renewed.allowed and renewed.used == 1
        assert _at(renewed.period_start.seconds) == end
        assert _at(renewed.period_end.seconds) == add_months(end, 1)
