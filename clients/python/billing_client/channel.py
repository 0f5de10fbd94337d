"""Channels to the billing service with the defaults a caller should not have to pick.

- Deadlines: the service config gives every RPC a default deadline
  (``DEFAULT_TIMEOUTS``); a shorter ``timeout=`` on the call wins, a longer one
  is capped (gRPC takes the smaller of the two). WatchEntitlements, a stream
  meant to stay open, has none.
- Retries: only calls that are safe to repeat are retried, and only on
  UNAVAILABLE: the reads, CreateCheckout (its ``request_id`` makes a repeat
  return the same session) and ApplyStripeEvent (applied exactly once by event
  id). Changes such as CancelSubscription are not retried by the channel.
- Keepalive: a ping every 60 s even without calls, so an idle watch stream
  notices a dead peer; the service accepts pings that often.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from billing_client.credentials import Credentials

SERVICE = "billing.v1.BillingService"

#: Default (and longest) deadline per RPC, in seconds (service config ``timeout``): for
#: callers that set none. Generous on purpose; set a tighter ``timeout=`` per call.
DEFAULT_TIMEOUTS: dict[str, float] = {
    "CheckEntitlement": 2.0,
    "GetEntitlements": 2.0,
    "GetSubscription": 10.0,
    "ListAuditEvents": 10.0,
    # These call Stripe (STRIPE_TIMEOUT_SECONDS 10 s and 2 retries by default, server side).
    "CreateCheckout": 60.0,
    "CreatePortal": 60.0,
    "CancelSubscription": 60.0,
    "ResumeSubscription": 60.0,
    "SyncCheckoutSession": 60.0,
    "ChangePlan": 60.0,
    "PreviewPlanChange": 60.0,
    "ApplyStripeEvent": 60.0,
    "ReconcileUser": 300.0,
}
#: RPCs the channel retries on UNAVAILABLE (safe to repeat).
RETRIED = frozenset(
    {
        "CheckEntitlement",
        "GetEntitlements",
        "GetSubscription",
        "ListAuditEvents",
        "PreviewPlanChange",
        "CreateCheckout",
        "ApplyStripeEvent",
    }
)
_RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
KEEPALIVE_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]


def service_config(*, retries: bool = True) -> str:
    """The JSON service config: per-RPC default deadlines and, with ``retries``, retry policies."""
    configs: list[dict[str, Any]] = []
    for method, seconds in DEFAULT_TIMEOUTS.items():
        config: dict[str, Any] = {
            "name": [{"service": SERVICE, "method": method}],
            "timeout": f"{seconds:g}s",
        }
        if retries and method in RETRIED:
            config["retryPolicy"] = _RETRY_POLICY
        configs.append(config)
    return json.dumps({"methodConfig": configs})


def channel_options(
    *, retries: bool = True, extra: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    """Channel arguments: service config, retries on or off, keepalive, then ``extra``."""
    return [
        ("grpc.service_config", service_config(retries=retries)),
        ("grpc.enable_retries", 1 if retries else 0),
        *KEEPALIVE_OPTIONS,
        *extra,
    ]


def aio_channel(
    target: str,
    credentials: Credentials | None = None,
    *,
    retries: bool = True,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """An asyncio channel to ``target`` with the defaults above and ``credentials``' transport.

    ``interceptors`` (e.g. OpenTelemetry's ``aio_client_interceptors()``) run on every call.
    """
    tls = (credentials or Credentials()).channel_credentials()
    merged = channel_options(retries=retries, extra=options)
    if tls is None:
        return grpc.aio.insecure_channel(target, options=merged, interceptors=interceptors or None)
    return grpc.aio.secure_channel(target, tls, options=merged, interceptors=interceptors or None)


def sync_channel(
    target: str,
    credentials: Credentials | None = None,
    *,
    retries: bool = True,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A blocking channel to ``target`` with the defaults above and ``credentials``' transport."""
    tls = (credentials or Credentials()).channel_credentials()
    merged = channel_options(retries=retries, extra=options)
    if tls is None:
        return grpc.insecure_channel(target, options=merged)
    return grpc.secure_channel(target, tls, options=merged)
