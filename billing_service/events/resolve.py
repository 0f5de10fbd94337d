"""Ties an event to a user and to what it carries, from its own payload; Stripe only when it must.

Who the user is, in order of trust:

1. the user of the subscription row we already hold (a tie never moves);
2. the checkout session's ``client_reference_id`` or its ``metadata.user_id``;
3. the subscription's ``metadata.user_id`` (set by CreateCheckout; invoices
   carry a copy under ``parent.subscription_details.metadata``);
4. the user linked to the Stripe customer.

What each event carries, with no Stripe call on the steady path:

- ``customer.subscription.*``: the subscription's state;
- ``checkout.session.completed``: the link user <-> customer <-> subscription;
  the subscription's state comes from the subscription events;
- ``invoice.*``: the invoice (kept in the ``invoice`` table); invoices carry
  no subscription status, which again comes from the subscription events.

Every event is tied inside its apply, in the group commit's transaction and
under the subscription lock, so the tie costs no read, thread hop or commit
of its own: a subscription event from the row the apply reads anyway
(``tie_in_apply``), a checkout or invoice event from one read of what the
database knows (``tie_payload_in_apply``).

Stripe is asked only when the payload cannot decide: a checkout that ties a
subscription whose earlier events were ignored as untied (their state was
never stored), an invoice of a subscription we never saw whose user nothing
names, and (in ``service``) a same-second conflict. The apply cannot wait
for Stripe inside a transaction, so for the first two it raises
``NeedsStripeTieError`` (nothing written) and the service resolves the event
again outside it (``Resolver.resolve_with_stripe``); those calls are
``fetch.StripeFetches`` (budgeted), the database's answers ``known``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from billing_service import validation
from billing_service.errors import InvalidArgument
from billing_service.events.fetch import CAUSE_UNKNOWN_USER, CAUSE_UNTIED, StripeFetches
from billing_service.events.known import Known, lookup, users_of
from billing_service.events.parse import (
    CHECKOUT_COMPLETED,
    INVOICE_EVENTS,
    SUBSCRIPTION_EVENTS,
    StripeEvent,
)
from billing_service.storage.database import Database
from billing_service.stripe_shapes import (
    InvoiceSnapshot,
    SubscriptionSnapshot,
    invoice_snapshot,
    invoice_subscription_id,
    invoice_subscription_metadata,
    object_id,
    subscription_snapshot,
)


@dataclass(frozen=True)
class Resolution:
    """An event tied to a user and what it carries, or the reason it cannot be.

    ``snapshot`` is subscription state to apply; ``invoice`` an invoice to keep;
    with neither, a tied event only links the user, customer and subscription.
    """

    user_id: str = ""
    customer_id: str = ""
    snapshot: SubscriptionSnapshot | None = None
    # True when ``snapshot`` was fetched from Stripe just now.
    authoritative: bool = False
    reason: str = ""
    # Why the snapshot came from Stripe, for the audit detail.
    note: str = ""
    # The subscription the event concerns when it carries no snapshot.
    subscription_id: str = ""
    invoice: InvoiceSnapshot | None = None
    # The customer was linked to a user when resolved. Links never move or
    # vanish (first link wins), so the apply skips its link insert.
    customer_linked: bool = False
    # The apply ties the event (``tie_in_apply``, ``tie_payload_in_apply``) under
    # the subscription lock; ``user_hint`` is the user its payload names.
    tie_in_apply: bool = False
    user_hint: str = ""

    @property
    def concerns(self) -> str:
        """The id of the subscription the event concerns ("" when none)."""
        return self.snapshot.id if self.snapshot is not None else self.subscription_id

    @property
    def tied(self) -> bool:
        """True when the event concerns a known user's subscription."""
        return bool(self.user_id and self.concerns)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _meta_user(raw: Any) -> str:
    return _text(raw.get("user_id")) if isinstance(raw, Mapping) else ""


def lock_key(event: StripeEvent) -> str:
    """What to serialize this event's work on: its customer, else its subscription."""
    obj = event.object
    customer = object_id(obj.get("customer"))
    if customer:
        return f"customer:{customer}"
    if event.type in INVOICE_EVENTS:
        sub = invoice_subscription_id(obj)
    elif event.type == CHECKOUT_COMPLETED:
        sub = object_id(obj.get("subscription"))
    else:
        sub = _text(obj.get("id"))
    return f"subscription:{sub or event.id}"


UNTIED_SUBSCRIPTION = (
    "cannot tie the subscription to a user (no user_id metadata, "
    "client_reference_id or known customer)"
)


def tie_in_apply(
    resolution: Resolution, row_user: str, customer_user: Callable[[], str]
) -> Resolution:
    """Tie a subscription event inside its apply, by the rules above.

    ``row_user`` is the user of the row the apply read under the subscription
    lock (rule 1); ``customer_user`` looks up the customer's user (rule 4) and
    is called only when the row and the payload (rule 3) name nobody. The
    answer's ``reason`` says why when nothing ties it.
    """
    user_id = row_user or _first_usable(resolution.user_hint)
    if not user_id and resolution.customer_id:
        user_id = _first_usable(customer_user())
    if not user_id:
        return replace(resolution, reason=UNTIED_SUBSCRIPTION)
    return replace(resolution, user_id=user_id)


class NeedsStripeTieError(Exception):
    """Only Stripe can tie this checkout or invoice event: resolve it again outside the apply."""


def tie_payload_in_apply(resolution: Resolution, known: Known) -> Resolution:
    """Tie a checkout or invoice event inside its apply, from what the database knows.

    ``known`` is read under the subscription lock. Raises NeedsStripeTieError
    where ``Resolver.resolve_with_stripe`` would ask Stripe; the answer's
    ``reason`` says why when nothing ties the event.
    """
    if resolution.invoice is not None:
        user_id = _first_usable(
            known.invoice_user, known.row_user, resolution.user_hint, known.customer_user
        )
        if not user_id:
            raise NeedsStripeTieError(f"no user known for subscription {resolution.concerns}")
    else:
        if known.ignored_before:
            raise NeedsStripeTieError(f"earlier events of {resolution.concerns} were untied")
        user_id = _first_usable(known.row_user, resolution.user_hint, known.customer_user)
        if not user_id:
            return replace(resolution, tie_in_apply=False, reason=UNTIED_CHECKOUT)
    return replace(
        resolution,
        user_id=user_id,
        tie_in_apply=False,
        customer_linked=bool(known.customer_user),
    )


UNTIED_CHECKOUT = (
    "cannot tie the checkout session to a user (no client_reference_id, "
    "metadata.user_id or known customer)"
)


def _first_usable(*candidates: str) -> str:
    return next((c for c in candidates if c and _usable(c)), "")


def _usable(user_id: str) -> bool:
    try:
        validation.user_id(user_id)
    except InvalidArgument:
        return False
    return True


class Resolver:
    """Resolves events with the database; with Stripe only where the payload cannot decide."""

    def __init__(self, db: Database, fetches: StripeFetches) -> None:
        self._db = db
        self._fetches = fetches

    async def resolve(self, event: StripeEvent) -> Resolution:
        """Tie ``event`` to a user and what it carries (``reason`` says why when it cannot)."""
        obj = event.object
        if event.type in SUBSCRIPTION_EVENTS:
            if obj.get("object") not in (None, "subscription"):
                return Resolution(reason=f"{event.type} does not carry a subscription")
            snapshot = subscription_snapshot(obj)
            if not snapshot.id.startswith("sub_"):
                return Resolution(reason="the subscription has no id")
            snapshot = await self._fetches.with_discount(snapshot)
            # Tied inside the apply from the row it reads anyway: no read here.
            return Resolution(
                customer_id=snapshot.customer_id,
                snapshot=snapshot,
                tie_in_apply=True,
                user_hint=_meta_user(snapshot.metadata),
            )
        if event.type == CHECKOUT_COMPLETED:
            return _checkout_from_payload(obj)
        if event.type in INVOICE_EVENTS:
            return _invoice_from_payload(obj)
        return Resolution(reason=f"event type {event.type} is not acted on")

    async def resolve_with_stripe(self, event: StripeEvent) -> Resolution:
        """Tie a checkout or invoice event the apply could not (NeedsStripeTieError).

        Reads what the database knows, outside any transaction, and asks Stripe
        (budgeted) where the payload cannot decide; the answer needs no tie in
        the apply.
        """
        obj = event.object
        if event.type == CHECKOUT_COMPLETED:
            return await self._checkout(obj)
        if event.type in INVOICE_EVENTS:
            return await self._invoice(obj)
        return await self.resolve(event)

    async def _checkout(self, obj: dict[str, Any]) -> Resolution:
        deferred = _checkout_from_payload(obj)
        if not deferred.tie_in_apply:
            return deferred
        sub_id, customer_id, hint = (
            deferred.subscription_id,
            deferred.customer_id,
            deferred.user_hint,
        )
        known = await self._db.run(
            functools.partial(lookup, sub_id, customer_id, check_ignored=True)
        )
        if known.ignored_before:
            # Its earlier events could not be tied, so its state was never
            # stored: this checkout ties it, and only Stripe knows the state.
            snapshot = await self._fetches.fetch(sub_id, CAUSE_UNTIED)
            if snapshot is None:
                return Resolution(reason=f"Stripe does not know subscription {sub_id}")
            resolution = await self._tie(snapshot, hint, authoritative=True)
            return replace(resolution, note=f"state of {sub_id} fetched from Stripe")
        user_id = _first_usable(known.row_user, hint, known.customer_user)
        if not user_id:
            return Resolution(subscription_id=sub_id, reason=UNTIED_CHECKOUT)
        return Resolution(
            user_id,
            customer_id,
            subscription_id=sub_id,
            customer_linked=bool(known.customer_user),
        )

    async def _invoice(self, obj: dict[str, Any]) -> Resolution:
        deferred = _invoice_from_payload(obj)
        invoice = deferred.invoice
        if invoice is None:
            return deferred
        sub_id = invoice.subscription_id
        hint = deferred.user_hint
        known = await self._db.run(lookup, sub_id, invoice.customer_id, invoice.id)
        user_id = _first_usable(known.invoice_user, known.row_user, hint, known.customer_user)
        if not user_id:
            # A subscription we never saw, and nothing in the invoice names its user.
            fetched = await self._fetches.fetch(sub_id, CAUSE_UNKNOWN_USER)
            if fetched is None:
                return Resolution(reason=f"Stripe does not know subscription {sub_id}")
            user_id = _first_usable(_meta_user(fetched.metadata))
        if not user_id:
            return Resolution(
                subscription_id=sub_id,
                reason="cannot tie the invoice to a user (no user_id metadata or known customer)",
            )
        return Resolution(
            user_id,
            invoice.customer_id,
            subscription_id=sub_id,
            invoice=invoice,
            customer_linked=bool(known.customer_user),
        )

    async def _tie(
        self, snapshot: SubscriptionSnapshot, hint: str, *, authoritative: bool
    ) -> Resolution:
        by_row, by_customer = await self._db.run(users_of, snapshot.id, snapshot.customer_id)
        user_id = _first_usable(by_row, hint, _meta_user(snapshot.metadata), by_customer)
        if not user_id:
            return Resolution(
                customer_id=snapshot.customer_id, snapshot=snapshot, reason=UNTIED_SUBSCRIPTION
            )
        return Resolution(
            user_id,
            snapshot.customer_id,
            snapshot,
            authoritative,
            customer_linked=bool(by_customer),
        )


def _checkout_from_payload(obj: dict[str, Any]) -> Resolution:
    """A checkout event as far as its payload decides; the apply ties it."""
    if obj.get("mode") != "subscription":
        return Resolution(reason="checkout session is not in subscription mode")
    sub_id = object_id(obj.get("subscription"))
    if not sub_id:
        return Resolution(reason="checkout session has no subscription")
    return Resolution(
        customer_id=object_id(obj.get("customer")),
        subscription_id=sub_id,
        tie_in_apply=True,
        user_hint=_first_usable(
            _text(obj.get("client_reference_id")), _meta_user(obj.get("metadata"))
        ),
    )


def _invoice_from_payload(obj: dict[str, Any]) -> Resolution:
    """An invoice event as far as its payload decides; the apply ties it."""
    invoice = invoice_snapshot(obj)
    if not invoice.subscription_id:
        return Resolution(reason="invoice does not bill a subscription")
    if not invoice.id.startswith("in_"):
        return Resolution(reason="the invoice has no id")
    return Resolution(
        customer_id=invoice.customer_id,
        subscription_id=invoice.subscription_id,
        invoice=invoice,
        tie_in_apply=True,
        user_hint=_meta_user(invoice_subscription_metadata(obj)),
    )
