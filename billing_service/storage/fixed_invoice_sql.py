"""The invoice event's read and upsert, as SQL text written once per database dialect.

The same pattern and rules as ``fixed_sql`` (whose placeholder helpers these
share): peewee built both statements on every stored invoice (issue 10,
docs/performance.md), so their text is fixed, formatted once per placeholder
style, and only the parameters change per call. Every value is a parameter;
only model names and placeholders are formatted into the text (hence the S608
waivers). ``tests/unit/test_fixed_sql.py`` checks the columns against
``models.Invoice``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from billing_service.storage.deferred import execute_later
from billing_service.storage.fixed_sql import (
    by_key_sql,
    first_row,
    fixed_statement,
    insert_sql,
    placeholder,
)
from billing_service.storage.models import Invoice

# Every column an invoice write sets, in both the insert and the update;
# the Stripe id is the conflict target.
INVOICE_WRITTEN_COLUMNS = (
    "user_id",
    "stripe_customer_id",
    "stripe_subscription_id",
    "status",
    "amount_due",
    "amount_paid",
    "currency",
    "hosted_invoice_url",
    "invoice_pdf",
    "period_start",
    "period_end",
    "attempt_count",
    "next_payment_attempt",
    "stripe_created",
    "last_event_created",
    "last_event_id",
    "updated_at",
)


@functools.cache
def _invoice_sql(param: str) -> str:
    return fixed_statement(by_key_sql(Invoice, "stripe_invoice_id", param), param)


def invoice_by_stripe_id(stripe_invoice_id: str) -> Invoice | None:
    """The stored row of a Stripe invoice id, if any."""
    return first_row(Invoice, _invoice_sql(placeholder()), (stripe_invoice_id,))


@functools.cache
def _upsert_invoice_sql(param: str) -> str:
    inserted = ("stripe_invoice_id", *INVOICE_WRITTEN_COLUMNS)
    assignments = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in INVOICE_WRITTEN_COLUMNS)
    return fixed_statement(
        f"{insert_sql(Invoice, inserted, param)} "
        f'ON CONFLICT ("stripe_invoice_id") DO UPDATE SET {assignments}',
        param,
    )


def upsert_invoice(values: Mapping[str, Any]) -> None:
    """Insert the invoice's row, or overwrite every written column of the stored one.

    ``values`` maps ``stripe_invoice_id`` and each of ``INVOICE_WRITTEN_COLUMNS`` to its value.
    Deferred to the next round trip inside a group commit (``storage/deferred``).
    """
    params = (values["stripe_invoice_id"], *(values[name] for name in INVOICE_WRITTEN_COLUMNS))
    execute_later(_upsert_invoice_sql(placeholder()), params)
