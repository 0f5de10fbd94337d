"""Meters this process saw reach their limit, watched until their period ends.

When the usage clock passes a tracked period's end, ``on_reset(user, meter)``
runs, so WatchEntitlements streams learn that the meter is usable again
without any event. Memory is one entry per exhausted (user, meter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from billing_service.usage.clock import Clock

log = logging.getLogger(__name__)

OnReset = Callable[[str, str], Awaitable[None]]


class ExhaustedMeters:
    """(user, meter) -> end of the period in which the meter reached its limit."""

    def __init__(self, clock: Clock, on_reset: OnReset, *, interval: float = 1.0) -> None:
        self._clock = clock
        self._on_reset = on_reset
        self._interval = interval
        self._until: dict[tuple[str, str], datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def reached(self, user_id: str, meter: str, period_end: datetime) -> None:
        """The meter is at its limit until ``period_end``."""
        self._until[(user_id, meter)] = period_end
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def released(self, user_id: str, meter: str) -> None:
        """The meter went back under its limit (a refund) before its period ended."""
        self._until.pop((user_id, meter), None)

    async def close(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            now = self._clock()
            due = [key for key, end in self._until.items() if end <= now]
            for user_id, meter in due:
                del self._until[(user_id, meter)]
                try:
                    await self._on_reset(user_id, meter)
                except Exception:
                    log.warning("usage reset of %s/%s not announced", user_id, meter, exc_info=True)
