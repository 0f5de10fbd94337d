"""ApplyStripeEvent orchestration: dedupe, per-customer lock, resolve, apply, notify.

::

    parse -> Redis "seen"? -> lock(customer) -> processed? -> resolve (may ask Stripe)
          -> apply (one transaction) -> [same-second conflict: ask Stripe, apply again]
          -> unlock -> Redis "seen" marker -> on_user_changed -> answer

A transient failure anywhere before the commit (database, Stripe, lock
wait) raises and leaves no record, so the caller's retry applies the event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from billing_service import metrics
from billing_service.events.apply import (
    ApplyResult,
    NeedsAuthorityError,
    Outcome,
    apply_event,
    duplicate_of,
)
from billing_service.events.parse import StripeEvent, parse_event
from billing_service.events.resolve import Resolution, Resolver, SubscriptionFetcher, lock_key
from billing_service.locks import EventGuard
from billing_service.plans import Catalog
from billing_service.storage import repository
from billing_service.storage.database import Database
from billing_service.storage.models import utcnow
from billing_service.subscriptions import SubscriptionView, UserChanged, evaluate

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
        guard: EventGuard,
        *,
        lock_wait: float = 10.0,
        on_user_changed: UserChanged | None = None,
        on_duplicate: DuplicateFound | None = None,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._resolver = Resolver(db, stripe)
        self._guard = guard
        self._lock_wait = lock_wait
        self._on_user_changed = on_user_changed
        self._on_duplicate = on_duplicate

    async def apply(self, payload: bytes) -> EventAnswer:
        """Apply one event from its raw payload; see billing.proto ApplyStripeEvent."""
        event = parse_event(payload)
        started = time.perf_counter()
        result = await self._apply(event)
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
        return await self._answer(result)

    async def _apply(self, event: StripeEvent) -> ApplyResult:
        # Redeliveries are common (Stripe retries, replicas, replays): answer them
        # with one read, before any lock or write transaction. With Redis, its
        # marker says which events are worth that read; without, every one is.
        if not self._guard.uses_redis or await self._guard.seen(event.id):
            found = await self._db.run(duplicate_of, event.id)
            if found is not None:
                return found
        if not event.handled:
            unhandled = Resolution(reason=f"event type {event.type} is not acted on")
            result = await self._db.run(apply_event, self._db, self._catalog, event, unhandled)
        else:
            async with self._guard.hold(lock_key(event), self._lock_wait):
                result = await self._apply_locked(event)
        await self._guard.mark_seen(event.id)
        if result.changed and self._on_user_changed is not None:
            await self._on_user_changed(result.user_id)
        if result.duplicates and self._on_duplicate is not None:
            # Committed and unlocked: the policy's Stripe call holds nothing.
            await self._on_duplicate(result.user_id, result.subscription_id, result.duplicates)
        return result

    async def _apply_locked(self, event: StripeEvent) -> ApplyResult:
        # Checked before resolving, so a retried checkout/invoice event costs no Stripe call.
        found = await self._db.run(duplicate_of, event.id)
        if found is not None:
            return found
        resolution = await self._resolver.resolve(event)
        try:
            return await self._db.run(apply_event, self._db, self._catalog, event, resolution)
        except NeedsAuthorityError as conflict:
            assert resolution.snapshot is not None
            sub_id = resolution.snapshot.id
            fetched = await self._resolver.fetch(sub_id)
            if fetched is None:
                resolution = Resolution(reason=f"Stripe does not know subscription {sub_id}")
            else:
                note = (
                    f"same-second conflict with {conflict.other_event_id}; "
                    f"state of {sub_id} fetched from Stripe"
                )
                resolution = replace(resolution, snapshot=fetched, authoritative=True, note=note)
            return await self._db.run(apply_event, self._db, self._catalog, event, resolution)

    async def _answer(self, result: ApplyResult) -> EventAnswer:
        if not result.subscription_id or not result.user_id:
            return EventAnswer(result, None)
        view = await self._db.run(self._view, result.user_id, result.subscription_id)
        return EventAnswer(result, view)

    def _view(self, user_id: str, subscription_id: str) -> SubscriptionView | None:
        row = repository.subscription_by_stripe_id(subscription_id)
        if row is None:
            return None
        grant = evaluate(row, self._catalog, utcnow())
        return SubscriptionView(user_id, row, str(row.stripe_customer_id), grant)


__all__ = ["EventAnswer", "EventService", "Outcome"]
