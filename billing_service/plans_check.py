"""``billing-service plans check``: compare the plans catalog with the prices Stripe holds.

For every price the catalog names (each plan's prices by interval and its
billed-overage meter prices) it asks Stripe, once, and reports each problem:
the price does not exist, is archived, is not recurring, bills at another
interval than the catalog says, or a plan's prices use different currencies.
Exit 0 when everything matches, 1 on any mismatch, 2 when Stripe cannot be
asked. The service's start never calls Stripe; run this in deploy pipelines.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from billing_service.errors import BillingError, NotFound
from billing_service.plans import Catalog, load_catalog
from billing_service.settings import Settings
from billing_service.stripe_api import StripeApi


@dataclass
class CheckReport:
    """What ``plans check`` found: one line per price checked, and the problems."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the catalog and Stripe agree."""
        return not self.problems


@dataclass(frozen=True)
class _Wanted:
    """A price the catalog names: where, and what it must be."""

    entry: str
    plan: str
    price_id: str
    interval: str | None  # None: metered usage prices, interval not fixed by the catalog


def _wanted(catalog: Catalog) -> list[_Wanted]:
    found: list[_Wanted] = []
    for plan in catalog.plans.values():
        for interval, price_id in plan.prices.items():
            entry = f"plans.{plan.name}.prices.{interval.value}"
            found.append(_Wanted(entry, plan.name, price_id, interval.value))
        for meter, limit in plan.limits.items():
            if limit.overage_price_id:
                entry = f"plans.{plan.name}.limits.{meter}"
                found.append(_Wanted(entry, plan.name, limit.overage_price_id, None))
    return found


def check_prices(catalog: Catalog, prices: dict[str, dict[str, Any] | None]) -> CheckReport:
    """Compare ``catalog`` with ``prices`` (price id -> Stripe's price, None when missing)."""
    report = CheckReport()
    currencies: dict[str, dict[str, list[str]]] = {}
    for wanted in _wanted(catalog):
        price = prices.get(wanted.price_id)
        where = f"{wanted.entry} = {wanted.price_id}"
        if price is None:
            report.problems.append(f"{where}: no such price in Stripe")
            continue
        recurring = price.get("recurring")
        interval = recurring.get("interval") if isinstance(recurring, dict) else None
        count = int(recurring.get("interval_count") or 1) if isinstance(recurring, dict) else 0
        currency = str(price.get("currency") or "")
        report.lines.append(
            f"{where}: {price.get('unit_amount')} {currency} every "
            f"{count} {interval or '(one-time)'}"
            f"{'' if price.get('active') else ', archived'}"
        )
        if not price.get("active"):
            report.problems.append(f"{where}: the price is archived (active=false)")
        if interval is None:
            report.problems.append(f"{where}: the price is not recurring")
        elif wanted.interval is not None and (interval, count) != (wanted.interval, 1):
            report.problems.append(
                f"{where}: Stripe bills every {count} {interval}, the catalog says "
                f"every {wanted.interval}"
            )
        currencies.setdefault(wanted.plan, {}).setdefault(currency, []).append(wanted.price_id)
    for plan, by_currency in currencies.items():
        if len(by_currency) > 1:
            listed = "; ".join(f"{c}: {', '.join(ids)}" for c, ids in sorted(by_currency.items()))
            report.problems.append(f"plans.{plan}: prices in different currencies ({listed})")
    return report


async def fetch_prices(stripe: StripeApi, price_ids: list[str]) -> dict[str, dict[str, Any] | None]:
    """Each price from Stripe (None when Stripe does not know it)."""
    found: dict[str, dict[str, Any] | None] = {}
    for price_id in price_ids:
        try:
            found[price_id] = await stripe.retrieve_price(price_id)
        except NotFound:
            found[price_id] = None
    return found


async def run_check(settings: Settings, out: TextIO) -> int:
    """Print the report to ``out``; the exit status (0 ok, 1 mismatch, 2 Stripe unreachable)."""
    catalog = load_catalog(settings.plans_file)
    stripe = StripeApi(settings)
    try:
        prices = await fetch_prices(stripe, sorted({w.price_id for w in _wanted(catalog)}))
    except BillingError as exc:
        print(f"plans check: cannot ask Stripe: {exc}", file=out)
        return 2
    finally:
        await stripe.close()
    report = check_prices(catalog, prices)
    print(f"plans check: {settings.plans_file} against Stripe", file=out)
    for line in report.lines:
        print(f"  {line}", file=out)
    for problem in report.problems:
        print(f"  MISMATCH  {problem}", file=out)
    summary = "catalog matches Stripe" if report.ok else f"{len(report.problems)} mismatch(es)"
    print(f"plans check: {summary}", file=out)
    return 0 if report.ok else 1


def add_plans_parser(commands: Any) -> None:
    """The ``plans`` command and its ``check`` action."""
    parser = commands.add_parser("plans", help="operate on the plans catalog (BILLING_PLANS_FILE)")
    actions = parser.add_subparsers(dest="plans_command", metavar="ACTION")
    actions.required = True
    actions.add_parser(
        "check",
        help="compare the catalog's prices with Stripe; exit 1 on any mismatch",
    )


def cmd_plans(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``billing-service plans check``."""
    return asyncio.run(run_check(settings, sys.stdout))
