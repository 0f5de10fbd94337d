"""What the database already knows about the ids an event names (for ``resolve``).

Reads only; every function expects an open connection (``Database.run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from billing_service.storage import fixed_lookup_sql, repository
from billing_service.storage.models import Subscription


def users_of(subscription_id: str, customer_id: str) -> tuple[str, str]:
    """(user of the stored subscription row, user linked to the customer); "" when unknown."""
    row = repository.subscription_by_stripe_id(subscription_id) if subscription_id else None
    by_customer = repository.user_for_customer(customer_id) if customer_id else None
    return (str(row.user_id) if row else "", by_customer or "")


@dataclass(frozen=True)
class Known:
    """What the database knows about the subscription (and invoice) an event names."""

    row_user: str
    customer_user: str
    invoice_user: str = ""
    # An earlier subscription event was ignored (untied): its state was never stored.
    ignored_before: bool = False
    # The subscription's stored row, read with the rest (None: no row).
    row: Subscription | None = field(default=None, compare=False, repr=False)


def lookup(
    subscription_id: str, customer_id: str, invoice_id: str = "", *, check_ignored: bool = False
) -> Known:
    """What the database knows about an event's subscription, customer and invoice (one read)."""
    row, customer_user, invoice_user, ignored = fixed_lookup_sql.known(
        subscription_id, customer_id, invoice_id, check_ignored=check_ignored
    )
    row_user = str(row.user_id) if row is not None else ""
    return Known(row_user, customer_user, invoice_user, ignored, row=row)
