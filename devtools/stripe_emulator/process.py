"""Run the emulator as a subprocess on a free port (for tests and local scripts).

::

    with EmulatorProcess("plans.example.toml") as emu:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": emu.base_url})
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devtools.processes import ListeningProcess

from .__main__ import LISTENING_PREFIX


class EmulatorProcess(ListeningProcess):
    """Context manager owning one emulator subprocess (on port 0) and its control API."""

    ready_line = LISTENING_PREFIX
    name = "stripe-emulator"

    def __init__(
        self,
        plans_file: str | Path,
        webhook_urls: Sequence[str] = (),
        webhook_secrets: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        *,
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.plans_file = Path(plans_file)
        self.stop_timeout = stop_timeout
        argv = ["devtools.stripe_emulator", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--plans", str(self.plans_file)]
        for url in webhook_urls:
            argv += ["--webhook-url", url]
        for secret in webhook_secrets:
            argv += ["--webhook-secret", secret]
        super().__init__([*argv, *extra_args], {}, ready_timeout=startup_timeout)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, as the emulator reported it."""
        return self.target

    def stderr(self) -> str:
        """What the emulator wrote to stderr so far."""
        return self.log_text()

    def stop(self, timeout: float | None = None) -> int | None:
        """Terminate (SIGTERM), wait, and kill after ``stop_timeout``."""
        return super().stop(self.stop_timeout if timeout is None else timeout)

    # -- control API -------------------------------------------------------------

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call ``/_emulator{path}``; raises RuntimeError with the error body on non-2xx."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback http only
            f"{self.base_url}/_emulator{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read().decode()}") from None

    def health(self) -> dict[str, Any]:
        """``GET /_emulator/health``."""
        result: dict[str, Any] = self.control("GET", "/health")
        return result

    def complete_checkout(
        self, session_id: str, payment: str = "succeed", *, without_payment_method: bool = False
    ) -> dict[str, Any]:
        """Pay a Checkout Session (or start its trial without a card); returns the session."""
        body: dict[str, Any] = {"payment": payment}
        if without_payment_method:
            body["without_payment_method"] = True
        result: dict[str, Any] = self.control(
            "POST", f"/checkout/sessions/{session_id}/complete", body
        )
        return result

    def advance_clock(self, seconds: int) -> dict[str, Any]:
        """Move the emulator clock; returns ``{"now", "events"}``."""
        result: dict[str, Any] = self.control("POST", "/clock/advance", {"seconds": seconds})
        return result

    def set_payment_failure(self, customer_id: str, fail: bool) -> dict[str, Any]:
        """Make the customer's future charges fail (or succeed again)."""
        result: dict[str, Any] = self.control(
            "POST", f"/customers/{customer_id}/payment_behavior", {"fail": fail}
        )
        return result

    def add_webhook(self, url: str, secrets: Sequence[str]) -> dict[str, Any]:
        """Add a webhook endpoint at run time."""
        result: dict[str, Any] = self.control(
            "POST", "/webhooks", {"url": url, "secrets": list(secrets)}
        )
        return result

    def hold_webhooks(self, hold: bool) -> dict[str, Any]:
        """Stop (True) or resume (False) webhook delivery."""
        result: dict[str, Any] = self.control("POST", "/webhooks/hold", {"hold": hold})
        return result

    def deliveries_idle(self) -> bool:
        """True when no webhook is queued or in flight (held events count as done)."""
        return bool(self.control("GET", "/webhooks/deliveries")["idle"])

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt so far, oldest first."""
        result: list[dict[str, Any]] = self.control("GET", "/webhooks/deliveries")["data"]
        return result

    def deliver(self, event_id: str) -> list[dict[str, Any]]:
        """Deliver one event to every endpoint again, now; returns the attempts."""
        result: list[dict[str, Any]] = self.control("POST", f"/events/{event_id}/deliver")["data"]
        return result
