"""`make run` (devtools.run_local) logs text for a person; the commands keep JSON."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from devtools.processes import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_ready(proc: subprocess.Popen[str], seconds: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ready:"):
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError("make run did not report ready")


def test_make_run_logs_text_lines(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "GATEWAY_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path}/billing.db",
        "BILLING_GRPC_ADDR": "127.0.0.1:0",
        "GATEWAY_ADDR": "127.0.0.1:0",
        "STRIPE_EMULATOR_PORT": str(_free_port()),
    }
    env.pop("STRIPE_SECRET_KEY", None)
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.run_local"],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            _wait_for_ready(proc, 60)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
            assert proc.stdout is not None
            proc.stdout.close()
    lines = stderr_path.read_text(encoding="utf-8").splitlines()
    service = [line for line in lines if "gRPC serving on" in line]
    gateway = [line for line in lines if "webhook_gateway" in line]
    assert service, lines
    assert gateway, lines
    for line in service + gateway:
        assert not line.lstrip().startswith("{"), line
        assert " INFO " in line, line
