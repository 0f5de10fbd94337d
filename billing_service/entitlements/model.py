"""What a user is entitled to, derived from the one access policy, and the answers built from it.

Everything here is pure: no I/O, no clock reads (``now`` is passed in).
``Entry`` is what the in-process cache holds per user: the subscription row
the answer came from, the Grant computed from it by ``subscriptions.evaluate``
and the responses prebuilt for the hot path. An entry is valid until
``expires_at`` (the Grant's ``access_until``): after it the same row is
evaluated again, so a cancel-at-period-end user drops to free with no event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from billing_service.convert import STATUS_TO_PROTO, timestamp
from billing_service.lifecycle import TERMINAL, Grant, Status
from billing_service.plans import Catalog
from billing_service.storage.models import Subscription
from billing_service.subscriptions import evaluate
from generated.billing.v1 import billing_pb2 as pb

_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)


class ResponseBook:
    """CheckEntitlement answers for every (tier, known feature), built once per catalog.

    Answers depend only on the tier and the feature, so all users of a tier
    share the same immutable message objects.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.features = catalog.all_features
        tiers = [catalog.free, *catalog.plans.values()]
        self.by_tier: dict[str, dict[str, pb.CheckEntitlementResponse]] = {
            plan.name: {
                feature: pb.CheckEntitlementResponse(
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

    def unknown_feature(self, tier: str, feature: str) -> pb.CheckEntitlementResponse:
        """The answer for a feature no tier grants."""
        return pb.CheckEntitlementResponse(
            allowed=False,
            tier=tier,
            reason=f"unknown feature {feature!r}: not in the plans catalog",
        )


def epoch_seconds(value: datetime | None) -> float:
    """Seconds since the epoch of a naive-UTC datetime; +inf for None (never)."""
    if value is None:
        return math.inf
    return value.replace(tzinfo=UTC).timestamp()


class Entry:
    """One user's cached entitlements; immutable once built."""

    __slots__ = ("_full", "checks", "expires_at", "grant", "row", "status", "user_id")

    def __init__(self, user_id: str, row: Subscription | None, grant: Grant, book: ResponseBook):
        self.user_id = user_id
        self.row = row
        self.grant = grant
        self.status = Status(row.status) if row is not None else Status.NONE
        self.expires_at = epoch_seconds(grant.access_until)
        self.checks: Mapping[str, pb.CheckEntitlementResponse] = book.by_tier.get(
            grant.tier, book.by_tier[book.catalog.free.name]
        )
        self._full: pb.GetEntitlementsResponse | None = None

    @property
    def tier(self) -> str:
        """The tier granted now."""
        return self.grant.tier

    def entitlements(self, catalog: Catalog) -> pb.GetEntitlementsResponse:
        """The GetEntitlements answer (built on first use, then reused)."""
        if self._full is None:
            plan = catalog.tier(self.grant.tier)
            message = pb.GetEntitlementsResponse(
                user_id=self.user_id,
                tier=plan.name,
                status=STATUS_TO_PROTO[self.status],
                features=sorted(plan.features),
                monthly_limit=plan.monthly_limit,
            )
            until = timestamp(self.grant.access_until)
            if until is not None:
                message.access_until.CopyFrom(until)
            self._full = message
        return self._full

    def same_answer(self, other: Entry) -> bool:
        """True when both entries give the same answers (tier, status, access_until)."""
        return (self.grant, self.status) == (other.grant, other.status)


def build_entry(user_id: str, row: Subscription | None, book: ResponseBook, now: datetime) -> Entry:
    """The entry for ``row`` (None: no subscription) at ``now`` (naive UTC)."""
    return Entry(user_id, row, evaluate(row, book.catalog, now), book)


def is_current_over(candidate: Subscription, best: Subscription) -> bool:
    """True when ``candidate`` matters more than ``best`` (repository.current_subscription order).

    A live subscription beats an ended one; among equals the newest by
    (stripe_created, id) wins.
    """
    cand_live = candidate.status not in _TERMINAL_VALUES
    best_live = best.status not in _TERMINAL_VALUES
    if cand_live != best_live:
        return cand_live
    return (candidate.stripe_created, candidate.id) > (best.stripe_created, best.id)


def pick_current(rows: Iterable[Subscription]) -> dict[str, Subscription]:
    """Per user, the subscription that matters now, as ``repository.current_subscription``."""
    best: dict[str, Subscription] = {}
    for row in rows:
        held = best.get(row.user_id)
        if held is None or is_current_over(row, held):
            best[row.user_id] = row
    return best


# Fields an L2 (Redis) record keeps: exactly what ``evaluate`` and the answers read.
def encode_row(row: Subscription | None) -> str:
    """A compact text form of the fields the answer depends on ("-" without a row)."""
    if row is None:
        return "-"
    end = "" if row.current_period_end is None else str((row.current_period_end - _EPOCH) // _US)
    return f"{row.status}|{int(bool(row.cancel_at_period_end))}|{end}|{row.plan}"


def decode_row(user_id: str, text: str) -> Subscription | None:
    """The (unsaved) row ``encode_row`` wrote; ValueError when malformed."""
    if text == "-":
        return None
    status, cancel, end, plan = text.split("|", 3)
    Status(status)
    period_end = _EPOCH + int(end) * _US if end else None
    return Subscription(
        user_id=user_id,
        status=status,
        plan=plan,
        current_period_end=period_end,
        cancel_at_period_end=cancel == "1",
    )
