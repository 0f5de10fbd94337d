"""Traces: one webhook delivery is one trace across gateway and service; Stripe calls are spans.

The gateway and the service run in this process (their real app and server
builders) so one in-memory exporter sees every span of both.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from billing_service import logs, tracing
from billing_service.server import App, start
from billing_service.settings import Settings
from billing_service.storage.models import database as database_proxy
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import EMULATOR_KEY
from tests.events import factory
from tests.gateway.support import WEBHOOK_PATH, sign
from tests.support.processes import PLANS_FILE
from webhook_gateway.app import build_app
from webhook_gateway.settings import GatewaySettings

SECRET = "whsec_traces_" + uuid.uuid4().hex


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Where every span of this test goes."""
    return InMemorySpanExporter()


@pytest.fixture
def traced(exporter: InMemorySpanExporter) -> Iterator[tracing.Tracing]:
    """Tracing into ``exporter``, as OTEL_* variables would configure it (but in memory)."""
    setup = tracing.with_processor(SimpleSpanProcessor(exporter), "traces-test")
    yield setup
    setup.shutdown()


@pytest.fixture
async def service(tmp_path: Path, emulator: Any, traced: tracing.Tracing) -> AsyncIterator[App]:
    """The billing service, in process, traced."""
    settings = Settings.from_env(
        {
            "BILLING_GRPC_ADDR": "127.0.0.1:0",
            "DATABASE_URL": f"sqlite:///{tmp_path}/billing.db",
            "BILLING_PLANS_FILE": str(PLANS_FILE),
            "BILLING_INSECURE_NO_AUTH": "true",
            "STRIPE_SECRET_KEY": EMULATOR_KEY,
            "STRIPE_API_BASE": emulator.base_url,
            "STRIPE_MAX_NETWORK_RETRIES": "0",
        }
    )
    app = await start(settings, traced)
    yield app
    await app.stop(0)


@pytest.fixture
async def gateway(tmp_path: Path, service: App, traced: tracing.Tracing) -> AsyncIterator[str]:
    """The webhook gateway, in process, traced; yields its webhook URL."""
    settings = GatewaySettings.from_env(
        {
            "GATEWAY_ADDR": "127.0.0.1:0",
            "BILLING_SERVICE_TARGET": f"127.0.0.1:{service.port}",
            "STRIPE_WEBHOOK_SECRETS": SECRET,
            "DATABASE_URL": f"sqlite:///{tmp_path}/billing.db",
        }
    )
    runner = web.AppRunner(build_app(settings, traced), access_log=None)
    await runner.setup()
    # peewee's model proxy is process-wide and the gateway's dead-letter store just
    # claimed it; in production the two never share a process. Give it back.
    database_proxy.initialize(service.db.db)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    await runner.cleanup()


def _by_kind(spans: tuple[ReadableSpan, ...], kind: trace.SpanKind) -> list[ReadableSpan]:
    return [span for span in spans if span.kind is kind]


async def test_a_webhook_delivery_is_one_trace_across_gateway_and_service(
    gateway: str, exporter: InMemorySpanExporter
) -> None:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    sub = factory.subscription(
        factory.new_id("sub"), factory.new_id("cus"), "active", user_id=user_id
    )
    body = factory.payload(factory.event("customer.subscription.created", sub))
    headers = {"Stripe-Signature": sign(body, SECRET), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http, http.post(gateway, data=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["status"] == "applied"

    spans = exporter.get_finished_spans()
    # The gateway's HTTP server span is the root; everything else hangs below it.
    (root,) = [s for s in _by_kind(spans, trace.SpanKind.SERVER) if s.parent is None]
    assert root.attributes is not None and root.name.startswith("POST")
    trace_id = root.context.trace_id
    client = [s for s in _by_kind(spans, trace.SpanKind.CLIENT) if "ApplyStripeEvent" in s.name]
    server = [s for s in _by_kind(spans, trace.SpanKind.SERVER) if "ApplyStripeEvent" in s.name]
    assert len(client) == 1 and len(server) == 1, [s.name for s in spans]
    assert client[0].context.trace_id == trace_id
    assert client[0].parent is not None and client[0].parent.span_id == root.context.span_id
    # The service continued the gateway's trace (W3C traceparent in gRPC metadata).
    assert server[0].context.trace_id == trace_id
    assert server[0].parent is not None and server[0].parent.span_id == client[0].context.span_id
    assert server[0].resource.attributes["service.name"] == "traces-test"


async def test_stripe_calls_are_client_spans_of_the_rpc(
    service: App, traced: tracing.Tracing, exporter: InMemorySpanExporter
) -> None:
    interceptors = aio_client_interceptors(tracer_provider=traced.provider)
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{service.port}", interceptors=interceptors
    ) as channel:
        await pb_grpc.BillingServiceStub(channel).CreateCheckout(
            pb.CreateCheckoutRequest(
                user_id=f"user-{uuid.uuid4().hex[:8]}",
                email="ada@example.com",
                plan="pro",
                success_url="https://app.example.com/ok",
                cancel_url="https://app.example.com/back",
                request_id=uuid.uuid4().hex,
            ),
            timeout=30,
        )
    spans = exporter.get_finished_spans()
    (rpc,) = [s for s in _by_kind(spans, trace.SpanKind.SERVER) if "CreateCheckout" in s.name]
    stripe_calls = [
        s
        for s in _by_kind(spans, trace.SpanKind.CLIENT)
        if s.context.trace_id == rpc.context.trace_id and s.name.startswith("POST")
    ]
    assert len(stripe_calls) >= 1, [s.name for s in spans]
    assert all(s.parent is not None for s in stripe_calls)
    # Nothing of the emulator's API key is recorded in a span.
    for span in stripe_calls:
        assert EMULATOR_KEY not in json.dumps(dict(span.attributes or {}), default=str)


def test_json_log_lines_carry_the_current_trace_and_span_ids(
    traced: tracing.Tracing,
) -> None:
    formatter = logs.JsonFormatter()
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(formatter.format(record))
    with traced.provider.get_tracer("t").start_as_current_span("work") as span:
        line = json.loads(formatter.format(record))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ()),
        ({"OTEL_TRACES_EXPORTER": "none"}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, ()),
    ],
)
def test_tracing_is_on_only_when_otel_variables_ask(
    env: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert tracing.requested_exporters(env) == expected


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    ],
)
def test_unsupported_otel_settings_are_refused_by_name(env: dict[str, str]) -> None:
    with pytest.raises(tracing.TracingConfigError, match="OTEL_"):
        tracing.requested_exporters(env)
