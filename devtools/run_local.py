"""`make run`: the whole system on one machine, for development and trying things out.

Starts the billing service (SQLite by default, migrating itself), the webhook
gateway in front of it and, when STRIPE_SECRET_KEY is unset, the local Stripe
emulator with its webhooks pointed at the gateway, signed with a dev secret
generated for this run and shared with the gateway. Ctrl-C stops everything.
Never used in production.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
import urllib.request

from billing_client.names import SERVICE_NAME
from devtools.processes import REPO_ROOT, ListeningProcess

EMULATOR_PORT = int(os.environ.get("STRIPE_EMULATOR_PORT", "12111"))
EMULATOR_KEY = "sk_test_local_emulator"


def _start(argv: list[str], env: dict[str, str], ready_line: str) -> ListeningProcess:
    # Children log to this terminal: `make run` is for watching what happens.
    return ListeningProcess(argv, env, ready_line=ready_line, log_to_terminal=True).start()


def _register_webhook(base_url: str, url: str, secret: str) -> None:
    """Point the emulator's webhooks at the gateway (its control API, loopback only)."""
    request = urllib.request.Request(  # noqa: S310 - the emulator we just started
        f"{base_url}/_emulator/webhooks",
        data=json.dumps({"url": url, "secrets": [secret]}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Run until Ctrl-C (or SIGTERM), then stop every child."""
    # Explicit handlers: a shell that starts us in the background ignores SIGINT,
    # and SIGTERM from a supervisor must stop the children too.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    # A person reads this terminal: text lines, unless asked otherwise. The
    # commands themselves default to JSON, for log pipelines.
    env.setdefault("BILLING_LOG_FORMAT", "text")
    env.setdefault("GATEWAY_LOG_FORMAT", "text")
    env.setdefault("BILLING_PLANS_FILE", str(REPO_ROOT / "plans.example.toml"))
    if not env.get("BILLING_AUTH_POLICY_FILE"):
        # Development only: the service refuses this on anything but loopback.
        env.setdefault("BILLING_INSECURE_NO_AUTH", "true")
    emulated = not env.get("STRIPE_SECRET_KEY")
    if emulated and not env.get("STRIPE_WEBHOOK_SECRETS"):
        env["STRIPE_WEBHOOK_SECRETS"] = f"whsec_dev_{secrets.token_hex(16)}"
    emulator_url = ""
    children: list[ListeningProcess] = []
    try:
        if emulated:
            emulator = _start(
                [
                    "devtools.stripe_emulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(EMULATOR_PORT),
                    "--plans",
                    env["BILLING_PLANS_FILE"],
                ],
                env,
                "STRIPE_EMULATOR_LISTENING",
            )
            children.append(emulator)
            base_url = emulator.target
            env["STRIPE_SECRET_KEY"] = EMULATOR_KEY
            env["STRIPE_API_BASE"] = base_url
            emulator_url = base_url
            print(
                f"STRIPE_SECRET_KEY is not set: using the LOCAL STRIPE EMULATOR at {base_url}\n"
                "  (a development tool; nothing reaches real Stripe)",
                flush=True,
            )
        service = _start(["billing_service.cli", "serve"], env, "BILLING_SERVICE_LISTENING")
        children.append(service)
        target = service.target
        print(f"{SERVICE_NAME} gRPC on {target}", flush=True)
        gateway = _start(
            ["webhook_gateway.cli", "serve"],
            {**env, "BILLING_SERVICE_TARGET": env.get("BILLING_SERVICE_TARGET", target)},
            "BILLING_GATEWAY_LISTENING",
        )
        children.append(gateway)
        webhook_url = f"http://{gateway.target}/webhooks/stripe"
        print(f"webhook gateway on {webhook_url} -> {target}", flush=True)
        if emulator_url:
            _register_webhook(
                emulator_url, webhook_url, env["STRIPE_WEBHOOK_SECRETS"].split(",")[0]
            )
            print(f"emulator webhooks -> {webhook_url} (signed with a dev secret)", flush=True)
        print("ready: `make demo` in another terminal; Ctrl-C stops everything", flush=True)
        while all(child.alive() for child in children):
            time.sleep(0.5)
        print("a process exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            child.stop()


if __name__ == "__main__":
    sys.exit(main())
