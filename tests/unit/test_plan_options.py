"""Prices by interval, trials, seats and checkout settings in the plans catalog."""

from __future__ import annotations

from typing import Any

import pytest

from billing_service.plan_options import AddressCollection, Interval, Seats, TrialEndBehavior
from billing_service.plans import CatalogError, load_catalog, parse_catalog
from tests.support.processes import PLANS_FILE


def _catalog(**pro: Any) -> dict[str, Any]:
    return {"plans": {"pro": {"price_id": "price_m", "monthly_limit": 1, **pro}}}


def test_example_prices_map_back_to_plan_and_interval() -> None:
    catalog = load_catalog(PLANS_FILE)
    team = catalog.plan("team")
    assert team.price_id == team.price_for(Interval.MONTH) == "price_team_monthly"
    assert team.price_for(Interval.YEAR) == "price_team_yearly"
    for plan in catalog.plans.values():
        for interval, price in plan.prices.items():
            assert catalog.plan_for_price(price) == plan
            assert catalog.interval_for_price(price) is interval
    assert catalog.plan("studio").price_for(Interval.YEAR) is None
    assert catalog.interval_for_price("price_unknown") is None


def test_example_trial_seats_and_checkout_settings() -> None:
    catalog = load_catalog(PLANS_FILE)
    team, pro = catalog.plan("team"), catalog.plan("pro")
    assert (team.trial_days, team.trial_end_behavior) == (14, TrialEndBehavior.CANCEL)
    assert team.seats == Seats(per_seat=True, min_seats=1, max_seats=50, limits_per_seat=True)
    assert (pro.trial_days, pro.trial_end_behavior, pro.seats) == (0, None, Seats())
    assert catalog.checkout.trial_once_per_user is True
    assert catalog.checkout.allow_promotion_codes is True
    assert catalog.checkout.automatic_tax is False
    assert catalog.checkout.billing_address_collection is AddressCollection.REQUIRED


def test_monthly_price_may_be_written_in_prices_table() -> None:
    data = {
        "plans": {"pro": {"monthly_limit": 1, "prices": {"month": "price_m", "year": "price_y"}}}
    }
    plan = parse_catalog(data).plan("pro")
    assert (plan.price_id, plan.prices[Interval.YEAR]) == ("price_m", "price_y")


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"prices": {"week": "price_w"}}, "plans.pro.prices.week"),
        ({"prices": {"year": "nope"}}, "plans.pro.prices.year"),
        ({"prices": {"month": "price_other"}}, "plans.pro.price_id and plans.pro.prices.month"),
        ({"trial_days": -1}, "plans.pro.trial_days"),
        ({"trial_days": 731}, "plans.pro.trial_days"),
        ({"trial_end_behavior": "ignore"}, "plans.pro.trial_end_behavior"),
        ({"per_seat": "yes"}, "plans.pro.per_seat"),
        ({"min_seats": 2}, "plans.pro.min_seats needs plans.pro.per_seat"),
        ({"per_seat": True, "min_seats": 0}, "plans.pro.min_seats"),
        ({"per_seat": True, "min_seats": 5, "max_seats": 4}, "plans.pro.max_seats"),
        ({"unit_amounts": {"year": -1}}, "plans.pro.unit_amounts.year"),
    ],
)
def test_bad_option_is_named(patch: dict[str, Any], named: str) -> None:
    with pytest.raises(CatalogError, match=named.replace(".", r"\.")):
        parse_catalog(_catalog(**patch))


def test_price_shared_across_intervals_or_plans_is_refused() -> None:
    data = _catalog(prices={"year": "price_y"})
    data["plans"]["team"] = {
        "price_id": "price_t",
        "monthly_limit": 1,
        "prices": {"year": "price_y"},
    }
    with pytest.raises(CatalogError, match=r"plans\.team\.prices\.year duplicates plans\.pro"):
        parse_catalog(data)


@pytest.mark.parametrize(
    ("checkout", "named"),
    [
        ({"trial_once_per_user": "no"}, "checkout.trial_once_per_user"),
        ({"automatic_tax": 1}, "checkout.automatic_tax"),
        ({"billing_address_collection": "never"}, "checkout.billing_address_collection"),
    ],
)
def test_bad_checkout_setting_is_named(checkout: dict[str, Any], named: str) -> None:
    data = {**_catalog(), "checkout": checkout}
    with pytest.raises(CatalogError, match=named.replace(".", r"\.")):
        parse_catalog(data)


@pytest.mark.parametrize(
    ("seats", "quantity", "problem"),
    [
        (Seats(), 1, ""),
        (Seats(), 2, "not sold per seat"),
        (Seats(per_seat=True, min_seats=2, max_seats=5), 1, "at least 2"),
        (Seats(per_seat=True, min_seats=2, max_seats=5), 5, ""),
        (Seats(per_seat=True, min_seats=2, max_seats=5), 6, "at most 5"),
        (Seats(per_seat=True), 10_000, ""),
    ],
)
def test_seat_rules(seats: Seats, quantity: int, problem: str) -> None:
    assert (problem in seats.check(quantity)) and (bool(problem) == bool(seats.check(quantity)))
