"""The hash-chained audit trail: one chain per user.

Each record stores the hash of the user's record before it, and its own hash
covers its content (user id included) plus that link; ``audit_chain`` holds
each user's newest hash and record id. Editing a record breaks its own hash;
deleting, inserting or reordering records breaks a link; deleting a user's
newest records leaves the head naming a record that is gone; deleting a
head leaves its records without one. ``verify_chain`` reports the first of
these. Appends lock only their user's head row (inside the caller's
transaction), so writes for different users never wait on each other;
writes for one user were already serialized by the per-customer lock.

Records written before per-user chains (migration 0004) form one global
chain ending at ``audit_chain_head`` row 1, verified as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from billing_service import paging, validation
from billing_service.storage import fixed_sql
from billing_service.storage.database import Database
from billing_service.storage.models import (
    AUDIT_CONTENT_COLUMNS,
    AuditChain,
    AuditChainHead,
    AuditRecord,
    utcnow,
)

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Cause:
    """Why a subscription changed: a Stripe event, or a caller's RPC."""

    stripe_event_id: str = ""
    stripe_event_type: str = ""
    caller: str = ""
    rpc: str = ""

    @classmethod
    def event(cls, event_id: str, event_type: str) -> Cause:
        """A change caused by a Stripe event."""
        return cls(stripe_event_id=event_id, stripe_event_type=event_type)

    @classmethod
    def call(cls, caller: str, rpc: str) -> Cause:
        """A change caused by an RPC from ``caller``."""
        return cls(caller=caller, rpc=rpc)


def record_hash(fields: dict[str, str], prev_hash: str) -> str:
    """SHA-256 over the record's content (canonical JSON) and the previous hash."""
    content = json.dumps({k: fields[k] for k in AUDIT_CONTENT_COLUMNS}, sort_keys=True)
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def _hashed_view(record: AuditRecord) -> dict[str, str]:
    values = {name: getattr(record, name) for name in AUDIT_CONTENT_COLUMNS}
    values["created_at"] = record.created_at.isoformat(timespec="microseconds")
    return {k: str(v) for k, v in values.items()}


def append(
    *,
    user_id: str,
    stripe_subscription_id: str,
    cause: Cause,
    status_before: str,
    status_after: str,
    tier_before: str,
    tier_after: str,
    detail: str = "",
) -> None:
    """Append one record to the user's chain; call inside the transaction that makes the change.

    On PostgreSQL inside a group commit the record's write travels with the
    transaction's next round trip (``storage/deferred``).
    """
    prev_hash = _lock_head(user_id)
    record = AuditRecord(
        user_id=user_id,
        stripe_subscription_id=stripe_subscription_id,
        stripe_event_id=cause.stripe_event_id,
        stripe_event_type=cause.stripe_event_type,
        caller=cause.caller,
        rpc=cause.rpc,
        status_before=status_before,
        status_after=status_after,
        tier_before=tier_before,
        tier_after=tier_after,
        detail=detail,
        created_at=utcnow(),
        prev_hash=prev_hash,
    )
    record.hash = record_hash(_hashed_view(record), prev_hash)
    # Text columns as str, as peewee's CharField would pass them (enum members included).
    fixed_sql.append_audit_record(
        [
            value if name == "created_at" else str(value)
            for name in fixed_sql.AUDIT_RECORD_COLUMNS
            for value in (getattr(record, name),)
        ],
        user_id,
        record.hash,
    )


def _lock_head(user_id: str) -> str:
    """The user's newest hash, its head row created if new and locked until commit.

    One statement (fixed SQL, ``storage/fixed_sql``): an upsert that touches
    the row takes its row lock on PostgreSQL (SQLite's transactions already
    have a single writer).
    """
    return fixed_sql.lock_audit_head(user_id, GENESIS_HASH)


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying the chain: records checked and the first bad one, if any."""

    checked: int
    first_bad_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        """True when every record links and hashes correctly."""
        return self.first_bad_id is None


def verify_records(
    records: Iterable[AuditRecord], head_hash: str, head_record_id: int = 0
) -> ChainReport:
    """Check hashes and links of ``records`` (in id order) as one chain ending at the head.

    A record whose content was edited fails its own hash; a deleted record
    makes the one after it fail its link; deleting the newest records leaves
    the head pointing at a record that is gone (named by ``head_record_id``).
    """
    prev = GENESIS_HASH
    checked = 0
    for record in records:
        if record.prev_hash != prev:
            return ChainReport(checked, record.id, "does not link to the record before it")
        if record_hash(_hashed_view(record), prev) != record.hash:
            return ChainReport(checked, record.id, "content does not match its hash")
        prev = record.hash
        checked += 1
    if prev != head_hash:
        return ChainReport(
            checked, head_record_id or -1, "the chain head names a record that is missing"
        )
    return ChainReport(checked)


def verify_user_chains(
    records: Iterable[AuditRecord], heads: dict[str, tuple[str, int]], checked: int = 0
) -> ChainReport:
    """Check ``records`` (in id order) as per-user chains ending at ``heads`` (hash, record id).

    Besides edits and broken links, it names a head whose record is missing
    (the user's newest records deleted) and a user whose head is missing.
    """
    last: dict[str, tuple[str, int]] = {}
    for record in records:
        user = str(record.user_id)
        prev = last.get(user, (GENESIS_HASH, 0))[0]
        if record.prev_hash != prev:
            return ChainReport(checked, record.id, "does not link to the record before it")
        if record_hash(_hashed_view(record), prev) != record.hash:
            return ChainReport(checked, record.id, "content does not match its hash")
        last[user] = (str(record.hash), int(record.id))
        checked += 1
    for user, (head_hash, head_record_id) in sorted(heads.items(), key=lambda h: h[1][1]):
        if last.get(user, (GENESIS_HASH, 0))[0] != head_hash:
            return ChainReport(
                checked, head_record_id or -1, "the chain head names a record that is missing"
            )
    for user, (_, newest_id) in sorted(last.items(), key=lambda h: h[1][1]):
        if user not in heads:
            return ChainReport(checked, newest_id, "its chain has no head (head deleted)")
    return ChainReport(checked)


def verify_chain() -> ChainReport:
    """Verify the whole stored trail; call with a database connection open."""
    legacy = AuditChainHead.get_by_id(1)
    boundary = int(legacy.last_record_id)
    before = AuditRecord.select().where(AuditRecord.id <= boundary).order_by(AuditRecord.id)
    report = verify_records(before.iterator(), legacy.last_hash, boundary)
    if not report.ok:
        return report
    heads = {
        str(h.user_id): (str(h.last_hash), int(h.last_record_id))
        for h in AuditChain.select().iterator()
    }
    after = AuditRecord.select().where(AuditRecord.id > boundary).order_by(AuditRecord.id)
    return verify_user_chains(after.iterator(), heads, report.checked)


_CURSOR_PREFIX = "audit:"


def records_for_user(user_id: str, before_id: int | None, limit: int) -> list[AuditRecord]:
    """Up to ``limit`` of the user's records older than ``before_id``, newest first."""
    query = AuditRecord.select().where(AuditRecord.user_id == user_id)
    if before_id is not None:
        query = query.where(AuditRecord.id < before_id)
    return list(query.order_by(AuditRecord.id.desc()).limit(limit))


class AuditLog:
    """Reads of the audit trail for ListAuditEvents."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self, user_id: str, requested_size: int, page_token: str
    ) -> tuple[list[AuditRecord], str]:
        """One page of the user's records, newest first, and the next page's token."""
        validation.user_id(user_id)
        size = paging.page_size(requested_size)
        cursor = paging.decode_page_token(_CURSOR_PREFIX, page_token, 1)
        before = None if cursor is None else cursor[0]
        rows = await self._db.run(records_for_user, user_id, before, size + 1)
        if len(rows) > size:
            return rows[:size], paging.encode_page_token(_CURSOR_PREFIX, int(rows[size - 1].id))
        return rows, ""
