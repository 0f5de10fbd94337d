"""WatchEntitlements streams are capped per caller: past the cap, RESOURCE_EXHAUSTED."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.entitlements.conftest import service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess

LIMIT = 3


@pytest.fixture(scope="module")
def capped(
    tmp_path_factory: pytest.TempPathFactory, stripe_standin: StripeStandIn
) -> Iterator[ServiceProcess]:
    """A service allowing each caller LIMIT open watch streams."""
    path: Path = tmp_path_factory.mktemp("watch") / "billing.db"
    env = service_env(f"sqlite:///{path}", stripe_standin)
    env["BILLING_WATCH_MAX_STREAMS_PER_CALLER"] = str(LIMIT)
    with ServiceProcess(env) as process:
        yield process


@pytest.fixture
async def stub(capped: ServiceProcess) -> AsyncIterator[pb_grpc.BillingServiceStub]:
    """A stub on a fresh channel."""
    async with grpc.aio.insecure_channel(capped.target) as channel:
        yield pb_grpc.BillingServiceStub(channel)


async def open_stream(
    stub: pb_grpc.BillingServiceStub, caller: str
) -> grpc.aio.UnaryStreamCall[Any, Any]:
    """A watch stream of ``caller``, once the server sent its snapshot (so it counts)."""
    call = stub.WatchEntitlements(
        pb.WatchEntitlementsRequest(user_ids=["user-watch-1"]),
        metadata=[("x-billing-caller", caller)],
    )
    first = await asyncio.wait_for(call.read(), 10)
    assert first.snapshot
    return call


async def refused(stub: pb_grpc.BillingServiceStub, caller: str) -> grpc.aio.AioRpcError | None:
    """The error a new stream of ``caller`` ends with, or None when it opened (then closed)."""
    try:
        call = await open_stream(stub, caller)
    except grpc.aio.AioRpcError as exc:
        return exc
    call.cancel()
    return None


async def test_a_caller_past_its_stream_cap_is_refused_until_it_closes_one(
    stub: pb_grpc.BillingServiceStub,
) -> None:
    held = [await open_stream(stub, "watcher-a") for _ in range(LIMIT)]
    error = await refused(stub, "watcher-a")
    assert error is not None
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "watcher-a" in (error.details() or "")
    assert "BILLING_WATCH_MAX_STREAMS_PER_CALLER" in (error.details() or "")
    # Another caller has its own allowance.
    other = await open_stream(stub, "watcher-b")
    other.cancel()
    # Closing one stream makes room (the server notices the cancel asynchronously).
    held.pop().cancel()

    async def opens() -> bool:
        error = await refused(stub, "watcher-a")
        assert error is None or error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        return error is None

    await wait_until_async("the closed stream to free its slot", opens, within=10)
    for call in held:
        call.cancel()
