"""Starting the project's servers as real processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parents[2]
PLANS_FILE = REPO_ROOT / "plans.example.toml"


class ServiceProcess:
    """A ``billing-service serve`` subprocess; use as a context manager.

    It listens on 127.0.0.1:0 and reports the chosen port on stdout; ``target``
    is "127.0.0.1:PORT". Its log goes to a temporary file, printed when the
    process fails to start.
    """

    def __init__(self, env: dict[str, str], ready_timeout: float = 30.0) -> None:
        self._env = {
            **os.environ,
            "BILLING_GRPC_ADDR": "127.0.0.1:0",
            "BILLING_PLANS_FILE": str(PLANS_FILE),
            "STRIPE_MAX_NETWORK_RETRIES": "0",
            "BILLING_SHUTDOWN_GRACE_SECONDS": "5",
            # Tests listen on loopback; the auth tests turn this off explicitly.
            "BILLING_INSECURE_NO_AUTH": "true",
            **env,
        }
        self._ready_timeout = ready_timeout
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="billing-service-", suffix=".log", delete=False
        )
        self.proc: subprocess.Popen[str] | None = None
        self.target = ""
        self.metrics_target = ""

    def start(self) -> ServiceProcess:
        """Start and wait until the server reports its port."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "billing_service.cli", "serve"],
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
            if line.startswith("BILLING_METRICS_LISTENING "):
                self.metrics_target = line.split()[1]
            if line.startswith("BILLING_SERVICE_LISTENING "):
                self.target = line.split()[1]
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"billing-service did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        """Everything the process logged so far."""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process."""
        assert self.proc is not None
        self.proc.send_signal(sig)

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

    def __enter__(self) -> ServiceProcess:
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
