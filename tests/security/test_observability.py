"""Metrics move for a real flow (scraped over HTTP); logs are JSON and hold no secret."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

from billing_service.auth import token_hash
from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import apply_all_events, checkout, expect_code, stripe_client
from tests.support.processes import ServiceProcess

STRIPE_KEY = "sk_test_observability_4b7e1a9c2d"
WEBHOOK_SECRET = "whsec_observability_9f3e2b7a1c"
TOKEN = "ops-token-6d2a9c4e1b7f3a05"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _scrape(target: str) -> dict[Any, float]:
    def get() -> str:
        with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    return _samples(await asyncio.to_thread(get))


async def test_metrics_and_logs_for_a_real_flow(tmp_path: Path, emulator: Any) -> None:
    policy = tmp_path / "auth.toml"
    policy.write_text(
        f"""
[callers.ops-suite]
rpcs = ["CreateCheckout", "ApplyStripeEvent", "CheckEntitlement", "GetSubscription"]
token_sha256 = ["{token_hash(TOKEN)}"]
""",
        encoding="utf-8",
    )
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        "STRIPE_API_BASE": emulator.base_url,
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "BILLING_INSECURE_NO_AUTH": "false",
        "BILLING_AUTH_POLICY_FILE": str(policy),
        "BILLING_METRICS_ADDR": "127.0.0.1:0",
        "BILLING_LOG_LEVEL": "DEBUG",
    }
    auth = (("authorization", f"Bearer {TOKEN}"),)
    with ServiceProcess(env) as service:
        assert service.metrics_target
        before = await _scrape(service.metrics_target)
        async with (
            grpc.aio.insecure_channel(
                service.target,
                interceptors=[_Metadata(auth)],  # type: ignore[list-item]
            ) as channel,
            stripe_client(emulator.base_url, STRIPE_KEY) as client,
        ):
            stub = pb_grpc.BillingServiceStub(channel)
            # The emulator is shared by the session: only this test's events count.
            clock = await asyncio.to_thread(emulator.control, "GET", "/clock")
            session = await checkout(stub, "u-observed")
            await asyncio.to_thread(emulator.complete_checkout, session.session_id)
            answers = await apply_all_events(stub, client, since=int(clock["now"]))
            assert any(a.outcome == pb.EVENT_OUTCOME_APPLIED for a in answers)
            check = pb.CheckEntitlementRequest(user_id="u-observed", feature="priority_support")
            assert (await stub.CheckEntitlement(check)).allowed
            assert (await stub.CheckEntitlement(check)).allowed
            await expect_code(
                stub.GetSubscription(pb.GetSubscriptionRequest()), grpc.StatusCode.INVALID_ARGUMENT
            )
        async with grpc.aio.insecure_channel(service.target) as anonymous:
            await expect_code(
                pb_grpc.BillingServiceStub(anonymous).GetSubscription(
                    pb.GetSubscriptionRequest(user_id="x")
                ),
                grpc.StatusCode.UNAUTHENTICATED,
            )
        # The server sends a refusal's status before it counts the call: scrape until
        # the last call is counted, so every earlier one is too.
        refused = {"method": "GetSubscription", "code": "UNAUTHENTICATED"}
        after = await wait_until_async(
            "the refused call in the metrics",
            lambda: _scrape(service.metrics_target),
            lambda samples: (
                _value(samples, "billing_grpc_requests_total", **refused)
                > _value(before, "billing_grpc_requests_total", **refused)
            ),
        )
        log_text = service.log_text()

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    ok_checkouts = grew("billing_grpc_requests_total", method="CreateCheckout", code="OK")
    assert ok_checkouts == 1
    assert (
        grew("billing_grpc_requests_total", method="GetSubscription", code="INVALID_ARGUMENT") == 1
    )
    assert (
        grew("billing_grpc_requests_total", method="GetSubscription", code="UNAUTHENTICATED") == 1
    )
    assert grew("billing_grpc_request_seconds_count", method="CheckEntitlement") == 2
    assert (
        grew("billing_stripe_events_total", type="checkout.session.completed", outcome="applied")
        == 1
    )
    assert (
        grew("billing_stripe_api_calls_total", call="checkout.sessions.create", outcome="ok") == 1
    )
    assert grew("billing_auth_failures_total", code="UNAUTHENTICATED") == 1
    assert grew("billing_entitlement_cache_hits_total") >= 1
    assert grew("billing_entitlement_cache_misses_total") >= 1

    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert lines, "logs are JSON lines"
    assert any(line.get("event_id", "").startswith("evt_") for line in lines)
    assert any(
        line.get("rpc") == "CreateCheckout" and line.get("caller") == "ops-suite" for line in lines
    )
    for secret in (STRIPE_KEY, WEBHOOK_SECRET, TOKEN):
        assert secret not in log_text


class _Metadata(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Adds fixed metadata (the bearer token) to every call."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        details = details._replace(metadata=(*(details.metadata or ()), *self._metadata))
        return await continuation(details, request)
