"""A Redis that accepts connections and never answers must not stall every event.

After the first failure the breaker keeps the event path off Redis: later
events send it nothing (counted as skipped), the ``redis`` health name says
NOT_SERVING and ``billing_redis_breaker_open`` is 1. How fast events then run
is measured in bench/redis_breaker.py, never asserted here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing_service.redis_breaker import RedisBreaker
from devtools.hanging_server import HangingServer
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory
from tests.events.conftest import service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def hanging_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A service whose REDIS_URL points at a server that never answers."""
    path: Path = tmp_path_factory.mktemp("breaker") / "billing.db"
    with StripeStandIn() as standin, HangingServer() as redis_standin:
        env = service_env(
            f"sqlite:///{path}",
            standin,
            REDIS_URL=f"redis://127.0.0.1:{redis_standin.port}/0",
            BILLING_METRICS_ADDR="127.0.0.1:0",
            # Long enough that no test sees it lapse: the breaker stays open throughout.
            BILLING_REDIS_BREAKER_SECONDS="600",
        )
        with ServiceProcess(env) as process:
            yield process


def untied_event() -> dict[str, object]:
    """A subscription event no user can be tied to: IGNORED, nobody's entitlements change."""
    sub = factory.subscription(factory.new_id("sub"), factory.new_id("cus"), "active")
    sub["metadata"] = {}
    return factory.event("customer.subscription.updated", sub)


def test_events_finish_without_asking_a_hanging_redis(hanging_service: ServiceProcess) -> None:
    with grpc.insecure_channel(hanging_service.target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        # Redis never answered the health probe at start: the breaker is already open.
        request = health_pb2.HealthCheckRequest(service="redis")
        assert (
            health.Check(request, timeout=10).status == health_pb2.HealthCheckResponse.NOT_SERVING
        )
        assert hanging_service.metric("billing_redis_breaker_open") == 1
        locks_before = hanging_service.metric("billing_redis_skipped_total", 'purpose="lock"')
        marks_before = hanging_service.metric(
            "billing_redis_skipped_total", 'purpose="dedupe_mark"'
        )
        outcomes = []
        for _ in range(5):
            payload = factory.payload(untied_event())
            answer = stub.ApplyStripeEvent(pb.ApplyStripeEventRequest(payload=payload), timeout=30)
            outcomes.append(answer.outcome)
    assert outcomes == [pb.EVENT_OUTCOME_IGNORED] * 5
    # Every event skipped its Redis lock and marker instead of timing out (and, with the
    # breaker open, went to the database for the dedupe check, as without Redis).
    locks = hanging_service.metric("billing_redis_skipped_total", 'purpose="lock"')
    marks = hanging_service.metric("billing_redis_skipped_total", 'purpose="dedupe_mark"')
    assert (locks - locks_before, marks - marks_before) == (5, 5)
    assert "Traceback" not in hanging_service.log_text()


def tied_event() -> dict[str, object]:
    """A new active subscription of a new user: their entitlements change (announced)."""
    sub = factory.subscription(
        factory.new_id("sub"), factory.new_id("cus"), "active", user_id=factory.new_id("user")
    )
    return factory.event("customer.subscription.created", sub)


def test_entitlement_changes_stop_waiting_for_a_hanging_redis(
    hanging_service: ServiceProcess,
) -> None:
    """Past one lease of outage every lease has lapsed: changes are no longer published or
    waited for (counted), and each still applies."""
    with grpc.insecure_channel(hanging_service.target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)

        def apply(event: dict[str, object]) -> pb.ApplyStripeEventResponse:
            payload = factory.payload(event)
            request = pb.ApplyStripeEventRequest(payload=payload)
            return stub.ApplyStripeEvent(request, timeout=30)

        # Each of these waits at most one lease, so afterwards Redis has been
        # down longer than a lease whenever the service first saw it fail.
        warm = [apply(tied_event()).outcome for _ in range(2)]
        skipped_before = hanging_service.metric("billing_entitlement_announces_skipped_total")
        outcomes = [apply(tied_event()).outcome for _ in range(3)]
    assert warm + outcomes == [pb.EVENT_OUTCOME_APPLIED] * 5
    skipped = hanging_service.metric("billing_entitlement_announces_skipped_total")
    assert skipped - skipped_before == 3
    assert "Traceback" not in hanging_service.log_text()


class TestBreaker:
    """The breaker's own rules (pure logic)."""

    def test_closed_until_a_failure(self) -> None:
        breaker = RedisBreaker(60)
        assert breaker.allows("x")
        breaker.failed("x", TimeoutError())
        assert breaker.is_open
        assert not breaker.allows("x")

    def test_an_answer_closes_it(self) -> None:
        breaker = RedisBreaker(60)
        breaker.failed("x", TimeoutError())
        breaker.succeeded()
        assert breaker.allows("x")

    def test_it_lets_one_try_through_after_its_period(self) -> None:
        breaker = RedisBreaker(0)
        breaker.failed("x", TimeoutError())
        assert breaker.allows("x")
