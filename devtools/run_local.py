"""`make run`: the whole system on one machine, for development and trying things out.

Starts the billing service (SQLite by default, migrating itself) and, when
STRIPE_SECRET_KEY is unset, the local Stripe emulator in front of it. Ctrl-C
stops everything. Never used in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EMULATOR_PORT = int(os.environ.get("STRIPE_EMULATOR_PORT", "12111"))
EMULATOR_KEY = "sk_test_local_emulator"


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.split(maxsplit=1)[1].strip()
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"process {proc.args!r} did not report {prefix}")


def _start(args: list[str], env: dict[str, str], ready: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, *args], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    return proc, _wait_for_line(proc, ready)


def main() -> int:
    """Run until Ctrl-C, then stop every child."""
    env = dict(os.environ)
    env.setdefault("BILLING_PLANS_FILE", str(REPO_ROOT / "plans.example.toml"))
    children: list[subprocess.Popen[str]] = []
    try:
        if not env.get("STRIPE_SECRET_KEY"):
            emulator, base_url = _start(
                [
                    "-m",
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
            env["STRIPE_SECRET_KEY"] = EMULATOR_KEY
            env["STRIPE_API_BASE"] = base_url
            print(
                f"STRIPE_SECRET_KEY is not set: using the LOCAL STRIPE EMULATOR at {base_url}\n"
                "  (a development tool; nothing reaches real Stripe)",
                flush=True,
            )
        service, target = _start(
            ["-m", "billing_service.cli", "serve"], env, "BILLING_SERVICE_LISTENING"
        )
        children.append(service)
        print(f"billing.v1.BillingService gRPC on {target}  (Ctrl-C stops everything)", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a process exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
