"""Pulling state from Stripe instead of waiting for webhooks: SyncCheckoutSession and ReconcileUser.

``SyncCheckoutSession(session_id)`` is called by the success page's backend
when the user returns from Checkout. It checks the session (complete,
subscription mode, made by CreateCheckout for a user), then looks up the
session's own ``checkout.session.completed`` event in Stripe's Events API and
applies it through ``EventService`` - the ApplyStripeEvent path, with the
same event id. The webhook of that event, whenever it arrives, is therefore
a DUPLICATE: one applied change and one audit record whatever the order or
race. Only when Stripe does not list the event yet is the session's
subscription fetched and stored directly (``store_fetched``, audited with the
caller and the RPC).

``ReconcileUser(user_id)`` lists the subscriptions of the user's Stripe
customer (every status) and stores each with ``store_fetched``.

``store_fetched`` writes a subscription fetched from Stripe (the authority)
without inventing an event: in one transaction, under the same per-subscription
advisory lock as the event engine, it compares Stripe's state with the stored
row and writes (with one audit record) only when they differ, so repeating it
changes nothing. Like the Cancel/Resume RPCs it keeps the row's event ordering
time (``last_event_created``), so the next Stripe event still applies over it;
it updates the state digest, so a same-second event that disagrees makes the
engine ask Stripe.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from billing_service import audit, validation
from billing_service.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_service.events.apply import _ADVISORY_NAMESPACE  # one lock namespace for both
from billing_service.events.ordering import state_digest
from billing_service.events.parse import CHECKOUT_COMPLETED
from billing_service.events.service import DuplicateFound, EventService
from billing_service.events.transition import Ordering, write_transition
from billing_service.lifecycle import parse_status
from billing_service.plans import Catalog
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.storage.models import Customer, Subscription, utcnow
from billing_service.stripe_api import StripeApi
from billing_service.stripe_shapes import (
    SubscriptionSnapshot,
    as_dict,
    object_id,
    subscription_snapshot,
)
from billing_service.subscriptions import (
    SubscriptionService,
    SubscriptionView,
    UserChanged,
)

log = logging.getLogger(__name__)

_SESSION_ID = re.compile(r"^cs_[A-Za-z0-9_]{1,250}$")
# Pages of checkout.session.completed events (newest first) searched for a session's event.
EVENT_SEARCH_PAGES = 5


@dataclass(frozen=True)
class Stored:
    """What ``store_fetched`` did: ``changed`` when it wrote; ``reason`` when it refused."""

    changed: bool
    reason: str = ""
    # The user's other live subscriptions when this write made a second one live.
    duplicates: tuple[str, ...] = ()


def _row_snapshot(row: Subscription) -> SubscriptionSnapshot:
    return SubscriptionSnapshot(
        id=str(row.stripe_subscription_id),
        customer_id=str(row.stripe_customer_id),
        status=str(row.status),
        price_id=str(row.price_id),
        current_period_start=row.current_period_start,
        current_period_end=row.current_period_end,
        cancel_at_period_end=bool(row.cancel_at_period_end),
        canceled_at=row.canceled_at,
        created=int(row.stripe_created),
    )


def store_fetched(
    db: Database,
    catalog: Catalog,
    snapshot: SubscriptionSnapshot,
    user_id: str,
    cause: audit.Cause,
    note: str,
) -> Stored:
    """Store a subscription just fetched from Stripe for ``user_id``; call inside ``Database.run``.

    Writes the row and one audit record only when Stripe's state differs from
    the stored row; refuses (audited, like the engine) a transition Stripe never
    makes, and leaves a subscription stored for another user alone.
    """
    with db.transaction():
        if db.is_postgres:
            db.db.execute_sql(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_ADVISORY_NAMESPACE, snapshot.id)
            )
        row = repository.subscription_by_stripe_id(snapshot.id)
        if row is not None and row.user_id != user_id:
            return Stored(False, f"{snapshot.id} belongs to another user")
        known = catalog.plan_for_price(snapshot.price_id)
        plan = known.name if known else (str(row.plan) if row is not None else "")
        digest = state_digest(snapshot)
        if row is not None and state_digest(_row_snapshot(row)) == digest and row.plan == plan:
            return Stored(False)
        try:
            after = parse_status(snapshot.status)
        except ValueError:
            return Stored(False, f"unknown subscription status {snapshot.status!r}")
        if snapshot.customer_id:
            Customer.insert(
                user_id=user_id, stripe_customer_id=snapshot.customer_id, created_at=utcnow()
            ).on_conflict_ignore().execute()
        written = write_transition(
            catalog,
            row,
            snapshot,
            after,
            user_id=user_id,
            plan=plan,
            cause=cause,
            # The row keeps the ordering time of the newest event: the next
            # Stripe event still applies over a state fetched outside events.
            ordering=Ordering(
                int(row.last_event_created) if row is not None else 0,
                str(row.last_event_id) if row is not None else "",
                digest,
            ),
            detail=note,
        )
        return Stored(written.applied, written.reason, written.duplicates)


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
        catalog: Catalog,
        stripe_api: StripeApi,
        events: EventService,
        subscriptions: SubscriptionService,
        on_user_changed: UserChanged | None = None,
        on_duplicate: DuplicateFound | None = None,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._stripe = stripe_api
        self._events = events
        self._subscriptions = subscriptions
        self._on_user_changed = on_user_changed
        self._on_duplicate = on_duplicate

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
        event = await self._completion_event(session)
        if event is not None:
            answer = await self._events.apply(json.dumps(event).encode())
            log.info(
                "SyncCheckoutSession %s by %s: %s %s -> %s %s",
                session_id,
                caller,
                CHECKOUT_COMPLETED,
                event.get("id"),
                answer.result.outcome,
                answer.result.reason,
            )
        else:
            # Stripe does not list the event (yet): store the subscription itself.
            snapshot = subscription_snapshot(
                await self._stripe.retrieve_subscription(subscription_id)
            )
            stored = await self._db.run(
                store_fetched,
                self._db,
                self._catalog,
                snapshot,
                user_id,
                audit.Cause.call(caller, "SyncCheckoutSession"),
                f"state of {subscription_id} fetched from Stripe for session {session_id}",
            )
            if stored.changed and self._on_user_changed is not None:
                await self._on_user_changed(user_id)
            await self._duplicates(user_id, snapshot.id, stored)
        return await self._subscriptions.get(user_id)

    async def _duplicates(self, user_id: str, subscription_id: str, stored: Stored) -> None:
        if stored.duplicates and self._on_duplicate is not None:
            await self._on_duplicate(user_id, subscription_id, stored.duplicates)

    async def _completion_event(self, session: dict[str, Any]) -> dict[str, Any] | None:
        """The session's checkout.session.completed event as Stripe lists it (raw), if listed."""
        params: dict[str, Any] = {
            "type": CHECKOUT_COMPLETED,
            "created": {"gte": int(session.get("created") or 0)},
            "limit": 100,
        }
        for _ in range(EVENT_SEARCH_PAGES):
            page = await self._stripe.list_events(params)
            data = [e for e in page.get("data") or [] if isinstance(e, dict)]
            for event in data:
                obj = (event.get("data") or {}).get("object") or {}
                if isinstance(obj, dict) and obj.get("id") == session.get("id"):
                    return event
            if not page.get("has_more") or not data:
                return None
            params["starting_after"] = data[-1]["id"]
        return None

    async def reconcile_user(self, user_id: str, caller: str) -> ReconcileResult:
        """Store every subscription Stripe holds for the user's customer; see billing.proto."""
        validation.user_id(user_id)
        customer = await self._db.run(repository.customer_for_user, user_id)
        if customer is None:
            raise NotFound(f"user {user_id!r} has no Stripe customer")
        listed = await self._stripe.list_subscriptions(str(customer.stripe_customer_id))
        changed = 0
        found: list[tuple[str, Stored]] = []
        for raw in reversed(listed):  # oldest first, so the audit trail reads in order
            snapshot = subscription_snapshot(as_dict(raw))
            stored = await self._db.run(
                store_fetched,
                self._db,
                self._catalog,
                snapshot,
                user_id,
                audit.Cause.call(caller, "ReconcileUser"),
                f"reconcile: state of {snapshot.id} fetched from Stripe",
            )
            if stored.reason:
                log.warning(
                    "ReconcileUser %s: %s not stored: %s", user_id, snapshot.id, stored.reason
                )
            changed += stored.changed
            found.append((snapshot.id, stored))
        if changed and self._on_user_changed is not None:
            await self._on_user_changed(user_id)
        for subscription_id, stored in found:
            await self._duplicates(user_id, subscription_id, stored)
        view = await self._subscriptions.get(user_id)
        return ReconcileResult(view, len(listed), changed)
