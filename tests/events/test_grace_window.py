"""The past_due grace window is configuration: a server whose plans file grants 48 hours."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory
from tests.events.conftest import EventsClient, service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import PLANS_FILE, ServiceProcess


@pytest.fixture(scope="module")
def grace_service(
    tmp_path_factory: pytest.TempPathFactory, stripe_standin: StripeStandIn
) -> Iterator[ServiceProcess]:
    """A server with ``past_due_grace_hours = 48`` on SQLite."""
    root: Path = tmp_path_factory.mktemp("grace")
    plans = root / "plans.toml"
    text = PLANS_FILE.read_text(encoding="utf-8")
    assert "past_due_grace_hours = 0" in text
    plans.write_text(text.replace("past_due_grace_hours = 0", "past_due_grace_hours = 48"))
    env = service_env(f"sqlite:///{root}/billing.db", stripe_standin)
    env["BILLING_PLANS_FILE"] = str(plans)
    with ServiceProcess(env) as process:
        yield process


@pytest.fixture
async def grace_client(grace_service: ServiceProcess) -> AsyncIterator[EventsClient]:
    """A client of the grace server."""
    async with grpc.aio.insecure_channel(grace_service.target) as channel:
        yield EventsClient(pb_grpc.BillingServiceStub(channel))


@pytest.mark.parametrize(("ended_hours_ago", "tier"), [(24, "pro"), (72, "free")])
async def test_past_due_keeps_the_tier_for_the_configured_grace(
    grace_client: EventsClient, user_id: str, ended_hours_ago: int, tier: str
) -> None:
    period_end = int(time.time()) - ended_hours_ago * 3600
    obj = factory.subscription(
        factory.new_id("sub"),
        factory.new_id("cus"),
        "past_due",
        user_id=user_id,
        period_start=period_end - factory.PERIOD,
        period_end=period_end,
    )
    answer = await grace_client.send(factory.event("customer.subscription.updated", obj))
    assert answer.outcome == pb.EVENT_OUTCOME_APPLIED
    assert answer.subscription.status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    assert answer.subscription.tier == tier
    if tier == "pro":
        assert answer.subscription.access_until.seconds == period_end + 48 * 3600
