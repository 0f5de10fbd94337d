"""The one writer of subscription state: lock, ordering, transition rules, audit, change notice.

Every change to a stored subscription ends here, inside a transaction:

- ApplyStripeEvent (``events/apply.py``) with the event's ``created``;
- the RPC answers of Cancel, Resume and ChangePlan (``store_answer``), ordered
  by Stripe's clock at the answer: the response's ``Date`` header;
- the resyncs from Stripe, SyncCheckoutSession and ReconcileUser
  (``store_fetched``), which keep the row's ordering time.

Each takes the per-subscription lock (``lock_subscription``: a transaction
advisory lock on PostgreSQL; SQLite's IMMEDIATE transactions serialize all
writers), reads the row, asks ``ordering.decide`` and ``lifecycle`` whether it
may write, and writes the row and its audit record together, or refuses and
audits the refusal. ``SubscriptionWriter`` runs the RPC and resync writes on
the database pool and sends the change notice after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing_service import audit
from billing_service.events.ordering import Decision, decide, state_digest
from billing_service.lifecycle import Status, parse_status, transition_allowed
from billing_service.plans import Catalog
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.storage.models import Customer, Subscription, utcnow
from billing_service.stripe_shapes import SubscriptionSnapshot
from billing_service.subscriptions import UserChanged, evaluate

ADVISORY_NAMESPACE = 1  # pg_advisory_xact_lock(namespace, hashtext(subscription id))


@dataclass(frozen=True)
class Ordering:
    """The ordering data stored with the new state (the event that set it)."""

    event_created: int
    event_id: str
    state_digest: str


@dataclass(frozen=True)
class Written:
    """``applied`` when the row was written; otherwise ``reason`` says why not."""

    applied: bool
    reason: str = ""


def lock_subscription(db: Database, subscription_id: str) -> None:
    """Serialize writers of one subscription until the current transaction ends."""
    if db.is_postgres:
        db.db.execute_sql(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ADVISORY_NAMESPACE, subscription_id)
        )


def write_transition(
    catalog: Catalog,
    row: Subscription | None,
    snapshot: SubscriptionSnapshot,
    after: Status,
    *,
    user_id: str,
    plan: str,
    cause: audit.Cause,
    ordering: Ordering,
    detail: str,
) -> Written:
    """Store ``snapshot`` over ``row`` with an audit record, or refuse and audit the refusal.

    ``detail`` goes into the audit record; a refusal's record adds the reason.
    """
    now = utcnow()
    before = Status(row.status) if row is not None else Status.NONE
    tier_before = evaluate(row, catalog, now).tier
    if not transition_allowed(before, after):
        reason = f"refused transition {before.value} -> {after.value}: Stripe never makes it"
        _audit_unchanged(row, snapshot.id, user_id, cause, tier_before, detail, reason)
        return Written(False, reason)
    stored = repository.upsert_subscription(
        snapshot,
        user_id,
        plan,
        event_created=ordering.event_created,
        event_id=ordering.event_id,
        state_digest=ordering.state_digest,
    )
    audit.append(
        user_id=user_id,
        stripe_subscription_id=snapshot.id,
        cause=cause,
        status_before=before.value,
        status_after=after.value,
        tier_before=tier_before,
        tier_after=evaluate(stored, catalog, now).tier,
        detail=detail,
    )
    return Written(True)


def _audit_unchanged(
    row: Subscription | None,
    subscription_id: str,
    user_id: str,
    cause: audit.Cause,
    tier: str,
    detail: str,
    reason: str,
) -> None:
    status = row.status if row is not None else Status.NONE.value
    audit.append(
        user_id=user_id,
        stripe_subscription_id=subscription_id,
        cause=cause,
        status_before=status,
        status_after=status,
        tier_before=tier,
        tier_after=tier,
        detail=f"{detail}; {reason}" if detail else reason,
    )


def plan_of(catalog: Catalog, snapshot: SubscriptionSnapshot, row: Subscription | None) -> str:
    """The catalog plan of the snapshot's price, else the stored plan."""
    known = catalog.plan_for_price(snapshot.price_id)
    return known.name if known else (str(row.plan) if row is not None else "")


def row_snapshot(row: Subscription) -> SubscriptionSnapshot:
    """The stored row as a snapshot (to compare with Stripe's state)."""
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
            Customer.insert(
                user_id=user_id, stripe_customer_id=snapshot.customer_id, created_at=utcnow()
            ).on_conflict_ignore().execute()
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
) -> Written:
    """Store Stripe's answer to an RPC, ordered by ``stripe_time``; call inside ``Database.run``.

    The answer is Stripe's state at ``stripe_time`` (its response ``Date``):
    it is stored with that time as its ordering time, so an event created
    before it is STALE. When a newer event already wrote the row, the row
    stays and the refusal is audited. In the same second the answer wins (it
    is what Stripe said last); a later same-second event that disagrees makes
    the engine ask Stripe. Without ``stripe_time`` the row keeps its ordering
    time, and the next event applies over the answer.
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
            decision = decide(
                stored_created=int(row.last_event_created) if row is not None else None,
                stored_digest=str(row.last_state_digest) if row is not None else "",
                event_created=stripe_time,
                event_digest=digest,
                authoritative=True,
            )
            if decision is Decision.STALE:
                assert row is not None
                reason = (
                    f"Stripe's answer at {stripe_time} is older than the stored state "
                    f"(set by {row.last_event_id or 'an RPC'} created {row.last_event_created}); "
                    "kept the stored state"
                )
                _audit_unchanged(row, snapshot.id, user_id, cause, tier_before, detail, reason)
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
        self, db: Database, catalog: Catalog, on_user_changed: UserChanged | None = None
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._on_user_changed = on_user_changed

    async def notify(self, user_id: str) -> None:
        """Tell listeners (entitlement cache, watchers) that ``user_id`` changed; after commit."""
        if self._on_user_changed is not None:
            await self._on_user_changed(user_id)

    async def store_answer(
        self,
        snapshot: SubscriptionSnapshot,
        user_id: str,
        cause: audit.Cause,
        stripe_time: int | None,
        detail: str,
    ) -> Written:
        """``store_answer`` on the pool; notifies when the row was written."""
        written = await self._db.run(
            store_answer, self._db, self._catalog, snapshot, user_id, cause, stripe_time, detail
        )
        if written.applied:
            await self.notify(user_id)
        return written

    async def store_fetched(
        self, snapshot: SubscriptionSnapshot, user_id: str, cause: audit.Cause, note: str
    ) -> Written:
        """``store_fetched`` on the pool; notifies when the row was written."""
        written = await self._db.run(
            store_fetched, self._db, self._catalog, snapshot, user_id, cause, note
        )
        if written.applied:
            await self.notify(user_id)
        return written
