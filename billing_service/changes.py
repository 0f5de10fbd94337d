"""Announces that a user's subscription state changed, to whoever keeps derived state.

Writers (the subscription RPCs, ApplyStripeEvent) call ``user_changed`` after
their transaction commits and before they answer, so listeners such as the
entitlement cache can drop what they hold before the caller sees the result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# The one change-listener type: called with a user id after that user's change committed.
Listener = Callable[[str], Awaitable[None]]


class ChangeNotifier:
    """Fans a committed change out to the registered listeners, in registration order."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(user_id)`` after every committed change."""
        self._listeners.append(listener)

    async def user_changed(self, user_id: str) -> None:
        """Tell every listener that ``user_id``'s state changed."""
        for listener in self._listeners:
            await listener(user_id)
