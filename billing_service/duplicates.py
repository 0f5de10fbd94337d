"""A second live subscription for one user: found in the write, reported, and the policy applied.

Detection runs inside the transaction that makes a subscription live
(``events/duplicate_check.py``, called by ``events.transition.write_transition``,
shared by ApplyStripeEvent and the resyncs from Stripe): when the user already
has another live subscription, an audit record names both and the write
returns their ids.

After the commit, ``DuplicateHandler.handle`` logs at WARNING, counts
``billing_duplicate_subscriptions`` and applies the plans file's
``[checkout] on_duplicate`` policy:

- ``flag`` (default): nothing more. Both stay stored and visible
  (``other_live_subscription_ids``); a person decides, and cancels one by id.
- ``cancel_newest``: the newest live subscription (by Stripe ``created``, then
  the order we stored them) is
  canceled at Stripe now with ``prorate=true`` and ``invoice_now=true`` (the
  unused time is credited on a final invoice), and Stripe's answer is stored
  with an audit record naming the policy. This runs after the event's
  transaction committed and its lock was released: no lock is held across the
  Stripe call. When the cancel fails it is logged and counted
  (``action="cancel_failed"``); the duplicate stays visible for a person.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from billing_service.errors import BillingError
from billing_service.events.duplicate_check import LIVE_VALUES
from billing_service.plans import OnDuplicate
from billing_service.storage import repository
from billing_service.storage.database import Database, StorageUnavailable
from billing_service.storage.models import Subscription
from billing_service.stripe_api import StripeApi
from billing_service.subscriptions import SubscriptionService

log = logging.getLogger(__name__)

DUPLICATES = Counter(
    "billing_duplicate_subscriptions",
    "Second live subscriptions found for one user, by what was done (flagged, canceled, "
    "cancel_failed)",
    ["action"],
)
POLICY_CALLER = "billing-service"


def _newest_live(user_id: str) -> Subscription | None:
    rows = repository.subscriptions_in_status(user_id, LIVE_VALUES)
    if len(rows) < 2:
        return None
    # Within one Stripe second, the one we stored last is the newer.
    return max(rows, key=lambda row: (row.stripe_created, row.id))


class DuplicateHandler:
    """Reports a duplicate after its write committed, then applies the policy."""

    def __init__(
        self,
        db: Database,
        stripe_api: StripeApi,
        subscriptions: SubscriptionService,
        policy: OnDuplicate,
    ) -> None:
        self._db = db
        self._stripe = stripe_api
        self._subscriptions = subscriptions
        self.policy = policy

    async def handle(self, user_id: str, subscription_id: str, others: tuple[str, ...]) -> None:
        """``subscription_id`` became live while ``others`` were: report, then apply the policy."""
        log.warning(
            "user has more than one live subscription: %s became live beside %s (policy %s)",
            subscription_id,
            ", ".join(others),
            self.policy.value,
            extra={"user_id": user_id},
        )
        if self.policy is OnDuplicate.FLAG:
            DUPLICATES.labels("flagged").inc()
            return
        newest = await self._db.run(_newest_live, user_id)
        if newest is None:  # one of them ended meanwhile: nothing to cancel
            DUPLICATES.labels("flagged").inc()
            return
        newest_id = str(newest.stripe_subscription_id)
        try:
            before = await self._subscriptions.target(user_id, newest_id)
            answer = await self._stripe.cancel_subscription(newest_id, prorate=True)
            await self._subscriptions.store_answer(
                before,
                answer,
                POLICY_CALLER,
                "on_duplicate=cancel_newest",
                f"canceled {newest_id}, the newest of the user's live subscriptions "
                f"({', '.join(sorted({subscription_id, *others}))}), with proration "
                "(prorate=true, invoice_now=true)",
            )
        except (BillingError, StorageUnavailable) as exc:
            DUPLICATES.labels("cancel_failed").inc()
            log.warning(
                "on_duplicate=cancel_newest could not cancel %s: %s",
                newest_id,
                exc,
                extra={"user_id": user_id},
            )
            return
        DUPLICATES.labels("canceled").inc()
        log.warning(
            "on_duplicate=cancel_newest canceled %s with proration",
            newest_id,
            extra={"user_id": user_id},
        )
