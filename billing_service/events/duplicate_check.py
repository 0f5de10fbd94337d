"""A second live subscription for one user, found in the transaction that makes one live.

``write_transition`` (events/transition.py) asks ``other_live`` when a
subscription becomes live; a duplicate gets an audit record naming both ids
and the write returns them, so ``duplicates.DuplicateHandler`` can report it
and apply the policy after the commit. On PostgreSQL a transaction-scoped
advisory lock on the user serializes the check, so two subscriptions becoming
live at once in two transactions still see each other.
"""

from __future__ import annotations

from peewee import PostgresqlDatabase

from billing_service.lifecycle import LIVE
from billing_service.storage import fixed_lookup_sql, fixed_sql
from billing_service.storage.deferred import execute_later
from billing_service.storage.models import database as database_proxy

LIVE_VALUES = frozenset(status.value for status in LIVE)
_USER_LOCK_NAMESPACE = 2  # pg_advisory_xact_lock(namespace, hashtext(user id))


def other_live(user_id: str, subscription_id: str) -> tuple[str, ...]:
    """Ids of the user's other live subscriptions than ``subscription_id``; in a transaction."""
    if isinstance(database_proxy.obj, PostgresqlDatabase):
        # Deferred inside a group commit: it travels with the read that follows it.
        execute_later(fixed_sql.ADVISORY_XACT_LOCK_SQL, (_USER_LOCK_NAMESPACE, user_id))
    live = fixed_lookup_sql.subscription_ids_in_status(user_id, LIVE_VALUES)
    return tuple(sorted(found for found in live if found != subscription_id))


def audit_detail(subscription_id: str, others: tuple[str, ...]) -> str:
    """The audit text of a detected duplicate (ids only)."""
    return (
        f"duplicate subscription: {subscription_id} became live while "
        f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} live for this user"
    )
