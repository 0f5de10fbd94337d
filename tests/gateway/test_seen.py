"""Redeliveries of events the service finished are answered by the gateway, without a forward."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.conftest import NEW_SECRET, gateway_env
from tests.gateway.standin import StandIn
from tests.gateway.support import GatewayProcess, deliver, new_event, request
from webhook_gateway.seen import SeenEvents
from webhook_gateway.settings import GatewaySettings, SettingsError


@pytest.fixture(scope="module")
def small_memory(standin: StandIn, gateway_db: str) -> Iterator[GatewayProcess]:
    """A gateway that remembers only two finished events."""
    env = gateway_env(standin.target, gateway_db, GATEWAY_SEEN_EVENTS="2")
    with GatewayProcess(env) as process:
        yield process


@pytest.fixture(scope="module")
def no_memory(standin: StandIn, gateway_db: str) -> Iterator[GatewayProcess]:
    """A gateway that forwards every delivery."""
    with GatewayProcess(
        gateway_env(standin.target, gateway_db, GATEWAY_SEEN_EVENTS="0")
    ) as process:
        yield process


def _seen_answers(gateway: GatewayProcess) -> float:
    page = request(gateway.host, gateway.port, "GET", "/metrics").body.decode()
    for line in page.splitlines():
        if line.startswith("billing_gateway_seen_answers_total "):
            return float(line.split()[1])
    raise AssertionError("billing_gateway_seen_answers_total is not exported")


@pytest.mark.parametrize("outcome", ["applied", "duplicate", "ignored", "stale"])
def test_a_redelivery_of_a_finished_event_is_answered_duplicate_without_a_forward(
    gateway: GatewayProcess, standin: StandIn, outcome: str
) -> None:
    event = new_event(outcome)
    assert deliver(gateway, event, NEW_SECRET).json == {"status": outcome, "event_id": event["id"]}
    before = _seen_answers(gateway)

    again = deliver(gateway, event, NEW_SECRET)

    assert (again.status, again.json) == (200, {"status": "duplicate", "event_id": event["id"]})
    assert standin.count(event["id"]) == 1
    assert _seen_answers(gateway) == before + 1


def test_an_event_answered_503_is_forwarded_again(
    gateway: GatewayProcess, standin: StandIn
) -> None:
    event = new_event()
    standin.program[event["id"]] = "unavailable"
    assert deliver(gateway, event, NEW_SECRET).status == 503
    standin.program[event["id"]] = "applied"

    assert deliver(gateway, event, NEW_SECRET).json == {
        "status": "applied",
        "event_id": event["id"],
    }
    assert deliver(gateway, event, NEW_SECRET).json == {
        "status": "duplicate",
        "event_id": event["id"],
    }
    assert standin.count(event["id"]) == 2


def test_a_dead_lettered_event_is_forwarded_again(
    gateway: GatewayProcess, standin: StandIn
) -> None:
    event = new_event("invalid")
    for _ in range(2):
        assert deliver(gateway, event, NEW_SECRET).json["status"] == "dead_lettered"
    assert standin.count(event["id"]) == 2


def test_a_remembered_id_still_needs_a_valid_signature(
    gateway: GatewayProcess, standin: StandIn
) -> None:
    event = new_event()
    assert deliver(gateway, event, NEW_SECRET).status == 200

    forged = deliver(gateway, event, "whsec_not_ours")

    assert (forged.status, forged.json) == (400, {"error": "invalid_signature"})


def test_the_oldest_ids_are_forgotten_first(small_memory: GatewayProcess, standin: StandIn) -> None:
    first, second, third = new_event(), new_event(), new_event()
    for event in (first, second, third):
        assert deliver(small_memory, event, NEW_SECRET).json["status"] == "applied"

    assert deliver(small_memory, third, NEW_SECRET).json["status"] == "duplicate"
    assert deliver(small_memory, first, NEW_SECRET).json["status"] == "applied"
    assert (standin.count(first["id"]), standin.count(third["id"])) == (2, 1)


def test_with_no_memory_every_delivery_is_forwarded(
    no_memory: GatewayProcess, standin: StandIn
) -> None:
    event = new_event()
    for _ in range(3):
        assert deliver(no_memory, event, NEW_SECRET).json["status"] == "applied"
    assert standin.count(event["id"]) == 3


def test_seen_events_keeps_the_newest_ids_up_to_its_capacity() -> None:
    seen = SeenEvents(3)
    for event_id in ("evt_a", "evt_b", "evt_a", "evt_c", "evt_d", ""):
        seen.add(event_id)
    assert [event_id in seen for event_id in ("evt_a", "evt_b", "evt_c", "evt_d", "")] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert len(seen) == 3


def test_a_negative_memory_size_is_refused() -> None:
    env = {"STRIPE_WEBHOOK_SECRETS": NEW_SECRET, "GATEWAY_SEEN_EVENTS": "-1"}
    with pytest.raises(SettingsError, match="GATEWAY_SEEN_EVENTS must be at least 0"):
        GatewaySettings.from_env(env)
