"""The event apply's most frequent statements, as SQL text written once per database dialect.

Peewee builds a query's SQL string on every call; on the apply path that
was most of the service's own CPU there (issue 10, docs/performance.md).
These statements run for nearly every applied event, so their text is fixed
here, formatted once per placeholder style (``?`` SQLite, ``%s``
PostgreSQL), and only the parameters change per call. A row that comes back
becomes a model through ``first_row``: each column converted by its field's
``python_value``, as peewee's ``Model.raw`` does, with the column-to-field
plan worked out once per statement shape instead of per query. Both
dialects take the same text: quoted identifiers, ``ON CONFLICT ... DO
UPDATE``, ``RETURNING``; where PostgreSQL saves a round trip with a
data-modifying CTE (the audit append), SQLite runs two statements. Every
function expects an open
connection; the writes belong inside the caller's transaction. Only model
names and placeholders are formatted into the text (hence the S608 waivers);
every value is a parameter.

On PostgreSQL each statement is also registered to run prepared
(``fixed_statement``, ``storage/prepared``), which is why they name their
columns instead of selecting or returning ``*``.

Table and column names are the models' (``storage/models.py``);
``tests/unit/test_fixed_sql.py`` checks each statement's columns against them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import peewee

from billing_service.storage import prepared
from billing_service.storage.deferred import execute_later
from billing_service.storage.models import (
    AUDIT_CONTENT_COLUMNS,
    AuditChain,
    AuditRecord,
    Customer,
    ProcessedEvent,
    Subscription,
)
from billing_service.storage.models import database as database_proxy


def placeholder() -> str:
    """The bound database's parameter placeholder (``?`` SQLite, ``%s`` PostgreSQL)."""
    return str(database_proxy.obj.param)


def fixed_statement(sql: str, param: str) -> str:
    """``sql`` as given; registered to run prepared when written for PostgreSQL (``%s``)."""
    return prepared.preparable(sql) if param == "%s" else sql


# Serializes writers of one key (namespace, hashtext(key)) until the transaction ends; PostgreSQL.
ADVISORY_XACT_LOCK_SQL = fixed_statement("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", "%s")


def quoted_names(names: Sequence[str]) -> str:
    """``names`` as a comma-separated list of quoted identifiers."""
    return ", ".join(f'"{name}"' for name in names)


def all_columns(model: type[peewee.Model], alias: str = "") -> str:
    """Every column of the model's table by name, as ``*`` would give them (``alias``-qualified)."""
    prefix = f'"{alias}".' if alias else ""
    return ", ".join(f'{prefix}"{field.column_name}"' for field in model._meta.sorted_fields)


def by_key_sql(model: type[peewee.Model], key: str, param: str, selected: str = "") -> str:
    """``SELECT selected FROM`` the model's table ``WHERE key =`` one parameter ("": all)."""
    return (
        f"SELECT {selected or all_columns(model)} "  # noqa: S608
        f'FROM "{model._meta.table_name}" WHERE "{key}" = {param}'
    )


def insert_sql(model: type[peewee.Model], columns: Sequence[str], param: str) -> str:
    """``INSERT INTO`` the model's table ``columns``, one parameter each."""
    return (
        f'INSERT INTO "{model._meta.table_name}" ({quoted_names(columns)}) '  # noqa: S608
        f"VALUES ({', '.join([param] * len(columns))})"
    )


@functools.cache
def _insert_processed_sql(param: str) -> str:
    return fixed_statement(insert_sql(ProcessedEvent, PROCESSED_INSERT_COLUMNS, param), param)


PROCESSED_INSERT_COLUMNS = (
    "event_id",
    "event_type",
    "stripe_created",
    "outcome",
    "reason",
    "user_id",
    "stripe_subscription_id",
    "processed_at",
)


def insert_processed(
    event_id: str,
    event_type: str,
    created: int,
    outcome: str,
    reason: str,
    user_id: str,
    subscription_id: str,
    at: datetime,
) -> None:
    """Record an event's outcome (its unique ``event_id`` refuses a second row: IntegrityError).

    Deferred to the next round trip inside a group commit (``storage/deferred``).
    """
    execute_later(
        _insert_processed_sql(placeholder()),
        (event_id, event_type, created, outcome, reason, user_id, subscription_id, at),
    )


CUSTOMER_LINK_COLUMNS = ("user_id", "stripe_customer_id", "email", "created_at")


@functools.cache
def _link_customer_sql(param: str) -> str:
    linked = f"{insert_sql(Customer, CUSTOMER_LINK_COLUMNS, param)} ON CONFLICT DO NOTHING"
    return fixed_statement(linked, param)


def link_customer(user_id: str, stripe_customer_id: str, at: datetime, email: str = "") -> None:
    """Link a user to a Stripe customer unless either is linked already (the first link wins).

    Deferred to the next round trip inside a group commit (``storage/deferred``).
    """
    execute_later(_link_customer_sql(placeholder()), (user_id, stripe_customer_id, email, at))


# What a redelivery's answer needs of the processed row (``apply.duplicate_result``).
PROCESSED_ANSWER_COLUMNS = ("event_id", "outcome", "user_id", "stripe_subscription_id")


M = TypeVar("M", bound=peewee.Model)

# Per result column: (the field's attribute name or the column's own, converter, is a field).
_RowPlan = tuple[tuple[str, Callable[[Any], Any] | None, bool], ...]


@functools.lru_cache(maxsize=128)
def _row_plan(model: type[peewee.Model], columns: tuple[str, ...]) -> _RowPlan:
    by_column = model._meta.columns
    plan = []
    for column in columns:
        field = by_column.get(column)
        if field is None:
            plan.append((column, None, False))  # an alias: an attribute of its own
        else:
            plan.append((field.name, field.python_value, True))
    return tuple(plan)


def first_row(model: type[M], sql: str, params: Sequence[Any]) -> M | None:
    """The first row ``sql`` returns as a ``model``, or None.

    Field columns are converted as peewee converts them; any other column (an
    alias) becomes an attribute of that name, as with ``Model.raw``.
    """
    cursor = database_proxy.obj.execute_sql(sql, params)
    values = cursor.fetchone()
    if values is None:
        return None
    plan = _row_plan(model, tuple(column[0] for column in cursor.description))
    fields: dict[str, Any] = {}
    extra: list[tuple[str, Any]] = []
    for (name, convert, is_field), value in zip(plan, values, strict=True):
        if is_field:
            fields[name] = convert(value) if convert is not None and value is not None else value
        else:
            extra.append((name, value))
    row = model(__no_default__=1, **fields)
    for name, value in extra:
        setattr(row, name, value)
    row._dirty.clear()  # type: ignore[attr-defined]  # peewee: a loaded row is clean
    return row


@functools.cache
def _processed_with_subscription_sql(param: str) -> str:
    processed = ProcessedEvent._meta.table_name
    sub = Subscription._meta.table_name
    picked = ", ".join(f'"p"."{name}" AS "processed_{name}"' for name in PROCESSED_ANSWER_COLUMNS)
    return fixed_statement(
        f'SELECT {all_columns(Subscription, "s")}, {picked} FROM "{processed}" AS "p" '  # noqa: S608
        f'LEFT JOIN "{sub}" AS "s" ON "s"."stripe_subscription_id" = "p"."stripe_subscription_id" '
        f'WHERE "p"."event_id" = {param}',
        param,
    )


def processed_with_subscription(
    event_id: str,
) -> tuple[ProcessedEvent, Subscription | None] | None:
    """(an event's processed row, the subscription row it names), in one indexed read.

    None when the event has no processed row; the subscription is None when no
    row has its id. The processed row carries ``PROCESSED_ANSWER_COLUMNS`` only.
    """
    row = first_row(Subscription, _processed_with_subscription_sql(placeholder()), (event_id,))
    if row is None:
        return None
    done = ProcessedEvent(
        **{name: getattr(row, f"processed_{name}") for name in PROCESSED_ANSWER_COLUMNS}
    )
    return done, (row if row.id is not None else None)


@functools.cache
def _subscription_with_customer_user_sql(param: str) -> str:
    sub = Subscription._meta.table_name
    customer = Customer._meta.table_name
    return fixed_statement(
        f"SELECT {all_columns(Subscription, 's')}, "  # noqa: S608
        f'(SELECT "c"."user_id" FROM "{customer}" AS "c" '
        f'WHERE "c"."stripe_customer_id" = {param}) AS "customer_user" '
        f'FROM "{sub}" AS "s" WHERE "s"."stripe_subscription_id" = {param}',
        param,
    )


def subscription_with_customer_user(
    subscription_id: str, customer_id: str
) -> tuple[Subscription | None, str]:
    """(the stored subscription row, user linked to the customer), in one statement.

    The customer's user is a subquery column of the row's read, so it is known
    only when the row exists; "" when the row or the link is absent.
    """
    row = first_row(
        Subscription,
        _subscription_with_customer_user_sql(placeholder()),
        (customer_id, subscription_id),
    )
    if row is None:
        return None, ""
    return row, str(getattr(row, "customer_user", None) or "")


@functools.cache
def _subscription_sql(param: str) -> str:
    return fixed_statement(by_key_sql(Subscription, "stripe_subscription_id", param), param)


def subscription_by_stripe_id(subscription_id: str) -> Subscription | None:
    """The stored row of a Stripe subscription id, if any."""
    return first_row(Subscription, _subscription_sql(placeholder()), (subscription_id,))


# The columns an upsert always writes; the Stripe id is the conflict target.
SUBSCRIPTION_STATE_COLUMNS = (
    "user_id",
    "stripe_customer_id",
    "status",
    "plan",
    "price_id",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "canceled_at",
    "stripe_created",
    "updated_at",
    "interval",
    "quantity",
    "unit_amount",
    "currency",
    "trial_end",
)
SUBSCRIPTION_ORDERING_COLUMNS = ("last_event_created", "last_event_id", "last_state_digest")


@functools.cache
def _upsert_subscription_sql(param: str, updated: tuple[str, ...]) -> str:
    """Insert every column; on conflict update only ``updated`` (the rest keep their values)."""
    inserted = ("stripe_subscription_id", "created_at", *SUBSCRIPTION_STATE_COLUMNS,
                "discount", *SUBSCRIPTION_ORDERING_COLUMNS)  # fmt: skip
    assignments = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in updated)
    return fixed_statement(
        f"{insert_sql(Subscription, inserted, param)} "
        f'ON CONFLICT ("stripe_subscription_id") DO UPDATE SET {assignments} '
        f"RETURNING {all_columns(Subscription)}",
        param,
    )


def upsert_subscription(
    stripe_subscription_id: str,
    created_at: datetime,
    state: Sequence[Any],
    discount: str | None,
    ordering: tuple[int, str, str] | None,
) -> Subscription:
    """Insert or update one subscription row by Stripe id, returning the stored row.

    ``state`` holds ``SUBSCRIPTION_STATE_COLUMNS``' values in order. A new
    row takes "" for a None ``discount`` and the column defaults for a None
    ``ordering``; an existing row keeps its discount or ordering data then.
    """
    updated: tuple[str, ...] = SUBSCRIPTION_STATE_COLUMNS
    if discount is not None:
        updated += ("discount",)
    if ordering is not None:
        updated += SUBSCRIPTION_ORDERING_COLUMNS
    params = (
        stripe_subscription_id,
        created_at,
        *state,
        discount if discount is not None else "",
        *(ordering if ordering is not None else (0, "", "")),
    )
    stored = first_row(Subscription, _upsert_subscription_sql(placeholder(), updated), params)
    if stored is not None:
        return stored
    raise RuntimeError(f"upsert of {stripe_subscription_id} returned no row")


AUDIT_RECORD_COLUMNS = (*AUDIT_CONTENT_COLUMNS, "prev_hash", "hash")


@functools.cache
def _lock_audit_head_sql(param: str) -> str:
    return fixed_statement(
        f'INSERT INTO "{AuditChain._meta.table_name}" '  # noqa: S608
        f'("user_id", "last_hash", "last_record_id") VALUES ({param}, {param}, 0) '
        'ON CONFLICT ("user_id") DO UPDATE SET "user_id" = EXCLUDED."user_id" '
        'RETURNING "last_hash"',
        param,
    )


def lock_audit_head(user_id: str, genesis_hash: str) -> str:
    """The user's newest audit hash, the head row created (``genesis_hash``) if new.

    The upsert touches the row, so on PostgreSQL it holds the row's lock
    until the transaction ends (SQLite's transactions have one writer).
    """
    cursor = database_proxy.obj.execute_sql(
        _lock_audit_head_sql(placeholder()), (user_id, genesis_hash)
    )
    found = cursor.fetchone()
    if found is None:
        raise RuntimeError(f"audit chain head of {user_id!r} not returned")
    return str(found[0])


@functools.cache
def _insert_audit_record_sql(param: str) -> str:
    return f'{insert_sql(AuditRecord, AUDIT_RECORD_COLUMNS, param)} RETURNING "id"'


@functools.cache
def _set_audit_head_sql(param: str) -> str:
    return (
        f'UPDATE "{AuditChain._meta.table_name}" '  # noqa: S608
        f'SET "last_hash" = {param}, "last_record_id" = {param} WHERE "user_id" = {param}'
    )


@functools.cache
def _append_audit_record_pg_sql() -> str:
    # One statement: the insert's id feeds the head's update (a data-modifying CTE).
    added = _insert_audit_record_sql("%s")
    head = AuditChain._meta.table_name
    return fixed_statement(
        f'WITH added AS ({added}) UPDATE "{head}" SET "last_hash" = %s, '  # noqa: S608
        '"last_record_id" = (SELECT "id" FROM added) WHERE "user_id" = %s',
        "%s",
    )


def append_audit_record(values: Sequence[Any], user_id: str, record_hash: str) -> None:
    """Store one audit record and move the user's chain head to it (``lock_audit_head`` first).

    ``values`` are ``AUDIT_RECORD_COLUMNS``' in order. One statement on
    PostgreSQL, deferred to the next round trip inside a group commit
    (``storage/deferred``); two on SQLite, which has no data-modifying CTEs
    (and no round trips to save).
    """
    db = database_proxy.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        execute_later(_append_audit_record_pg_sql(), (*values, record_hash, user_id))
        return
    cursor = db.execute_sql(_insert_audit_record_sql(placeholder()), values)
    record_id = _returned_id(cursor, "audit record insert returned no id")
    db.execute_sql(_set_audit_head_sql(placeholder()), (record_hash, record_id, user_id))


def _returned_id(cursor: Any, missing: str) -> int:
    found = cursor.fetchone()
    if found is None:
        raise RuntimeError(missing)
    return int(found[0])
