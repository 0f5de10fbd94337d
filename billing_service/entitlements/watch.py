"""Fan-out of entitlement changes to WatchEntitlements streams, with bounded memory.

Each stream owns a queue of at most ``max_pending`` changed user ids. A
consumer that falls further behind is cut off: the stream ends with
RESOURCE_EXHAUSTED and the client resubscribes, getting a fresh snapshot.
Memory per stream is therefore bounded whatever the consumer does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import grpc

from billing_service.entitlements.metrics import PROCESS_METRICS, EntitlementMetrics
from billing_service.errors import BillingError
from generated.billing.v1 import billing_pb2 as pb

DEFAULT_MAX_PENDING = 1000


class StreamEnded(BillingError):
    """The server ended a watch stream (shutdown or a slow consumer)."""


class ShuttingDown(StreamEnded):
    """The server is shutting down; resubscribe to another replica."""

    code = grpc.StatusCode.UNAVAILABLE


class TooSlow(StreamEnded):
    """The consumer fell more than ``max_pending`` changes behind."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


# (user id, when it changed, the meter usage when the change is a usage one)
Change = tuple[str, float, pb.MeterUsage | None]
_CLOSE: Change = ("", -1.0, None)


class WatchStream:
    """One stream's view of the changes: the users it watches and its pending queue."""

    def __init__(
        self, users: frozenset[str] | None, max_pending: int, metrics: EntitlementMetrics
    ) -> None:
        self.users = users
        self._overflows = metrics.watch_overflows
        self._queue: asyncio.Queue[Change] = asyncio.Queue(max_pending + 1)
        self._max_pending = max_pending
        self._ended: StreamEnded | None = None

    def offer(self, user_id: str, changed_at: float, usage: pb.MeterUsage | None = None) -> None:
        """Queue a change unless this stream does not watch the user; cut off when full."""
        if self._ended is not None or (self.users is not None and user_id not in self.users):
            return
        if self._queue.qsize() >= self._max_pending:
            self._overflows.inc()
            self.end(TooSlow(f"more than {self._max_pending} changes pending; resubscribe"))
            return
        self._queue.put_nowait((user_id, changed_at, usage))

    def end(self, reason: StreamEnded) -> None:
        """End the stream with ``reason`` after it drains nothing more."""
        if self._ended is None:
            self._ended = reason
            self._queue.put_nowait(_CLOSE)

    async def next(self) -> Change:
        """The next change (user id, when, meter usage); raises StreamEnded when ended."""
        if self._ended is not None:
            raise self._ended
        item = await self._queue.get()
        if self._ended is not None:
            raise self._ended
        return item


class WatchHub:
    """Every open watch stream of this process."""

    def __init__(
        self,
        max_pending: int = DEFAULT_MAX_PENDING,
        metrics: EntitlementMetrics = PROCESS_METRICS,
    ) -> None:
        self.max_pending = max_pending
        self._metrics = metrics
        self._streams: set[WatchStream] = set()
        self._closed = False

    def subscribe(self, users: Iterable[str] | None) -> WatchStream:
        """Start receiving changes of ``users`` (None: all users)."""
        if self._closed:
            raise ShuttingDown("server shutting down; resubscribe")
        users_watched = frozenset(users) if users is not None else None
        stream = WatchStream(users_watched, self.max_pending, self._metrics)
        self._streams.add(stream)
        self._metrics.watch_streams.set(len(self._streams))
        return stream

    def unsubscribe(self, stream: WatchStream) -> None:
        """Stop delivering to ``stream``."""
        self._streams.discard(stream)
        self._metrics.watch_streams.set(len(self._streams))

    def publish(self, user_id: str, changed_at: float, usage: pb.MeterUsage | None = None) -> None:
        """Queue a change (a usage change when ``usage`` is set) for streams watching the user."""
        for stream in tuple(self._streams):
            stream.offer(user_id, changed_at, usage)

    def close(self) -> None:
        """End every stream (UNAVAILABLE) and refuse new ones."""
        self._closed = True
        for stream in tuple(self._streams):
            stream.end(ShuttingDown("server shutting down; resubscribe"))
