"""Pulling state from Stripe instead of waiting for webhooks: SyncCheckoutSession and ReconcileUser.

``SyncCheckoutSession(session_id)`` is called by the success page's backend
when the user returns from Checkout. It checks the session (complete,
subscription mode, made by CreateCheckout for a user), then looks up the
session's own ``checkout.session.completed`` event and its subscription's
``customer.subscription.*`` events in Stripe's Events API and applies them,
oldest first, through ``EventService`` - the ApplyStripeEvent path, with the
same event ids (the checkout event links user and customer, the subscription
events carry the state). Their webhooks, whenever they arrive, are therefore
DUPLICATEs: one applied change and one audit record whatever the order or
race. Only when Stripe lists no subscription event yet is the session's
subscription fetched and stored directly (``store_fetched``, audited with the
caller and the RPC).

``ReconcileUser(user_id)`` lists the subscriptions of the user's Stripe
customer (every status) and stores each with ``store_fetched``.

``store_fetched`` (in the one writer, ``events/transition.py``) writes a
subscription fetched from Stripe (the authority) without inventing an event,
under the same per-subscription lock as the event engine, and only when
Stripe's state differs from the stored row; it keeps the row's event ordering
time, so the next Stripe event still applies over it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from billing_service import audit, validation
from billing_service.access import SubscriptionView
from billing_service.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_service.events.parse import (
    CHECKOUT_COMPLETED,
    SUBSCRIPTION_EVENTS,
    event_from_dict,
)
from billing_service.events.service import EventService
from billing_service.events.writer import SubscriptionWriter
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.stripe_api import StripeApi
from billing_service.stripe_shapes import as_dict, object_id, subscription_snapshot
from billing_service.subscriptions import SubscriptionService

log = logging.getLogger(__name__)

_SESSION_ID = re.compile(r"^cs_[A-Za-z0-9_]{1,250}$")
# Pages of checkout and subscription events (newest first) searched for a session's events.
EVENT_SEARCH_PAGES = 5


@dataclass(frozen=True)
class ReconcileResult:
    """ReconcileUser's answer: the user's subscription and what the resync did."""

    view: SubscriptionView
    seen: int
    changed: int


def _session_user(session: dict[str, Any]) -> str:
    metadata = session.get("metadata")
    candidates = (
        session.get("client_reference_id"),
        metadata.get("user_id") if isinstance(metadata, dict) else None,
    )
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            try:
                return validation.user_id(candidate)
            except InvalidArgument:
                continue
    return ""


class ResyncService:
    """SyncCheckoutSession and ReconcileUser: Stripe's state now, through the usual write paths."""

    def __init__(
        self,
        db: Database,
        stripe_api: StripeApi,
        events: EventService,
        subscriptions: SubscriptionService,
        writer: SubscriptionWriter,
    ) -> None:
        self._db = db
        self._stripe = stripe_api
        self._events = events
        self._subscriptions = subscriptions
        self._writer = writer

    async def sync_checkout_session(self, session_id: str, caller: str) -> SubscriptionView:
        """Grant access from a completed Checkout session now; see billing.proto."""
        if not session_id:
            raise InvalidArgument("session_id", "is required")
        if not _SESSION_ID.match(session_id):
            raise InvalidArgument("session_id", "is not a Stripe Checkout session id (cs_...)")
        session = await self._stripe.retrieve_checkout_session(session_id)
        user_id = _session_user(session)
        if not user_id:
            raise FailedPrecondition(
                "session has no client_reference_id: not made by CreateCheckout"
            )
        if session.get("mode") != "subscription":
            raise FailedPrecondition("session is not in subscription mode")
        if session.get("status") != "complete":
            raise FailedPrecondition(f"session is {session.get('status')}, not complete")
        subscription_id = object_id(session.get("subscription"))
        if not subscription_id:
            raise FailedPrecondition("session has no subscription")
        events = await self._session_events(session, subscription_id)
        for event in events:
            answer = await self._events.apply_parsed(event_from_dict(event))
            log.info(
                "SyncCheckoutSession %s by %s: %s %s -> %s %s",
                session_id,
                caller,
                event.get("type"),
                event.get("id"),
                answer.result.outcome,
                answer.result.reason,
            )
        if not any(e.get("type") in SUBSCRIPTION_EVENTS for e in events):
            # Stripe does not list the subscription's events (yet): store it itself.
            snapshot = subscription_snapshot(
                await self._stripe.retrieve_subscription(subscription_id)
            )
            await self._writer.store_fetched(
                snapshot,
                user_id,
                audit.Cause.call(caller, "SyncCheckoutSession"),
                f"state of {subscription_id} fetched from Stripe for session {session_id}",
            )
        return await self._subscriptions.get(user_id)

    async def _session_events(
        self, session: dict[str, Any], subscription_id: str
    ) -> list[dict[str, Any]]:
        """The session's completion event and its subscription's events, raw, oldest first."""
        params: dict[str, Any] = {
            "types": sorted({CHECKOUT_COMPLETED, *SUBSCRIPTION_EVENTS}),
            "created": {"gte": int(session.get("created") or 0)},
        }
        wanted = {session.get("id"), subscription_id}
        found: list[dict[str, Any]] = []
        for event in await self._stripe.list_events(params, max_pages=EVENT_SEARCH_PAGES):
            obj = (event.get("data") or {}).get("object") or {}
            if isinstance(obj, dict) and obj.get("id") in wanted:
                found.append(event)
        return found[::-1]

    async def reconcile_user(self, user_id: str, caller: str) -> ReconcileResult:
        """Store every subscription Stripe holds for the user's customer; see billing.proto."""
        validation.user_id(user_id)
        customer = await self._db.run(repository.customer_for_user, user_id)
        if customer is None:
            raise NotFound(f"user {user_id!r} has no Stripe customer")
        listed = await self._stripe.list_subscriptions(str(customer.stripe_customer_id))
        changed = 0
        for raw in reversed(listed):  # oldest first, so the audit trail reads in order
            snapshot = subscription_snapshot(as_dict(raw))
            stored = await self._writer.store_fetched(
                snapshot,
                user_id,
                audit.Cause.call(caller, "ReconcileUser"),
                f"reconcile: state of {snapshot.id} fetched from Stripe",
            )
            if stored.reason:
                log.warning(
                    "ReconcileUser %s: %s not stored: %s", user_id, snapshot.id, stored.reason
                )
            changed += stored.applied
        view = await self._subscriptions.get(user_id)
        return ReconcileResult(view, len(listed), changed)
