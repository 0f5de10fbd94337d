"""The lease: whether this replica may answer from its in-process cache right now.

A lease runs ``until`` a monotonic instant and is renewed by pings that come
back through Redis (``coherence.py`` says why that proves coherence). Every
time it is acquired or lost its generation ``gen`` moves on and the owner is
told, so work started under an earlier generation (a cache fill, a warm-up)
can tell that it must not store its result. ``leased`` is the one test of
the lease that everything else uses.

Without Redis one process is the only replica and its cache is always
coherent: ``Lease.forever()`` never lapses and never changes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LeaseChange = Callable[[], None]


def _nothing() -> None:
    return None


class Lease:
    """One replica's right to answer from memory, and its generation."""

    def __init__(self, on_change: LeaseChange = _nothing, until: float = -math.inf) -> None:
        self.until = until
        # Bumped whenever the lease is acquired or lost; a cache fill may store
        # its result only if the generation it started under is still current.
        self.gen = 0
        self._on_change = on_change

    @classmethod
    def forever(cls) -> Lease:
        """The lease of the only replica (no Redis): held for good."""
        return cls(until=math.inf)

    @property
    def leased(self) -> bool:
        """True while this replica may answer from its in-process cache."""
        return time.monotonic() < self.until

    def lose(self) -> None:
        """Drop the lease at once (the pub/sub connection is gone)."""
        if self.until > -math.inf:
            self.until = -math.inf
            self.gen += 1
            self._on_change()

    def renew(self, sent: float, subscribed_at: float, lease_seconds: float) -> None:
        """A ping sent at ``sent`` (monotonic) came back: hold the lease until ``sent + lease``.

        A ping sent before the current subscription existed proves nothing.
        """
        if sent <= subscribed_at:
            return
        if not self.leased:
            # (Re)acquiring: nothing cached or being filled before now may be trusted.
            if self.until > -math.inf:
                log.warning("entitlement cache lease lapsed (ping came back late); cache cleared")
            self.until = -math.inf
            self.gen += 1
            self._on_change()
        self.until = max(self.until, sent + lease_seconds)
