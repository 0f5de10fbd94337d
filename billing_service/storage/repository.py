"""Queries and upserts on customers and subscriptions, keyed on Stripe ids.

Every function expects an open connection (``Database.call``/``run``); the
write functions are meant to run inside the caller's transaction. Rows only:
which rows answer for a user, what a status means and how Stripe shapes its
objects are the domain's (``best_subscription``, ``lifecycle``,
``events/transition.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from peewee import IntegrityError

from billing_service.storage import fixed_lookup_sql, fixed_sql
from billing_service.storage.models import Customer, Subscription, utcnow


@dataclass(frozen=True)
class SubscriptionValues:
    """The column values of one subscription row, as the domain decided them."""

    stripe_subscription_id: str
    user_id: str
    stripe_customer_id: str
    status: str
    plan: str
    price_id: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    stripe_created: int
    interval: str
    quantity: int
    unit_amount: int
    currency: str
    trial_end: datetime | None
    # The stored discount's JSON ("" for none); None leaves the stored discount as it is.
    discount: str | None


def customer_for_user(user_id: str) -> Customer | None:
    """The user's Stripe customer link, if any."""
    return Customer.get_or_none(Customer.user_id == user_id)


def user_for_customer(stripe_customer_id: str) -> str | None:
    """Our user id for a Stripe customer, if we know it."""
    return fixed_lookup_sql.customer_user(stripe_customer_id)


def link_customer(user_id: str, stripe_customer_id: str, email: str = "") -> Customer:
    """Record user <-> customer; when the user is already linked, keep the first link.

    The unique constraints on both columns make a race between two callers
    end with one link, which both then read.
    """
    fixed_sql.link_customer(user_id, stripe_customer_id, utcnow(), email)
    found = customer_for_user(user_id)
    if found is None:
        raise IntegrityError(f"customer {stripe_customer_id} belongs to another user")
    return found


def subscriptions_of_user(user_id: str) -> list[Subscription]:
    """Every row of the user's, in no particular order."""
    return list(Subscription.select().where(Subscription.user_id == user_id))


def subscriptions_in_status(user_id: str, statuses: Iterable[str]) -> list[Subscription]:
    """The user's rows whose status is one of ``statuses``."""
    return list(
        Subscription.select().where(
            Subscription.user_id == user_id, Subscription.status.in_(list(statuses))
        )
    )


def has_subscription_outside(user_id: str, statuses: Iterable[str]) -> bool:
    """Whether the user has a row whose status is not one of ``statuses``."""
    return (
        Subscription.select(Subscription.id)
        .where(Subscription.user_id == user_id, Subscription.status.not_in(list(statuses)))
        .exists()
    )


def subscription_by_stripe_id(stripe_subscription_id: str) -> Subscription | None:
    """The stored row for a Stripe subscription id, if any."""
    return fixed_sql.subscription_by_stripe_id(stripe_subscription_id)


def upsert_subscription(
    row: SubscriptionValues,
    *,
    event_created: int | None = None,
    event_id: str = "",
    state_digest: str = "",
) -> Subscription:
    """Insert or update the row of its Stripe id; one row per id, whatever the race.

    ``event_created``/``event_id``/``state_digest`` record the event that set
    this state (ordering data); None leaves the stored ordering data as it is.
    """
    now = utcnow()
    state = (
        row.user_id, row.stripe_customer_id, row.status, row.plan, row.price_id,
        row.current_period_start, row.current_period_end, row.cancel_at_period_end,
        row.canceled_at, row.stripe_created, now, row.interval, row.quantity,
        row.unit_amount, row.currency, row.trial_end,
    )  # fmt: skip
    # The statement's text is fixed (fixed_sql); RETURNING hands back the stored row.
    return fixed_sql.upsert_subscription(
        row.stripe_subscription_id,
        now,
        state,
        row.discount,
        (event_created, event_id, state_digest) if event_created is not None else None,
    )
