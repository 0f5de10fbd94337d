"""Run the emulator as a subprocess on a free port (for tests and local scripts).

::

    with EmulatorProcess("plans.example.toml") as emu:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": emu.base_url})
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .__main__ import LISTENING_PREFIX

_REPO_ROOT = Path(__file__).resolve().parents[2]


class EmulatorProcess:
    """Context manager owning one emulator subprocess and its control API."""

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
        self.webhook_urls = list(webhook_urls)
        self.webhook_secrets = list(webhook_secrets)
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._stderr_lines: list[str] = []

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> EmulatorProcess:
        """Start the subprocess and wait for its LISTENING line."""
        command = [
            sys.executable,
            "-m",
            "devtools.stripe_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--plans",
            str(self.plans_file),
        ]
        for url in self.webhook_urls:
            command += ["--webhook-url", url]
        for secret in self.webhook_secrets:
            command += ["--webhook-secret", secret]
        command += self.extra_args
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(_REPO_ROOT),
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        lines: queue.Queue[str | None] = queue.Queue()
        self._pump(self._process.stdout, lines.put)
        self._pump(self._process.stderr, self._stderr_lines.append)
        try:
            while True:
                line = lines.get(timeout=self.startup_timeout)
                if line is None:
                    raise RuntimeError(f"emulator exited during startup: {self.stderr()}")
                if line.startswith(LISTENING_PREFIX):
                    self.base_url = line.split(maxsplit=1)[1].strip()
                    return self
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"emulator did not start in time: {self.stderr()}") from None

    @staticmethod
    def _pump(stream: IO[str], sink: Any) -> None:
        def run() -> None:
            for line in stream:
                sink(line)
            if sink.__name__ == "put":
                sink(None)

        threading.Thread(target=run, daemon=True).start()

    def stderr(self) -> str:
        """What the emulator wrote to stderr so far."""
        return "".join(self._stderr_lines)

    @property
    def returncode(self) -> int | None:
        """The exit status once stopped (None while running)."""
        return None if self._process is None else self._process.poll()

    def stop(self) -> int | None:
        """Terminate (SIGTERM), wait, and kill after ``stop_timeout``."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self.stop_timeout)
        return process.returncode

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

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

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt so far, oldest first."""
        result: list[dict[str, Any]] = self.control("GET", "/webhooks/deliveries")["data"]
        return result

    def deliver(self, event_id: str) -> list[dict[str, Any]]:
        """Deliver one event to every endpoint again, now; returns the attempts."""
        result: list[dict[str, Any]] = self.control("POST", f"/events/{event_id}/deliver")["data"]
        return result
