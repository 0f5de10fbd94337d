"""Running the project's servers as child processes that report where they listen.

Every server here prints one line ``<READY> host:port`` on stdout once it
listens (``BILLING_SERVICE_LISTENING``, ``BILLING_GATEWAY_LISTENING``,
``STRIPE_EMULATOR_LISTENING``...). ``ListeningProcess`` starts one, waits for
that line and stops it::

    with ListeningProcess(["billing_service.cli", "serve"], env,
                          ready_line="BILLING_SERVICE_LISTENING") as service:
        call(service.target)
"""

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
from typing import IO, Self

REPO_ROOT = Path(__file__).resolve().parent.parent


class ListeningProcess:
    """``python -m ARGV`` as a server; ``target`` is what its ready line reported.

    Its stderr goes to a temporary file (shown when it fails to start), or to
    this process's own stderr with ``log_to_terminal``. A context manager:
    SIGTERM on exit, SIGKILL when it will not stop.
    """

    ready_line = ""
    name = "server"

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        ready_line: str = "",
        ready_timeout: float = 30.0,
        log_to_terminal: bool = False,
    ) -> None:
        self._argv = [sys.executable, "-m", *argv]
        self._env = {**os.environ, **env}
        self._ready_timeout = ready_timeout
        self.ready_line = ready_line or self.ready_line
        self._log: IO[bytes] | None = None
        if not log_to_terminal:
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
        """Everything the process logged so far (empty when it logs to the terminal)."""
        if self._log is None:
            return ""
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
        if self._log is not None:
            self._log.close()
            os.unlink(self._log.name)
