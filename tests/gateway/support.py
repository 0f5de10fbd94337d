"""Gateway subprocesses, signed deliveries, and a plain HTTP client for the gateway tests."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Mapping
from typing import Any

import stripe

from devtools.waiting import wait_until
from tests.support.processes import ListeningProcess

WEBHOOK_PATH = "/webhooks/stripe"


class GatewayProcess(ListeningProcess):
    """A ``billing-gateway serve`` subprocess on 127.0.0.1:0; use as a context manager."""

    ready_line = "BILLING_GATEWAY_LISTENING"
    name = "billing-gateway"

    def __init__(self, env: Mapping[str, str], ready_timeout: float = 30.0) -> None:
        defaults = {"GATEWAY_ADDR": "127.0.0.1:0", "GATEWAY_LOG_LEVEL": "INFO"}
        super().__init__(
            ["webhook_gateway.cli", "serve"], {**defaults, **env}, ready_timeout=ready_timeout
        )

    @property
    def host(self) -> str:
        """The address the gateway listens on."""
        return self.target.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        """The port the gateway listens on."""
        return int(self.target.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        """The webhook endpoint's URL."""
        return f"http://{self.target}{WEBHOOK_PATH}"


def new_event(kind: str = "applied", **extra: Any) -> dict[str, Any]:
    """A minimal Stripe-shaped event whose id tells the stand-in what to answer."""
    return {
        "id": f"evt_{kind}_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "customer.subscription.updated",
        # Deliberately ancient: the gateway must never judge `created`.
        "created": 1_000_000_000,
        "data": {"object": {"id": "sub_123", "object": "subscription"}},
        **extra,
    }


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for ``body`` made with the stripe SDK."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return stripe.WebhookSignature.generate_signature_header(text, secret, timestamp)


class Answer:
    """An HTTP answer: status, raw body, and the body as JSON (None when not JSON)."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        try:
            self.json: Any = json.loads(body)
        except ValueError:
            self.json = None

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:200]!r})"


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Answer:
    """One HTTP request on a fresh connection."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return Answer(response.status, response.read())
    finally:
        conn.close()


def post_event(
    gateway: GatewayProcess,
    body: bytes,
    signature: str | None,
    extra_headers: Mapping[str, str] | None = None,
) -> Answer:
    """POST ``body`` to the gateway's webhook endpoint with ``signature`` (None: no header)."""
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return request(gateway.host, gateway.port, "POST", WEBHOOK_PATH, body, headers)


def signed_at(signature: str) -> int:
    """The timestamp (``t=``) of a Stripe-Signature header."""
    return int(dict(part.split("=", 1) for part in signature.split(","))["t"])


def wait_until_stale(gateway: GatewayProcess, timestamp: int, secret: str) -> None:
    """Wait until ``gateway`` refuses signatures made at ``timestamp`` as too old.

    What a replay meets once the tolerance has passed, observed instead of
    slept for. The probe is a body that is not JSON, signed at ``timestamp``:
    400 ``malformed_json`` while its signature holds, 400
    ``timestamp_outside_tolerance`` once stale; it is never forwarded.
    """
    body = b"not json: a staleness probe"
    signature = sign(body, secret, timestamp)
    wait_until(
        f"signatures made at {timestamp} to fall outside the tolerance",
        lambda: post_event(gateway, body, signature).json,
        lambda answer: answer == {"error": "timestamp_outside_tolerance"},
        interval=0.2,
    )


def deliver(gateway: GatewayProcess, event: dict[str, Any], secret: str) -> Answer:
    """Sign ``event`` with ``secret`` now and POST it."""
    body = json.dumps(event).encode()
    return post_event(gateway, body, sign(body, secret))
