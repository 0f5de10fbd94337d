"""The exactly-once apply: processed-event record, state change and audit record in one transaction.

``apply_in_transaction`` does the work of one event inside a transaction its
caller opened (``apply_event`` opens one per event; a group-commit layer may
run several in one); it never commits or rolls back itself.

On PostgreSQL a transaction-scoped advisory lock on the subscription id
serializes events for one subscription across replicas, so the ordering
check and the upsert see each other; SQLite's IMMEDIATE transactions
serialize all writers. The event's row in ``processed_event`` is inserted
last, with its outcome, in one statement: its unique ``event_id`` makes an
already processed event, or a concurrent duplicate that committed first,
fail there (IntegrityError), and the rollback of the event's transaction or
savepoint undoes whatever it wrote before (``apply_event`` then reads the
first outcome: DUPLICATE). Redeliveries rarely get this far: the service
answers them from the processed record before taking any write path.
Every outcome (APPLIED, IGNORED, STALE) is recorded, so a retry of any
finished event answers DUPLICATE; only a failed transaction leaves no trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import peewee

from billing_service import audit
from billing_service.events.invoices import InvoiceWrite, store_invoice
from billing_service.events.known import lookup
from billing_service.events.ordering import (
    Verdict,
    decide,
    previous_state_digest,
    state_digest,
)
from billing_service.events.parse import StripeEvent
from billing_service.events.resolve import Resolution, tie_in_apply, tie_payload_in_apply
from billing_service.events.transition import (
    Ordering,
    lock_subscription,
    plan_of,
    write_transition,
)
from billing_service.lifecycle import parse_status
from billing_service.plans import Catalog
from billing_service.storage import fixed_sql, repository
from billing_service.storage.database import Database
from billing_service.storage.models import ProcessedEvent, Subscription, utcnow
from billing_service.stripe_shapes import InvoiceSnapshot, SubscriptionSnapshot


class Outcome(StrEnum):
    """What ApplyStripeEvent did with an event (billing.v1 EventOutcome)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    STALE = "stale"


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of one event and what it concerned."""

    outcome: Outcome
    event_id: str
    reason: str = ""
    user_id: str = ""
    subscription_id: str = ""
    # True when stored subscription state was written (listeners must hear of it).
    changed: bool = False
    # The user's other live subscriptions when this event made a second one live.
    duplicates: tuple[str, ...] = ()
    # The subscription row as this apply left it, read or written under its lock
    # (None: no row, or a DUPLICATE, which read none).
    row: Subscription | None = field(default=None, compare=False, repr=False)


class NeedsAuthorityError(Exception):
    """Same-second events disagree: fetch the subscription from Stripe and apply that."""

    def __init__(self, other_event_id: str) -> None:
        super().__init__(f"same-second conflict with {other_event_id}")
        self.other_event_id = other_event_id


def duplicate_of(event_id: str) -> ApplyResult | None:
    """The DUPLICATE answer when ``event_id`` was already processed, else None."""
    return duplicate_result(ProcessedEvent.get_or_none(ProcessedEvent.event_id == event_id))


def duplicate_result(done: ProcessedEvent | None) -> ApplyResult | None:
    """The DUPLICATE answer for a stored processed-event row (None: absent)."""
    if done is None:
        return None
    return ApplyResult(
        Outcome.DUPLICATE,
        str(done.event_id),
        reason=f"already processed ({done.outcome})",
        user_id=done.user_id,
        subscription_id=done.stripe_subscription_id,
    )


def apply_event(
    db: Database, catalog: Catalog, event: StripeEvent, resolution: Resolution
) -> ApplyResult:
    """Apply ``event`` exactly once; call with a connection open (``Database.run``).

    Raises NeedsAuthorityError (nothing written) when a same-second event holds a
    different state; the caller fetches from Stripe and calls again with an
    authoritative resolution.
    """
    try:
        with db.transaction():
            return apply_in_transaction(db, catalog, event, resolution)
    except peewee.IntegrityError:
        if db.in_shared_transaction:
            raise  # the transaction is lost: group commit runs this unit again in a savepoint
        # A concurrent delivery of the same event committed first.
        found = duplicate_of(event.id)
        if found is None:
            raise
        return found


def apply_in_transaction(
    db: Database, catalog: Catalog, event: StripeEvent, resolution: Resolution
) -> ApplyResult:
    """Apply ``event`` inside the caller's open transaction (see ``apply_event``).

    Raises IntegrityError when a delivery of the same event holds the processed
    row (committed, or committing concurrently), and NeedsAuthorityError; the
    caller rolls back on both, which undoes this apply's writes. No read first:
    the service answers redeliveries before it gets here, and the unique index
    catches the rest.
    """
    result = _decide_and_write(db, catalog, event, resolution)
    fixed_sql.insert_processed(
        event.id,
        event.type,
        event.created,
        result.outcome.value,
        result.reason,
        result.user_id,
        result.subscription_id,
        utcnow(),
    )
    return result


def _decide_and_write(
    db: Database, catalog: Catalog, event: StripeEvent, resolution: Resolution
) -> ApplyResult:
    sub_id = resolution.concerns
    if not resolution.tied and not resolution.tie_in_apply:
        return ApplyResult(
            Outcome.IGNORED, event.id, reason=resolution.reason, subscription_id=sub_id
        )
    lock_subscription(db, sub_id)
    if resolution.tie_in_apply:
        if resolution.snapshot is not None:
            row, resolution = _tie(resolution, sub_id)
        else:
            row, resolution = _tie_payload(resolution, sub_id)
        if not resolution.tied:
            return ApplyResult(
                Outcome.IGNORED, event.id, reason=resolution.reason, subscription_id=sub_id
            )
    else:
        row = repository.subscription_by_stripe_id(sub_id)
    user_id = str(row.user_id) if row is not None else resolution.user_id
    if resolution.customer_id and not resolution.customer_linked:
        # First link wins on both sides; later events find the user by customer.
        fixed_sql.link_customer(user_id, resolution.customer_id, utcnow())
    base = ApplyResult(Outcome.APPLIED, event.id, user_id=user_id, subscription_id=sub_id, row=row)
    if resolution.invoice is not None:
        return _keep_invoice(event, resolution.invoice, base)
    snapshot = resolution.snapshot
    if snapshot is None:
        # A checkout: the link is its whole effect; the state comes from subscription events.
        return _with(
            base,
            Outcome.APPLIED,
            f"linked user to customer {resolution.customer_id or '(none)'} and {sub_id}; "
            "its state comes from its subscription events",
        )
    return _apply_state(catalog, event, resolution, snapshot, row, base)


def _tie(resolution: Resolution, sub_id: str) -> tuple[Subscription | None, Resolution]:
    """The locked row and the event tied by it: one read when the row exists."""
    row, customer_user = fixed_sql.subscription_with_customer_user(sub_id, resolution.customer_id)
    if row is not None:
        tied = tie_in_apply(resolution, str(row.user_id), lambda: customer_user)
        return row, replace(tied, customer_linked=bool(customer_user))
    found: list[str] = []

    def user_of_customer() -> str:
        found.append(repository.user_for_customer(resolution.customer_id) or "")
        return found[0]

    tied = tie_in_apply(resolution, "", user_of_customer)
    return None, replace(tied, customer_linked=bool(found and found[0]))


def _tie_payload(resolution: Resolution, sub_id: str) -> tuple[Subscription | None, Resolution]:
    """A checkout or invoice event tied by what the database knows, and the locked row.

    One read, the row included. Raises
    NeedsStripeTieError (``resolve.tie_payload_in_apply``) when only Stripe can tie it.
    """
    invoice = resolution.invoice
    known = lookup(
        sub_id,
        resolution.customer_id,
        invoice.id if invoice is not None else "",
        check_ignored=invoice is None,
    )
    tied = tie_payload_in_apply(resolution, known)
    return (known.row if known.row_user else None), tied


def _keep_invoice(event: StripeEvent, invoice: InvoiceSnapshot, base: ApplyResult) -> ApplyResult:
    written = store_invoice(invoice, base.user_id, event_created=event.created, event_id=event.id)
    if written is InvoiceWrite.STALE:
        return _with(
            base,
            Outcome.STALE,
            f"invoice {invoice.id}: a newer event already stored it "
            f"(event created {event.created})",
        )
    return _with(base, Outcome.APPLIED, f"invoice {invoice.id} stored ({invoice.status})")


def _apply_state(
    catalog: Catalog,
    event: StripeEvent,
    resolution: Resolution,
    snapshot: SubscriptionSnapshot,
    row: Subscription | None,
    base: ApplyResult,
) -> ApplyResult:
    digest = state_digest(snapshot)
    verdict = decide(
        stored_created=int(row.last_event_created) if row is not None else None,
        stored_digest=str(row.last_state_digest) if row is not None else "",
        event_created=event.created,
        event_digest=digest,
        authoritative=resolution.authoritative,
        stored_status=str(row.status) if row is not None else "",
        event_status=snapshot.status,
        event_is_creation=event.type == "customer.subscription.created"
        and not resolution.authoritative,
        previous_digest=(
            ""
            if resolution.authoritative
            else previous_state_digest(event.object, event.previous_attributes)
        ),
    )
    if verdict is Verdict.ASK_STRIPE:
        assert row is not None
        raise NeedsAuthorityError(str(row.last_event_id))
    if verdict is Verdict.STALE:
        assert row is not None
        if event.created == row.last_event_created:
            return _with(
                base,
                Outcome.STALE,
                f"event created {event.created}, the same second as the stored state "
                f"(set by {row.last_event_id or 'an RPC'}), is the older of the two "
                f"({event.type}, status {snapshot.status} after {row.status})",
            )
        return _with(
            base,
            Outcome.STALE,
            f"event created {event.created} is older than the stored state "
            f"(set by {row.last_event_id or 'an RPC'} created {row.last_event_created})",
        )
    return _transition(catalog, event, resolution, snapshot, row, base, digest)


def _with(base: ApplyResult, outcome: Outcome, reason: str, changed: bool = False) -> ApplyResult:
    return replace(base, outcome=outcome, reason=reason, changed=changed)


def _transition(
    catalog: Catalog,
    event: StripeEvent,
    resolution: Resolution,
    snapshot: SubscriptionSnapshot,
    row: Subscription | None,
    base: ApplyResult,
    digest: str,
) -> ApplyResult:
    try:
        after = parse_status(snapshot.status)
    except ValueError:
        return _with(base, Outcome.IGNORED, f"unknown subscription status {snapshot.status!r}")
    plan = plan_of(catalog, snapshot, row)
    detail = f"event created {event.created}"
    if resolution.note:
        detail += f"; {resolution.note}"
    written = write_transition(
        catalog,
        row,
        snapshot,
        after,
        user_id=base.user_id,
        plan=plan,
        cause=audit.Cause.event(event.id, event.type),
        ordering=Ordering(event.created, event.id, digest),
        detail=detail,
    )
    if not written.applied:
        return _with(base, Outcome.IGNORED, written.reason)
    return replace(
        _with(base, Outcome.APPLIED, "", changed=True),
        duplicates=written.duplicates,
        row=written.stored,
    )
