"""Faults between the gateway and the service, and replayed deliveries, against the stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devtools.processes import free_port
from tests.gateway.conftest import NEW_SECRET, gateway_env
from tests.gateway.standin import StandIn
from tests.gateway.support import (
    GatewayProcess,
    deliver,
    new_event,
    post_event,
    request,
    sign,
    signed_at,
    wait_until_stale,
)


@pytest.fixture
def gateway_to_nowhere(gateway_db: str) -> Iterator[GatewayProcess]:
    """A gateway whose billing service is not running."""
    with GatewayProcess(gateway_env(f"127.0.0.1:{free_port()}", gateway_db)) as process:
        yield process


def test_unreachable_service_answers_503_and_not_ready(gateway_to_nowhere: GatewayProcess) -> None:
    event = new_event()
    answer = deliver(gateway_to_nowhere, event, NEW_SECRET)
    assert answer.status == 503
    assert answer.json == {
        "error": "billing_unavailable",
        "code": "UNAVAILABLE",
        "event_id": event["id"],
    }
    ready = request(gateway_to_nowhere.host, gateway_to_nowhere.port, "GET", "/readyz")
    assert (ready.status, ready.json["status"]) == (503, "not_ready")
    alive = request(gateway_to_nowhere.host, gateway_to_nowhere.port, "GET", "/healthz")
    assert alive.status == 200


@pytest.fixture
def strict_gateway(standin: StandIn, gateway_db: str) -> Iterator[GatewayProcess]:
    """A gateway with a 2-second signature tolerance."""
    env = gateway_env(standin.target, gateway_db, GATEWAY_SIGNATURE_TOLERANCE_SECONDS="2")
    with GatewayProcess(env) as process:
        yield process


def test_captured_delivery_replayed_after_tolerance_is_refused(
    strict_gateway: GatewayProcess, standin: StandIn
) -> None:
    event = new_event()
    body = json.dumps(event).encode()
    signature = sign(body, NEW_SECRET)
    assert post_event(strict_gateway, body, signature).status == 200
    # An attacker replays the captured bytes and header once they are stale.
    wait_until_stale(strict_gateway, signed_at(signature), NEW_SECRET)
    answer = post_event(strict_gateway, body, signature)
    assert (answer.status, answer.json) == (400, {"error": "timestamp_outside_tolerance"})
    assert standin.count(event["id"]) == 1


def test_sigterm_stops_cleanly(standin: StandIn, gateway_db: str) -> None:
    process = GatewayProcess(gateway_env(standin.target, gateway_db)).start()
    try:
        assert deliver(process, new_event(), NEW_SECRET).status == 200
    finally:
        code = process.stop()
    assert code == 0
    assert "stopped" in process.log_text()
    assert NEW_SECRET not in process.log_text()
