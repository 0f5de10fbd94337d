"""ListInvoices: a user's invoices as invoice events left them, newest first.

Pages are cursors over (Stripe's ``created``, row id), handed out as opaque
tokens; a token the service did not make is INVALID_ARGUMENT naming it.
"""

from __future__ import annotations

from billing_service import paging, validation
from billing_service.storage import invoices
from billing_service.storage.database import Database
from billing_service.storage.models import Invoice

_CURSOR_PREFIX = "invoice:"


class InvoiceLog:
    """Reads of the kept invoices for ListInvoices."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self, user_id: str, requested_size: int, page_token: str
    ) -> tuple[list[Invoice], str]:
        """One page of the user's invoices, newest first, and the next page's token."""
        validation.user_id(user_id)
        size = paging.page_size(requested_size)
        cursor = paging.decode_page_token(_CURSOR_PREFIX, page_token, 2)
        after = None if cursor is None else (cursor[0], cursor[1])
        rows = await self._db.run(invoices.invoices_for_user, user_id, after, size + 1)
        if len(rows) > size:
            last = rows[size - 1]
            token = paging.encode_page_token(_CURSOR_PREFIX, int(last.stripe_created), int(last.id))
            return rows[:size], token
        return rows, ""
