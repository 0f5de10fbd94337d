"""Queries and upserts on customers and subscriptions, keyed on Stripe ids.

Every function expects an open connection (``Database.call``/``run``); the
write functions are meant to run inside the caller's transaction.
"""

from __future__ import annotations

import contextlib

from peewee import IntegrityError

from billing_service.lifecycle import TERMINAL, Status
from billing_service.storage.models import Customer, Subscription, utcnow
from billing_service.stripe_shapes import SubscriptionSnapshot

_TERMINAL_VALUES = [s.value for s in TERMINAL]


def customer_for_user(user_id: str) -> Customer | None:
    """The user's Stripe customer link, if any."""
    return Customer.get_or_none(Customer.user_id == user_id)


def user_for_customer(stripe_customer_id: str) -> str | None:
    """Our user id for a Stripe customer, if we know it."""
    row = Customer.get_or_none(Customer.stripe_customer_id == stripe_customer_id)
    return row.user_id if row else None


def link_customer(user_id: str, stripe_customer_id: str, email: str = "") -> Customer:
    """Record user <-> customer; when the user is already linked, keep the first link.

    The unique constraints on both columns make a race between two callers
    end with one link, which both then read.
    """
    with contextlib.suppress(IntegrityError):
        Customer.insert(
            user_id=user_id, stripe_customer_id=stripe_customer_id, email=email
        ).on_conflict_ignore().execute()
    found = customer_for_user(user_id)
    if found is None:
        raise IntegrityError(f"customer {stripe_customer_id} belongs to another user")
    return found


def current_subscription(user_id: str) -> Subscription | None:
    """The user's subscription that matters now: the newest live one, else the newest."""
    newest_first = (Subscription.stripe_created.desc(), Subscription.id.desc())
    live = (
        Subscription.select()
        .where(Subscription.user_id == user_id, Subscription.status.not_in(_TERMINAL_VALUES))
        .order_by(*newest_first)
        .first()
    )
    if live is not None:
        return live
    return (
        Subscription.select().where(Subscription.user_id == user_id).order_by(*newest_first).first()
    )


def subscription_by_stripe_id(stripe_subscription_id: str) -> Subscription | None:
    """The stored row for a Stripe subscription id, if any."""
    return Subscription.get_or_none(Subscription.stripe_subscription_id == stripe_subscription_id)


def upsert_subscription(
    snapshot: SubscriptionSnapshot,
    user_id: str,
    plan: str,
    *,
    event_created: int | None = None,
    event_id: str = "",
    state_digest: str = "",
) -> Subscription:
    """Insert or update the row for ``snapshot.id``; one row per Stripe id, whatever the race.

    ``event_created``/``event_id``/``state_digest`` record the event that set
    this state (ordering data); None leaves the stored ordering data as it is.
    """
    values = {
        Subscription.user_id: user_id,
        Subscription.stripe_customer_id: snapshot.customer_id,
        Subscription.status: snapshot.status or Status.INCOMPLETE.value,
        Subscription.plan: plan,
        Subscription.price_id: snapshot.price_id,
        Subscription.current_period_start: snapshot.current_period_start,
        Subscription.current_period_end: snapshot.current_period_end,
        Subscription.cancel_at_period_end: snapshot.cancel_at_period_end,
        Subscription.canceled_at: snapshot.canceled_at,
        Subscription.stripe_created: snapshot.created,
        Subscription.updated_at: utcnow(),
    }
    if event_created is not None:
        values[Subscription.last_event_created] = event_created
        values[Subscription.last_event_id] = event_id
        values[Subscription.last_state_digest] = state_digest
    insert = {**values, Subscription.stripe_subscription_id: snapshot.id}
    # RETURNING hands back the stored row in the same statement (no read after the write).
    query = (
        Subscription.insert(insert)
        .on_conflict(conflict_target=[Subscription.stripe_subscription_id], update=values)
        .returning(Subscription)
    )
    for row in query.execute():
        return row
    raise RuntimeError(f"upsert of {snapshot.id} returned no row")
