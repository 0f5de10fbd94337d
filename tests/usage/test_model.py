"""Pure parts of usage metering: the catalog's limits and the period rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_service.lifecycle import Grant
from billing_service.plans import CatalogError, load_catalog, parse_catalog
from billing_service.storage.models import Subscription
from billing_service.usage.limits import DEFAULT_METER, MeterLimit
from billing_service.usage.period import add_months, calendar_month, usage_period
from tests.support.processes import PLANS_FILE

CATALOG = load_catalog(PLANS_FILE)


def _catalog(limits: Any, *, free_limits: Any = None) -> None:
    data: dict[str, Any] = {
        "plans": {"pro": {"price_id": "price_a", "monthly_limit": 5, "limits": limits}}
    }
    if free_limits is not None:
        data["free"] = {"limits": free_limits}
    parse_catalog(data)


def test_example_catalog_meters() -> None:
    pro, studio, free = CATALOG.plan("pro"), CATALOG.plan("studio"), CATALOG.free
    assert pro.limit("api_calls") == MeterLimit(1000)
    assert pro.limit(DEFAULT_METER) == MeterLimit(100)
    assert pro.limit("tokens") == MeterLimit(0)  # absent: not included
    assert studio.limit("api_calls").unlimited
    assert studio.limit("tokens").bills_overage
    assert free.limit("api_calls") == MeterLimit(20)
    assert CATALOG.all_meters == {"units", "api_calls", "exports", "tokens"}


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"x": -1}, "plans.pro.limits.x"),
        ({"x": "lots"}, "plans.pro.limits.x"),
        ({"Bad Name": 1}, "plans.pro.limits.Bad Name"),
        ({"x": {"included": 1, "overage": "maybe"}}, "plans.pro.limits.x.overage"),
        ({"x": {"included": 1, "overage": "bill"}}, "plans.pro.limits.x.event_name"),
        (
            {"x": {"included": 1, "overage": "bill", "event_name": "x", "price_id": "p"}},
            "plans.pro.limits.x.price_id",
        ),
        ("x", "plans.pro.limits"),
    ],
)
def test_bad_limit_is_named(limits: Any, named: str) -> None:
    with pytest.raises(CatalogError, match=named.replace(".", r"\.")):
        _catalog(limits)


def test_free_cannot_bill_overage() -> None:
    bill = {"included": 1, "overage": "bill", "event_name": "x", "price_id": "price_x"}
    with pytest.raises(CatalogError, match=r"free\.limits\.x\.overage"):
        _catalog({}, free_limits={"x": bill})


@given(used=st.integers(0, 200), quantity=st.integers(1, 200), included=st.integers(0, 100))
def test_hard_limit_admits_exactly_what_fits(used: int, quantity: int, included: int) -> None:
    assert MeterLimit(included).admits(used, quantity) == (used + quantity <= included)
    assert MeterLimit(included).overage_of(used, quantity) == 0


@given(used=st.integers(0, 200), quantity=st.integers(1, 200), included=st.integers(0, 100))
def test_overage_is_the_part_past_the_included(used: int, quantity: int, included: int) -> None:
    meter = MeterLimit(included, event_name="e", overage_price_id="price_e")
    assert meter.admits(used, quantity)
    over = meter.overage_of(used, quantity)
    assert 0 <= over <= quantity
    assert over == max(0, used + quantity - included) - max(0, used - included)


def test_add_months_clamps_the_day() -> None:
    assert add_months(datetime(2027, 1, 31), 1) == datetime(2027, 2, 28)
    assert add_months(datetime(2027, 1, 31), 2) == datetime(2027, 3, 31)
    assert add_months(datetime(2027, 12, 15, 6), 1) == datetime(2028, 1, 15, 6)
    assert calendar_month(datetime(2027, 12, 31, 23, 59)) == (
        datetime(2027, 12, 1),
        datetime(2028, 1, 1),
    )


def _row(start: datetime | None, end: datetime) -> Subscription:
    return Subscription(
        user_id="u", status="active", plan="pro", current_period_start=start, current_period_end=end
    )


def test_paid_period_is_the_subscriptions_then_rolls_on_by_months() -> None:
    row = _row(datetime(2027, 1, 31, 12), datetime(2027, 2, 28, 12))
    grant = Grant("pro", None)
    inside = usage_period(row, grant, CATALOG, datetime(2027, 2, 10))
    assert (inside.start, inside.end, inside.plan.name) == (
        row.current_period_start,
        row.current_period_end,
        "pro",
    )
    late = usage_period(row, grant, CATALOG, datetime(2027, 4, 1))
    assert (late.start, late.end) == (datetime(2027, 3, 28, 12), datetime(2027, 4, 28, 12))


def test_free_grant_uses_the_calendar_month_even_with_a_row() -> None:
    row = _row(datetime(2027, 1, 5), datetime(2027, 2, 5))
    period = usage_period(row, Grant("free", None), CATALOG, datetime(2027, 2, 10))
    assert (period.start, period.end, period.plan.name) == (
        datetime(2027, 2, 1),
        datetime(2027, 3, 1),
        "free",
    )
