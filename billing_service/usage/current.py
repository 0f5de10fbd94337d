"""The current subscription of each user, as ``repository.current_subscription`` picks it.

The newest live row wins, else the newest row (by Stripe's ``created``, then id).
"""

from __future__ import annotations

from collections.abc import Iterable

from peewee import Case

from billing_service.lifecycle import TERMINAL
from billing_service.storage.models import Subscription

_TERMINAL = [status.value for status in TERMINAL]


def current_subscription(user_id: str) -> Subscription | None:
    """``repository.current_subscription`` in one query: the newest live row, else the newest."""
    ended_last = Case(None, [(Subscription.status.in_(_TERMINAL), 1)], 0)
    return (
        Subscription.select()
        .where(Subscription.user_id == user_id)
        .order_by(ended_last, Subscription.stripe_created.desc(), Subscription.id.desc())
        .first()
    )


def pick_current(rows: Iterable[Subscription]) -> dict[str, Subscription]:
    """Per user among ``rows``, the row ``current_subscription`` would pick."""
    best: dict[str, tuple[tuple[bool, int, int], Subscription]] = {}
    for row in rows:
        rank = (row.status not in _TERMINAL, row.stripe_created, row.id)
        held = best.get(row.user_id)
        if held is None or rank > held[0]:
            best[row.user_id] = (rank, row)
    return {user: row for user, (_, row) in best.items()}


def current_subscriptions(user_ids: list[str]) -> dict[str, Subscription]:
    """Per user, ``current_subscription``'s answer, for many users in one query."""
    return pick_current(Subscription.select().where(Subscription.user_id.in_(user_ids)))
