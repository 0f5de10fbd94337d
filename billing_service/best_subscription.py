"""Which of a user's subscriptions answers for them, when there is more than one live.

A user should hold one live subscription, but a second can appear (created in
the Dashboard, or two Checkout sessions paid in a race). Neither is hidden:
every answer comes from the *best* one and names the others.

The rule, applied at a given time ``now`` (pure; no I/O):

1. Only the user's unended subscriptions compete (not canceled or
   incomplete_expired); with none, the newest ended one answers (free).
2. The one granting the highest tier now wins (tiers rank by price, then
   monthly limit, then features; free lowest), then a live status over an
   incomplete one, then the latest period end, then the newest.

The choice can change when a grant does (a cancelling studio subscription
reaches its period end while a pro one goes on), so ``Choice.valid_until``
is the earliest ``access_until`` among the competitors: a cache must choose
again then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from billing_service.access import evaluate
from billing_service.lifecycle import LIVE, TERMINAL, Grant, Status
from billing_service.plans import FREE_TIER, Catalog
from billing_service.storage.models import Subscription

_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
_LIVE_VALUES = frozenset(s.value for s in LIVE)


@dataclass(frozen=True)
class Choice:
    """The subscription that answers for a user, its grant, and the other live ones."""

    best: Subscription | None
    grant: Grant
    others: tuple[Subscription, ...]
    valid_until: datetime | None


def tier_rank(catalog: Catalog, tier: str) -> tuple[int, int, int, int]:
    """Sort key of a tier: free lowest, then by price, monthly limit and feature count."""
    if tier == FREE_TIER or tier not in catalog.plans:
        return (0, 0, 0, 0)
    plan = catalog.plans[tier]
    return (1, plan.unit_amount, plan.monthly_limit, len(plan.features))


def relevant(rows: Iterable[Subscription]) -> list[Subscription]:
    """The rows that can answer for one user: every unended one, else the newest ended one."""
    rows = list(rows)
    unended = [row for row in rows if row.status not in _TERMINAL_VALUES]
    if unended:
        return unended
    newest = max(
        rows, key=lambda row: (row.stripe_created, str(row.stripe_subscription_id)), default=None
    )
    return [newest] if newest is not None else []


def is_live(row: Subscription) -> bool:
    """True for trialing, active, past_due, unpaid and paused: Stripe bills or may bill it."""
    return row.status in _LIVE_VALUES


def choose(rows: Iterable[Subscription], catalog: Catalog, now: datetime) -> Choice:
    """Apply the rule to one user's rows (any subset containing ``relevant(rows)``)."""
    candidates = relevant(rows)
    if not candidates:
        return Choice(None, Grant(FREE_TIER, None), (), None)
    graded = [(row, evaluate(row, catalog, now)) for row in candidates]

    def key(item: tuple[Subscription, Grant]) -> tuple[object, ...]:
        row, granted = item
        return (
            tier_rank(catalog, granted.tier),
            is_live(row),
            row.current_period_end or datetime.min,
            row.stripe_created,
            str(row.stripe_subscription_id),
        )

    best, best_grant = max(graded, key=key)
    others = tuple(
        row for row, _ in sorted(graded, key=key, reverse=True) if row is not best and is_live(row)
    )
    untils = [g.access_until for _, g in graded if g.access_until is not None]
    return Choice(best, best_grant, others, min(untils) if untils else None)


def status_of(row: Subscription | None) -> Status:
    """The row's status; NONE without a row."""
    return Status(row.status) if row is not None else Status.NONE
