"""Subscription RPCs: Portal, Get, Cancel and Resume (Checkout is ``checkout.py``).

Each operation validates its input first, then talks to Stripe, then stores
what Stripe answered through the one writer (``events/writer.py``): under
the subscription's lock, ordered by Stripe's clock at the answer, with an
audit record, and the change notice after the commit.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from billing_service import audit, validation
from billing_service.access import SubscriptionView, evaluate
from billing_service.best_subscription import choose, is_live
from billing_service.errors import FailedPrecondition, NotFound
from billing_service.lifecycle import TERMINAL, Status
from billing_service.plans import Catalog
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.storage.models import utcnow
from billing_service.stripe_api import Answer, StripeApi
from billing_service.stripe_shapes import subscription_snapshot

if TYPE_CHECKING:
    from billing_service.events.writer import SubscriptionWriter

log = logging.getLogger(__name__)


class SubscriptionService:
    """The subscription operations behind the gRPC servicer."""

    def __init__(
        self,
        db: Database,
        stripe_api: StripeApi,
        catalog: Catalog,
        writer: SubscriptionWriter,
        *,
        redirect_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self._db = db
        self._stripe = stripe_api
        self._catalog = catalog
        self._writer = writer
        self._redirect_hosts = redirect_hosts

    def _view(self, user_id: str) -> SubscriptionView:
        choice = choose(repository.subscriptions_of_user(user_id), self._catalog, utcnow())
        row = choice.best
        customer = repository.customer_for_user(user_id)
        customer_id = (
            row.stripe_customer_id if row else (customer.stripe_customer_id if customer else "")
        )
        return SubscriptionView(user_id, row, customer_id, choice.grant, choice.others)

    async def get(self, user_id: str) -> SubscriptionView:
        """The user's current subscription; status NONE and tier free when there is none."""
        validation.user_id(user_id)
        return await self._db.run(self._view, user_id)

    def other_views(self, view: SubscriptionView) -> list[SubscriptionView]:
        """A view of each of ``view``'s other live subscriptions, best first."""
        now = utcnow()
        return [
            SubscriptionView(
                view.user_id, row, str(row.stripe_customer_id), evaluate(row, self._catalog, now)
            )
            for row in view.others
        ]

    async def create_portal(self, user_id: str, return_url: str) -> str:
        """A Customer Portal URL for the user's Stripe customer."""
        validation.user_id(user_id)
        validation.url(return_url, "return_url", self._redirect_hosts)
        view = await self._db.run(self._view, user_id)
        if not view.stripe_customer_id:
            raise NotFound(f"user {user_id!r} has no Stripe customer")
        session = await self._stripe.create_portal_session(view.stripe_customer_id, return_url)
        return str(session["url"])

    def _view_of(self, user_id: str, subscription_id: str) -> SubscriptionView | None:
        """The view of one of the user's subscriptions (others: the user's other live ones)."""
        row = repository.subscription_by_stripe_id(subscription_id)
        if row is None or row.user_id != user_id:
            return None
        choice = choose(repository.subscriptions_of_user(user_id), self._catalog, utcnow())
        others = tuple(o for o in (choice.best, *choice.others) if o is not None and o.id != row.id)
        return SubscriptionView(
            user_id,
            row,
            str(row.stripe_customer_id),
            evaluate(row, self._catalog, utcnow()),
            tuple(o for o in others if is_live(o)),
        )

    async def target(self, user_id: str, subscription_id: str) -> SubscriptionView:
        """The subscription a Cancel/Resume/ChangePlan call acts on.

        ``subscription_id`` names one of the user's subscriptions; empty means the
        user's only live one, and is refused (naming every live id) when there are
        several, so a duplicate is never acted on by guess.
        """
        validation.user_id(user_id)
        if subscription_id:
            validation.subscription_id(subscription_id)
            found = await self._db.run(self._view_of, user_id, subscription_id)
            if found is None:
                raise NotFound(f"user {user_id!r} has no subscription {subscription_id!r}")
            return found
        view = await self._db.run(self._view, user_id)
        if view.others:
            live = [row for row in (view.row, *view.others) if row is not None and is_live(row)]
            ids = ", ".join(str(row.stripe_subscription_id) for row in live)
            raise FailedPrecondition(
                f"user {user_id!r} has {len(live)} live subscriptions ({ids}); "
                "name one in subscription_id"
            )
        return view

    async def _live_row(self, user_id: str, subscription_id: str) -> SubscriptionView:
        view = await self.target(user_id, subscription_id)
        if view.row is None:
            raise NotFound(f"user {user_id!r} has no subscription")
        if view.status in TERMINAL:
            raise FailedPrecondition(f"subscription is already {view.status.value}")
        return view

    async def cancel(
        self, user_id: str, at_period_end: bool, caller: str, subscription_id: str = ""
    ) -> SubscriptionView:
        """Cancel now or at period end; stores Stripe's answer with an audit record."""
        view = await self._live_row(user_id, subscription_id)
        assert view.row is not None
        sub_id = view.row.stripe_subscription_id
        if at_period_end:
            if view.row.cancel_at_period_end:
                return view
            answer = await self._stripe.update_subscription(sub_id, {"cancel_at_period_end": True})
        else:
            answer = await self._stripe.cancel_subscription(sub_id)
        return await self.store_answer(view, answer, caller, "CancelSubscription")

    async def resume(
        self, user_id: str, caller: str, subscription_id: str = ""
    ) -> SubscriptionView:
        """Undo a cancel at period end (or resume a paused subscription)."""
        view = await self._live_row(user_id, subscription_id)
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
        """Store Stripe's answer to ``caller``'s ``rpc`` through the one writer.

        The answer is the view of the subscription acted on. An event Stripe
        created after the answer may already have written the row; then the row
        stays (the refusal is audited) and the view shows it.
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
        after = await self._db.run(self._view_of, before.user_id, snapshot.id)
        assert after is not None
        return after
