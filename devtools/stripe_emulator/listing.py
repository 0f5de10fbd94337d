"""Stripe's list endpoints: newest-first pages and the ``created``/``type`` filters.

Pages honour ``limit`` (1-100), ``starting_after`` and ``ending_before``.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from .errors import StripeError
from .forms import as_int, as_list
from .objects import JSON, list_object


def matches_created(obj: JSON, created: Any) -> bool:
    """Stripe's ``created`` filter: an exact timestamp or ``gt``/``gte``/``lt``/``lte``."""
    if created is None:
        return True
    value = int(obj["created"])
    if isinstance(created, str):
        return value == as_int(created, "created")
    if not isinstance(created, dict):
        raise StripeError.invalid("Invalid created filter", param="created")
    checks: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    for key, bound in created.items():
        check = checks.get(key)
        if check is None:
            raise StripeError.invalid(f"Invalid created filter: {key}", param=f"created[{key}]")
        if not check(value, as_int(bound, f"created[{key}]")):
            return False
    return True


def matches_type(event: JSON, pattern: str | None, types: list[Any]) -> bool:
    """Stripe's event ``type`` (with ``*`` wildcards) and ``types[]`` filters."""
    if pattern and not fnmatch.fnmatchcase(event["type"], pattern):
        return False
    return not types or event["type"] in types


def paginate(newest_first: Iterable[JSON], params: dict[str, Any], url: str) -> JSON:
    """A list object page honouring ``limit``, ``starting_after`` and ``ending_before``."""
    items = list(newest_first)
    limit = as_int(params.get("limit", 10), "limit", minimum=1)
    if limit > 100:
        raise StripeError.invalid("Limit must be at most 100", param="limit")
    ids = [item["id"] for item in items]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise StripeError(
                400, f"No such object: '{after}'", param="starting_after", code="resource_missing"
            )
        window = items[ids.index(after) + 1 :]
        page, has_more = window[:limit], len(window) > limit
    elif before:
        if before not in ids:
            raise StripeError(
                400, f"No such object: '{before}'", param="ending_before", code="resource_missing"
            )
        window = items[: ids.index(before)]
        page, has_more = window[-limit:], len(window) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return list_object([copy.deepcopy(item) for item in page], url, has_more)


def filter_list(params: dict[str, Any], name: str) -> list[Any]:
    """A list-valued filter such as ``types[]`` (absent -> empty)."""
    return as_list(params.get(name), name)
