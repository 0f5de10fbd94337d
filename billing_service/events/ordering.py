"""Whether an event may change the state we hold: the ordering rules in one place.

Stripe's event ``created`` (whole seconds) orders events for one
subscription. A newer event applies; an older one is STALE. Two events of
the same second that carry the same state are harmless. When they disagree,
the lifecycle often still tells which came last: a status that cannot follow
the other (``active`` never becomes ``incomplete``, ``canceled`` never becomes
anything) must be the earlier one, so the checkout's ``incomplete`` ->
``active`` in one second needs no Stripe call. Only when each status could
follow the other (``active`` <-> ``past_due``, or equal statuses) and the
event itself cannot say (below) is Stripe (the authority) asked for the
subscription and its answer stored. The event can say: a
``customer.subscription.created`` is the first event of its subscription, so
older than any stored state; an ``*.updated`` whose ``previous_attributes``
describe exactly the stored state follows it.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from billing_service.lifecycle import Status, transition_allowed
from billing_service.stripe_shapes import SubscriptionSnapshot, subscription_snapshot


class Verdict(StrEnum):
    """What to do with an event, given the state we hold."""

    APPLY = "apply"
    STALE = "stale"
    ASK_STRIPE = "ask_stripe"


def state_digest(snapshot: SubscriptionSnapshot) -> str:
    """A digest of the stored fields of ``snapshot``: equal digests mean equal state."""
    fields = [
        snapshot.status,
        snapshot.customer_id,
        snapshot.price_id,
        str(snapshot.current_period_start),
        str(snapshot.current_period_end),
        snapshot.cancel_at_period_end,
        str(snapshot.canceled_at),
    ]
    # Issue 13's fields join only when set, so digests stored before them stay equal.
    extra = (snapshot.quantity, str(snapshot.trial_end), snapshot.discount)
    if extra != (1, "None", None):
        fields.append(
            json.dumps([*extra[:2], snapshot.discount.to_json() if snapshot.discount else ""])
        )
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def decide(
    *,
    stored_created: int | None,
    stored_digest: str,
    event_created: int,
    event_digest: str,
    authoritative: bool,
    stored_status: str = "",
    event_status: str = "",
    event_is_creation: bool = False,
    previous_digest: str = "",
) -> Verdict:
    """Decide for one event; ``stored_created`` is None when we hold no row.

    ``authoritative`` marks a snapshot just fetched from Stripe: it never
    needs a second opinion, but an older event still never overwrites. A
    same-second disagreement is settled, in order, by ``previous_digest`` (the
    digest of the state just before the event) equal to the stored one, by
    ``event_is_creation`` (the subscription's first event), and by the statuses
    when only one order is possible; otherwise Stripe is asked.
    """
    if stored_created is None or event_created > stored_created:
        return Verdict.APPLY
    if event_created < stored_created:
        return Verdict.STALE
    if authoritative or event_digest == stored_digest or not stored_digest:
        return Verdict.APPLY
    if previous_digest and previous_digest == stored_digest:
        return Verdict.APPLY
    if event_is_creation:
        return Verdict.STALE
    return same_second_order(stored_status, event_status)


def previous_state_digest(
    subscription: dict[str, Any], previous_attributes: dict[str, Any] | None
) -> str:
    """The digest of the state just before an ``*.updated`` event ("" when it does not say)."""
    if not previous_attributes:
        return ""
    return state_digest(subscription_snapshot({**subscription, **previous_attributes}))


def same_second_order(stored_status: str, event_status: str) -> Verdict:
    """APPLY or STALE when the lifecycle allows only one order of two statuses, else ASK_STRIPE."""
    try:
        stored, incoming = Status(stored_status), Status(event_status)
    except ValueError:
        return Verdict.ASK_STRIPE
    forward = transition_allowed(stored, incoming)
    backward = transition_allowed(incoming, stored)
    if forward and not backward:
        return Verdict.APPLY
    if backward and not forward:
        return Verdict.STALE
    return Verdict.ASK_STRIPE
