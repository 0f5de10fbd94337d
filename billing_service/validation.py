"""Request validation: every check raises InvalidArgument naming the field."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from billing_service.errors import InvalidArgument

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_ID = 255


def user_id(value: str, field: str = "user_id") -> str:
    """A non-empty id of at most 255 printable characters without spaces."""
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > _MAX_ID or not value.isprintable() or any(c.isspace() for c in value):
        raise InvalidArgument(field, "must be at most 255 printable characters without spaces")
    return value


def email(value: str, field: str = "email") -> str:
    """An optional email address; malformed ones are rejected."""
    if value and (len(value) > 320 or not _EMAIL.match(value)):
        raise InvalidArgument(field, "is not a valid email address")
    return value


def url(value: str, field: str) -> str:
    """A required absolute http(s) URL."""
    if not value:
        raise InvalidArgument(field, "is required")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 2048:
        raise InvalidArgument(field, "must be an absolute http(s) URL")
    return value


def request_id(value: str, field: str = "request_id") -> str:
    """An optional idempotency key of at most 255 printable characters."""
    if len(value) > _MAX_ID or not value.isprintable():
        raise InvalidArgument(field, "must be at most 255 printable characters")
    return value
