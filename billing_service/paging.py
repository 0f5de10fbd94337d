"""Page sizes and opaque page tokens of the List RPCs (ListAuditEvents, ListInvoices).

A token is a cursor: a prefix naming the listing and the integers the next
page continues after, base64url without padding. A token the service did not
make, or whose numbers could not be a row's (negative, a row id of 0, or past
64 bits, which would overflow the query rather than find nothing), is
INVALID_ARGUMENT naming ``page_token``.
"""

from __future__ import annotations

import base64
import binascii

from billing_service.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_MAX_CURSOR_PART = 1 << 63


def page_size(requested: int) -> int:
    """The page size for ``requested`` (0 means the default)."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    return requested


def encode_page_token(prefix: str, *parts: int) -> str:
    """An opaque token for the page after the row ``parts`` identify."""
    raw = prefix + ":".join(str(part) for part in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(prefix: str, token: str, parts: int) -> tuple[int, ...] | None:
    """The ``parts`` integers a token continues after; None for the first page (no token)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith(prefix):
            raise ValueError(raw)
        cursor = tuple(int(part) for part in raw.removeprefix(prefix).split(":"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidArgument("page_token", "is not a token from a previous response") from None
    # The last number is a row id (positive); none may pass 64 bits.
    if (
        len(cursor) != parts
        or cursor[-1] <= 0
        or not all(0 <= part < _MAX_CURSOR_PART for part in cursor)
    ):
        raise InvalidArgument("page_token", "is not a token from a previous response")
    return cursor
