"""Writing dead letters from the gateway, off the event loop.

Decision: the gateway writes the ``dead_letter`` table of the billing
service's own database (DATABASE_URL) through peewee rather than through a
new RPC. A dead letter exists precisely when the billing service refused the
event, and the write must not depend on that same service's code path; it is
also rare, so a two-thread pool is plenty. The table comes with the service's
migrations (0002). When the write fails the gateway answers 503 and Stripe
retries, so an event is never acknowledged before it is stored.
"""

from __future__ import annotations

import logging

import peewee

from billing_service.storage.database import Database, StorageUnavailable, redact_url
from billing_service.storage.dead_letters import record_dead_letter

log = logging.getLogger(__name__)


class DeadLetterStoreError(Exception):
    """The dead letter could not be stored."""


class DeadLetterStore:
    """Stores dead letters in DATABASE_URL on a small thread pool (storage.database.Database)."""

    def __init__(self, database_url: str, workers: int = 2) -> None:
        self._url = database_url
        self._db = Database(database_url, workers=workers)

    async def record(self, payload: str, event_id: str, event_type: str, error: str) -> int:
        """Store the event; returns the dead letter's id. Raises DeadLetterStoreError."""
        try:
            return await self._db.run(record_dead_letter, payload, event_id, event_type, error)
        except (StorageUnavailable, peewee.PeeweeException) as exc:
            problem = type(exc.__cause__ if isinstance(exc, StorageUnavailable) else exc).__name__
            log.error(
                "dead letter for %s not stored in %s: %s",
                event_id or "(no id)",
                redact_url(self._url),
                problem,
            )
            raise DeadLetterStoreError(problem) from exc

    def close(self) -> None:
        """Finish pending writes and close connections."""
        self._db.close()
