"""Request validation: every check raises InvalidArgument naming the field."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from billing_service.errors import InvalidArgument

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_ID = 255
_MAX_URL = 2048
_SUBSCRIPTION_ID = re.compile(r"^sub_[A-Za-z0-9_]{1,251}$")
# A DNS name: dot-separated labels of letters, digits and inner hyphens.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


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


def url(value: str, field: str, allowed_hosts: frozenset[str] = frozenset()) -> str:
    """A required absolute http(s) redirect URL with a host, no userinfo, no control characters.

    ``allowed_hosts`` (BILLING_REDIRECT_HOSTS) limits the host: an exact name, or
    ``*.example.com`` for any subdomain of example.com; empty allows any host.
    """
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > _MAX_URL:
        raise InvalidArgument(field, f"must be at most {_MAX_URL} characters")
    if any(not c.isprintable() or c.isspace() or c == "\\" for c in value):
        raise InvalidArgument(field, "must not contain spaces, control characters or backslashes")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(field, "must be an absolute http(s) URL")
    if "@" in parts.netloc:
        raise InvalidArgument(field, "must not carry a user name or password")
    host = (parts.hostname or "").lower()
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise InvalidArgument(field, "has a malformed port") from None
    if not is_host(host):
        raise InvalidArgument(field, "must name a host")
    if allowed_hosts and not host_allowed(host, allowed_hosts):
        raise InvalidArgument(field, f"host {host!r} is not in BILLING_REDIRECT_HOSTS")
    return value


def host_allowed(host: str, allowed_hosts: frozenset[str]) -> bool:
    """True when ``host`` is listed, or is a subdomain of a listed ``*.domain``."""
    if host in allowed_hosts:
        return True
    return any(
        entry.startswith("*.") and host.endswith(entry[1:]) and len(host) > len(entry) - 1
        for entry in allowed_hosts
    )


def is_host(host: str) -> bool:
    """True for a lowercase DNS name or an IP address."""
    return bool(_HOST.match(host)) or _is_ip(host)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def subscription_id(value: str, field: str = "subscription_id") -> str:
    """A Stripe subscription id (sub_...)."""
    if not _SUBSCRIPTION_ID.match(value):
        raise InvalidArgument(field, "must be a Stripe subscription id (sub_...)")
    return value


def request_id(value: str, field: str = "request_id") -> str:
    """An optional idempotency key of at most 255 printable characters."""
    if len(value) > _MAX_ID or not value.isprintable():
        raise InvalidArgument(field, "must be at most 255 printable characters")
    return value
