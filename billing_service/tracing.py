"""OpenTelemetry traces for the service and the gateway, set by the standard OTEL_* variables.

Off unless the environment asks for it: ``OTEL_TRACES_EXPORTER`` (``otlp``,
``console``, or a comma-separated list; ``none`` turns it off) or an OTLP
endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
meaning ``otlp``); ``OTEL_SDK_DISABLED=true`` wins over both. When off,
nothing of the SDK is imported and no interceptor, middleware or trace hook
is installed, so the hot path pays nothing.

When on, the SDK reads the rest itself: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER(_ARG)``, ``OTEL_PROPAGATORS``
(W3C ``tracecontext,baggage`` by default), ``OTEL_BSP_*`` and the
``OTEL_EXPORTER_OTLP_*`` endpoint, headers and timeout (OTLP over HTTP/protobuf).

Instrumentation is wired explicitly, never by patching libraries: a gRPC
server interceptor (service), a gRPC client interceptor (gateway → service,
carrying ``traceparent``), an aiohttp server middleware (gateway) and an
aiohttp client trace config (the Stripe SDK's HTTP session).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billing_service.settings import SettingsError

EXPORTERS = ("otlp", "console")


class TracingConfigError(SettingsError):
    """The OTEL_* variables ask for something this service cannot do; the message says what."""


def requested_exporters(env: Mapping[str, str]) -> tuple[str, ...]:
    """The span exporters the environment asks for; empty means tracing is off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not raw:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ("otlp",) if endpoint and endpoint.strip() else ()
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER: unsupported exporter {', '.join(unknown)}"
            f" (supported: {', '.join(EXPORTERS)}, none)"
        )
    if "otlp" in names:
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        if protocol != "http/protobuf":
            raise TracingConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is supported, got {protocol!r}"
            )
    return names


@dataclass(frozen=True)
class Tracing:
    """A tracer provider and the instrumentation hooks built on it."""

    provider: Any  # opentelemetry.sdk.trace.TracerProvider (imported only when tracing is on)

    def grpc_server_interceptors(self) -> list[Any]:
        """The interceptor that opens a server span per RPC, continuing the caller's trace."""
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        return [aio_server_interceptor(tracer_provider=self.provider)]

    def grpc_client_interceptors(self) -> list[Any]:
        """Interceptors that open a client span per call and send ``traceparent``."""
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        return list(aio_client_interceptors(tracer_provider=self.provider))

    def aiohttp_middleware(self) -> Any:
        """The aiohttp server middleware that opens a span per request."""
        from opentelemetry.instrumentation.aiohttp_server import (
            AioHttpServerInstrumentor,
            create_aiohttp_middleware,
        )

        # The middleware reads module state (excluded URLs, request metrics) that only
        # instrument() sets up; instrument() also replaces aiohttp's web.Application for
        # the whole process, which uninstrument() undoes. We add the middleware ourselves.
        instrumentor = AioHttpServerInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=self.provider)
            instrumentor.uninstrument()
        return create_aiohttp_middleware(tracer_provider=self.provider)

    def aiohttp_client_trace_config(self) -> Any:
        """An aiohttp ``TraceConfig`` that opens a client span per outgoing HTTP request."""
        from opentelemetry.instrumentation.aiohttp_client import create_trace_config

        return create_trace_config(tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        self.provider.shutdown()


def with_processor(processor: Any, service_name: str) -> Tracing:
    """Tracing into ``processor`` (an SDK SpanProcessor), for tests and embedding."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(processor)
    return Tracing(provider)


def from_env(service_name: str, env: Mapping[str, str] | None = None) -> Tracing | None:
    """Tracing as the OTEL_* variables in ``env`` say; None when they leave it off.

    ``service_name`` is the default ``service.name``; OTEL_SERVICE_NAME (or
    ``service.name`` in OTEL_RESOURCE_ATTRIBUTES) overrides it. The provider
    becomes the global one, so anything else using OpenTelemetry joins in.
    """
    env = os.environ if env is None else env
    exporters = requested_exporters(env)
    if not exporters:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    named = bool(env.get("OTEL_SERVICE_NAME")) or "service.name=" in env.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {SERVICE_NAME: service_name})
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER
    for name in exporters:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return Tracing(provider)
