"""Usage resets at the period boundary with no event; the period follows the subscription.

The service reads "now" from the test clock file (BILLING_TEST_CLOCK_FILE).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.events import factory
from tests.usage.support import TestClock, Usage, utc


async def test_free_usage_resets_at_the_calendar_month_in_utc(
    usage: Usage, clock: TestClock, user_id: str
) -> None:
    clock.set(utc(2030, 1, 31, 23))
    assert (await usage.consume(user_id, 20)).used == 20
    refused = await usage.consume(user_id, 1)
    assert not refused.allowed
    assert refused.period_end.ToDatetime(UTC) == utc(2030, 2, 1)
    clock.set(utc(2030, 2, 1) + timedelta(seconds=1))
    after = await usage.consume(user_id, 1)
    assert (after.allowed, after.used) == (True, 1)
    assert after.period_start.ToDatetime(UTC) == utc(2030, 2, 1)
    assert after.period_end.ToDatetime(UTC) == utc(2030, 3, 1)


@pytest.mark.parametrize("legacy", [False, True], ids=["current-shape", "legacy-shape"])
async def test_paid_usage_follows_the_subscription_period_and_resets_without_an_event(
    usage: Usage, clock: TestClock, user_id: str, legacy: bool
) -> None:
    start = int(time.time()) - 3600
    end = start + 30 * 86400
    await usage.subscribe(
        user_id, factory.new_id("sub"), period_start=start, period_end=end, legacy=legacy
    )
    answer = await usage.consume(user_id, 10, meter="exports")
    assert answer.period_start.seconds == start and answer.period_end.seconds == end
    assert not (await usage.consume(user_id, 1, meter="exports")).allowed
    # The period ends and no renewal webhook has come yet: the next period starts anyway.
    clock.set(datetime.fromtimestamp(end + 60, UTC))
    renewed = await usage.consume(user_id, 1, meter="exports")
    assert (renewed.allowed, renewed.used, renewed.limit) == (True, 1, 10)
    assert renewed.period_start.seconds == end


async def test_renewal_event_moves_the_period_and_resets_usage(usage: Usage, user_id: str) -> None:
    sub_id = factory.new_id("sub")
    start = int(time.time()) - 30 * 86400
    await usage.subscribe(user_id, sub_id, period_start=start, period_end=start + 30 * 86400 + 60)
    assert (await usage.consume(user_id, 10, meter="exports")).used == 10
    renewal_start = start + 30 * 86400 + 60
    await usage.subscribe(
        user_id, sub_id, period_start=renewal_start, period_end=renewal_start + 30 * 86400
    )
    answer = await usage.consume(user_id, 4, meter="exports")
    assert (answer.allowed, answer.used, answer.period_start.seconds) == (True, 4, renewal_start)


async def test_cancel_at_period_end_keeps_the_paid_limit_until_the_end(
    usage: Usage, clock: TestClock, user_id: str
) -> None:
    start = int(time.time()) - 3600
    end = start + 2 * 86400
    await usage.subscribe(
        user_id,
        factory.new_id("sub"),
        period_start=start,
        period_end=end,
        cancel_at_period_end=True,
    )
    clock.set(datetime.fromtimestamp(end - 60, UTC))
    paid = await usage.consume(user_id, 100)
    assert (paid.allowed, paid.limit) == (True, 1000)
    clock.set(datetime.fromtimestamp(end + 60, UTC))
    free = await usage.get(user_id, "api_calls")
    assert free.tier == "free"
    assert (free.meters[0].limit, free.meters[0].used) == (20, 0)
    assert free.meters[0].period_end.ToDatetime(UTC).day == 1
