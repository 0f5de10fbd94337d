"""Subscription lifecycle: Stripe's statuses, the transitions Stripe makes, and access.

This module is the one place that decides what a status means for a user.
The table below is the whole policy; review it here, not in the handlers.
"live" means trialing, active, past_due, unpaid and paused.

==================  ==================================  ===============================
status              access                              may become
==================  ==================================  ===============================
none                free                                anything
incomplete          free                                anything but none
incomplete_expired  free                                (terminal)
trialing            plan tier                           live, canceled
active              plan tier                           live, canceled
past_due            plan tier until period end + grace  live, canceled
unpaid              free                                live, canceled
paused              free                                live, canceled
canceled            free                                (terminal)
==================  ==================================  ===============================

"May become" is reachability, not a single step: events can be skipped
(older ones arrive late and are STALE), so if A can become B and B can
become C, A may become C; the table is closed under that. Anything else
(e.g. canceled -> active) is a transition Stripe never makes on one
subscription: ApplyStripeEvent refuses it, audits the refusal and answers
IGNORED. The past_due grace is ``[access] past_due_grace_hours`` in the
plans file (0, the default: until the current period ends).

``cancel_at_period_end`` keeps the plan tier until the period ends, then free,
without waiting for Stripe's ``customer.subscription.deleted``. An active or
trialing subscription that is not cancelling keeps its tier past the period
end: a late renewal webhook must never cost a paying user access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from billing_service.plans import FREE_TIER, AccessPolicy


class Status(StrEnum):
    """Stripe's subscription statuses plus NONE (no subscription)."""

    NONE = "none"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"
    PAUSED = "paused"


class Access(StrEnum):
    """What a status grants."""

    PLAN = "plan"
    PLAN_DURING_GRACE = "plan_during_grace"
    FREE = "free"


ACCESS: dict[Status, Access] = {
    Status.NONE: Access.FREE,
    Status.INCOMPLETE: Access.FREE,
    Status.INCOMPLETE_EXPIRED: Access.FREE,
    Status.TRIALING: Access.PLAN,
    Status.ACTIVE: Access.PLAN,
    Status.PAST_DUE: Access.PLAN_DURING_GRACE,
    Status.UNPAID: Access.FREE,
    Status.CANCELED: Access.FREE,
    Status.PAUSED: Access.FREE,
}

_LIVE = {Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID, Status.PAUSED}

NEXT: dict[Status, frozenset[Status]] = {
    Status.NONE: frozenset(Status),
    Status.INCOMPLETE: frozenset(set(Status) - {Status.NONE}),
    Status.INCOMPLETE_EXPIRED: frozenset({Status.INCOMPLETE_EXPIRED}),
    Status.TRIALING: frozenset(_LIVE | {Status.CANCELED}),
    Status.ACTIVE: frozenset(_LIVE | {Status.CANCELED}),
    Status.PAST_DUE: frozenset(_LIVE | {Status.CANCELED}),
    Status.UNPAID: frozenset(_LIVE | {Status.CANCELED}),
    Status.CANCELED: frozenset({Status.CANCELED}),
    Status.PAUSED: frozenset(_LIVE | {Status.CANCELED}),
}

TERMINAL = frozenset({Status.CANCELED, Status.INCOMPLETE_EXPIRED})

# Statuses in which Stripe bills (or may bill) the subscription: two of these is a duplicate.
LIVE = frozenset(_LIVE)

# Statuses that block a second Checkout: the user already pays (or owes) for a plan.
LIVE_PAID = frozenset({Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID})


# Statuses of a subscription that never started (no trial, never paid): its user may
# still get a trial.
NEVER_STARTED = frozenset({Status.INCOMPLETE, Status.INCOMPLETE_EXPIRED})


def parse_status(raw: str) -> Status:
    """The Status for Stripe's string; ValueError for anything Stripe never sends."""
    status = Status(raw)
    if status is Status.NONE:
        raise ValueError("'none' is not a Stripe status")
    return status


def transition_allowed(before: Status, after: Status) -> bool:
    """True when Stripe can move one subscription from ``before`` to ``after``."""
    return after in NEXT[before]


@dataclass(frozen=True)
class Grant:
    """The tier a subscription grants now, and until when (None: open-ended or free)."""

    tier: str
    access_until: datetime | None


def grant(
    status: Status,
    plan: str,
    period_end: datetime | None,
    cancel_at_period_end: bool,
    now: datetime,
    policy: AccessPolicy,
) -> Grant:
    """Apply the access table to one subscription at time ``now`` (all times UTC)."""
    access = ACCESS[status]
    if access is Access.FREE or not plan:
        return Grant(FREE_TIER, None)
    if access is Access.PLAN_DURING_GRACE:
        if period_end is None:
            return Grant(plan, None)
        until = period_end + (policy.past_due_grace or timedelta(0))
        return Grant(plan, until) if now < until else Grant(FREE_TIER, None)
    if cancel_at_period_end and period_end is not None:
        return Grant(plan, period_end) if now < period_end else Grant(FREE_TIER, None)
    return Grant(plan, None)
