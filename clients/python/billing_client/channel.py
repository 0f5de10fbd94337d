"""Channels to the billing service with the defaults a caller should not have to pick.

- Deadlines: the service config gives every RPC a default deadline
  (``DEFAULT_TIMEOUTS``); a shorter ``timeout=`` on the call wins, a longer one
  is capped (gRPC takes the smaller of the two). WatchEntitlements, a stream
  meant to stay open, has none.
- Retries: gRPC itself retries, from the service config (``RetryPolicy``);
  nobody writes a retry loop around a call. By default only calls that are
  safe to repeat are retried, and only on UNAVAILABLE: the reads,
  CreateCheckout (its ``request_id`` makes a repeat return the same session)
  and ApplyStripeEvent(s) (applied exactly once by event id). Changes such as
  CancelSubscription are not retried by the channel. A tool with its own
  needs passes its own ``RetryPolicy``::

      policy = RetryPolicy(
          methods=frozenset({"ApplyStripeEvent"}),
          max_attempts=5,
          initial_backoff_seconds=1.0,
          max_backoff_seconds=30.0,
          codes=frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}),
      )
      channel = aio_channel(target, credentials, retries=policy)

- Keepalive: a ping every 60 s even without calls, so an idle watch stream
  notices a dead peer; the service accepts pings that often.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from billing_client.credentials import Credentials
from billing_client.names import RPC_NAMES, SERVICE_NAME

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
    "ApplyStripeEvents": 60.0,
    "ReconcileUser": 300.0,
}
#: RPCs the default policy retries on UNAVAILABLE (safe to repeat).
RETRIED = frozenset(
    {
        "CheckEntitlement",
        "GetEntitlements",
        "GetSubscription",
        "ListAuditEvents",
        "PreviewPlanChange",
        "CreateCheckout",
        "ApplyStripeEvent",
        "ApplyStripeEvents",
    }
)
#: gRPC makes at most this many attempts of one call, whatever a policy asks for.
MAX_ATTEMPTS_LIMIT = 5

KEEPALIVE_TIME_MS = 60_000
KEEPALIVE_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
#: Reconnect within 0.2-2 s instead of gRPC's exponential backoff (up to 120 s): for a
#: caller whose next call should find a restarted service at once (the gateway).
QUICK_RECONNECT_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.min_reconnect_backoff_ms", 200),
]


def _duration(seconds: float) -> str:
    # Service-config durations are protobuf JSON durations: decimal seconds, "s" suffix.
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


@dataclass(frozen=True)
class RetryPolicy:
    """Which RPCs gRPC retries, on which status codes, how often and how far apart.

    ``max_attempts`` counts the first call (1: no retries) and is capped at
    ``MAX_ATTEMPTS_LIMIT``; the waits start near ``initial_backoff_seconds``
    and grow by ``backoff_multiplier`` up to ``max_backoff_seconds`` (gRPC
    picks each wait at random below that bound). The call's ``timeout``
    covers every attempt: give it room for the waits.
    """

    methods: frozenset[str] = RETRIED
    max_attempts: int = 3
    initial_backoff_seconds: float = 0.05
    max_backoff_seconds: float = 0.5
    backoff_multiplier: float = 2.0
    codes: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE})

    def __post_init__(self) -> None:
        unknown = sorted(self.methods - RPC_NAMES)
        if unknown:
            raise ValueError(f"RetryPolicy.methods: {SERVICE_NAME} has no RPC {unknown[0]!r}")
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be 1 or more, not {self.max_attempts}")
        if self.initial_backoff_seconds <= 0 or self.max_backoff_seconds <= 0:
            raise ValueError("RetryPolicy backoff seconds must be above 0")
        if self.backoff_multiplier <= 0:
            raise ValueError("RetryPolicy.backoff_multiplier must be above 0")
        if self.max_attempts > 1 and not self.codes:
            raise ValueError("RetryPolicy.codes must name at least one status code")

    def applies_to(self, method: str) -> bool:
        """True when calls of ``method`` are retried at all."""
        return self.max_attempts > 1 and method in self.methods

    def config(self) -> dict[str, Any]:
        """The ``retryPolicy`` object of the service config."""
        return {
            "maxAttempts": min(self.max_attempts, MAX_ATTEMPTS_LIMIT),
            "initialBackoff": _duration(self.initial_backoff_seconds),
            "maxBackoff": _duration(max(self.max_backoff_seconds, self.initial_backoff_seconds)),
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": sorted(code.name for code in self.codes),
        }


#: What ``retries=True`` means: the safe-to-repeat RPCs, three attempts, on UNAVAILABLE.
DEFAULT_RETRY_POLICY = RetryPolicy()


def _policy(retries: bool | RetryPolicy) -> RetryPolicy | None:
    if isinstance(retries, RetryPolicy):
        return retries
    return DEFAULT_RETRY_POLICY if retries else None


def service_config(*, retries: bool | RetryPolicy = True) -> str:
    """The JSON service config: per-RPC default deadlines and the retry policy, if any.

    ``retries``: True for ``DEFAULT_RETRY_POLICY``, False for none, or a ``RetryPolicy``.
    """
    policy = _policy(retries)
    methods = list(DEFAULT_TIMEOUTS)
    if policy is not None:
        methods += sorted(policy.methods - DEFAULT_TIMEOUTS.keys())
    configs: list[dict[str, Any]] = []
    for method in methods:
        config: dict[str, Any] = {"name": [{"service": SERVICE_NAME, "method": method}]}
        if method in DEFAULT_TIMEOUTS:
            config["timeout"] = _duration(DEFAULT_TIMEOUTS[method])
        if policy is not None and policy.applies_to(method):
            config["retryPolicy"] = policy.config()
        configs.append(config)
    return json.dumps({"methodConfig": configs})


def channel_options(
    *, retries: bool | RetryPolicy = True, extra: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    """Channel arguments: service config, retries on or off, keepalive, then ``extra``."""
    return [
        ("grpc.service_config", service_config(retries=retries)),
        ("grpc.enable_retries", 1 if _policy(retries) is not None else 0),
        *KEEPALIVE_OPTIONS,
        *extra,
    ]


def aio_channel(
    target: str,
    credentials: Credentials | None = None,
    *,
    retries: bool | RetryPolicy = True,
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
    retries: bool | RetryPolicy = True,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A blocking channel to ``target`` with the defaults above and ``credentials``' transport."""
    tls = (credentials or Credentials()).channel_credentials()
    merged = channel_options(retries=retries, extra=options)
    if tls is None:
        return grpc.insecure_channel(target, options=merged)
    return grpc.secure_channel(target, tls, options=merged)
