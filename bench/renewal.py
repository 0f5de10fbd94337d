"""The renewal-wave stream for the webhook bench (``python -m bench.webhooks --stream renewal``).

A month-start renewal wave, built from Stripe's official sample objects
(``tests/events/factory.py``): per subscription ``customer.subscription.created``
(incomplete), ``checkout.session.completed``, the first ``invoice.paid``,
``customer.subscription.updated`` (active), then the renewal: ``invoice.paid``
and an update to the next period (80%), or ``invoice.payment_failed`` and an
update to past_due (20%); 10% are then deleted. A third of the subscriptions
arrive in the pre-2025-03-31 shape. 10% of the deliveries are repeated up to
an hour later; the order is shuffled within seconds. No Stripe API is
reachable: the service's Stripe base URL is a counter that answers 503.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.events import factory

SEED = 20261130
DUPLICATE_SHARE = 0.10
LEGACY_SHARE = 1 / 3
FAILED_SHARE = 0.20
DELETED_SHARE = 0.10
SHUFFLE_SECONDS = 3.0
DUPLICATE_DELAY_SECONDS = 3600.0
SUBSCRIPTION_TYPES = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)


@dataclass
class Stream:
    """Deliveries in order, the distinct events, and the expected final state."""

    deliveries: list[bytes]
    events: int
    # subscription id -> (status, current_period_end) of its newest subscription event
    truth: dict[str, tuple[str, int]] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)


def _sub_event(
    kind: str, sub_id: str, cus: str, user: str, status: str, period: tuple[int, int], **kw: Any
) -> dict[str, Any]:
    legacy = bool(kw.pop("legacy"))
    obj = factory.subscription(
        sub_id,
        cus,
        status,
        price=kw.pop("price"),
        period_start=period[0],
        period_end=period[1],
        user_id=user,
        legacy=legacy,
        created=kw.pop("sub_created"),
    )
    return factory.event(kind, obj, created=kw.pop("created"), legacy=legacy)


def renewal_stream(subscriptions: int, now: int, *, payload_events: bool = True) -> Stream:
    """The wave for ``subscriptions`` subscriptions; ``payload_events`` keeps invoice/checkout."""
    rng = random.Random(SEED)
    wave_start = now - 2 * 3600
    month = 30 * 24 * 3600
    timed: list[tuple[float, dict[str, Any]]] = []
    truth: dict[str, tuple[str, int]] = {}
    for i in range(subscriptions):
        user, cus, sub_id = f"wave-{i:05d}", f"cus_wave{i:06d}", f"sub_wave{i:06d}"
        legacy = rng.random() < LEGACY_SHARE
        price = rng.choice(["price_pro_monthly", "price_pro_monthly", "price_studio_monthly"])
        base = wave_start + rng.randrange(3600)
        first = (base - month, base)
        second = (base, base + month)
        common = {"legacy": legacy, "price": price, "sub_created": base - month}
        own: list[dict[str, Any]] = [
            _sub_event(
                "customer.subscription.created",
                sub_id,
                cus,
                user,
                "incomplete",
                first,
                created=base - 30,
                **common,
            ),
            _sub_event(
                "customer.subscription.updated",
                sub_id,
                cus,
                user,
                "active",
                first,
                created=base - 28,
                **common,
            ),
        ]
        failed = rng.random() < FAILED_SHARE
        renewed = "past_due" if failed else "active"
        own.append(
            _sub_event(
                "customer.subscription.updated",
                sub_id,
                cus,
                user,
                renewed,
                second,
                created=base + 5,
                **common,
            )
        )
        final = (renewed, second[1])
        if rng.random() < DELETED_SHARE:
            own.append(
                _sub_event(
                    "customer.subscription.deleted",
                    sub_id,
                    cus,
                    user,
                    "canceled",
                    second,
                    created=base + 600,
                    **common,
                )
            )
            final = ("canceled", second[1])
        truth[sub_id] = final
        if payload_events:
            session = factory.checkout_session(cus, sub_id, client_reference_id=user)
            own.append(factory.event("checkout.session.completed", session, created=base - 29))
            paid = factory.invoice(cus, sub_id, legacy=legacy, user_id=user)
            own.append(factory.event("invoice.paid", paid, created=base - 29, legacy=legacy))
            renewal = factory.invoice(
                cus, sub_id, legacy=legacy, user_id=user, status="open" if failed else "paid"
            )
            kind = "invoice.payment_failed" if failed else "invoice.paid"
            own.append(factory.event(kind, renewal, created=base + 4, legacy=legacy))
        for ev in own:
            timed.append((ev["created"] + rng.uniform(0, SHUFFLE_SECONDS), ev))
    events = [json.dumps(ev).encode() for _, ev in timed]
    order = [(at, body) for (at, _), body in zip(timed, events, strict=True)]
    for _ in range(round(len(events) * DUPLICATE_SHARE)):
        at, body = order[rng.randrange(len(events))]
        order.append((at + rng.uniform(0, DUPLICATE_DELAY_SECONDS), body))
    order.sort(key=lambda pair: pair[0])
    by_type: dict[str, int] = {}
    for _, ev in timed:
        by_type[ev["type"]] = by_type.get(ev["type"], 0) + 1
    return Stream([body for _, body in order], len(events), truth, by_type)


class _Refuse(BaseHTTPRequestHandler):
    """Answers every request 503 and counts it."""

    def _refuse(self) -> None:
        server = self.server
        assert isinstance(server, StripeCounter)
        with server.lock:
            server.calls += 1
        body = b'{"error": {"type": "api_error", "message": "bench: Stripe is unreachable"}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Refuse."""
        self._refuse()

    def do_POST(self) -> None:
        """Refuse."""
        self._refuse()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log."""


class StripeCounter(ThreadingHTTPServer):
    """A "Stripe API" on loopback that is never available; counts the calls it gets."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Refuse)
        self.calls = 0
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """Where the service should send its Stripe calls."""
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def stripe_counter() -> Iterator[StripeCounter]:
    """A running StripeCounter, shut down on exit."""
    server = StripeCounter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
