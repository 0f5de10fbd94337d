"""Whether an event may change the state we hold: the ordering rules in one place.

Stripe's event ``created`` (whole seconds) orders events for one
subscription. A newer event applies; an older one is STALE. Two events of
the same second that carry the same state are harmless; when they disagree
we cannot tell which came last, so Stripe (the authority) is asked for the
subscription and its answer is stored.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum

from billing_service.stripe_shapes import SubscriptionSnapshot


class Decision(StrEnum):
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
) -> Decision:
    """Decide for one event; ``stored_created`` is None when we hold no row.

    ``authoritative`` marks a snapshot just fetched from Stripe: it never
    needs a second opinion, but an older event still never overwrites.
    """
    if stored_created is None or event_created > stored_created:
        return Decision.APPLY
    if event_created < stored_created:
        return Decision.STALE
    if authoritative or event_digest == stored_digest or not stored_digest:
        return Decision.APPLY
    return Decision.ASK_STRIPE
