"""A cap on the WatchEntitlements streams one caller holds open at once.

Each stream holds a queue, a task and an HTTP/2 stream on the server; a
caller with a resubscribe bug (or a hostile one) must not open thousands.
Past ``BILLING_WATCH_MAX_STREAMS_PER_CALLER`` a new stream is refused with
RESOURCE_EXHAUSTED naming the caller and the limit; closing any of its
streams makes room again.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import grpc

from billing_service.errors import BillingError

DEFAULT_MAX_STREAMS_PER_CALLER = 64


class TooManyStreams(BillingError):
    """The caller already holds its maximum of open streams."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class StreamLimiter:
    """Counts open streams per caller and refuses those past ``max_per_caller``."""

    def __init__(self, max_per_caller: int = DEFAULT_MAX_STREAMS_PER_CALLER) -> None:
        self.max_per_caller = max_per_caller
        self._open: Counter[str] = Counter()

    def open_streams(self, caller: str) -> int:
        """How many streams ``caller`` holds now."""
        return self._open[caller]

    @contextlib.contextmanager
    def hold(self, caller: str) -> Iterator[None]:
        """A stream slot of ``caller`` for the ``with`` block; TooManyStreams when none is free."""
        if self._open[caller] >= self.max_per_caller:
            raise TooManyStreams(
                f"caller {caller} already has {self.max_per_caller} WatchEntitlements streams "
                "open (BILLING_WATCH_MAX_STREAMS_PER_CALLER); close one or watch several "
                "users on one stream"
            )
        self._open[caller] += 1
        try:
            yield
        finally:
            self._open[caller] -= 1
            if not self._open[caller]:
                del self._open[caller]
