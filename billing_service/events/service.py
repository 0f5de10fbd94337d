"""ApplyStripeEvent orchestration: dedupe, per-customer lock, resolve, apply, notify.

::

    parse -> Redis: "seen" marker? else lock(customer)   (one round trip, locks.Claim)
          -> [seen: processed? -> answer]
          -> resolve (from the payload)
          -> queue the apply, tie included, for the next group commit of the
             customer's writer (events/group_commit.py); the customer's next
             event may now enter and queue behind it
          -> [only Stripe can tie it, or a same-second conflict: ask Stripe, apply again]
          -> committed: Redis "seen" marker (+ unlock when the customer's last
             event in flight leaves; one round trip) -> on_user_changed -> answer

A transient failure anywhere before the commit (database, Stripe, lock
wait) raises and leaves no record, so the caller's retry applies the event.
The answer's subscription is the row the apply read or wrote under its
lock (the writer's upsert returns it), with no read after; a redelivery is
answered by one indexed read that joins the processed record to its
subscription.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from billing_service import metrics
from billing_service.access import SubscriptionView, evaluate
from billing_service.changes import Listener
from billing_service.events.apply import (
    ApplyResult,
    NeedsAuthorityError,
    Outcome,
    apply_event,
    duplicate_result,
)
from billing_service.events.fetch import CAUSE_CONFLICT, StripeFetches, SubscriptionFetcher
from billing_service.events.fetch_budget import FetchBudget
from billing_service.events.group_commit import GroupCommitter
from billing_service.events.parse import StripeEvent, parse_event
from billing_service.events.resolve import NeedsStripeTieError, Resolution, Resolver, lock_key
from billing_service.locks import Claim, EventLocks
from billing_service.plans import Catalog
from billing_service.storage import fixed_sql, repository
from billing_service.storage.database import Database
from billing_service.storage.models import Subscription, utcnow

# (user_id, subscription that became live, the user's other live ones), after the commit.
DuplicateFound = Callable[[str, str, tuple[str, ...]], Awaitable[None]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventAnswer:
    """What ApplyStripeEvent answers: the outcome and the resulting subscription, if any."""

    result: ApplyResult
    subscription: SubscriptionView | None


class EventService:
    """Applies verified Stripe events exactly once, in any order, on any replica."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        stripe: SubscriptionFetcher,
        locks: EventLocks,
        *,
        lock_wait: float = 10.0,
        on_user_changed: Listener | None = None,
        fetch_budget: FetchBudget | None = None,
        committer: GroupCommitter | None = None,
        on_duplicate: DuplicateFound | None = None,
    ) -> None:
        self._db = db
        self._committer = committer or GroupCommitter(db)
        self._catalog = catalog
        self._fetches = StripeFetches(stripe, fetch_budget)
        self._resolver = Resolver(db, self._fetches)
        self._locks = locks
        self._lock_wait = lock_wait
        self._on_user_changed = on_user_changed
        self._on_duplicate = on_duplicate

    async def apply(self, payload: bytes) -> EventAnswer:
        """Apply one event from its raw payload; see billing.proto ApplyStripeEvent."""
        return await self.apply_parsed(parse_event(payload))

    async def apply_parsed(self, event: StripeEvent) -> EventAnswer:
        """Apply one event already parsed (``parse.parse_event`` or ``parse.event_from_dict``)."""
        started = time.perf_counter()
        answer = await self._apply(event)
        result = answer.result
        metrics.EVENTS.labels(event.type, result.outcome.value).inc()
        log.info(
            "event %s (%s) -> %s %s",
            event.id,
            event.type,
            result.outcome,
            result.reason,
            extra={
                "event_id": event.id,
                "event_type": event.type,
                "user_id": result.user_id or None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return answer

    async def _apply(self, event: StripeEvent) -> EventAnswer:
        # Redeliveries are common (Stripe retries, replicas, replays): answer them
        # with one read, before any write transaction and with no lock held. With
        # Redis, its marker says which events are worth that read (asked in the
        # round trip that takes the lock); without, every one is.
        if not event.handled:
            answer = await self._apply_unhandled(event)
        else:
            async with self._locks.claim(lock_key(event), event.id, self._lock_wait) as claim:
                if await claim.seen():
                    found = await self._db.run(self._duplicate, event.id)
                    if found is not None:
                        return found
                    await claim.hold()
                answer = await self._apply_locked(event, claim)
                claim.applied()
        result = answer.result
        if result.changed and self._on_user_changed is not None:
            await self._on_user_changed(result.user_id)
        if result.duplicates and self._on_duplicate is not None:
            # Committed and unlocked: the policy's Stripe call holds nothing.
            await self._on_duplicate(result.user_id, result.subscription_id, result.duplicates)
        return answer

    async def _apply_unhandled(self, event: StripeEvent) -> EventAnswer:
        """Record an event type we do not act on (no lock: it changes nothing)."""
        if not self._locks.uses_redis or await self._locks.seen(event.id):
            found = await self._db.run(self._duplicate, event.id)
            if found is not None:
                return found
        unhandled = Resolution(reason=f"event type {event.type} is not acted on")
        answer = await self._committed(event, unhandled)
        await self._locks.mark_seen(event.id)
        return answer

    async def _apply_locked(self, event: StripeEvent, claim: Claim) -> EventAnswer:
        # No duplicate read here: ``_apply`` made it (no Redis, or Redis remembers
        # the event), or Redis does not remember the event, which is then new
        # unless Redis lost its marker; the apply's own check on the processed
        # record catches that rare one after its resolve.
        resolution = await self._resolver.resolve(event)
        try:
            return await self._committed(event, resolution, claim)
        except NeedsStripeTieError:
            # Rare: only Stripe can tie it, and the apply cannot wait for Stripe.
            return await self._committed(event, await self._resolver.resolve_with_stripe(event))
        except NeedsAuthorityError as conflict:
            assert resolution.snapshot is not None
            sub_id = resolution.snapshot.id
            fetched = await self._fetches.fetch(sub_id, CAUSE_CONFLICT)
            if fetched is None:
                resolution = Resolution(reason=f"Stripe does not know subscription {sub_id}")
            else:
                note = (
                    f"same-second conflict with {conflict.other_event_id}; "
                    f"state of {sub_id} fetched from Stripe"
                )
                resolution = replace(resolution, snapshot=fetched, authoritative=True, note=note)
            return await self._committed(event, resolution)

    async def _committed(
        self, event: StripeEvent, resolution: Resolution, claim: Claim | None = None
    ) -> EventAnswer:
        """Apply in the next group commit; the answer once that committed.

        Once the apply is queued, the customer's next event may resolve and
        queue behind it (``claim.queued()``): the committer keeps a key's units
        in order, so it need not wait for this one's commit.
        """
        done = self._committer.enqueue(self._unit(event, resolution), lock_key(event))
        if claim is not None:
            claim.queued()
        return await done

    def _unit(self, event: StripeEvent, resolution: Resolution) -> Callable[[], EventAnswer]:
        def apply_and_view() -> EventAnswer:
            result = apply_event(self._db, self._catalog, event, resolution)
            if not result.subscription_id or not result.user_id:
                return EventAnswer(result, None)
            row = result.row
            if result.outcome is Outcome.DUPLICATE:
                # A concurrent delivery won the unique index: this apply read no row.
                row = repository.subscription_by_stripe_id(result.subscription_id)
            return EventAnswer(result, self._view(result.user_id, row))

        return apply_and_view

    def _duplicate(self, event_id: str) -> EventAnswer | None:
        """The DUPLICATE answer with its subscription, in one indexed read; None when new."""
        found = fixed_sql.processed_with_subscription(event_id)
        if found is None:
            return None
        done, row = found
        result = duplicate_result(done)
        if result is None:
            return None
        if row is None or not result.user_id:
            return EventAnswer(result, None)
        return EventAnswer(result, self._view(result.user_id, row))

    def _view(self, user_id: str, row: Subscription | None) -> SubscriptionView | None:
        if row is None:
            return None
        grant = evaluate(row, self._catalog, utcnow())
        return SubscriptionView(user_id, row, str(row.stripe_customer_id), grant)


__all__ = ["EventAnswer", "EventService", "Outcome"]
