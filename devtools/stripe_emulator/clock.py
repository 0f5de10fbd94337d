"""The emulator's clock: real time plus an offset that only ever grows."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

DAY = 86400


class Clock:
    """Unix seconds of emulator time; ``advance`` moves it forward."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._frozen: int | None = None

    def now(self) -> int:
        """The current emulator time in unix seconds."""
        if self._frozen is not None:
            return self._frozen
        return int(time.time() + self._offset)

    def freeze(self, at: int) -> None:
        """Pin the time to ``at`` while due work is processed in time order."""
        self._frozen = at

    def set(self, at: int) -> None:
        """Unfreeze and continue running from ``at`` (never moves backwards)."""
        self._frozen = None
        if at > self.now():
            self._offset = at - time.time()

    @property
    def offset(self) -> float:
        """Seconds the emulator clock is ahead of real time."""
        return self._offset


def add_months(anchor: int, months: int) -> int:
    """``anchor`` moved by whole calendar months, clamping the day like Stripe."""
    start = datetime.fromtimestamp(anchor, UTC)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())
