"""The plans catalog: the shipped example, and bad entries named at load."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from billing_service.plans import CatalogError, load_catalog, parse_catalog
from tests.support.processes import PLANS_FILE


def test_example_catalog_has_pro_and_studio() -> None:
    catalog = load_catalog(PLANS_FILE)
    pro, studio = catalog.plan("pro"), catalog.plan("studio")
    assert pro.monthly_limit == 100
    assert pro.features == {"priority_support", "advanced_analytics"}
    assert studio.monthly_limit == 500
    assert studio.features == pro.features | {"api_access", "white_label"}
    assert catalog.plan("free").features == frozenset()
    assert catalog.plan_for_price(pro.price_id) == pro
    assert catalog.plan_for_price("price_unknown") is None
    assert catalog.access.past_due_grace is None


def _valid() -> dict[str, object]:
    return {
        "plans": {
            "pro": {"price_id": "price_a", "monthly_limit": 100, "features": ["x"]},
        }
    }


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"price_id": "not-a-price"}, "plans.pro.price_id"),
        ({"monthly_limit": -1}, "plans.pro.monthly_limit"),
        ({"monthly_limit": "many"}, "plans.pro.monthly_limit"),
        ({"features": "x"}, "plans.pro.features"),
        ({"features": ["Not Valid"]}, "plans.pro.features"),
    ],
)
def test_bad_entry_is_named(patch: dict[str, object], named: str) -> None:
    data = _valid()
    data["plans"]["pro"].update(patch)  # type: ignore[index]
    with pytest.raises(CatalogError, match=named.replace(".", r"\.")):
        parse_catalog(data)


def test_duplicate_price_is_named() -> None:
    data = _valid()
    data["plans"]["studio"] = {"price_id": "price_a", "monthly_limit": 1}  # type: ignore[index]
    with pytest.raises(CatalogError, match=r"plans\.studio\.price_id duplicates plans\.pro"):
        parse_catalog(data)


def test_free_is_not_a_paid_plan_name() -> None:
    data = {"plans": {"free": {"price_id": "price_a", "monthly_limit": 1}}}
    with pytest.raises(CatalogError, match=r"plans\.free"):
        parse_catalog(data)


def test_grace_hours_configure_past_due_window() -> None:
    data = _valid()
    data["access"] = {"past_due_grace_hours": 72}
    assert parse_catalog(data).access.past_due_grace == timedelta(hours=72)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("plans = [", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(bad)
