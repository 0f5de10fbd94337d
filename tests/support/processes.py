"""Starting the project's servers as real processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

REPO_ROOT = Path(__file__).resolve().parents[2]
PLANS_FILE = REPO_ROOT / "plans.example.toml"


class ListeningProcess:
    """A Python module run as a server that reports ``READY_LINE host:port`` on stdout.

    Its log goes to a temporary file, printed when the process fails to start;
    use as a context manager (SIGTERM on exit, SIGKILL when it will not stop).
    """

    ready_line = ""
    name = ""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], ready_timeout: float = 30.0
    ) -> None:
        self._argv = [sys.executable, "-m", *argv]
        self._env = {**os.environ, **env}
        self._ready_timeout = ready_timeout
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix=f"{self.name}-", suffix=".log", delete=False
        )
        self.proc: subprocess.Popen[str] | None = None
        self.target = ""

    def on_line(self, line: str) -> None:
        """Called with each stdout line read before the ready line."""

    def start(self) -> Self:
        """Start and wait until the server reports where it listens."""
        self.proc = subprocess.Popen(
            self._argv,
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
            if line.startswith(f"{self.ready_line} "):
                self.target = line.split()[1]
                return self
            self.on_line(line)
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        """Everything the process logged so far."""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

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

    def __enter__(self) -> Self:
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
        super().__init__(["billing_service.cli", "serve"], {**defaults, **env}, ready_timeout)
        self.metrics_target = ""

    def on_line(self, line: str) -> None:
        """Remember where /metrics is served, when it is."""
        if line.startswith("BILLING_METRICS_LISTENING "):
            self.metrics_target = line.split()[1]
