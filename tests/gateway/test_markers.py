"""A gateway sharing the service's Redis answers redeliveries from its processed markers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from billing_service.processed_marker import marker_key
from tests.gateway.conftest import NEW_SECRET, gateway_env
from tests.gateway.standin import StandIn
from tests.gateway.support import GatewayProcess, deliver, new_event, request
from tests.support.processes import PLANS_FILE, ServiceProcess
from tests.support.services import redis_url
from webhook_gateway.settings import GatewaySettings, SettingsError


def _metric(gateway: GatewayProcess, name: str) -> float:
    page = request(gateway.host, gateway.port, "GET", "/metrics").body.decode()
    for line in page.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not exported")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[redis.Redis]:
    """The test Redis, flushed, as the service would share it."""
    client = redis.Redis.from_url(redis_url())
    yield client
    client.close()


@pytest.fixture(scope="module")
def marker_gateway(standin: StandIn, gateway_db: str) -> Iterator[GatewayProcess]:
    """A gateway with no memory of its own that reads the service's markers."""
    env = gateway_env(standin.target, gateway_db, REDIS_URL=redis_url(), GATEWAY_SEEN_EVENTS="0")
    with GatewayProcess(env) as process:
        yield process


def test_a_delivery_whose_marker_exists_is_answered_duplicate_without_a_forward(
    marker_gateway: GatewayProcess, standin: StandIn, shared_redis: redis.Redis
) -> None:
    event = new_event()
    shared_redis.set(marker_key(event["id"]), "1")
    before = _metric(marker_gateway, "billing_gateway_marker_answers_total")

    answer = deliver(marker_gateway, event, NEW_SECRET)

    assert (answer.status, answer.json) == (200, {"status": "duplicate", "event_id": event["id"]})
    assert standin.count(event["id"]) == 0
    assert _metric(marker_gateway, "billing_gateway_marker_answers_total") == before + 1


def test_a_first_delivery_of_a_fresh_event_does_not_ask_redis(
    marker_gateway: GatewayProcess, standin: StandIn, shared_redis: redis.Redis
) -> None:
    # Created moments ago: a first delivery, so the marker is not read (60 s by default),
    # and this one is forwarded although a marker for it exists.
    event = new_event(created=int(time.time()))
    shared_redis.set(marker_key(event["id"]), "1")
    before = _metric(marker_gateway, "billing_gateway_marker_answers_total")

    answer = deliver(marker_gateway, event, NEW_SECRET)

    assert answer.json == {"status": "applied", "event_id": event["id"]}
    assert standin.count(event["id"]) == 1
    assert _metric(marker_gateway, "billing_gateway_marker_answers_total") == before


def test_with_no_minimum_age_every_delivery_asks_redis(
    standin: StandIn, gateway_db: str, shared_redis: redis.Redis
) -> None:
    env = gateway_env(
        standin.target,
        gateway_db,
        REDIS_URL=redis_url(),
        GATEWAY_SEEN_EVENTS="0",
        GATEWAY_MARKER_MIN_AGE_SECONDS="0",
    )
    event = new_event(created=int(time.time()))
    shared_redis.set(marker_key(event["id"]), "1")
    with GatewayProcess(env) as gateway:
        answer = deliver(gateway, event, NEW_SECRET)

    assert answer.json == {"status": "duplicate", "event_id": event["id"]}
    assert standin.count(event["id"]) == 0


def test_a_delivery_without_a_marker_is_forwarded(
    marker_gateway: GatewayProcess, standin: StandIn
) -> None:
    event = new_event("ignored")

    answer = deliver(marker_gateway, event, NEW_SECRET)

    assert answer.json == {"status": "ignored", "event_id": event["id"]}
    assert standin.count(event["id"]) == 1


def test_a_marker_does_not_let_an_unsigned_delivery_through(
    marker_gateway: GatewayProcess, standin: StandIn, shared_redis: redis.Redis
) -> None:
    event = new_event()
    shared_redis.set(marker_key(event["id"]), "1")

    answer = deliver(marker_gateway, event, "whsec_not_ours")

    assert (answer.status, answer.json) == (400, {"error": "invalid_signature"})


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("redis_state", ["refusing", "silent"])
def test_with_redis_down_every_delivery_is_forwarded_and_the_failure_counted_once(
    standin: StandIn, gateway_db: str, redis_state: str, request: pytest.FixtureRequest
) -> None:
    port = _closed_port() if redis_state == "refusing" else request.getfixturevalue("silent_redis")
    env = gateway_env(
        standin.target,
        gateway_db,
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        GATEWAY_REDIS_TIMEOUT_SECONDS="0.2",
        GATEWAY_SEEN_EVENTS="0",
    )
    with GatewayProcess(env) as gateway:
        first, second = new_event(), new_event()

        assert deliver(gateway, first, NEW_SECRET).json == {
            "status": "applied",
            "event_id": first["id"],
        }
        assert deliver(gateway, second, NEW_SECRET).json["status"] == "applied"

        assert (standin.count(first["id"]), standin.count(second["id"])) == (1, 1)
        # The second delivery did not ask: Redis is skipped for a while after a failure.
        assert _metric(gateway, "billing_gateway_redis_errors_total") == 1


def test_a_redelivery_through_another_gateway_is_answered_from_the_service_marker(
    gateway_db: str,
) -> None:
    shared = redis_url()
    service_env = {
        "DATABASE_URL": gateway_db,
        "REDIS_URL": shared,
        "BILLING_PLANS_FILE": str(PLANS_FILE),
    }
    with ServiceProcess(service_env) as service:
        env = gateway_env(service.target, gateway_db, GATEWAY_SEEN_EVENTS="0")
        with (
            GatewayProcess(env) as first,
            GatewayProcess({**env, "REDIS_URL": shared}) as second,
        ):
            # A type the service records and does not act on: no Stripe needed.
            event = {**new_event(), "type": "customer.created"}
            assert deliver(first, event, NEW_SECRET).json == {
                "status": "ignored",
                "event_id": event["id"],
            }

            again = deliver(second, event, NEW_SECRET)

            assert again.json == {"status": "duplicate", "event_id": event["id"]}
            assert _metric(second, "billing_gateway_marker_answers_total") == 1
            # The first gateway (no Redis, no memory) still forwards: the service answers.
            assert deliver(first, event, NEW_SECRET).json["status"] == "duplicate"
            assert _metric(first, "billing_gateway_marker_answers_total") == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [("GATEWAY_REDIS_TIMEOUT_SECONDS", "0"), ("GATEWAY_MARKER_MIN_AGE_SECONDS", "-1")],
)
def test_the_marker_settings_refuse_values_out_of_range(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        GatewaySettings.from_env({"STRIPE_WEBHOOK_SECRETS": NEW_SECRET, name: value})


def test_the_redis_url_is_not_in_the_settings_repr() -> None:
    env = {"STRIPE_WEBHOOK_SECRETS": NEW_SECRET, "REDIS_URL": "redis://:hunter2@cache:6379/0"}
    assert "hunter2" not in repr(GatewaySettings.from_env(env))


def test_concurrent_deliveries_each_get_the_answer_of_their_own_marker(
    marker_gateway: GatewayProcess, standin: StandIn, shared_redis: redis.Redis
) -> None:
    events = [new_event() for _ in range(24)]
    marked = {event["id"] for event in events[::2]}
    for event_id in marked:
        shared_redis.set(marker_key(event_id), "1")

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        answers = list(pool.map(lambda event: deliver(marker_gateway, event, NEW_SECRET), events))

    for event, answer in zip(events, answers, strict=True):
        expected = "duplicate" if event["id"] in marked else "applied"
        assert answer.json == {"status": expected, "event_id": event["id"]}
        assert standin.count(event["id"]) == (0 if event["id"] in marked else 1)
