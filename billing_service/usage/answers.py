"""What the usage RPCs answer, as plain values; ``messages.py`` turns them into protobuf.

No protobuf here: the domain modules of ``usage`` build these, and only the
edge (the servicer, the announcer) converts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_service.usage.limits import MeterLimit


@dataclass(frozen=True, slots=True)
class MeterUsage:
    """Usage of one meter in one period [period_start, period_end) (naive UTC)."""

    meter: str
    used: int
    limit: int
    remaining: int
    unlimited: bool
    overage_billed: bool
    period_start: datetime
    period_end: datetime

    @classmethod
    def of(
        cls, meter: str, used: int, limit: MeterLimit, start: datetime, end: datetime
    ) -> MeterUsage:
        """``used`` units of ``meter`` counted against ``limit`` in [start, end)."""
        return cls(
            meter=meter,
            used=used,
            limit=limit.included,
            remaining=0 if limit.unlimited else max(0, limit.included - used),
            unlimited=limit.unlimited,
            overage_billed=limit.bills_overage,
            period_start=start,
            period_end=end,
        )


@dataclass(frozen=True, slots=True)
class ConsumeAnswer:
    """A ConsumeUsage answer (the first one given for its key; ``replayed`` on a retry)."""

    allowed: bool
    used: int
    limit: int
    remaining: int
    overage: int
    unlimited: bool
    replayed: bool
    reason: str
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True, slots=True)
class RefundAnswer:
    """A RefundUsage answer: units given back by this call, and the meter after it."""

    refunded: int
    already_refunded: bool
    usage: MeterUsage


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """A GetUsage answer: the user's tier and usage per meter in the current period."""

    user_id: str
    tier: str
    meters: list[MeterUsage]
