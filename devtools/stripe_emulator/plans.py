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
