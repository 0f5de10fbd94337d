"""Calls made in one event-loop turn, sent to Redis as one command.

The events of one ``ApplyStripeEvents`` call, and the answers of one group
commit, run side by side: each takes its customer's lock, releases it and
announces its change in the same event-loop turn as the others. redis-py's
cost is per command (packing, the socket write, the reply's parse, the
timeout), so ``TurnBatch`` collects the calls of a turn and sends them as one
script call whose keys and arguments are the calls' concatenated. Pipelining
the separate commands did not pay (docs/performance.md); one command does.

A call's wait grows by the loop iteration that collects the turn's calls.
The send runs in a task of its own, so a caller that is cancelled leaves
the others' call alone; its result, if any, goes to ``abandoned`` (a lock
taken for a caller that left is released there). The gateway's processed
markers are read the same way (webhook_gateway/markers.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class TurnBatch(Generic[Item, Result]):
    """``await batch(item)``: the item's result from one ``send(items)`` shared by its turn."""

    def __init__(
        self,
        send: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        abandoned: Callable[[Item, Result], None] | None = None,
    ) -> None:
        self._send = send
        self._abandoned = abandoned
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._collecting: asyncio.Task[None] | None = None  # created, not yet started
        self.sends = 0  # commands sent (the tests count them)

    async def __call__(self, item: Item) -> Result:
        """Queue ``item`` with its turn's others; its result, or the send's exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        if self._collecting is None or self._collecting.done():
            # Its first step runs after the callbacks already ready, so their calls join it.
            # (A collector cancelled before that step leaves its calls to the next one.)
            self._collecting = loop.create_task(self._send_batch())
            self._sending.add(self._collecting)
            self._collecting.add_done_callback(self._sending.discard)
        self._pending.append((item, future))
        return await future

    async def _send_batch(self) -> None:
        batch, self._pending, self._collecting = self._pending, [], None
        self.sends += 1
        try:
            results = await self._send([item for item, _ in batch])
            if len(results) != len(batch):
                raise ValueError(f"{len(results)} results for {len(batch)} calls")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        left: list[tuple[Item, Result]] = []
        for (item, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller was cancelled meanwhile
                left.append((item, result))
            else:
                future.set_result(result)
        if self._abandoned is not None:
            for item, result in left:  # after every waiting caller has its answer
                self._abandoned(item, result)
