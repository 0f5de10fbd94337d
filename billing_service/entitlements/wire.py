"""The edge of the entitlements package: every billing.v1 message it answers with is built here.

The rest of the package (``model``, ``cache``, ``loader``, ``warmer``,
``watch``, ``coherence``) knows nothing of protobuf building. Two measured
optimisations (docs/performance.md) keep the building here rather than in
the servicer, per call:

* ``ResponseBook``: the CheckEntitlement answers of every (tier, known
  feature), built once per catalog. The cache hands them out as they are, so
  a hit builds nothing.
* ``WatchFeed``: a change watched by a thousand streams is read and built
  into one message that every stream sends (``_change_message``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from billing_service.best_subscription import choose, status_of
from billing_service.convert import STATUS_TO_PROTO, timestamp
from billing_service.entitlements.loader import EntryLoader
from billing_service.entitlements.watch import WatchHub
from billing_service.lifecycle import Status
from billing_service.plans import Catalog
from billing_service.storage.models import Subscription, utcnow
from generated.billing.v1 import billing_pb2 as pb

CheckAnswer = pb.CheckEntitlementResponse
"""What the cache holds per (tier, feature): the CheckEntitlement response itself."""

SNAPSHOT_PAGE = 500
_CHANGE_MESSAGES_KEPT = 64


class ResponseBook:
    """CheckEntitlement answers for every (tier, known feature), built once per catalog.

    Answers depend only on the tier and the feature, so all users of a tier
    share the same immutable message objects.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.features = catalog.all_features
        tiers = [catalog.free, *catalog.plans.values()]
        self.by_tier: dict[str, dict[str, CheckAnswer]] = {
            plan.name: {
                feature: CheckAnswer(
                    allowed=feature in plan.features,
                    tier=plan.name,
                    reason=(
                        f"tier {plan.name!r} includes {feature!r}"
                        if feature in plan.features
                        else f"tier {plan.name!r} does not include {feature!r}"
                    ),
                )
                for feature in self.features
            }
            for plan in tiers
        }

    def unknown_feature(self, tier: str, feature: str) -> CheckAnswer:
        """The answer for a feature no tier grants."""
        return CheckAnswer(
            allowed=False,
            tier=tier,
            reason=f"unknown feature {feature!r}: not in the plans catalog",
        )


def entitlements_message(
    user_id: str, rows: Sequence[Subscription], catalog: Catalog, now: datetime
) -> pb.GetEntitlementsResponse:
    """The GetEntitlements answer for one user's ``rows`` at ``now`` (naive UTC)."""
    choice = choose(rows, catalog, now)
    row = choice.best
    status = status_of(row)
    plan = catalog.tier(choice.grant.tier)
    message = pb.GetEntitlementsResponse(
        user_id=user_id,
        tier=plan.name,
        status=STATUS_TO_PROTO[status],
        features=sorted(plan.features),
        monthly_limit=plan.monthly_limit,
        stripe_subscription_id=str(row.stripe_subscription_id) if row is not None else "",
        other_live_subscription_ids=[str(o.stripe_subscription_id) for o in choice.others],
    )
    until = timestamp(choice.grant.access_until)
    if until is not None:
        message.access_until.CopyFrom(until)
    if row is not None and plan.name != catalog.free.name:
        message.seats = int(row.quantity or 1)
        trial_end = timestamp(row.trial_end) if status is Status.TRIALING else None
        if trial_end is not None:
            message.trial_end.CopyFrom(trial_end)
    return message


class WatchFeed:
    """The WatchEntitlements messages of this process: snapshots, then shared change messages."""

    def __init__(self, catalog: Catalog, hub: WatchHub, loader: EntryLoader[CheckAnswer]) -> None:
        self._catalog = catalog
        self._hub = hub
        self._loader = loader
        # One message per change, shared by every stream watching the user (built once).
        self._change_messages: dict[
            tuple[str, float], asyncio.Future[pb.WatchEntitlementsResponse]
        ] = {}

    async def stream(
        self, user_ids: list[str], ready: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[pb.WatchEntitlementsResponse]:
        """The snapshot of ``user_ids`` (all users when empty), then every change.

        ``ready`` is awaited once the stream is registered for changes and
        before the snapshot is read, so a caller that saw it misses no change
        made afterwards. ``user_ids`` must have been validated.
        """
        stream = self._hub.subscribe(user_ids or None)
        try:
            await ready()
            async for message in self._snapshot(list(dict.fromkeys(user_ids))):
                yield message
            while True:
                user, changed_at, usage = await stream.next()
                message = await self._change_message(user, changed_at)
                if usage is not None:
                    # Usage is this stream's own: add it to a copy, never to the shared message.
                    own = pb.WatchEntitlementsResponse()
                    own.CopyFrom(message)
                    own.usage.CopyFrom(usage)
                    message = own
                yield message
        finally:
            self._hub.unsubscribe(stream)

    async def _change_message(self, user: str, changed_at: float) -> pb.WatchEntitlementsResponse:
        # A thousand streams watching one user: the first reads the rows, the rest share it.
        key = (user, changed_at)
        pending = self._change_messages.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._change_messages[key] = pending
            while len(self._change_messages) > _CHANGE_MESSAGES_KEPT:
                del self._change_messages[next(iter(self._change_messages))]
            try:
                rows = await self._loader.rows([user])
                pending.set_result(
                    self._message(user, rows.get(user, []), snapshot=False, at=changed_at)
                )
            except Exception as exc:
                self._change_messages.pop(key, None)
                pending.set_exception(exc)
                pending.exception()  # retrieved here; streams sharing it get it too
                raise
        return await asyncio.shield(pending)

    def _message(
        self, user: str, rows: list[Subscription], *, snapshot: bool, at: float
    ) -> pb.WatchEntitlementsResponse:
        message = pb.WatchEntitlementsResponse(snapshot=snapshot)
        message.entitlements.CopyFrom(entitlements_message(user, rows, self._catalog, utcnow()))
        ts = Timestamp()
        ts.FromNanoseconds(int(at * 1e9))
        message.changed_at.CopyFrom(ts)
        return message

    async def _snapshot(self, users: list[str]) -> AsyncIterator[pb.WatchEntitlementsResponse]:
        if users:
            for start in range(0, len(users), SNAPSHOT_PAGE):
                page = users[start : start + SNAPSHOT_PAGE]
                rows = await self._loader.rows(page)
                at = time.time()
                for user in page:
                    yield self._message(user, rows.get(user, []), snapshot=True, at=at)
            return
        # Every user with a subscription, a page at a time: memory stays one page.
        after = ""
        while True:
            page = await self._loader.subscribed_users_after(after, SNAPSHOT_PAGE)
            if not page:
                return
            rows = await self._loader.database_rows(page)
            at = time.time()
            for user in page:
                yield self._message(user, rows.get(user, []), snapshot=True, at=at)
            after = page[-1]
