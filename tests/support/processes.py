"""The billing service as a real process on a free loopback port (see devtools.processes)."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

from devtools.processes import REPO_ROOT, ListeningProcess

PLANS_FILE = REPO_ROOT / "plans.example.toml"

__all__ = ["PLANS_FILE", "REPO_ROOT", "ListeningProcess", "ServiceProcess"]


class ServiceProcess(ListeningProcess):
    """A ``billing-service serve`` subprocess; ``target`` is "127.0.0.1:PORT"."""

    ready_line = "BILLING_SERVICE_LISTENING"
    name = "billing-service"

    def __init__(self, env: Mapping[str, str], ready_timeout: float = 30.0) -> None:
        defaults = {
            "BILLING_GRPC_ADDR": "127.0.0.1:0",
            "BILLING_PLANS_FILE": str(PLANS_FILE),
            "STRIPE_MAX_NETWORK_RETRIES": "0",
            "BILLING_SHUTDOWN_GRACE_SECONDS": "5",
            # Tests listen on loopback; the auth tests turn this off explicitly.
            "BILLING_INSECURE_NO_AUTH": "true",
        }
        super().__init__(
            ["billing_service.cli", "serve"], {**defaults, **env}, ready_timeout=ready_timeout
        )
        self.metrics_target = ""

    def on_line(self, line: str) -> None:
        """Remember where /metrics is served, when it is."""
        if line.startswith("BILLING_METRICS_LISTENING "):
            self.metrics_target = line.split()[1]

    def metric(self, name: str, labels: str = "") -> float:
        """One sample of this service's /metrics, 0 when absent (``BILLING_METRICS_ADDR`` set).

        ``labels`` as Prometheus writes them, e.g. ``'purpose="lock"'``.
        """
        with urllib.request.urlopen(f"http://{self.metrics_target}/metrics", timeout=10) as page:
            text = page.read().decode()
        prefix = f"{name}{{{labels}}} " if labels else f"{name} "
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line.removeprefix(prefix))
        return 0.0
