"""The gateway answers alike on either event loop (GATEWAY_EVENT_LOOP)."""

from __future__ import annotations

import json

import pytest

from devtools.processes import ProcessStartError
from tests.gateway.conftest import NEW_SECRET, gateway_env
from tests.gateway.standin import StandIn
from tests.gateway.support import GatewayProcess, deliver, new_event, post_event, sign


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_the_gateway_verifies_forwards_and_remembers_on_either_event_loop(
    standin: StandIn, gateway_db: str, event_loop: str
) -> None:
    env = gateway_env(standin.target, gateway_db, GATEWAY_EVENT_LOOP=event_loop)
    with GatewayProcess(env) as gateway:
        event = new_event("applied")
        first = deliver(gateway, event, NEW_SECRET)
        again = deliver(gateway, event, NEW_SECRET)
        body = json.dumps(event).encode()
        forged = post_event(gateway, body, sign(body, "whsec_not_ours"))
        log = gateway.log_text()

    assert (first.status, first.json) == (200, {"status": "applied", "event_id": event["id"]})
    assert (again.status, again.json) == (200, {"status": "duplicate", "event_id": event["id"]})
    assert forged.status == 400
    assert standin.count(event["id"]) == 1
    assert f"(event loop: {event_loop})" in log


def test_an_unknown_event_loop_stops_the_gateway_at_start(
    standin: StandIn, gateway_db: str
) -> None:
    env = gateway_env(standin.target, gateway_db, GATEWAY_EVENT_LOOP="trio")
    with pytest.raises(ProcessStartError, match="GATEWAY_EVENT_LOOP must be one of"):
        GatewayProcess(env, ready_timeout=20.0).start()
