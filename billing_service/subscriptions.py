"""Subscription RPCs: Checkout, Portal, Get, Cancel and Resume.

Each operation validates its input first, then talks to Stripe, then stores
what Stripe answered through the one writer (``events/transition.py``): under
the subscription's lock, ordered by Stripe's clock at the answer, with an
audit record, and the change notice after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from billing_service import audit, validation
from billing_service.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_service.lifecycle import LIVE_PAID, TERMINAL, Grant, Status, grant
from billing_service.plans import FREE_TIER, Catalog
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.storage.models import Subscription, utcnow
from billing_service.stripe_api import Answer, StripeApi, idempotency_key
from billing_service.stripe_shapes import subscription_snapshot

if TYPE_CHECKING:
    from billing_service.events.writer import SubscriptionWriter

log = logging.getLogger(__name__)

UserChanged = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class SubscriptionView:
    """A user's subscription plus the access it grants now."""

    user_id: str
    row: Subscription | None
    stripe_customer_id: str
    grant: Grant

    @property
    def status(self) -> Status:
        """The stored status, NONE without a subscription."""
        return Status(self.row.status) if self.row else Status.NONE


def evaluate(row: Subscription | None, catalog: Catalog, now: datetime) -> Grant:
    """The grant of a stored subscription row (free without one)."""
    if row is None:
        return Grant(FREE_TIER, None)
    plan = row.plan if row.plan in catalog.plans else ""
    return grant(
        Status(row.status),
        plan,
        row.current_period_end,
        row.cancel_at_period_end,
        now,
        catalog.access,
    )


class SubscriptionService:
    """The subscription operations behind the gRPC servicer."""

    def __init__(
        self,
        db: Database,
        stripe_api: StripeApi,
        catalog: Catalog,
        writer: SubscriptionWriter,
    ) -> None:
        self._db = db
        self._stripe = stripe_api
        self._catalog = catalog
        self._writer = writer
        self._user_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._user_locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._user_locks[user_id] = lock
        return lock

    def _view(self, user_id: str) -> SubscriptionView:
        row = repository.current_subscription(user_id)
        customer = repository.customer_for_user(user_id)
        customer_id = (
            row.stripe_customer_id if row else (customer.stripe_customer_id if customer else "")
        )
        return SubscriptionView(user_id, row, customer_id, evaluate(row, self._catalog, utcnow()))

    async def get(self, user_id: str) -> SubscriptionView:
        """The user's current subscription; status NONE and tier free when there is none."""
        validation.user_id(user_id)
        return await self._db.run(self._view, user_id)

    async def create_checkout(
        self,
        *,
        user_id: str,
        email: str,
        plan: str,
        success_url: str,
        cancel_url: str,
        request_id: str,
    ) -> tuple[str, str]:
        """A Checkout session for ``plan``; returns (checkout_url, session_id)."""
        validation.user_id(user_id)
        validation.email(email)
        if not plan:
            raise InvalidArgument("plan", "is required")
        if plan not in self._catalog.plans:
            known = ", ".join(sorted(self._catalog.plans))
            raise InvalidArgument("plan", f"unknown plan {plan!r} (known: {known})")
        validation.url(success_url, "success_url")
        validation.url(cancel_url, "cancel_url")
        validation.request_id(request_id)
        price_id = self._catalog.plans[plan].price_id

        async with self._lock(user_id):
            view = await self._db.run(self._view, user_id)
            if view.row is not None and view.status in LIVE_PAID:
                raise FailedPrecondition(
                    f"user already has a {view.status.value} subscription; "
                    "change plans through the customer portal"
                )
            customer_id = view.stripe_customer_id or await self._create_customer(
                user_id, email, request_id
            )
        params: dict[str, Any] = {
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "client_reference_id": user_id,
            "metadata": {"user_id": user_id, "plan": plan},
            "subscription_data": {"metadata": {"user_id": user_id, "plan": plan}},
            "allow_promotion_codes": True,
            "billing_address_collection": "required",
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        key = idempotency_key("checkout", user_id, plan, request_id)
        session = await self._stripe.create_checkout_session(params, key)
        return str(session.get("url") or ""), str(session["id"])

    async def _create_customer(self, user_id: str, email: str, request_id: str) -> str:
        customer = await self._stripe.create_customer(user_id, email, request_id)
        linked = await self._db.run(repository.link_customer, user_id, customer["id"], email)
        if linked.stripe_customer_id != customer["id"]:
            log.warning("user already linked to another Stripe customer; using the first link")
        return str(linked.stripe_customer_id)

    async def create_portal(self, user_id: str, return_url: str) -> str:
        """A Customer Portal URL for the user's Stripe customer."""
        validation.user_id(user_id)
        validation.url(return_url, "return_url")
        view = await self._db.run(self._view, user_id)
        if not view.stripe_customer_id:
            raise NotFound(f"user {user_id!r} has no Stripe customer")
        session = await self._stripe.create_portal_session(view.stripe_customer_id, return_url)
        return str(session["url"])

    async def _live_row(self, user_id: str) -> SubscriptionView:
        view = await self._db.run(self._view, user_id)
        if view.row is None:
            raise NotFound(f"user {user_id!r} has no subscription")
        if view.status in TERMINAL:
            raise FailedPrecondition(f"subscription is already {view.status.value}")
        return view

    async def cancel(self, user_id: str, at_period_end: bool, caller: str) -> SubscriptionView:
        """Cancel now or at period end; stores Stripe's answer with an audit record."""
        validation.user_id(user_id)
        view = await self._live_row(user_id)
        assert view.row is not None
        sub_id = view.row.stripe_subscription_id
        if at_period_end:
            if view.row.cancel_at_period_end:
                return view
            answer = await self._stripe.update_subscription(sub_id, {"cancel_at_period_end": True})
        else:
            answer = await self._stripe.cancel_subscription(sub_id)
        return await self.store_answer(view, answer, caller, "CancelSubscription")

    async def resume(self, user_id: str, caller: str) -> SubscriptionView:
        """Undo a cancel at period end (or resume a paused subscription)."""
        validation.user_id(user_id)
        view = await self._live_row(user_id)
        assert view.row is not None
        sub_id = view.row.stripe_subscription_id
        if view.status is Status.PAUSED:
            answer = await self._stripe.resume_subscription(sub_id)
        elif view.row.cancel_at_period_end:
            answer = await self._stripe.update_subscription(sub_id, {"cancel_at_period_end": False})
        else:
            raise FailedPrecondition("subscription is not set to cancel and is not paused")
        return await self.store_answer(view, answer, caller, "ResumeSubscription")

    async def store_answer(
        self,
        before: SubscriptionView,
        answer: Answer,
        caller: str,
        rpc: str,
        detail: str | None = None,
    ) -> SubscriptionView:
        """Store Stripe's answer to ``caller``'s ``rpc`` through the one writer; the user's view.

        An event Stripe created after the answer may already have written the
        row; then the row stays (the refusal is audited) and the view shows it.
        """
        assert before.row is not None
        snapshot = subscription_snapshot(answer.obj)
        written = await self._writer.store_answer(
            snapshot,
            before.user_id,
            audit.Cause.call(caller, rpc),
            answer.stripe_time,
            detail or f"cancel_at_period_end={snapshot.cancel_at_period_end}",
        )
        if not written.applied:
            log.info("%s answer for %s not stored: %s", rpc, snapshot.id, written.reason)
        return await self._db.run(self._view, before.user_id)
