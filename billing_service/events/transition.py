"""The one write of a subscription state change: lock, then refuse it or store it with its audit.

Every change to a stored subscription ends in ``write_transition``, inside a
transaction that first took ``lock_subscription`` (a transaction advisory
lock on PostgreSQL; SQLite's IMMEDIATE transactions serialize all writers):
ApplyStripeEvent (``events/apply.py``), and the RPC answers and resyncs
(``events/writer.py``). So a transition Stripe never makes is refused and
audited the same way wherever it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from billing_service import audit
from billing_service.access import evaluate
from billing_service.events import duplicate_check
from billing_service.lifecycle import LIVE, Status, transition_allowed
from billing_service.plans import Catalog
from billing_service.storage import fixed_sql, repository
from billing_service.storage.database import Database
from billing_service.storage.deferred import execute_later
from billing_service.storage.models import Subscription, utcnow
from billing_service.stripe_shapes import SubscriptionSnapshot

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
    # A same-second write disagrees with the answer: only Stripe can say which is last.
    ask_stripe: bool = False
    # Ids of the user's other live subscriptions when this write made a second one live.
    duplicates: tuple[str, ...] = ()
    # The row as stored by this write (RETURNING): the answer needs no read after it.
    stored: Subscription | None = field(default=None, compare=False, repr=False)


def lock_subscription(db: Database, subscription_id: str) -> None:
    """Serialize writers of one subscription until the current transaction ends."""
    if db.is_postgres:
        # Deferred inside a group commit: it travels with the read that follows it.
        execute_later(fixed_sql.ADVISORY_XACT_LOCK_SQL, (ADVISORY_NAMESPACE, subscription_id))


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
        audit_unchanged(row, snapshot.id, user_id, cause, tier_before, detail, reason)
        return Written(False, reason)
    stored = repository.upsert_subscription(
        row_values(snapshot, user_id, plan),
        event_created=ordering.event_created,
        event_id=ordering.event_id,
        state_digest=ordering.state_digest,
    )
    tier_after = evaluate(stored, catalog, now).tier
    audit.append(
        user_id=user_id,
        stripe_subscription_id=snapshot.id,
        cause=cause,
        status_before=before.value,
        status_after=after.value,
        tier_before=tier_before,
        tier_after=tier_after,
        detail=detail,
    )
    if after not in LIVE or before in LIVE:
        return Written(True, stored=stored)
    others = duplicate_check.other_live(user_id, snapshot.id)
    if others:
        audit.append(
            user_id=user_id,
            stripe_subscription_id=snapshot.id,
            cause=cause,
            status_before=after.value,
            status_after=after.value,
            tier_before=tier_after,
            tier_after=tier_after,
            detail=duplicate_check.audit_detail(snapshot.id, others),
        )
    return Written(True, duplicates=others, stored=stored)


def audit_unchanged(
    row: Subscription | None,
    subscription_id: str,
    user_id: str,
    cause: audit.Cause,
    tier: str,
    detail: str,
    reason: str,
) -> None:
    """Audit a write that was refused: status and tier stay, the reason says why."""
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


def row_values(
    snapshot: SubscriptionSnapshot, user_id: str, plan: str
) -> repository.SubscriptionValues:
    """The row that stores ``snapshot`` for ``user_id`` on ``plan``.

    A snapshot without a status stores as incomplete; discount ids we could
    not read (not expanded) leave the stored discount as it is.
    """
    discount = None
    if not snapshot.discount_pending:
        discount = snapshot.discount.to_json() if snapshot.discount else ""
    return repository.SubscriptionValues(
        stripe_subscription_id=snapshot.id,
        user_id=user_id,
        stripe_customer_id=snapshot.customer_id,
        status=snapshot.status or Status.INCOMPLETE.value,
        plan=plan,
        price_id=snapshot.price_id,
        current_period_start=snapshot.current_period_start,
        current_period_end=snapshot.current_period_end,
        cancel_at_period_end=snapshot.cancel_at_period_end,
        canceled_at=snapshot.canceled_at,
        stripe_created=snapshot.created,
        interval=snapshot.interval,
        quantity=snapshot.quantity,
        unit_amount=snapshot.unit_amount,
        currency=snapshot.currency,
        trial_end=snapshot.trial_end,
        discount=discount,
    )


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
