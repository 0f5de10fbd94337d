"""Reads the plans TOML file the emulator seeds its products and prices from."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PlanSeed:
    """One ``[plans.NAME]`` table: a monthly USD price with a fixed id."""

    name: str
    price_id: str
    unit_amount: int


def load_plans(path: Path) -> list[PlanSeed]:
    """The plans of ``path``; raises ValueError naming an invalid entry."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    plans = data.get("plans", {})
    if not isinstance(plans, dict):
        raise ValueError(f"{path}: [plans] must be a table")
    seeds: list[PlanSeed] = []
    for name, table in plans.items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: plans.{name} must be a table")
        price_id = table.get("price_id")
        amount = table.get("unit_amount")
        if not isinstance(price_id, str) or not price_id:
            raise ValueError(f"{path}: plans.{name}.price_id must be a non-empty string")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise ValueError(f"{path}: plans.{name}.unit_amount must be a non-negative integer")
        seeds.append(PlanSeed(name=name, price_id=price_id, unit_amount=amount))
    return seeds


@dataclass(frozen=True)
class MeterSeed:
    """A ``[plans.NAME.limits]`` meter with ``overage = "bill"``: a metered USD price."""

    meter: str
    event_name: str
    price_id: str
    unit_amount: int


def load_meters(path: Path) -> list[MeterSeed]:
    """Every billed-overage meter of ``path`` (``unit_amount``: cents per unit, default 0)."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    seeds: dict[str, MeterSeed] = {}
    plans = data.get("plans", {})
    for table in plans.values() if isinstance(plans, dict) else ():
        limits = table.get("limits", {}) if isinstance(table, dict) else {}
        for meter, spec in limits.items() if isinstance(limits, dict) else ():
            if not isinstance(spec, dict) or spec.get("overage") != "bill":
                continue
            price_id, event_name = spec.get("price_id"), spec.get("event_name")
            amount = spec.get("unit_amount", 0)
            if (
                isinstance(price_id, str)
                and isinstance(event_name, str)
                and isinstance(amount, int)
            ):
                seeds[price_id] = MeterSeed(meter, event_name, price_id, amount)
    return list(seeds.values())
