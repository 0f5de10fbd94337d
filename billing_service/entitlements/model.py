"""What a user is entitled to, derived from the one access policy.

Everything here is pure: no I/O, no clock reads (``now`` is passed in), and
no protobuf: the answers an entry carries are built once per catalog at the
edge (``wire.ResponseBook``) and held here as opaque values of type ``A``.

``Entry`` is what the in-process cache holds per user for the hot path
(CheckEntitlement): the tier and status of the grant that answers now
(``best_subscription.choose`` over the user's rows), the instant it ends,
and the answers prebuilt for that tier; nothing of the rows themselves in
the common case. Entries that never end are shared by every user of the same
tier and status (``EntryBook``), so a million users cost their dict slot and
id (docs/performance.md). An entry is valid until ``expires_at``: after it a
user with one subscription is free (every finite ``access_until`` ends in
free), and the rare user with several unended subscriptions (a duplicate)
is chosen for again from the rows their entry keeps for exactly that case.

GetEntitlements and WatchEntitlements carry per-user detail (the subscription
id, the other live ones, seats, trial end): ``wire.entitlements_message``
builds them from the user's rows, read when asked, never held per user in
memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from billing_service.best_subscription import choose, relevant, status_of
from billing_service.lifecycle import Grant, Status
from billing_service.plans import Catalog
from billing_service.storage.models import Subscription

STATUS_BY_VALUE: dict[str, Status] = {s.value: s for s in Status}
_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)

A = TypeVar("A")
A_co = TypeVar("A_co", covariant=True)


class AnswerTable(Protocol[A_co]):
    """The answers of every (tier, known feature) for one catalog (``wire.ResponseBook``)."""

    @property
    def catalog(self) -> Catalog:
        """The catalog the answers were built from."""

    @property
    def by_tier(self) -> Mapping[str, Mapping[str, A_co]]:
        """Per tier name, per feature, the answer."""


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


class Entry(Generic[A]):
    """One answer state: a tier, a status and the instant the tier ends; immutable.

    The cache holds one reference per user. Entries without an end (the
    great majority: active subscriptions, every free status) are interned by
    ``EntryBook.entry``, so a million users share a handful of objects and
    cost only their dict slot and user id; only a finite ``expires_at`` makes
    an entry of its own. ``rows`` is empty except for a user with several
    unended subscriptions whose answer ends: then it holds them, to choose
    again at ``expires_at``.
    """

    __slots__ = ("checks", "expires_at", "rows", "status", "tier")

    def __init__(
        self,
        tier: str,
        status: Status,
        expires_at: float,
        checks: Mapping[str, A],
        rows: tuple[Subscription, ...] = (),
    ) -> None:
        self.tier = tier
        self.status = status
        self.expires_at = expires_at
        self.checks = checks
        self.rows = rows

    @property
    def grant(self) -> Grant:
        """The Grant this entry was built from."""
        return Grant(self.tier, from_epoch_seconds(self.expires_at))


class EntryBook(Generic[A]):
    """Builds entries, sharing one object per (tier, status) for entries that never expire."""

    def __init__(self, book: AnswerTable[A]) -> None:
        self.book = book
        self._free = book.by_tier[book.catalog.free.name]
        self._open: dict[tuple[str, Status], Entry[A]] = {}

    def entry(
        self, tier: str, status: Status, expires_at: float, rows: tuple[Subscription, ...] = ()
    ) -> Entry[A]:
        """The entry for a grant of ``tier`` until ``expires_at`` (+inf: open-ended)."""
        checks = self.book.by_tier.get(tier, self._free)
        if expires_at == math.inf:
            shared = self._open.get((tier, status))
            if shared is None:
                shared = self._open[(tier, status)] = Entry(tier, status, expires_at, checks)
            return shared
        return Entry(tier, status, expires_at, checks, rows)

    def expired(self, entry: Entry[A], now: datetime) -> Entry[A]:
        """``entry`` once its ``expires_at`` has passed, at ``now`` (naive UTC).

        Every finite ``access_until`` that ``lifecycle.grant`` gives ends in
        the free tier with no end (grace over, or cancelled at period end), so
        one subscription's row need not be kept to evaluate it again; a user
        with several unended ones is chosen for again from the rows kept.
        """
        if entry.rows:
            return self.from_rows(entry.rows, now)
        return self.entry(self.book.catalog.free.name, entry.status, math.inf)

    def from_rows(self, rows: Sequence[Subscription], now: datetime) -> Entry[A]:
        """The entry for one user's ``rows`` (empty: no subscription) at ``now`` (naive UTC)."""
        competing = relevant(rows)
        choice = choose(competing, self.book.catalog, now)
        until = epoch_seconds(choice.valid_until)
        kept = tuple(competing) if len(competing) > 1 and until != math.inf else ()
        return self.entry(choice.grant.tier, status_of(choice.best), until, kept)


def build_entry(
    user_id: str,
    rows: Sequence[Subscription] | Subscription | None,
    book: AnswerTable[A],
    now: datetime,
) -> Entry[A]:
    """The entry for the user's ``rows`` (one row; None: no subscription) at ``now`` (naive UTC)."""
    if rows is None:
        rows = ()
    elif isinstance(rows, Subscription):
        rows = (rows,)
    return EntryBook(book).from_rows(rows, now)


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
