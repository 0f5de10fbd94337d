"""The one write of a subscription state change: refuse it, or store it with its audit record.

Both ApplyStripeEvent and the resyncs from Stripe (SyncCheckoutSession,
ReconcileUser) end here, inside the transaction that records their cause, so
a transition Stripe never makes is refused and audited the same way wherever
it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing_service import audit, duplicates
from billing_service.lifecycle import LIVE, Status, transition_allowed
from billing_service.plans import Catalog
from billing_service.storage import repository
from billing_service.storage.models import Subscription, utcnow
from billing_service.stripe_shapes import SubscriptionSnapshot
from billing_service.subscriptions import evaluate


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
    # Ids of the user's other live subscriptions when this write made a second one live.
    duplicates: tuple[str, ...] = ()


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
        audit.append(
            user_id=user_id,
            stripe_subscription_id=snapshot.id,
            cause=cause,
            status_before=before.value,
            status_after=before.value,
            tier_before=tier_before,
            tier_after=tier_before,
            detail=f"{detail}; {reason}" if detail else reason,
        )
        return Written(False, reason)
    stored = repository.upsert_subscription(
        snapshot,
        user_id,
        plan,
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
        return Written(True)
    others = duplicates.other_live(user_id, snapshot.id)
    if others:
        audit.append(
            user_id=user_id,
            stripe_subscription_id=snapshot.id,
            cause=cause,
            status_before=after.value,
            status_after=after.value,
            tier_before=tier_after,
            tier_after=tier_after,
            detail=duplicates.audit_detail(snapshot.id, others),
        )
    return Written(True, duplicates=others)
