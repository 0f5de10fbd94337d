"""Gateway subprocesses, signed deliveries, and a plain HTTP client for the gateway tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import stripe

from tests.support.processes import REPO_ROOT

WEBHOOK_PATH = "/webhooks/stripe"


class GatewayProcess:
    """A ``billing-gateway serve`` subprocess on 127.0.0.1:0; use as a context manager."""

    def __init__(self, env: Mapping[str, str], ready_timeout: float = 30.0) -> None:
        self._env = {
            **os.environ,
            "GATEWAY_ADDR": "127.0.0.1:0",
            "GATEWAY_LOG_LEVEL": "INFO",
            **env,
        }
        self._ready_timeout = ready_timeout
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="billing-gateway-", suffix=".log", delete=False
        )
        self.proc: subprocess.Popen[str] | None = None
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def url(self) -> str:
        """The webhook endpoint's URL."""
        return f"http://{self.host}:{self.port}{WEBHOOK_PATH}"

    def start(self) -> GatewayProcess:
        """Start and wait for ``BILLING_GATEWAY_LISTENING host:port``."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webhook_gateway.cli", "serve"],
            env=self._env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("BILLING_GATEWAY_LISTENING "):
                host, port = line.split()[1].rsplit(":", 1)
                self.host, self.port = host, int(port)
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"billing-gateway did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        """Everything the process logged so far."""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, SIGKILL after ``timeout``; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()
        os.unlink(self._log.name)


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


def deliver(gateway: GatewayProcess, event: dict[str, Any], secret: str) -> Answer:
    """Sign ``event`` with ``secret`` now and POST it."""
    body = json.dumps(event).encode()
    return post_event(gateway, body, sign(body, secret))
