"""A localstripe subprocess for tests (legacy Stripe API shapes, signed webhooks)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.processes import REPO_ROOT


class LocalStripeProcess:
    """localstripe on a free 127.0.0.1 port with a private state file; a context manager."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="localstripe-")
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> LocalStripeProcess:
        state = Path(self._dir.name) / "state.pickle"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.localstripe_server", "0", str(state)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("LOCALSTRIPE_LISTENING "):
                self.base_url = line.split()[1]
                return self
            if not line and self.proc.poll() is not None:
                break
        self.__exit__(None, None, None)
        raise RuntimeError("localstripe did not start")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self._dir.cleanup()
