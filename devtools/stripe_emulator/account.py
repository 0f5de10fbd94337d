"""One emulated Stripe account: the shared state every resource module works on.

An :class:`Account` holds the object tables (:class:`~.store.Store`), the
movable clock, the fixture templates, the emulator-only bookkeeping and the
event stream. The resource modules (``resources/``) are functions over it.

Every operation is synchronous (no awaits), so one aiohttp event loop applies
them atomically: no lock is needed. Each state change records an Event through
:meth:`Account.emit` and hands it to the listeners (the webhook dispatcher)
without waiting for delivery.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from .bookkeeping import CheckoutSpec, CustomerState, SubscriptionState
from .clock import Clock
from .objects import JSON, Fixtures, new_event
from .store import Store

AFTER_FAILED_PAYMENTS = ("unpaid", "canceled")


class Account:
    """All state of one emulated Stripe account."""

    def __init__(
        self,
        fixtures: Fixtures,
        *,
        url_base: str = "http://127.0.0.1",
        after_failed_payments: str = "unpaid",
    ) -> None:
        if after_failed_payments not in AFTER_FAILED_PAYMENTS:
            raise ValueError("after_failed_payments must be 'unpaid' or 'canceled'")
        self.fx = fixtures
        self.store = Store()
        self.clock = Clock()
        self.url_base = url_base
        self.after_failed_payments = after_failed_payments
        self.listeners: list[Callable[[JSON], None]] = []
        self.pending_webhooks: Callable[[], int] = lambda: 0
        self.sub_state: dict[str, SubscriptionState] = {}
        self.customer_state: dict[str, CustomerState] = {}
        self.checkout_specs: dict[str, CheckoutSpec] = {}
        # event_name -> its metered price; usage(customer, start, end) -> {event_name: units}
        self.metered_prices: dict[str, JSON] = {}
        self.metered_usage: Callable[[str, int, int], dict[str, int]] = lambda *_: {}
        self._request: tuple[str | None, str | None] = (None, None)

    @contextlib.contextmanager
    def request_context(
        self, request_id: str | None, idempotency_key: str | None
    ) -> Iterator[None]:
        """Stamp events created inside the block with this API request's id and key."""
        previous = self._request
        self._request = (request_id, idempotency_key)
        try:
            yield
        finally:
            self._request = previous

    def emit(self, event_type: str, obj: JSON, previous: JSON | None = None) -> JSON:
        """Record an event with a snapshot of ``obj`` and notify the listeners."""
        request_id, key = self._request
        event = new_event(
            self.fx,
            event_type=event_type,
            created=self.clock.now(),
            obj=obj,
            previous_attributes=previous,
            pending_webhooks=self.pending_webhooks(),
            request_id=request_id,
            idempotency_key=key,
        )
        self.store.events[event["id"]] = event
        for listener in self.listeners:
            listener(event)
        return event

    def state_of_customer(self, customer_id: str) -> CustomerState:
        """The customer's bookkeeping, created on first use."""
        return self.customer_state.setdefault(customer_id, CustomerState())
