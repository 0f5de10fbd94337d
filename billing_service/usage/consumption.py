"""One ConsumeUsage as the ledger sees it, and the Stripe meter event identifier of its key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from billing_service.usage.limits import MeterLimit

_MAX_IDENTIFIER = 100  # Stripe's limit on a meter event identifier


def identifier_for(key: str) -> str:
    """The meter event identifier of a consumption key (Stripe allows 100 characters)."""
    if len(key) <= _MAX_IDENTIFIER:
        return key
    return "usage-" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Consumption:
    """What one ConsumeUsage asks for, with the period and limit in force now."""

    user_id: str
    meter: str
    quantity: int
    key: str
    occurred_at: datetime
    period_start: datetime
    period_end: datetime
    limit: MeterLimit
    now: datetime
    stripe_customer_id: str = ""
