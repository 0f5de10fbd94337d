"""What a user is entitled to, derived from the one access policy, and the answers built from it.

Everything here is pure: no I/O, no clock reads (``now`` is passed in).
``Entry`` is what the in-process cache holds per user: the tier and status
of the Grant ``subscriptions.evaluate`` computed from the row, the instant it
ends, and the responses prebuilt for the hot path; nothing of the row itself.
An entry is valid until ``expires_at`` (the Grant's ``access_until``): after
it the user is free (``EntryBook.expired``), so a cancel-at-period-end user
drops to free with no event.
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
STATUS_BY_VALUE: dict[str, Status] = {s.value: s for s in Status}
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


def from_epoch_seconds(value: float) -> datetime | None:
    """The naive-UTC datetime of ``epoch_seconds`` (None for +inf)."""
    if value == math.inf:
        return None
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)


class Entry:
    """One answer state: a tier, a status and the instant the tier ends; immutable.

    The cache holds one reference per user. Entries without an end (the
    great majority: active subscriptions, every free status) are interned by
    ``ResponseBook.entry``, so a million users share a handful of objects and
    cost only their dict slot and user id; only a finite ``expires_at`` makes
    an entry of its own (docs/performance.md, "where the bytes went").
    """

    __slots__ = ("checks", "expires_at", "status", "tier")

    def __init__(
        self,
        tier: str,
        status: Status,
        expires_at: float,
        checks: Mapping[str, pb.CheckEntitlementResponse],
    ) -> None:
        self.tier = tier
        self.status = status
        self.expires_at = expires_at
        self.checks = checks

    @property
    def grant(self) -> Grant:
        """The Grant this entry was built from."""
        return Grant(self.tier, from_epoch_seconds(self.expires_at))

    def entitlements(self, user_id: str, catalog: Catalog) -> pb.GetEntitlementsResponse:
        """The GetEntitlements answer for ``user_id``."""
        plan = catalog.tier(self.tier)
        message = pb.GetEntitlementsResponse(
            user_id=user_id,
            tier=plan.name,
            status=STATUS_TO_PROTO[self.status],
            features=sorted(plan.features),
            monthly_limit=plan.monthly_limit,
        )
        until = timestamp(from_epoch_seconds(self.expires_at))
        if until is not None:
            message.access_until.CopyFrom(until)
        return message

    def same_answer(self, other: Entry) -> bool:
        """True when both entries give the same answers (tier, status, access_until)."""
        return (self.tier, self.status, self.expires_at) == (
            other.tier,
            other.status,
            other.expires_at,
        )


class EntryBook:
    """Builds entries, sharing one object per (tier, status) for entries that never expire."""

    def __init__(self, book: ResponseBook) -> None:
        self.book = book
        self._free = book.by_tier[book.catalog.free.name]
        self._open: dict[tuple[str, Status], Entry] = {}

    def entry(self, tier: str, status: Status, expires_at: float) -> Entry:
        """The entry for a grant of ``tier`` until ``expires_at`` (+inf: open-ended)."""
        if expires_at == math.inf:
            shared = self._open.get((tier, status))
            if shared is None:
                shared = self._open[(tier, status)] = Entry(
                    tier, status, expires_at, self.book.by_tier.get(tier, self._free)
                )
            return shared
        return Entry(tier, status, expires_at, self.book.by_tier.get(tier, self._free))

    def expired(self, entry: Entry) -> Entry:
        """``entry`` once its ``expires_at`` has passed.

        Every finite ``access_until`` that ``lifecycle.grant`` gives ends in
        the free tier with no end (grace over, or cancelled at period end), so
        the stored row need not be kept to evaluate it again.
        """
        return self.entry(self.book.catalog.free.name, entry.status, math.inf)

    def from_grant(self, grant: Grant, status: Status) -> Entry:
        """The entry of ``grant`` for a subscription in ``status``."""
        return self.entry(grant.tier, status, epoch_seconds(grant.access_until))

    def from_row(self, row: Subscription | None, now: datetime) -> Entry:
        """The entry for ``row`` (None: no subscription) at ``now`` (naive UTC)."""
        status = STATUS_BY_VALUE[row.status] if row is not None else Status.NONE
        return self.from_grant(evaluate(row, self.book.catalog, now), status)


def build_entry(user_id: str, row: Subscription | None, book: ResponseBook, now: datetime) -> Entry:
    """The entry for ``row`` (None: no subscription) at ``now`` (naive UTC)."""
    return EntryBook(book).from_row(row, now)


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
