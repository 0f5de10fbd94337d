"""The apply path's small lookups, as SQL text written once per dialect.

The same pattern and rules as ``fixed_sql`` (whose placeholder helper these
share): the resolve asks, for every checkout and invoice event, for the
subscription's row, who the customer and invoice belong to and whether the
subscription's events were ignored, in one statement (``known``,
``events/known.py``),
and the duplicate check reads a user's live subscriptions whenever one
becomes live (``events/duplicate_check.py``); peewee built their SQL on each call (issue
10, docs/performance.md), so their text is fixed, formatted once per
placeholder style. Every value is a parameter; only model names and
placeholders are formatted into the text (hence the S608 waivers).
``tests/unit/test_fixed_sql.py`` checks them on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
from collections.abc import Collection

from billing_service.storage.fixed_sql import (
    all_columns,
    by_key_sql,
    first_row,
    fixed_statement,
    placeholder,
)
from billing_service.storage.models import Customer, Invoice, ProcessedEvent, Subscription
from billing_service.storage.models import database as database_proxy


@functools.cache
def _customer_user_sql(param: str) -> str:
    return fixed_statement(by_key_sql(Customer, "stripe_customer_id", param, '"user_id"'), param)


def customer_user(stripe_customer_id: str) -> str | None:
    """The user linked to a Stripe customer, if any."""
    cursor = database_proxy.obj.execute_sql(
        _customer_user_sql(placeholder()), (stripe_customer_id,)
    )
    found = cursor.fetchone()
    return str(found[0]) if found is not None else None


@functools.cache
def _known_sql(param: str, check_ignored: bool) -> str:
    ignored = "0"
    if check_ignored:
        # Only asked when no row holds the subscription (CASE: in that order).
        ignored = (
            f'CASE WHEN "s"."id" IS NULL '
            f"THEN EXISTS ({_processed_with_outcome_sql(param)}) ELSE 0 = 1 END"
        )
    customer_user = by_key_sql(Customer, "stripe_customer_id", param, '"user_id"')
    invoice_user = by_key_sql(Invoice, "stripe_invoice_id", param, '"user_id"')
    # One row always: the subscription's columns are NULL when no row holds it.
    return fixed_statement(
        f"SELECT {all_columns(Subscription, 's')}, "  # noqa: S608
        f'({customer_user}) AS "known_customer_user", '
        f'({invoice_user}) AS "known_invoice_user", {ignored} AS "known_ignored" '
        f'FROM (SELECT 1) AS "one" LEFT JOIN "{Subscription._meta.table_name}" AS "s" '
        f'ON "s"."stripe_subscription_id" = {param}',
        param,
    )


def known(
    subscription_id: str, customer_id: str, invoice_id: str, *, check_ignored: bool
) -> tuple[Subscription | None, str, str, bool]:
    """(the subscription's stored row, the user of the customer, of the invoice; "" when
    unknown, and with ``check_ignored``, whether the subscription, held in no row, had a
    ``customer.subscription.*`` event ignored) in one statement.
    """
    params: tuple[str, ...] = (customer_id, invoice_id)
    if check_ignored:
        params += (subscription_id, "ignored", "customer.subscription.%")
    params += (subscription_id,)
    found = first_row(Subscription, _known_sql(placeholder(), check_ignored), params)
    if found is None:
        raise RuntimeError("the lookup returned no row")
    return (
        found if found.id is not None else None,
        str(getattr(found, "known_customer_user", None) or ""),
        str(getattr(found, "known_invoice_user", None) or ""),
        bool(getattr(found, "known_ignored", False)),
    )


@functools.cache
def _processed_with_outcome_sql(param: str) -> str:
    # lower() ... LIKE: case-blind on both dialects, as peewee's startswith (ILIKE) was.
    return (
        f'SELECT 1 FROM "{ProcessedEvent._meta.table_name}" '  # noqa: S608
        f'WHERE "stripe_subscription_id" = {param} AND "outcome" = {param} '
        f'AND lower("event_type") LIKE {param} LIMIT 1'
    )


@functools.cache
def _subscription_ids_in_status_sql(param: str, statuses: int) -> str:
    return fixed_statement(
        f'SELECT "stripe_subscription_id" FROM "{Subscription._meta.table_name}" '  # noqa: S608
        f'WHERE "user_id" = {param} AND "status" IN ({", ".join([param] * statuses)})',
        param,
    )


def subscription_ids_in_status(user_id: str, statuses: Collection[str]) -> list[str]:
    """The Stripe ids of the user's subscriptions whose status is one of ``statuses``."""
    ordered = sorted(statuses)
    cursor = database_proxy.obj.execute_sql(
        _subscription_ids_in_status_sql(placeholder(), len(ordered)), (user_id, *ordered)
    )
    return [str(found[0]) for found in cursor.fetchall()]
