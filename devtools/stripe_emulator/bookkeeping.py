"""Emulator-only bookkeeping that Stripe keeps but does not show on its objects."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SubscriptionState:
    """Emulator-only bookkeeping for one subscription."""

    anchor: int
    cycle: int = 0
    trial_will_end_sent: bool = False
    open_invoice: str | None = None
    failed_retries: int = 0
    retry_at: int | None = None
    #: Proration lines (item id, amount, description) waiting for the next renewal invoice.
    pending_lines: list[tuple[str, int, str]] = field(default_factory=list)


@dataclass
class CustomerState:
    """Emulator-only bookkeeping for one customer."""

    payment: str = "succeed"
    has_payment_method: bool = False


@dataclass
class CheckoutSpec:
    """What a Checkout Session will create when it is paid."""

    line_items: list[tuple[str, int]]
    subscription_metadata: dict[str, str]
    trial_period_days: int | None
    missing_payment_method: str = "create_invoice"
    promotion_code: str | None = None
    automatic_tax: bool = False
