"""``expand[]``: referenced ids on the requested paths replaced by copies of their objects."""

from __future__ import annotations

import copy
from typing import Any

from .store import Store


def expand(obj: Any, paths: list[str], store: Store) -> Any:
    """Replace referenced ids on ``paths`` (``a.b``, ``data.a`` for lists) by their objects."""
    for path in paths:
        _expand_path(obj, path.split("."), store)
    return obj


def _expand_path(obj: Any, parts: list[str], store: Store) -> None:
    if not parts or not isinstance(obj, dict):
        return
    head, rest = parts[0], parts[1:]
    if obj.get("object") == "list" and head == "data":
        for item in obj["data"]:
            _expand_path(item, rest, store)
        return
    value = obj.get(head)
    if isinstance(value, list):
        # A list of expandable ids (e.g. a subscription's ``discounts``).
        for index, entry in enumerate(value):
            found = store.lookup(entry) if isinstance(entry, str) else None
            if found is not None:
                value[index] = entry = copy.deepcopy(found)
            _expand_path(entry, rest, store)
        return
    if isinstance(value, str):
        found = store.lookup(value)
        if found is None:
            return
        obj[head] = value = copy.deepcopy(found)
    if isinstance(value, dict):
        _expand_path(value, rest, store)
