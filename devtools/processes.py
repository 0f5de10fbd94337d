"""Running servers as child processes that report where they listen: the one launcher.

Every server here prints one line ``<READY> host:port`` on stdout once it
listens (``BILLING_SERVICE_LISTENING``, ``BILLING_GATEWAY_LISTENING``,
``STRIPE_EMULATOR_LISTENING``...). They bind port 0 and report the port the
kernel gave them, so no free port is picked beforehand and raced for.
``ListeningProcess`` starts one, waits for that line and stops it::

    with ListeningProcess(["billing_service.cli", "serve"], env,
                          ready_line="BILLING_SERVICE_LISTENING") as service:
        call(service.target)

The wait has a real deadline: a reader thread owns the child's stdout, so a
child that hangs without printing fails ``start`` after ``ready_timeout``
instead of blocking the caller forever in ``readline``.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

REPO_ROOT = Path(__file__).resolve().parent.parent

PYTHON_MODULE = (sys.executable, "-m")

# What stdout lines are kept after the ready line (for error messages); the
# reader keeps draining so a chatty child never blocks on a full pipe.
_KEPT_LINES = 200


def free_port() -> int:
    """A loopback TCP port nothing listens on right now.

    Only for a child that cannot bind port 0 and report it (redis-server), or
    for an address meant to stay closed: another process may take the port
    between this call and its use.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProcessStartError(RuntimeError):
    """The child exited or stayed silent past its deadline instead of reporting readiness."""


class ListeningProcess:
    """``python -m ARGV`` (or ``program ARGV``) as a server; ``target`` is what it reported.

    Its environment is this process's updated with ``env`` (or only ``env``
    without ``inherit_environment``). Its stderr goes to a temporary file
    (shown when it fails to start), or to this process's own stderr with
    ``log_to_terminal``. A context manager: SIGTERM on exit, SIGKILL when it
    will not stop. ``start`` may be called again after ``stop`` (a restart).
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
        program: Sequence[str] = PYTHON_MODULE,
        inherit_environment: bool = True,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self._argv = [*program, *argv]
        self._cwd = cwd
        self._env = {**os.environ, **env} if inherit_environment else dict(env)
        self._ready_timeout = ready_timeout
        self.ready_line = ready_line or self.ready_line
        self._log: IO[bytes] | None = None
        if not log_to_terminal:
            self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
                prefix=f"{self.name}-", suffix=".log", delete=False
            )
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.stdout_tail: deque[str] = deque(maxlen=_KEPT_LINES)
        self.target = ""

    def on_line(self, line: str) -> None:
        """Called with each stdout line read before the ready line."""

    def parse_ready(self, line: str) -> str | None:
        """The target ``line`` reports when it is the ready line, else None."""
        if line.startswith(f"{self.ready_line} "):
            return line.split()[1]
        return None

    def start(self) -> Self:
        """Start and wait until the server reports where it listens.

        Raises ``ProcessStartError`` (after stopping the child) when it exits
        first or prints no ready line within ``ready_timeout`` seconds, and
        RuntimeError while it is running already (``with X.start()`` would
        start a second process and leave the first running). A stopped
        process may be started again.
        """
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"{self.name} is running already")
        self.proc = subprocess.Popen(
            self._argv,
            env=self._env,
            cwd=self._cwd,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(
            target=self._read_stdout,
            args=(self.proc, lines),
            name=f"{self.name}-stdout",
            daemon=True,
        )
        self._reader.start()
        deadline = time.monotonic() + self._ready_timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                problem = f"printed no {self.ready_line!r} line within {self._ready_timeout:g}s"
                break
            if line is None:
                problem = "exited before it was ready"
                break
            target = self.parse_ready(line)
            if target is not None:
                self.target = target
                return self
            self.on_line(line)
        self.stop()
        raise ProcessStartError(
            f"{self.name} {problem} (exit code {self.proc.returncode}):\n"
            f"{''.join(self.stdout_tail)}{self.log_text()}"
        )

    def _read_stdout(self, proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.stdout_tail.append(line)
            lines.put(line)
        lines.put(None)

    def log_text(self) -> str:
        """Everything the process logged so far (empty when it logs to the terminal)."""
        if self._log is None:
            return ""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once it ended (None while running or never started)."""
        return None if self.proc is None else self.proc.poll()

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
        if self._reader is not None:
            # EOF follows the exit unless a grandchild kept the pipe open.
            self._reader.join(timeout)
            self._reader = None
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
