"""`make run` (devtools.run_local) logs text for a person; the commands keep JSON."""

from __future__ import annotations

import os
from pathlib import Path

from devtools.processes import ListeningProcess


class MakeRun(ListeningProcess):
    """``python -m devtools.run_local``, ready once it prints ``ready:``."""

    name = "make-run"

    def parse_ready(self, line: str) -> str | None:
        """run_local reports readiness, not an address: its children report theirs."""
        return "ready" if line.startswith("ready:") else None


def test_make_run_logs_text_lines(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "GATEWAY_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path}/billing.db",
        "BILLING_GRPC_ADDR": "127.0.0.1:0",
        "GATEWAY_ADDR": "127.0.0.1:0",
        # Every child binds port 0 and reports it; run_local passes the reports on.
        "STRIPE_EMULATOR_PORT": "0",
    }
    env.pop("STRIPE_SECRET_KEY", None)
    with MakeRun(["devtools.run_local"], env, ready_timeout=60, inherit_environment=False) as run:
        assert run.stop() == 0
        lines = run.log_text().splitlines()
    service = [line for line in lines if "gRPC serving on" in line]
    gateway = [line for line in lines if "webhook_gateway" in line]
    assert service, lines
    assert gateway, lines
    for line in service + gateway:
        assert not line.lstrip().startswith("{"), line
        assert " INFO " in line, line
