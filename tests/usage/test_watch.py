"""WatchEntitlements tells watchers when a meter reaches its limit and when it resets."""

from __future__ import annotations

import asyncio
from datetime import UTC

from generated.billing.v1 import billing_pb2 as pb
from tests.usage.support import TestClock, Usage, new_key, utc


async def _next(stream: object) -> pb.WatchEntitlementsResponse:
    message = await asyncio.wait_for(stream.read(), timeout=15)  # type: ignore[attr-defined]
    assert isinstance(message, pb.WatchEntitlementsResponse)
    return message


async def test_watch_sees_the_limit_reached_refunded_and_reset(
    usage: Usage, clock: TestClock, user_id: str
) -> None:
    clock.set(utc(2031, 3, 31, 22))
    stream = usage.stub.WatchEntitlements(pb.WatchEntitlementsRequest(user_ids=[user_id]))
    snapshot = await _next(stream)
    assert snapshot.snapshot and not snapshot.HasField("usage")
    await usage.consume(user_id, 15)
    key = new_key()
    await usage.consume(user_id, 5, key=key)
    reached = await _next(stream)
    assert (reached.usage.meter, reached.usage.used, reached.usage.remaining) == (
        "api_calls",
        20,
        0,
    )
    assert reached.entitlements.user_id == user_id
    await usage.refund(user_id, key)
    back = await _next(stream)
    assert (back.usage.used, back.usage.remaining) == (15, 5)
    await usage.consume(user_id, 5)
    assert (await _next(stream)).usage.remaining == 0
    clock.set(utc(2031, 4, 1, 0))
    reset = await _next(stream)
    assert (reset.usage.meter, reset.usage.used, reset.usage.remaining) == ("api_calls", 0, 20)
    assert reset.usage.period_start.ToDatetime(UTC) == utc(2031, 4, 1)
    stream.cancel()
