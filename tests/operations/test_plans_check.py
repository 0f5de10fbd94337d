"""``billing-service plans check``: the catalog against the prices Stripe holds (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import stripe

from billing_service.plans import parse_catalog
from billing_service.plans_check import check_prices
from devtools.stripe_emulator.process import EmulatorProcess
from tests.operations.support import run_cli
from tests.support.processes import PLANS_FILE


def _check(emulator: EmulatorProcess, plans: Path) -> Any:
    return run_cli(
        ["plans", "check"],
        database_url="sqlite:///unused.db",
        stripe_base=emulator.base_url,
        BILLING_PLANS_FILE=str(plans),
    )


def test_example_catalog_matches_the_emulator(emulator: EmulatorProcess) -> None:
    result = _check(emulator, PLANS_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plans.pro.prices.year = price_pro_yearly: 19000 usd every 1 year" in result.stdout
    assert "catalog matches Stripe" in result.stdout


async def test_mismatches_are_reported_and_exit_non_zero(
    emulator: EmulatorProcess, client: stripe.StripeClient, tmp_path: Path
) -> None:
    euro_monthly = await client.v1.prices.create_async(
        {
            "currency": "eur",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Euro team"},
        }
    )
    text = PLANS_FILE.read_text(encoding="utf-8")
    text = text.replace('year = "price_team_yearly"', f'year = "{euro_monthly.id}"')
    text = text.replace('year = "price_pro_yearly"', 'year = "price_does_not_exist"')
    plans = tmp_path / "plans.toml"
    plans.write_text(text, encoding="utf-8")
    result = _check(emulator, plans)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "plans.pro.prices.year = price_does_not_exist: no such price in Stripe" in out
    assert f"plans.team.prices.year = {euro_monthly.id}: Stripe bills every 1 month" in out
    assert "plans.team: prices in different currencies (eur:" in out
    assert "3 mismatch(es)" in out


def test_archived_and_one_time_prices_are_mismatches() -> None:
    catalog = parse_catalog(
        {
            "plans": {
                "pro": {"price_id": "price_a", "monthly_limit": 1, "prices": {"year": "price_b"}}
            }
        }
    )
    monthly = {
        "active": False,
        "currency": "usd",
        "unit_amount": 1,
        "recurring": {"interval": "month"},
    }
    one_time = {"active": True, "currency": "usd", "unit_amount": 1, "recurring": None}
    report = check_prices(catalog, {"price_a": monthly, "price_b": one_time})
    assert not report.ok
    assert sorted(report.problems) == [
        "plans.pro.prices.month = price_a: the price is archived (active=false)",
        "plans.pro.prices.year = price_b: the price is not recurring",
    ]
    fine = check_prices(
        catalog,
        {
            "price_a": {**monthly, "active": True},
            "price_b": {**one_time, "recurring": {"interval": "year", "interval_count": 1}},
        },
    )
    assert fine.ok and len(fine.lines) == 2
