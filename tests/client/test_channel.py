"""Channel defaults: the service config, and gRPC's retries doing what a RetryPolicy says.

The retry tests run a real grpc.aio server on a free loopback port that
fails each call a programmed number of times before answering.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from billing_client import Credentials, RetryPolicy, aio_channel
from billing_client.channel import (
    DEFAULT_TIMEOUTS,
    KEEPALIVE_TIME_MS,
    MAX_ATTEMPTS_LIMIT,
    RETRIED,
    service_config,
)
from billing_client.names import RPC_NAMES, SERVICE_NAME
from billing_service.server import SERVER_OPTIONS
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

FAST = {"initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.02}


def _method_configs(retries: bool | RetryPolicy) -> dict[str, dict[str, Any]]:
    configs = json.loads(service_config(retries=retries))["methodConfig"]
    found: dict[str, dict[str, Any]] = {}
    for config in configs:
        (name,) = config["name"]
        assert name["service"] == SERVICE_NAME
        found[name["method"]] = config
    return found


def test_every_configured_method_is_an_rpc_of_the_service() -> None:
    assert set(DEFAULT_TIMEOUTS) <= RPC_NAMES
    assert RETRIED <= RPC_NAMES
    assert "WatchEntitlements" not in DEFAULT_TIMEOUTS  # a stream meant to stay open


def test_default_config_retries_only_the_calls_safe_to_repeat() -> None:
    configs = _method_configs(True)
    assert {m for m, c in configs.items() if "retryPolicy" in c} == RETRIED
    assert configs["ApplyStripeEvent"]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert configs["CheckEntitlement"]["timeout"] == "2s"
    assert not any("retryPolicy" in c for c in _method_configs(False).values())


def test_a_policy_names_its_methods_codes_and_waits() -> None:
    policy = RetryPolicy(
        methods=frozenset({"ReconcileUser", "ConsumeUsage"}),
        max_attempts=9,
        initial_backoff_seconds=1.0,
        max_backoff_seconds=30.0,
        codes=frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}),
    )
    configs = _method_configs(policy)
    assert configs["ReconcileUser"]["retryPolicy"] == {
        "maxAttempts": MAX_ATTEMPTS_LIMIT,
        "initialBackoff": "1s",
        "maxBackoff": "30s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["RESOURCE_EXHAUSTED", "UNAVAILABLE"],
    }
    assert "timeout" not in configs["ConsumeUsage"]  # no default deadline of its own
    assert "retryPolicy" not in configs["GetSubscription"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"methods": frozenset({"NoSuchRpc"})}, "NoSuchRpc"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"initial_backoff_seconds": 0}, "backoff"),
        ({"codes": frozenset()}, "codes"),
    ],
)
def test_impossible_policies_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**fields)


def test_client_keepalive_is_no_more_often_than_the_server_accepts() -> None:
    server = dict(SERVER_OPTIONS)
    assert server["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.http2.min_recv_ping_interval_without_data_ms"] <= KEEPALIVE_TIME_MS


class _Flaky(pb_grpc.BillingServiceServicer):
    """Fails each RPC with ``code`` ``failures`` times, then answers; counts attempts."""

    def __init__(self) -> None:
        self.failures = 0
        self.code = grpc.StatusCode.UNAVAILABLE
        self.attempts: dict[str, int] = {}

    async def _attempt(self, rpc: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.attempts[rpc] = self.attempts.get(rpc, 0) + 1
        if self.attempts[rpc] <= self.failures:
            await context.abort(self.code, f"programmed failure {self.attempts[rpc]}")

    async def GetSubscription(self, request: Any, context: Any) -> pb.GetSubscriptionResponse:
        await self._attempt("GetSubscription", context)
        return pb.GetSubscriptionResponse()

    async def CancelSubscription(self, request: Any, context: Any) -> pb.CancelSubscriptionResponse:
        await self._attempt("CancelSubscription", context)
        return pb.CancelSubscriptionResponse()


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[_Flaky, str]]:
    """A running flaky server and its target."""
    servicer = _Flaky()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_BillingServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(None)


async def test_the_default_policy_retries_a_safe_read_on_unavailable(
    flaky: tuple[_Flaky, str],
) -> None:
    servicer, target = flaky
    servicer.failures = 2
    async with aio_channel(target, Credentials()) as channel:
        await pb_grpc.BillingServiceStub(channel).GetSubscription(
            pb.GetSubscriptionRequest(user_id="u1"), timeout=10
        )
    assert servicer.attempts["GetSubscription"] == 3


async def test_without_retries_one_attempt_is_made(flaky: tuple[_Flaky, str]) -> None:
    servicer, target = flaky
    servicer.failures = 1
    async with aio_channel(target, retries=False) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await pb_grpc.BillingServiceStub(channel).GetSubscription(
                pb.GetSubscriptionRequest(user_id="u1"), timeout=10
            )
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.attempts["GetSubscription"] == 1


async def test_a_change_is_not_retried_by_default(flaky: tuple[_Flaky, str]) -> None:
    servicer, target = flaky
    servicer.failures = 1
    async with aio_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await pb_grpc.BillingServiceStub(channel).CancelSubscription(
                pb.CancelSubscriptionRequest(user_id="u1"), timeout=10
            )
    assert servicer.attempts["CancelSubscription"] == 1


async def test_a_policy_of_its_own_retries_its_methods_on_its_codes(
    flaky: tuple[_Flaky, str],
) -> None:
    servicer, target = flaky
    servicer.failures, servicer.code = 3, grpc.StatusCode.RESOURCE_EXHAUSTED
    policy = RetryPolicy(
        methods=frozenset({"CancelSubscription"}),
        max_attempts=4,
        codes=frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED}),
        **FAST,
    )
    async with aio_channel(target, retries=policy) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        await stub.CancelSubscription(pb.CancelSubscriptionRequest(user_id="u1"), timeout=10)
        assert servicer.attempts["CancelSubscription"] == 4
        # Not in the policy: GetSubscription gets one attempt.
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetSubscription(pb.GetSubscriptionRequest(user_id="u1"), timeout=10)
    assert servicer.attempts["GetSubscription"] == 1
