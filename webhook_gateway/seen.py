"""The events this gateway process saw the billing service finish, to answer their redeliveries.

Stripe delivers an event again when it missed our 2xx, and sometimes twice
anyway; a replay resends a whole range. Once the service has answered an
event with an outcome (applied, duplicate, ignored, stale), every later
delivery of it would be answered ``duplicate`` after one more gRPC call and
one more database read. Verified deliveries whose id is here are answered
``duplicate`` at once instead.

Only a final answer from the service is remembered, never a 503 or a dead
letter, so what is here is already committed. The memory is bounded (the
oldest ids leave first) and per process: a redelivery that lands on another
replica, or after a restart, is forwarded and answered by the service as
before::

    seen = SeenEvents(50_000)
    seen.add("evt_1")
    "evt_1" in seen  # True until 50,000 newer ids pushed it out
"""

from __future__ import annotations


class SeenEvents:
    """A bounded, insertion-ordered set of event ids; ``capacity`` 0 remembers nothing."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        # A dict keeps insertion order and is the smallest ordered set the stdlib has.
        self._ids: dict[str, None] = {}

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> None:
        """Remember ``event_id``; past capacity, forget the oldest id."""
        if not self.capacity or not event_id or event_id in self._ids:
            return
        if len(self._ids) >= self.capacity:
            del self._ids[next(iter(self._ids))]
        self._ids[event_id] = None
