"""ListInvoices: a user's invoices as invoice events left them, newest first."""

from __future__ import annotations

from billing_service import validation
from billing_service.storage import invoices
from billing_service.storage.database import Database
from billing_service.storage.models import Invoice


class InvoiceLog:
    """Reads of the kept invoices for ListInvoices."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self, user_id: str, requested_size: int, page_token: str
    ) -> tuple[list[Invoice], str]:
        """One page of the user's invoices, newest first, and the next page's token."""
        validation.user_id(user_id)
        size = invoices.page_size(requested_size)
        after = invoices.decode_page_token(page_token)
        rows = await self._db.run(invoices.invoices_for_user, user_id, after, size + 1)
        if len(rows) > size:
            return rows[:size], invoices.encode_page_token(rows[size - 1])
        return rows, ""
