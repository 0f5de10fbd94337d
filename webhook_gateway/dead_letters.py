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

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import peewee

from billing_service.storage.database import open_database, redact_url
from billing_service.storage.dead_letters import record_dead_letter
from billing_service.storage.models import database as database_proxy

log = logging.getLogger(__name__)


class DeadLetterStoreError(Exception):
    """The dead letter could not be stored."""


class DeadLetterStore:
    """Stores dead letters in DATABASE_URL on a small thread pool."""

    def __init__(self, database_url: str, workers: int = 2) -> None:
        self._url = database_url
        self._db = open_database(database_url, max_connections=workers)
        database_proxy.initialize(self._db)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dead-letter")

    def _record(self, payload: str, event_id: str, event_type: str, error: str) -> int:
        with self._db.connection_context():
            return record_dead_letter(payload, event_id, event_type, error)

    async def record(self, payload: str, event_id: str, event_type: str, error: str) -> int:
        """Store the event; returns the dead letter's id. Raises DeadLetterStoreError."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._record, payload, event_id, event_type, error
            )
        except peewee.PeeweeException as exc:
            log.error(
                "dead letter for %s not stored in %s: %s",
                event_id or "(no id)",
                redact_url(self._url),
                type(exc).__name__,
            )
            raise DeadLetterStoreError(type(exc).__name__) from exc

    def close(self) -> None:
        """Finish pending writes and close connections."""
        self._executor.shutdown(wait=True)
        close_all = getattr(self._db, "close_all", None)
        if close_all is not None:
            close_all()
        else:
            self._db.close()
