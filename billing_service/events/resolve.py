"""Ties an event to (user, subscription snapshot), fetching from Stripe where the event cannot.

Who the user is, in order of trust:

1. the user of the subscription row we already hold (a tie never moves);
2. the checkout session's ``client_reference_id`` or its ``metadata.user_id``;
3. the subscription's ``metadata.user_id`` (set by CreateCheckout);
4. the user linked to the Stripe customer.

Subscription events carry the subscription itself. Checkout sessions and
invoices only name it, and invoices say nothing about its status, so for
those the subscription is fetched from Stripe, the authority. When Stripe is
unreachable the error propagates (UNAVAILABLE) and nothing is recorded, so
the caller's retry applies the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from billing_service import validation
from billing_service.errors import InvalidArgument, NotFound
from billing_service.events.parse import (
    CHECKOUT_COMPLETED,
    INVOICE_EVENTS,
    SUBSCRIPTION_EVENTS,
    StripeEvent,
)
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.stripe_shapes import (
    SubscriptionSnapshot,
    invoice_subscription_id,
    invoice_subscription_metadata,
    object_id,
    subscription_snapshot,
)


class SubscriptionFetcher(Protocol):
    """What resolving needs from Stripe: the current state of one subscription."""

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe holds it now."""
        ...

    async def retrieve_subscription_discounts(self, subscription_id: str) -> dict[str, Any]:
        """The subscription with its discounts expanded."""
        ...


@dataclass(frozen=True)
class Resolution:
    """An event tied to a user and a subscription, or the reason it cannot be."""

    user_id: str = ""
    customer_id: str = ""
    snapshot: SubscriptionSnapshot | None = None
    # True when ``snapshot`` was fetched from Stripe just now.
    authoritative: bool = False
    reason: str = ""
    # Why the snapshot came from Stripe, for the audit detail.
    note: str = ""

    @property
    def tied(self) -> bool:
        """True when the event concerns a known user's subscription."""
        return bool(self.user_id and self.snapshot is not None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _meta_user(raw: Any) -> str:
    return _text(raw.get("user_id")) if isinstance(raw, Mapping) else ""


def lock_key(event: StripeEvent) -> str:
    """What to serialize this event's work on: its customer, else its subscription."""
    obj = event.object
    customer = object_id(obj.get("customer"))
    if customer:
        return f"customer:{customer}"
    if event.type in INVOICE_EVENTS:
        sub = invoice_subscription_id(obj)
    elif event.type == CHECKOUT_COMPLETED:
        sub = object_id(obj.get("subscription"))
    else:
        sub = _text(obj.get("id"))
    return f"subscription:{sub or event.id}"


def _known_users(subscription_id: str, customer_id: str) -> tuple[str, str]:
    """(user of the stored subscription row, user linked to the customer); "" when unknown."""
    row = repository.subscription_by_stripe_id(subscription_id) if subscription_id else None
    by_customer = repository.user_for_customer(customer_id) if customer_id else None
    return (str(row.user_id) if row else "", by_customer or "")


def _usable(user_id: str) -> bool:
    try:
        validation.user_id(user_id)
    except InvalidArgument:
        return False
    return True


class Resolver:
    """Resolves events with the database and Stripe."""

    def __init__(self, db: Database, stripe: SubscriptionFetcher) -> None:
        self._db = db
        self._stripe = stripe

    async def fetch(self, subscription_id: str) -> SubscriptionSnapshot | None:
        """The subscription from Stripe; None when Stripe does not know it."""
        try:
            found = subscription_snapshot(await self._stripe.retrieve_subscription(subscription_id))
        except NotFound:
            return None
        return await self.with_discount(found)

    async def with_discount(self, snapshot: SubscriptionSnapshot) -> SubscriptionSnapshot:
        """``snapshot`` with its discount read, when it arrived as ids only (newer API shape)."""
        if not snapshot.discount_pending:
            return snapshot
        try:
            raw = await self._stripe.retrieve_subscription_discounts(snapshot.id)
        except NotFound:
            return replace(snapshot, discount_pending=False)
        expanded = subscription_snapshot(raw)
        return replace(snapshot, discount=expanded.discount, discount_pending=False)

    async def resolve(self, event: StripeEvent) -> Resolution:
        """Tie ``event`` to a user and snapshot (``reason`` says why when it cannot)."""
        obj = event.object
        if event.type in SUBSCRIPTION_EVENTS:
            if obj.get("object") not in (None, "subscription"):
                return Resolution(reason=f"{event.type} does not carry a subscription")
            snapshot = subscription_snapshot(obj)
            if not snapshot.id.startswith("sub_"):
                return Resolution(reason="the subscription has no id")
            snapshot = await self.with_discount(snapshot)
            return await self._tie(snapshot, (), authoritative=False)
        if event.type == CHECKOUT_COMPLETED:
            if obj.get("mode") != "subscription":
                return Resolution(reason="checkout session is not in subscription mode")
            sub_id = object_id(obj.get("subscription"))
            if not sub_id:
                return Resolution(reason="checkout session has no subscription")
            hints: tuple[str, ...] = (
                _text(obj.get("client_reference_id")),
                _meta_user(obj.get("metadata")),
            )
            return await self._fetch_and_tie(sub_id, hints)
        if event.type in INVOICE_EVENTS:
            sub_id = invoice_subscription_id(obj)
            if not sub_id:
                return Resolution(reason="invoice does not bill a subscription")
            hints = (_meta_user(invoice_subscription_metadata(obj)),)
            return await self._fetch_and_tie(sub_id, hints)
        return Resolution(reason=f"event type {event.type} is not acted on")

    async def _fetch_and_tie(self, sub_id: str, hints: tuple[str, ...]) -> Resolution:
        snapshot = await self.fetch(sub_id)
        if snapshot is None:
            return Resolution(reason=f"Stripe does not know subscription {sub_id}")
        resolution = await self._tie(snapshot, hints, authoritative=True)
        return replace(resolution, note=f"state of {sub_id} fetched from Stripe")

    async def _tie(
        self, snapshot: SubscriptionSnapshot, hints: tuple[str, ...], *, authoritative: bool
    ) -> Resolution:
        by_row, by_customer = await self._db.run(_known_users, snapshot.id, snapshot.customer_id)
        candidates = (by_row, *hints, _meta_user(snapshot.metadata), by_customer)
        user_id = next((c for c in candidates if c and _usable(c)), "")
        if not user_id:
            return Resolution(
                customer_id=snapshot.customer_id,
                snapshot=snapshot,
                reason="cannot tie the subscription to a user (no user_id metadata, "
                "client_reference_id or known customer)",
            )
        return Resolution(user_id, snapshot.customer_id, snapshot, authoritative)
