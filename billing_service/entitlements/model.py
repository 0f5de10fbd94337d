"""What a user is entitled to, derived from the one access policy, and the answers built from it.

Everything here is pure: no I/O, no clock reads (``now`` is passed in).
``Entry`` is what the in-process cache holds per user: the user's rows that
can answer (``best_subscription.relevant``: normally one), the best of them
and its Grant (``best_subscription.choose``) and the responses prebuilt for
the hot path. An entry is valid until ``expires_at`` (the earliest
``access_until`` among those rows): after it the same rows are evaluated
again, so a cancel-at-period-end user drops to free (or to their other live
subscription) with no event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from billing_service.best_subscription import choose, relevant
from billing_service.convert import STATUS_TO_PROTO, timestamp
from billing_service.lifecycle import Status
from billing_service.plans import Catalog
from billing_service.storage.models import Subscription
from generated.billing.v1 import billing_pb2 as pb

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

    __slots__ = (
        "_full",
        "checks",
        "expires_at",
        "grant",
        "others",
        "row",
        "rows",
        "status",
        "user_id",
    )

    def __init__(
        self, user_id: str, rows: tuple[Subscription, ...], book: ResponseBook, now: datetime
    ):
        choice = choose(rows, book.catalog, now)
        self.user_id = user_id
        self.rows = rows
        self.row = choice.best
        self.grant = choice.grant
        self.others = tuple(str(o.stripe_subscription_id) for o in choice.others)
        self.status = Status(self.row.status) if self.row is not None else Status.NONE
        self.expires_at = epoch_seconds(choice.valid_until)
        self.checks: Mapping[str, pb.CheckEntitlementResponse] = book.by_tier.get(
            self.grant.tier, book.by_tier[book.catalog.free.name]
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
                stripe_subscription_id=str(self.row.stripe_subscription_id) if self.row else "",
                other_live_subscription_ids=self.others,
            )
            until = timestamp(self.grant.access_until)
            if until is not None:
                message.access_until.CopyFrom(until)
            if self.row is not None and plan.name != catalog.free.name:
                message.seats = int(self.row.quantity or 1)
                trial_end = (
                    timestamp(self.row.trial_end) if self.status is Status.TRIALING else None
                )
                if trial_end is not None:
                    message.trial_end.CopyFrom(trial_end)
            self._full = message
        return self._full

    def same_answer(self, other: Entry) -> bool:
        """True when both entries give the same answers (tier, status, access_until, others,
        seats, trial end)."""
        return (self.grant, self.status, self.others, _offer(self.row)) == (
            other.grant,
            other.status,
            other.others,
            _offer(other.row),
        )


def _offer(row: Subscription | None) -> tuple[int, datetime | None]:
    return (int(row.quantity or 1), row.trial_end) if row is not None else (0, None)


def build_entry(
    user_id: str,
    rows: Sequence[Subscription] | Subscription | None,
    book: ResponseBook,
    now: datetime,
) -> Entry:
    """The entry for the user's ``rows`` (one row; None: no subscription) at ``now`` (naive UTC)."""
    if rows is None:
        rows = ()
    elif isinstance(rows, Subscription):
        rows = (rows,)
    return Entry(user_id, tuple(rows), book, now)


def pick_current(rows: Iterable[Subscription]) -> dict[str, list[Subscription]]:
    """Per user, the rows that can answer for them (``best_subscription.relevant``)."""
    by_user: dict[str, list[Subscription]] = {}
    for row in rows:
        by_user.setdefault(str(row.user_id), []).append(row)
    return {user: relevant(user_rows) for user, user_rows in by_user.items()}


# Fields an L2 (Redis) record keeps: exactly what ``choose`` and the answers read.
def encode_rows(rows: Sequence[Subscription]) -> str:
    """A compact text form of the fields the answer depends on ("-" without a row)."""
    if not rows:
        return "-"
    return ";".join(_encode(row) for row in rows)


def _encode(row: Subscription) -> str:
    end = "" if row.current_period_end is None else str((row.current_period_end - _EPOCH) // _US)
    trial_end = "" if row.trial_end is None else str((row.trial_end - _EPOCH) // _US)
    return (
        f"{row.status}|{int(bool(row.cancel_at_period_end))}|{end}|{row.plan}|"
        f"{int(row.stripe_created or 0)}|{row.stripe_subscription_id}|"
        f"{int(row.quantity or 1)}|{trial_end}"
    )


def decode_rows(user_id: str, text: str) -> list[Subscription]:
    """The (unsaved) rows ``encode_rows`` wrote; ValueError when malformed."""
    if text == "-":
        return []
    rows = []
    for part in text.split(";"):
        # Records written before issue 13 have six fields (one seat, no trial end).
        status, cancel, end, plan, created, sub_id, *offer = part.split("|")
        quantity, trial_end = offer if len(offer) == 2 else ("1", "")
        Status(status)
        rows.append(
            Subscription(
                user_id=user_id,
                status=status,
                plan=plan,
                current_period_end=_EPOCH + int(end) * _US if end else None,
                cancel_at_period_end=cancel == "1",
                stripe_created=int(created),
                stripe_subscription_id=sub_id,
                quantity=int(quantity),
                trial_end=_EPOCH + int(trial_end) * _US if trial_end else None,
            )
        )
    return rows
