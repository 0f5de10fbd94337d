"""The one writer's entries for RPC answers and resyncs, and the change notice after commit.

Events are written by ``events/apply.py``; everything else that changes a
stored subscription comes here, and all of it ends in
``transition.write_transition`` under ``transition.lock_subscription``:

- the RPC answers of Cancel, Resume and ChangePlan (``store_answer``), ordered
  by Stripe's clock at the answer: the response's ``Date`` header, the clock
  of the events' ``created``, so an event created before the answer is STALE;
- the resyncs from Stripe, SyncCheckoutSession and ReconcileUser
  (``store_fetched``), which keep the row's ordering time.

``SubscriptionWriter`` runs them on the database pool, asks Stripe when an
answer and an event of the same second disagree, and sends the change
notice (entitlement cache, watchers) after the commit.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from billing_service import audit
from billing_service.access import evaluate
from billing_service.changes import Listener
from billing_service.errors import BillingError
from billing_service.events.ordering import Verdict, decide, state_digest
from billing_service.events.service import DuplicateFound
from billing_service.events.transition import (
    Ordering,
    Written,
    audit_unchanged,
    lock_subscription,
    plan_of,
    row_snapshot,
    write_transition,
)
from billing_service.lifecycle import parse_status
from billing_service.plans import Catalog
from billing_service.storage import fixed_sql, repository
from billing_service.storage.database import Database
from billing_service.storage.models import utcnow
from billing_service.stripe_shapes import SubscriptionSnapshot, subscription_snapshot

log = logging.getLogger(__name__)


class Authority(Protocol):
    """Stripe, asked for a subscription's current state when two writes of one second disagree."""

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe holds it now."""
        ...


def store_fetched(
    db: Database,
    catalog: Catalog,
    snapshot: SubscriptionSnapshot,
    user_id: str,
    cause: audit.Cause,
    note: str,
) -> Written:
    """Store a subscription just fetched from Stripe for ``user_id``; call inside ``Database.run``.

    Writes the row and one audit record only when Stripe's state differs from
    the stored row; refuses (audited) a transition Stripe never makes, and
    leaves a subscription stored for another user alone. The row keeps the
    ordering time of the newest event, so the next Stripe event still applies
    over a state fetched outside events; the digest is updated, so a
    same-second event that disagrees makes the engine ask Stripe.
    """
    with db.transaction():
        lock_subscription(db, snapshot.id)
        row = repository.subscription_by_stripe_id(snapshot.id)
        if row is not None and row.user_id != user_id:
            return Written(False, f"{snapshot.id} belongs to another user")
        plan = plan_of(catalog, snapshot, row)
        digest = state_digest(snapshot)
        if row is not None and state_digest(row_snapshot(row)) == digest and row.plan == plan:
            return Written(False)
        try:
            after = parse_status(snapshot.status)
        except ValueError:
            return Written(False, f"unknown subscription status {snapshot.status!r}")
        if snapshot.customer_id:
            fixed_sql.link_customer(user_id, snapshot.customer_id, utcnow())
        ordering = Ordering(
            int(row.last_event_created) if row is not None else 0,
            str(row.last_event_id) if row is not None else "",
            digest,
        )
        return write_transition(
            catalog, row, snapshot, after, user_id=user_id, plan=plan, cause=cause,
            ordering=ordering, detail=note,
        )  # fmt: skip


def store_answer(
    db: Database,
    catalog: Catalog,
    snapshot: SubscriptionSnapshot,
    user_id: str,
    cause: audit.Cause,
    stripe_time: int | None,
    detail: str,
    authoritative: bool = False,
) -> Written:
    """Store Stripe's answer to an RPC, ordered by ``stripe_time``; call inside ``Database.run``.

    The answer is Stripe's state at ``stripe_time`` (its response ``Date``):
    it is stored with that time as its ordering time, so an event created
    before it is STALE. When a newer event already wrote the row, the row
    stays and the refusal is audited. When an event of the same second stored
    a different state, nothing is written and ``ask_stripe`` is set: the caller
    fetches the subscription and stores that (``authoritative``). Without
    ``stripe_time`` the row keeps its ordering time, and the next event
    applies over the answer.
    """
    with db.transaction():
        lock_subscription(db, snapshot.id)
        row = repository.subscription_by_stripe_id(snapshot.id)
        digest = state_digest(snapshot)
        tier_before = evaluate(row, catalog, utcnow()).tier
        if stripe_time is None:
            ordering = Ordering(
                int(row.last_event_created) if row is not None else 0,
                str(row.last_event_id) if row is not None else "",
                digest,
            )
        else:
            ordering = Ordering(stripe_time, "", digest)
            verdict = decide(
                stored_created=int(row.last_event_created) if row is not None else None,
                stored_digest=str(row.last_state_digest) if row is not None else "",
                event_created=stripe_time,
                event_digest=digest,
                authoritative=authoritative,
                stored_status=str(row.status) if row is not None else "",
                event_status=snapshot.status,
            )
            if verdict is Verdict.ASK_STRIPE:
                return Written(False, "same-second conflict with the stored state", True)
            if verdict is Verdict.STALE:
                assert row is not None
                reason = (
                    f"Stripe's answer at {stripe_time} is older than the stored state "
                    f"(set by {row.last_event_id or 'an RPC'} created {row.last_event_created}); "
                    "kept the stored state"
                )
                audit_unchanged(row, snapshot.id, user_id, cause, tier_before, detail, reason)
                return Written(False, reason)
        try:
            after = parse_status(snapshot.status)
        except ValueError:
            return Written(False, f"unknown subscription status {snapshot.status!r}")
        return write_transition(
            catalog, row, snapshot, after, user_id=user_id, plan=plan_of(catalog, snapshot, row),
            cause=cause, ordering=ordering, detail=detail,
        )  # fmt: skip


class SubscriptionWriter:
    """Runs the RPC and resync writes on the database pool, then sends the change notice."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        authority: Authority,
        on_user_changed: Listener | None = None,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._authority = authority
        self._on_user_changed = on_user_changed
        # Set once the duplicate policy exists (it cancels through the services this writer serves).
        self.on_duplicate: DuplicateFound | None = None

    async def notify(self, user_id: str) -> None:
        """Tell listeners (entitlement cache, watchers) that ``user_id`` changed; after commit."""
        if self._on_user_changed is not None:
            await self._on_user_changed(user_id)

    async def _after_commit(self, user_id: str, subscription_id: str, written: Written) -> None:
        if written.applied:
            await self.notify(user_id)
        if written.duplicates and self.on_duplicate is not None:
            await self.on_duplicate(user_id, subscription_id, written.duplicates)

    async def store_answer(
        self,
        snapshot: SubscriptionSnapshot,
        user_id: str,
        cause: audit.Cause,
        stripe_time: int | None,
        detail: str,
    ) -> Written:
        """``store_answer`` on the pool (asking Stripe on a same-second conflict); notifies."""
        written = await self._db.run(
            store_answer, self._db, self._catalog, snapshot, user_id, cause, stripe_time, detail
        )
        if written.ask_stripe:
            try:
                fetched = subscription_snapshot(
                    await self._authority.retrieve_subscription(snapshot.id)
                )
            except BillingError as exc:
                # Stripe's webhooks of the change still converge the row.
                log.warning("%s: same-second conflict, Stripe not asked: %s", snapshot.id, exc)
                return written
            note = f"{detail}; same-second conflict: state of {snapshot.id} fetched from Stripe"
            written = await self._db.run(
                store_answer,
                self._db,
                self._catalog,
                fetched,
                user_id,
                cause,
                stripe_time,
                note,
                True,
            )
        await self._after_commit(user_id, snapshot.id, written)
        return written

    async def store_fetched(
        self, snapshot: SubscriptionSnapshot, user_id: str, cause: audit.Cause, note: str
    ) -> Written:
        """``store_fetched`` on the pool; notifies when the row was written."""
        written = await self._db.run(
            store_fetched, self._db, self._catalog, snapshot, user_id, cause, note
        )
        await self._after_commit(user_id, snapshot.id, written)
        return written
