"""billing_service.client against a real server."""

from __future__ import annotations

import grpc
import pytest

from billing_service.client import EntitlementClient, FailMode
from devtools.processes import free_port
from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.entitlements.support import Billing
from tests.events import factory
from tests.support.processes import ServiceProcess


async def test_checks_are_cached_and_kept_fresh_by_the_watch_stream(
    single: ServiceProcess, user_id: str
) -> None:
    async with (
        grpc.aio.insecure_channel(single.target) as channel,
        # About caching, not speed: a loaded machine may take longer than the 0.5 s default.
        EntitlementClient(single.target, caller="tests", timeout=10.0) as client,
    ):
        billing = Billing(pb_grpc.BillingServiceStub(channel))
        assert await client.wait_live(30)
        first = await client.check(user_id, "priority_support")
        assert (first.allowed, first.tier, first.source) == (False, "free", "service")
        again = await client.check(user_id, "priority_support")
        assert (again.allowed, again.source) == (False, "cache")

        await billing.subscribe(user_id, factory.new_id("sub"), "active")
        fresh = await wait_until_async(
            "the pushed change to reach the client",
            lambda: client.check(user_id, "priority_support"),
            lambda d: d.allowed,
        )
        assert (fresh.tier, fresh.source) == ("pro", "cache")  # pushed, not asked
        full = await client.entitlements(user_id)
        assert full.features == {"priority_support", "advanced_analytics"}


async def test_invalid_arguments_raise(single: ServiceProcess) -> None:
    async with EntitlementClient(single.target, watch=False) as client:
        with pytest.raises(ValueError):
            await client.check("", "priority_support")
        with pytest.raises(ValueError):
            await client.check("has space", "priority_support")


@pytest.mark.parametrize(("mode", "allowed"), [(FailMode.CLOSED, False), (FailMode.OPEN, True)])
async def test_an_unreachable_service_answers_per_fail_mode(mode: FailMode, allowed: bool) -> None:
    target = f"127.0.0.1:{free_port()}"
    async with EntitlementClient(target, fail_mode=mode, timeout=0.3) as client:
        decision = await client.check("user-1", "priority_support")
    assert decision.allowed is allowed
    assert decision.source == f"fail-{mode.value}"
    assert "unreachable" in decision.reason
