"""Deliveries forwarded together share an ApplyStripeEvents call, verdicts apart.

The Forwarder runs against the stand-in service (a real grpc.aio server,
tests/gateway/standin.py); deliveries submitted with ``asyncio.gather``
start in the same loop turn, so which calls they make is deterministic.
With no linger a batch is one turn's deliveries; with a linger, the tests
that wait for it use one long enough that only a full batch (or ``close``)
ends it, so they do not depend on timing either.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from generated.billing.v1 import billing_pb2 as pb
from tests.gateway.conftest import NEW_SECRET, gateway_env
from tests.gateway.standin import StandIn
from tests.gateway.support import GatewayProcess, deliver, new_event, request
from webhook_gateway.forward import Forwarder, ForwardResult, Verdict
from webhook_gateway.settings import GatewaySettings, SettingsError


def _payload(event_id: str) -> bytes:
    return json.dumps({"id": event_id, "object": "event"}).encode()


@pytest.fixture(scope="module")
def batch_standin() -> Iterator[StandIn]:
    standin = StandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def fresh(batch_standin: StandIn) -> StandIn:
    """The module's stand-in with what earlier tests programmed and saw forgotten."""
    with batch_standin.lock:
        batch_standin.received.clear()
        batch_standin.batches.clear()
        batch_standin.views.clear()
        batch_standin.program.clear()
    batch_standin.batching = True
    batch_standin.batch_failure = None
    return batch_standin


class Forwarding:
    """A Forwarder to the stand-in and the sizes of the calls it made."""

    def __init__(self, forwarder: Forwarder, sizes: list[int]) -> None:
        self.forwarder, self.sizes = forwarder, sizes

    async def all(self, *event_ids: str) -> list[ForwardResult]:
        """Forward every event in one loop turn; their results in order."""
        return list(await asyncio.gather(*(self.forwarder.apply(_payload(e)) for e in event_ids)))


async def _forwarding(standin: StandIn, max_batch: int, linger: float = 0.0) -> Forwarding:
    sizes: list[int] = []
    forwarder = Forwarder(
        standin.target, 5.0, max_batch=max_batch, linger=linger, on_batch=sizes.append
    )
    return Forwarding(forwarder, sizes)


async def _next_turns(count: int = 3) -> None:
    """Let the event loop run ``count`` turns (a flush scheduled with call_soon runs)."""
    for _ in range(count):
        await asyncio.sleep(0)


@pytest.fixture
async def batched(fresh: StandIn) -> AsyncIterator[Forwarding]:
    forwarding = await _forwarding(fresh, 32)
    yield forwarding
    await forwarding.forwarder.close()


async def test_one_call_carries_the_turn_and_each_event_keeps_its_verdict(
    batched: Forwarding, fresh: StandIn
) -> None:
    ids = [
        "evt_applied_1",
        "evt_duplicate_2",
        "evt_invalid_3",
        "evt_unavailable_4",
        "evt_internal_5",
        "evt_stale_6",
    ]
    results = await batched.all(*ids)
    assert fresh.batches == [ids]
    assert batched.sizes == [6]
    assert [(r.verdict, r.status) for r in results] == [
        (Verdict.DONE, "applied"),
        (Verdict.DONE, "duplicate"),
        (Verdict.INVALID, "INVALID_ARGUMENT"),
        (Verdict.RETRY, "UNAVAILABLE"),
        (Verdict.RETRY, "INTERNAL"),
        (Verdict.DONE, "stale"),
    ]
    assert [r.event_id for r in results if r.verdict is Verdict.DONE] == [
        "evt_applied_1",
        "evt_duplicate_2",
        "evt_stale_6",
    ]
    assert "evt_invalid_3" in results[2].detail
    # The verdicts read outcome, event id and reason only: no subscription asked for.
    assert fresh.views == [pb.EVENT_RESULT_VIEW_BASIC]


async def test_a_lone_delivery_makes_a_single_call(batched: Forwarding, fresh: StandIn) -> None:
    result = await batched.forwarder.apply(_payload("evt_applied_alone"))
    assert result == ForwardResult(Verdict.DONE, "applied", "evt_applied_alone")
    assert fresh.batches == []
    assert fresh.received == ["evt_applied_alone"]
    assert batched.sizes == [1]


async def test_a_turn_larger_than_the_batch_is_split(fresh: StandIn) -> None:
    forwarding = await _forwarding(fresh, 2)
    try:
        ids = [f"evt_applied_{i}" for i in range(5)]
        results = await forwarding.all(*ids)
    finally:
        await forwarding.forwarder.close()
    assert [r.event_id for r in results] == ids
    assert sorted(fresh.batches) == [ids[0:2], ids[2:4]]  # two calls in flight at once
    assert forwarding.sizes == [2, 2, 1]  # the fifth went alone, as ApplyStripeEvent


async def test_a_failed_call_is_no_verdict_on_its_events(
    batched: Forwarding, fresh: StandIn
) -> None:
    # Even INVALID_ARGUMENT of the whole call says nothing about one event: none is
    # dead-lettered, every delivery is answered 503 and Stripe sends it again.
    fresh.batch_failure = grpc.StatusCode.INVALID_ARGUMENT
    results = await batched.all("evt_applied_a", "evt_invalid_b")
    assert [(r.verdict, r.status) for r in results] == [(Verdict.RETRY, "INVALID_ARGUMENT")] * 2


async def test_a_service_without_the_batch_call_gets_single_calls(
    batched: Forwarding, fresh: StandIn
) -> None:
    fresh.batching = False
    results = await batched.all("evt_applied_x", "evt_invalid_y", "evt_duplicate_z")
    assert [(r.verdict, r.status) for r in results] == [
        (Verdict.DONE, "applied"),
        (Verdict.INVALID, "INVALID_ARGUMENT"),
        (Verdict.DONE, "duplicate"),
    ]
    assert sorted(fresh.received) == ["evt_applied_x", "evt_duplicate_z", "evt_invalid_y"]
    # From then on it does not ask again.
    await batched.all("evt_applied_p", "evt_applied_q")
    assert fresh.batches == []
    assert batched.sizes == [3, 1, 1, 1, 1, 1]


async def test_a_delivery_cancelled_before_its_call_is_not_forwarded(
    batched: Forwarding, fresh: StandIn
) -> None:
    tasks = [
        asyncio.create_task(batched.forwarder.apply(_payload(event_id)))
        for event_id in ("evt_applied_kept", "evt_applied_gone", "evt_applied_too")
    ]
    await asyncio.sleep(0)  # each has queued its payload; the call starts next turn
    tasks[1].cancel()
    kept, too = await tasks[0], await tasks[2]
    assert (kept.event_id, too.event_id) == ("evt_applied_kept", "evt_applied_too")
    assert fresh.batches == [["evt_applied_kept", "evt_applied_too"]]
    assert tasks[1].cancelled()


async def test_without_a_linger_each_turn_makes_its_own_call(
    batched: Forwarding, fresh: StandIn
) -> None:
    first = asyncio.create_task(batched.forwarder.apply(_payload("evt_applied_turn_1")))
    await _next_turns()
    second = asyncio.create_task(batched.forwarder.apply(_payload("evt_applied_turn_2")))
    await asyncio.gather(first, second)
    assert fresh.batches == []
    assert sorted(fresh.received) == ["evt_applied_turn_1", "evt_applied_turn_2"]
    assert batched.sizes == [1, 1]


async def test_deliveries_of_later_turns_join_a_lingering_batch_until_it_is_full(
    fresh: StandIn,
) -> None:
    # A linger far longer than the test: only the third delivery, which fills
    # the batch, can have sent it.
    forwarding = await _forwarding(fresh, 3, linger=60.0)
    try:
        tasks = []
        for i in range(3):
            tasks.append(
                asyncio.create_task(forwarding.forwarder.apply(_payload(f"evt_applied_l{i}")))
            )
            await _next_turns()
        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    finally:
        await forwarding.forwarder.close()
    assert [r.event_id for r in results] == ["evt_applied_l0", "evt_applied_l1", "evt_applied_l2"]
    assert fresh.batches == [["evt_applied_l0", "evt_applied_l1", "evt_applied_l2"]]
    assert forwarding.sizes == [3]


async def test_a_lingering_delivery_that_finds_no_company_goes_alone(fresh: StandIn) -> None:
    forwarding = await _forwarding(fresh, 32, linger=0.02)
    try:
        result = await asyncio.wait_for(
            forwarding.forwarder.apply(_payload("evt_applied_lonely")), timeout=10
        )
    finally:
        await forwarding.forwarder.close()
    assert result == ForwardResult(Verdict.DONE, "applied", "evt_applied_lonely")
    assert fresh.received == ["evt_applied_lonely"]
    assert forwarding.sizes == [1]


async def test_closing_answers_a_lingering_batch_retry_and_sends_nothing(
    fresh: StandIn,
) -> None:
    forwarding = await _forwarding(fresh, 32, linger=60.0)
    waiting = [
        asyncio.create_task(forwarding.forwarder.apply(_payload(f"evt_applied_c{i}")))
        for i in range(2)
    ]
    await _next_turns()
    await forwarding.forwarder.close()
    results = await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)
    assert [(r.verdict, r.status) for r in results] == [(Verdict.RETRY, "CANCELLED")] * 2
    assert fresh.received == [] and fresh.batches == []
    assert forwarding.sizes == []


def test_the_linger_setting_is_checked() -> None:
    base = {"STRIPE_WEBHOOK_SECRETS": "whsec_test"}
    assert GatewaySettings.from_env(base).forward_linger_seconds == 0.002
    linger = {**base, "GATEWAY_FORWARD_LINGER_MS": "0"}
    assert GatewaySettings.from_env(linger).forward_linger_seconds == 0
    linger["GATEWAY_FORWARD_LINGER_MS"] = "2.5"
    assert GatewaySettings.from_env(linger).forward_linger_seconds == 0.0025
    for bad, message in (
        ("-1", "GATEWAY_FORWARD_LINGER_MS must be at least 0"),
        ("1001", "GATEWAY_FORWARD_LINGER_MS must be at most 1000, got 1001"),
        ("soon", "GATEWAY_FORWARD_LINGER_MS must be a number"),
    ):
        with pytest.raises(SettingsError, match=message):
            GatewaySettings.from_env({**base, "GATEWAY_FORWARD_LINGER_MS": bad})


def test_the_batch_setting_is_checked() -> None:
    base = {"STRIPE_WEBHOOK_SECRETS": "whsec_test"}
    assert GatewaySettings.from_env(base).forward_batch == 32
    assert GatewaySettings.from_env({**base, "GATEWAY_FORWARD_BATCH": "1"}).forward_batch == 1
    for bad in ("0", "65"):
        with pytest.raises(SettingsError, match="GATEWAY_FORWARD_BATCH must be 1 to 64"):
            GatewaySettings.from_env({**base, "GATEWAY_FORWARD_BATCH": bad})


def _metric(gateway: GatewayProcess, name: str) -> float:
    text = request(gateway.host, gateway.port, "GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


def _burst(gateway: GatewayProcess, count: int) -> list[int]:
    """``count`` signed deliveries posted at once; their HTTP statuses."""
    with ThreadPoolExecutor(count) as pool:
        answers = pool.map(lambda _: deliver(gateway, new_event(), NEW_SECRET), range(count))
        return [answer.status for answer in answers]


@pytest.mark.parametrize(("setting", "batched"), [("32", True), ("1", False)])
def test_a_gateway_batches_a_burst_unless_told_not_to(
    fresh: StandIn, gateway_db: str, setting: str, batched: bool
) -> None:
    env = {**gateway_env(fresh.target, gateway_db), "GATEWAY_FORWARD_BATCH": setting}
    with GatewayProcess(env) as gateway:
        statuses: list[int] = []
        for _ in range(5):  # a burst's deliveries may still arrive in separate turns
            statuses += _burst(gateway, 16)
            if fresh.batches or not batched:
                break
        calls = _metric(gateway, "billing_gateway_forward_batch_size_count")
        events = _metric(gateway, "billing_gateway_forward_batch_size_sum")
    assert statuses == [200] * len(statuses)
    assert events == len(statuses) == len(fresh.received)
    if batched:
        assert fresh.batches, "no burst was forwarded in a shared call"
        assert calls < events
    else:
        assert fresh.batches == []
        assert calls == events
