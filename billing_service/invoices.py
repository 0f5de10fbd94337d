"""ListInvoices: a user's invoices as invoice events left them, newest first.

Pages are cursors over (Stripe's ``created``, row id), handed out as opaque
tokens; a token the service did not make is INVALID_ARGUMENT naming it.
"""

from __future__ import annotations

import base64
import binascii

from billing_service import validation
from billing_service.errors import InvalidArgument
from billing_service.storage import invoices
from billing_service.storage.database import Database
from billing_service.storage.models import Invoice

_CURSOR_PREFIX = "invoice:"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(requested: int) -> int:
    """The page size for ``requested`` (0 means the default)."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    return requested


def encode_page_token(row: Invoice) -> str:
    """An opaque token for the page after ``row``."""
    raw = f"{_CURSOR_PREFIX}{int(row.stripe_created)}:{int(row.id)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[int, int] | None:
    """(created, id) of the last invoice of the previous page; None for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        created, last_id = (int(part) for part in raw.removeprefix(_CURSOR_PREFIX).split(":"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidArgument("page_token", "is not a token from a previous response") from None
    if created < 0 or last_id <= 0:
        raise InvalidArgument("page_token", "is not a token from a previous response")
    return created, last_id


class InvoiceLog:
    """Reads of the kept invoices for ListInvoices."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self, user_id: str, requested_size: int, page_token: str
    ) -> tuple[list[Invoice], str]:
        """One page of the user's invoices, newest first, and the next page's token."""
        validation.user_id(user_id)
        size = page_size(requested_size)
        after = decode_page_token(page_token)
        rows = await self._db.run(invoices.invoices_for_user, user_id, after, size + 1)
        if len(rows) > size:
            return rows[:size], encode_page_token(rows[size - 1])
        return rows, ""
