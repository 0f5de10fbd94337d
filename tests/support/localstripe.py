"""A localstripe subprocess for tests (legacy Stripe API shapes, signed webhooks)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from devtools.processes import ListeningProcess


class LocalStripeProcess(ListeningProcess):
    """localstripe on a free 127.0.0.1 port with a private state file; a context manager."""

    ready_line = "LOCALSTRIPE_LISTENING"
    name = "localstripe"

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="localstripe-")
        state = Path(self._dir.name) / "state.pickle"
        super().__init__(["tests.support.localstripe_server", "0", str(state)], {})

    @property
    def base_url(self) -> str:
        """The fake API's base URL (``http://127.0.0.1:PORT``)."""
        return self.target

    def __enter__(self) -> Self:
        return super().__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        self._dir.cleanup()
