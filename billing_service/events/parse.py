"""The raw webhook payload -> a typed StripeEvent, or INVALID_ARGUMENT naming what is wrong.

The envelope is checked here, and the fields of a handled event's object that
we read are checked by ``validate`` (so content that can never be applied is
INVALID_ARGUMENT before any write); what the event means is ``resolve``'s job.
``created`` is deliberately *not* checked for freshness: Stripe retries for
up to three days, and freshness belongs to the signature timestamp, which
the gateway verifies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from billing_service.errors import InvalidArgument
from billing_service.events import validate

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
    }
)
# Invoice events whose object is the invoice as it now stands (kept in the invoice table).
# invoice.upcoming has no id and invoice.deleted removes a draft: neither is kept.
INVOICE_EVENTS = frozenset(
    {
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.voided",
        "invoice.marked_uncollectible",
    }
)
CHECKOUT_COMPLETED = "checkout.session.completed"
HANDLED_TYPES = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | {CHECKOUT_COMPLETED}
_OBJECT_KINDS = {
    **dict.fromkeys(SUBSCRIPTION_EVENTS, "subscription"),
    **dict.fromkeys(INVOICE_EVENTS, "invoice"),
    CHECKOUT_COMPLETED: "checkout",
}

MAX_PAYLOAD_BYTES = 1 << 20
_EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_]{1,250}$")
_EVENT_TYPE = re.compile(r"^[a-z0-9_.]{1,128}$")


@dataclass(frozen=True)
class StripeEvent:
    """The parts of a Stripe event envelope this service uses."""

    id: str
    type: str
    created: int
    object: dict[str, Any]
    # data.previous_attributes of an *.updated event: the changed fields' values before it.
    previous_attributes: dict[str, Any] | None = None

    @property
    def handled(self) -> bool:
        """True for the event types ApplyStripeEvent acts on."""
        return self.type in HANDLED_TYPES


def _bad(problem: str) -> InvalidArgument:
    return InvalidArgument("payload", problem)


def parse_event(payload: bytes) -> StripeEvent:
    """Parse the verified payload; InvalidArgument(payload) when it is not a Stripe event."""
    if not payload:
        raise _bad("is required")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _bad(f"is larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson names the problem (not UTF-8, nested past 1,024 levels, ...) without the bytes.
        raise _bad(f"is not JSON ({str(exc).rsplit(': line ', 1)[0]})") from None
    if not isinstance(raw, dict):
        raise _bad("is not a JSON object")
    # Strict JSON refuses a raw control character in a string, so a NUL can only
    # arrive escaped: without that escape in the bytes, no string needs walking.
    return event_from_dict(raw, may_hold_nul=b"\\u0000" in payload)


def event_from_dict(raw: dict[str, Any], *, may_hold_nul: bool = True) -> StripeEvent:
    """Check an event Stripe already handed over parsed (its Events API); as ``parse_event``.

    ``may_hold_nul=False`` skips the search for NUL characters in the object's
    strings, for a caller that knows there is none.
    """
    if raw.get("object") != "event":
        raise _bad('is not a Stripe event (object is not "event")')
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise _bad("id is not a Stripe event id (evt_...)")
    event_type = raw.get("type")
    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
        raise _bad("type is missing or malformed")
    created = validate.envelope_created(raw.get("created"))
    data = raw.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise _bad("data.object is missing")
    kind = _OBJECT_KINDS.get(event_type)
    if kind is not None:
        validate.event_object(kind, obj, check_nul=may_hold_nul)
    previous = data.get("previous_attributes") if isinstance(data, dict) else None
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=created,
        object=obj,
        previous_attributes=previous if isinstance(previous, dict) else None,
    )
