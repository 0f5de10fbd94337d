"""Complete mode: once every subscription is cached, unknown users are free without a read,
and users changed since are still answered from their new state."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import migrate
from tests.entitlements.conftest import service_env
from tests.entitlements.support import Billing
from tests.events import factory
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess


def _counter(target: str, name: str) -> float:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def test_unknown_users_are_free_without_a_read_and_changes_still_show(
    tmp_path: Path, stripe_standin: StripeStandIn
) -> None:
    url = f"sqlite:///{tmp_path}/b.db"
    migrate(url)
    env = {**service_env(url, stripe_standin), "BILLING_METRICS_ADDR": "127.0.0.1:0"}
    with ServiceProcess(env) as first:
        async with grpc.aio.insecure_channel(first.target) as channel:
            billing = Billing(pb_grpc.BillingServiceStub(channel))
            subscriptions = {f"u-before-{n}": factory.new_id("sub") for n in range(30)}
            for user, sub_id in subscriptions.items():
                await billing.subscribe(user, sub_id, "active")
    # A fresh process fills its cache from the database at start.
    with ServiceProcess(env) as service:
        async with grpc.aio.insecure_channel(service.target) as channel:
            billing = Billing(pb_grpc.BillingServiceStub(channel))
            await wait_until_async(
                "billing_entitlement_cache_complete == 1",
                lambda: asyncio.to_thread(
                    _counter, service.metrics_target, "billing_entitlement_cache_complete"
                ),
                lambda value: value == 1,
            )
            loads = await asyncio.to_thread(
                _counter, service.metrics_target, "billing_entitlement_db_loads_total"
            )
            assert await billing.tier("u-before-7") == "pro"
            for n in range(20):
                assert await billing.tier(f"u-never-seen-{n}") == "free"
            after = await asyncio.to_thread(
                _counter, service.metrics_target, "billing_entitlement_db_loads_total"
            )
            assert after == loads  # every answer came from memory

            # A user who subscribes now is not "absent, hence free".
            assert await billing.tier("u-new") == "free"
            await billing.subscribe("u-new", factory.new_id("sub"), "active")
            assert await billing.tier("u-new") == "pro"
            await billing.subscribe("u-before-7", subscriptions["u-before-7"], "canceled")
            assert await billing.tier("u-before-7") == "free"
