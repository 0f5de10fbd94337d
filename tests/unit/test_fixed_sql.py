"""The apply's fixed SQL: its columns are the models', and it reads and writes as peewee's did."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

import peewee
import pytest

from billing_service.storage import (
    fixed_invoice_sql,
    fixed_lookup_sql,
    fixed_sql,
    invoices,
    repository,
)
from billing_service.storage.database import Database
from billing_service.storage.models import (
    AuditRecord,
    Customer,
    Invoice,
    ProcessedEvent,
    Subscription,
    utcnow,
)


def _columns(model: type[peewee.Model]) -> set[str]:
    return {field.column_name for field in model._meta.sorted_fields}


def test_the_statements_name_only_model_columns() -> None:
    assert set(fixed_sql.PROCESSED_INSERT_COLUMNS) == _columns(ProcessedEvent) - {"id"}
    assert set(fixed_sql.PROCESSED_ANSWER_COLUMNS) <= _columns(ProcessedEvent)
    # The redelivery read names them processed_*, beside the subscription's own columns.
    assert not {f"processed_{name}" for name in fixed_sql.PROCESSED_ANSWER_COLUMNS} & _columns(
        Subscription
    )
    written = {
        "stripe_subscription_id",
        "created_at",
        "discount",
        *fixed_sql.SUBSCRIPTION_STATE_COLUMNS,
        *fixed_sql.SUBSCRIPTION_ORDERING_COLUMNS,
    }
    assert written == _columns(Subscription) - {"id"}
    assert set(fixed_sql.AUDIT_RECORD_COLUMNS) == _columns(AuditRecord) - {"id"}
    assert set(fixed_sql.CUSTOMER_LINK_COLUMNS) == _columns(Customer) - {"id"}
    written_invoice = {"stripe_invoice_id", *fixed_invoice_sql.INVOICE_WRITTEN_COLUMNS}
    assert written_invoice == _columns(Invoice) - {"id"}
    assert len(written_invoice) == 1 + len(fixed_invoice_sql.INVOICE_WRITTEN_COLUMNS)


_ANSWER_ALIASES = {f"processed_{name}" for name in fixed_sql.PROCESSED_ANSWER_COLUMNS}


@pytest.mark.parametrize(
    ("statement", "models", "aliases"),
    [
        (fixed_invoice_sql._invoice_sql, (Invoice,), set()),
        (fixed_invoice_sql._upsert_invoice_sql, (Invoice,), set()),
        (
            fixed_sql._processed_with_subscription_sql,
            (ProcessedEvent, Subscription),
            {"p", "s", *_ANSWER_ALIASES},
        ),
        (fixed_lookup_sql._customer_user_sql, (Customer,), set()),
        (fixed_sql._link_customer_sql, (Customer,), set()),
        (fixed_lookup_sql._processed_with_outcome_sql, (ProcessedEvent,), set()),
        (
            functools.partial(fixed_lookup_sql._subscription_ids_in_status_sql, statuses=3),
            (Subscription,),
            set(),
        ),
        (
            functools.partial(fixed_lookup_sql._known_sql, check_ignored=True),
            (Subscription, Customer, Invoice, ProcessedEvent),
            {"s", "one", "known_customer_user", "known_invoice_user", "known_ignored"},
        ),
    ],
    ids=[
        "invoice-read",
        "invoice-upsert",
        "redelivery-read",
        "customer-user",
        "customer-link",
        "ignored-check",
        "live-ids",
        "resolve-read",
    ],
)
def test_each_statement_names_its_tables_and_their_columns(
    statement: Any, models: tuple[type[peewee.Model], ...], aliases: set[str]
) -> None:
    for param in ("?", "%s"):
        names = set(re.findall(r'"([^"]+)"', statement(param))) - aliases
        tables = {model._meta.table_name for model in models}
        assert tables <= names
        assert names - tables <= set().union(*(_columns(model) for model in models))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, workers=1)
    yield database
    database.close()


def _values(status: str, discount: str | None) -> repository.SubscriptionValues:
    return repository.SubscriptionValues(
        stripe_subscription_id=f"sub_fixed_{status}_{id(discount)}",
        user_id="user-fixed",
        stripe_customer_id="cus_fixed",
        status=status,
        plan="pro",
        price_id="price_pro",
        current_period_start=datetime(2026, 1, 1, 12, 30, 15, 123456),
        current_period_end=datetime(2026, 2, 1),
        cancel_at_period_end=True,
        canceled_at=None,
        stripe_created=1_700_000_000,
        interval="month",
        quantity=3,
        unit_amount=900,
        currency="usd",
        trial_end=None,
        discount=discount,
    )


def test_upsert_inserts_then_updates_keeping_what_it_is_not_given(db: Database) -> None:
    first = _values("active", '{"coupon": "c1"}')

    def scenario() -> tuple[Subscription, Subscription, Subscription | None]:
        with db.transaction():
            inserted = repository.upsert_subscription(
                first, event_created=10, event_id="evt_1", state_digest="d1"
            )
            # No discount and no ordering data given: the stored ones stay.
            again = replace(first, status="past_due", discount=None)
            updated = repository.upsert_subscription(again)
        return inserted, updated, repository.subscription_by_stripe_id(first.stripe_subscription_id)

    inserted, updated, read = db.call(scenario)
    assert read is not None
    assert inserted.id == updated.id == read.id
    assert inserted.created_at == read.created_at
    assert (read.status, read.discount) == ("past_due", '{"coupon": "c1"}')
    assert (read.last_event_created, read.last_event_id, read.last_state_digest) == (
        10,
        "evt_1",
        "d1",
    )
    assert read.current_period_start == datetime(2026, 1, 1, 12, 30, 15, 123456)
    assert read.cancel_at_period_end is True and read.quantity == 3
    assert (updated.status, updated.discount, updated.last_event_id) == (
        "past_due",
        '{"coupon": "c1"}',
        "evt_1",
    )


def test_a_new_row_without_discount_or_ordering_takes_the_defaults(db: Database) -> None:
    values = _values("incomplete", None)
    stored = db.call(repository.upsert_subscription, values)
    assert (stored.discount, stored.last_event_created, stored.last_event_id) == ("", 0, "")


def test_the_locked_read_names_the_customer_user(db: Database) -> None:
    values = _values("trialing", "")

    def scenario() -> tuple[tuple[Subscription | None, str], ...]:
        missing = fixed_sql.subscription_with_customer_user("sub_fixed_none", "cus_fixed")
        repository.upsert_subscription(values)
        unlinked = fixed_sql.subscription_with_customer_user(
            values.stripe_subscription_id, "cus_fixed_unlinked"
        )
        Customer.insert(
            user_id="user-fixed-link", stripe_customer_id="cus_fixed_linked"
        ).on_conflict_ignore().execute()
        linked = fixed_sql.subscription_with_customer_user(
            values.stripe_subscription_id, "cus_fixed_linked"
        )
        return missing, unlinked, linked

    missing, unlinked, linked = db.call(scenario)
    assert missing == (None, "")
    assert unlinked[0] is not None and unlinked[1] == ""
    assert linked[0] is not None and linked[0].status == "trialing"
    assert linked[1] == "user-fixed-link"


def test_processed_rows_are_inserted_once(db: Database) -> None:
    event_id = f"evt_fixed_{utcnow().timestamp()}"

    def scenario() -> ProcessedEvent:
        fixed_sql.insert_processed(
            event_id,
            "customer.subscription.updated",
            5,
            "applied",
            "why",
            "user-1",
            "sub_1",
            utcnow(),
        )
        with pytest.raises(peewee.IntegrityError), db.transaction():
            fixed_sql.insert_processed(event_id, "x", 6, "ignored", "", "", "", utcnow())
        return ProcessedEvent.get(ProcessedEvent.event_id == event_id)

    done = db.call(scenario)
    assert (done.event_type, done.stripe_created, done.outcome) == (
        "customer.subscription.updated",
        5,
        "applied",
    )
    assert (done.reason, done.user_id, done.stripe_subscription_id) == ("why", "user-1", "sub_1")


def test_the_first_customer_link_wins_on_both_sides(db: Database) -> None:
    stamp = utcnow().timestamp()
    user, other_user = f"user-link-{stamp}", f"other-link-{stamp}"
    customer, other_customer = f"cus_link_{stamp}", f"cus_other_{stamp}"

    def scenario() -> list[tuple[str, str]]:
        with db.transaction():
            fixed_sql.link_customer(user, customer, utcnow())
            fixed_sql.link_customer(user, other_customer, utcnow())  # the user is linked
            fixed_sql.link_customer(other_user, customer, utcnow())  # the customer is linked
        rows = Customer.select().where(Customer.user_id.in_([user, other_user]))
        return [(str(row.user_id), str(row.stripe_customer_id)) for row in rows]

    assert db.call(scenario) == [(user, customer)]


def test_the_redelivery_read_joins_the_processed_row_to_its_subscription(db: Database) -> None:
    values = _values("active", "")
    stamp = utcnow().timestamp()
    with_row, without_row = f"evt_fixed_dup_{stamp}", f"evt_fixed_dup_none_{stamp}"

    def scenario() -> list[tuple[ProcessedEvent, Subscription | None] | None]:
        repository.upsert_subscription(values)
        for event_id, sub_id in (
            (with_row, values.stripe_subscription_id),
            (without_row, "sub_fixed_absent"),
        ):
            fixed_sql.insert_processed(
                event_id, "invoice.paid", 7, "applied", "why", "user-fixed", sub_id, utcnow()
            )
        return [
            fixed_sql.processed_with_subscription(event_id)
            for event_id in (with_row, without_row, "evt_fixed_never")
        ]

    joined, alone, never = db.call(scenario)
    assert never is None
    assert joined is not None and alone is not None
    for (done, _), event_id in ((joined, with_row), (alone, without_row)):
        assert (done.event_id, done.outcome, done.user_id) == (event_id, "applied", "user-fixed")
    assert alone[0].stripe_subscription_id == "sub_fixed_absent" and alone[1] is None
    sub = joined[1]
    assert sub is not None and sub.id is not None
    assert (sub.stripe_subscription_id, sub.user_id, sub.status) == (
        values.stripe_subscription_id,
        "user-fixed",
        "active",
    )
    # Converted as the model's fields convert them (SQLite stores text and 0/1).
    assert sub.current_period_start == datetime(2026, 1, 1, 12, 30, 15, 123456)
    assert sub.cancel_at_period_end is True and sub.quantity == 3


def test_the_resolve_lookups_find_the_customer_user_and_ignored_events(db: Database) -> None:
    stamp = utcnow().timestamp()
    customer, sub_id = f"cus_fixed_lookup_{stamp}", f"sub_fixed_lookup_{stamp}"

    def ignored_before() -> bool:
        return fixed_lookup_sql.known(sub_id, "", "", check_ignored=True)[3]

    def scenario() -> tuple[str | None, str | None, list[bool]]:
        before = repository.user_for_customer(customer)
        repository.link_customer("user-fixed-lookup", customer)
        after = repository.user_for_customer(customer)
        ignored = []
        for n, (event_type, outcome) in enumerate(
            [
                ("invoice.paid", "ignored"),  # another type: not counted
                ("customer.subscription.updated", "applied"),  # another outcome
                ("Customer.Subscription.Created", "ignored"),  # the prefix is case-blind
            ]
        ):
            ignored.append(ignored_before())
            event_id = f"evt_fixed_lookup_{stamp}_{n}"
            fixed_sql.insert_processed(event_id, event_type, 1, outcome, "", "", sub_id, utcnow())
        ignored.append(ignored_before())
        return before, after, ignored

    before, after, ignored = db.call(scenario)
    assert (before, after) == (None, "user-fixed-lookup")
    assert ignored == [False, False, False, True]


def test_the_resolve_asks_everything_it_needs_in_one_read(db: Database) -> None:
    stamp = utcnow().timestamp()
    sub_id, customer, invoice_id = (f"{p}_known_{stamp}" for p in ("sub", "cus", "in"))

    def ask(check_ignored: bool) -> tuple[str, str, str, bool]:
        row, customer_user, invoice_user, ignored = fixed_lookup_sql.known(
            sub_id, customer, invoice_id, check_ignored=check_ignored
        )
        if row is not None:
            # The row comes whole, converted as the model converts it.
            assert row.stripe_subscription_id == sub_id and row.quantity == 3
            assert row.current_period_start == datetime(2026, 1, 1, 12, 30, 15, 123456)
        row_user = str(row.user_id) if row is not None else ""
        return (row_user, customer_user, invoice_user, ignored)

    def scenario() -> list[tuple[str, str, str, bool]]:
        answers = [ask(True)]
        event_id = f"evt_known_{stamp}"
        fixed_sql.insert_processed(
            event_id, "customer.subscription.created", 1, "ignored", "", "", sub_id, utcnow()
        )
        answers += [ask(True), ask(False)]
        repository.link_customer("user-known-customer", customer)
        values = replace(_values("active", None), stripe_subscription_id=sub_id)
        repository.upsert_subscription(replace(values, user_id="user-known-sub"))
        invoices.write_invoice(
            _invoice(invoice_id, user_id="user-known-invoice"), event_created=1, event_id=event_id
        )
        answers.append(ask(True))
        return answers

    assert db.call(scenario) == [
        ("", "", "", False),
        ("", "", "", True),  # an ignored subscription event, no row
        ("", "", "", False),  # not asked
        # A stored row: its earlier ignored events no longer matter.
        ("user-known-sub", "user-known-customer", "user-known-invoice", False),
    ]


def _invoice(invoice_id: str, **changes: Any) -> invoices.InvoiceValues:
    values = invoices.InvoiceValues(
        stripe_invoice_id=invoice_id,
        user_id="user-invoice",
        stripe_customer_id="cus_invoice",
        stripe_subscription_id="sub_invoice",
        status="open",
        amount_due=2500,
        amount_paid=0,
        currency="eur",
        hosted_invoice_url="https://invoice.example/i",
        invoice_pdf="https://invoice.example/i.pdf",
        period_start=datetime(2026, 1, 1, 12, 30, 15, 123456),
        period_end=datetime(2026, 2, 1),
        attempt_count=1,
        next_payment_attempt=datetime(2026, 1, 3),
        stripe_created=1_700_000_100,
    )
    return replace(values, **changes)


def test_an_invoice_is_read_inserted_and_overwritten_whole(db: Database) -> None:
    invoice_id = f"in_fixed_{utcnow().timestamp()}"
    first = _invoice(invoice_id)
    second = _invoice(
        invoice_id,
        status="paid",
        amount_paid=2500,
        attempt_count=2,
        next_payment_attempt=None,
        hosted_invoice_url="",
    )

    def scenario() -> tuple[Invoice | None, Invoice | None, Invoice | None]:
        missing = invoices.invoice_by_stripe_id(invoice_id)
        with db.transaction():
            invoices.write_invoice(first, event_created=10, event_id="evt_in_1")
        inserted = invoices.invoice_by_stripe_id(invoice_id)
        with db.transaction():
            invoices.write_invoice(second, event_created=11, event_id="evt_in_2")
        return missing, inserted, invoices.invoice_by_stripe_id(invoice_id)

    missing, inserted, updated = db.call(scenario)
    assert missing is None
    assert inserted is not None and updated is not None
    assert inserted.id == updated.id
    for stored, values, created, event in (
        (inserted, first, 10, "evt_in_1"),
        (updated, second, 11, "evt_in_2"),
    ):
        expected = {**asdict(values), "last_event_created": created, "last_event_id": event}
        assert {name: getattr(stored, name) for name in expected} == expected
        assert stored.updated_at is not None
    assert db.call(invoices.user_of_invoice, invoice_id) == "user-invoice"
    assert db.call(invoices.user_of_invoice, "in_fixed_none") == ""


def test_the_live_ids_are_the_users_rows_in_those_statuses(db: Database) -> None:
    user = f"user-live-{utcnow().timestamp()}"
    rows = {"sub_live_a": "active", "sub_live_b": "canceled", "sub_live_c": "trialing"}

    def scenario() -> tuple[list[str], list[str]]:
        for sub_id, status in rows.items():
            values = replace(_values(status, None), stripe_subscription_id=f"{sub_id}_{user}")
            repository.upsert_subscription(replace(values, user_id=user))
        other = replace(_values("active", None), stripe_subscription_id=f"sub_other_{user}")
        repository.upsert_subscription(replace(other, user_id=f"{user}-other"))
        return (
            fixed_lookup_sql.subscription_ids_in_status(user, {"active", "trialing", "past_due"}),
            fixed_lookup_sql.subscription_ids_in_status(user, {"incomplete"}),
        )

    live, none = db.call(scenario)
    assert sorted(live) == [f"sub_live_a_{user}", f"sub_live_c_{user}"]
    assert none == []
