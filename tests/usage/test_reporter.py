"""The outbox reporter's decisions on rows Stripe can never accept, through its module API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from billing_service.settings import Settings
from billing_service.storage.database import Database, migrate
from billing_service.storage.models import utcnow
from billing_service.stripe_api import StripeApi
from billing_service.usage.models import UsageReport
from billing_service.usage.reporter import UsageReporter, counts
from tests.conftest import EMULATOR_KEY


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database."""
    database = Database(f"sqlite:///{tmp_path / 'billing.db'}", workers=2)
    migrate(database.db)
    yield database
    database.close()


def _row(identifier: str, customer: str, occurred: datetime, created: datetime) -> None:
    UsageReport.create(
        identifier=identifier,
        user_id="u",
        stripe_customer_id=customer,
        event_name="studio_tokens",
        value=5,
        timestamp=int((occurred - datetime(1970, 1, 1)).total_seconds()),
        next_attempt_at=created,
        created_at=created,
    )


async def test_rows_outside_stripes_window_or_without_customer_fail_and_stay(
    db: Database, emulator: Any
) -> None:
    now = utcnow()
    db.call(_row, "old", "cus_x", now - timedelta(days=36), now - timedelta(days=36))
    db.call(_row, "nobody", "", now, now)
    db.call(_row, "unknown-customer", "cus_does_not_exist", now, now)
    settings = Settings.from_env(
        {"STRIPE_API_BASE": emulator.base_url, "STRIPE_SECRET_KEY": EMULATOR_KEY}
    )
    stripe_api = StripeApi(settings)
    try:
        reporter = UsageReporter(db, stripe_api, lambda: now)
        assert await reporter.drain_once() == 3
        assert await reporter.drain_once() == 0
    finally:
        await stripe_api.close()
    assert db.call(counts) == {"failed": 3}
    reasons = db.call(lambda: {r.identifier: r.last_error for r in UsageReport.select()})
    assert "35-day" in reasons["old"]
    assert "no Stripe customer" in reasons["nobody"]
    assert "refused" in reasons["unknown-customer"]


async def test_transient_failures_back_off_then_fail_after_the_dedupe_window(
    db: Database, emulator: Any
) -> None:
    now = utcnow()
    db.call(_row, "late", "cus_x", now, now)
    settings = Settings.from_env(
        {
            "STRIPE_API_BASE": emulator.base_url,
            "STRIPE_SECRET_KEY": EMULATOR_KEY,
            "STRIPE_MAX_NETWORK_RETRIES": "0",
        }
    )
    stripe_api = StripeApi(settings)
    clock = [now]
    emulator.control("POST", "/billing/meter_events/fail", {"count": 1000})
    try:
        reporter = UsageReporter(db, stripe_api, lambda: clock[0])
        assert await reporter.drain_once() == 1
        assert await reporter.drain_once() == 0  # backing off
        row = db.call(lambda: UsageReport.get(UsageReport.identifier == "late"))
        assert (row.state, row.attempts) == ("pending", 1)
        clock[0] = now + timedelta(hours=25)
        assert await reporter.drain_once() == 1
    finally:
        emulator.control("POST", "/billing/meter_events/fail", {"count": 0})
        await stripe_api.close()
    row = db.call(lambda: UsageReport.get(UsageReport.identifier == "late"))
    assert row.state == "failed" and "dedupe window" in row.last_error
