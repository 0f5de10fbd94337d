"""Comparing cache entries in tests."""

from __future__ import annotations

from typing import Any

from billing_service.entitlements.model import Entry


def same_answer(one: Entry[Any], other: Entry[Any]) -> bool:
    """True when both entries give the same CheckEntitlement answers until the same instant."""
    return (one.tier, one.status, one.expires_at) == (other.tier, other.status, other.expires_at)
