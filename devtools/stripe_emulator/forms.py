"""Stripe's bracket-notation form encoding, parsed into nested dicts and lists.

``metadata[user_id]=u1`` becomes ``{"metadata": {"user_id": "u1"}}``,
``line_items[0][price]=p`` becomes ``{"line_items": [{"price": "p"}]}`` and
``expand[]=a`` appends to a list. Values stay strings: the helpers below
coerce them where an endpoint expects booleans, integers, lists or hashes, and
check parameters the way Stripe does (unknown names, metadata updates,
``[enabled]`` flags, trial end behaviours), each error naming its ``param``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import StripeError

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    match = _KEY_RE.match(key)
    if match is None:
        raise StripeError.invalid(f"Invalid parameter name: {key}", param=key)
    return [match.group(1), *_PART_RE.findall(match.group(2))]


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all indices (or appends) into lists, recursively."""
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Parse decoded ``(key, value)`` pairs in Stripe's bracket notation."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _split_key(key)
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":
                # ``name[]`` appends; the container was created as a list.
                if not isinstance(node, list):
                    raise StripeError.invalid(f"Invalid array parameter: {key}", param=key)
                if last:
                    node.append(value)
                    break
                child: Any = {}
                node.append(child)
                node = child
                continue
            if not isinstance(node, dict):
                raise StripeError.invalid(f"Invalid parameter: {key}", param=key)
            if last:
                node[part] = value
                break
            next_is_append = parts[index + 1] == ""
            existing = node.get(part)
            if existing is None or isinstance(existing, str):
                existing = [] if next_is_append else {}
                node[part] = existing
            node = existing
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def as_bool(value: Any, param: str) -> bool:
    """A form boolean (``true``/``false``) or a 400 naming ``param``."""
    if isinstance(value, bool):
        return value
    if value in ("true", "True", "1"):
        return True
    if value in ("false", "False", "0"):
        return False
    raise StripeError.invalid(f"Invalid boolean: {value}", param=param)


def as_int(value: Any, param: str, *, minimum: int | None = None) -> int:
    """A form integer or a 400 naming ``param``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise StripeError.invalid(f"Invalid integer: {value}", param=param) from None
    if minimum is not None and number < minimum:
        raise StripeError.invalid(
            f"Invalid integer: {value}; must be at least {minimum}", param=param
        )
    return number


def as_metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """A metadata hash; an empty string (``metadata=``) clears it."""
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise StripeError.invalid("Invalid hash", param=param)
    return {str(k): str(v) for k, v in value.items()}


def as_list(value: Any, param: str) -> list[Any]:
    """A form array (``x[0]=..``) or a 400 naming ``param``."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    raise StripeError.invalid("Invalid array", param=param)


def reject_unknown(params: dict[str, Any], allowed: set[str]) -> None:
    """A 400 naming the first parameter outside ``allowed`` (``expand`` is always allowed)."""
    for key in params:
        if key not in allowed and key != "expand":
            raise StripeError.invalid(f"Received unknown parameter: {key}", param=key)


def merge_metadata(current: dict[str, str], update: Any, param: str = "metadata") -> dict[str, str]:
    """Stripe's metadata update: keys set to "" are removed, ``metadata=""`` clears."""
    if update == "":
        return {}
    merged = dict(current)
    for key, value in as_metadata(update, param).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def as_enabled(value: Any, param: str) -> bool:
    """``automatic_tax[enabled]`` style flags (absent: False)."""
    if value is None:
        return False
    if not isinstance(value, dict) or "enabled" not in value:
        raise StripeError.missing_param(f"{param}[enabled]")
    return as_bool(value["enabled"], f"{param}[enabled]")


def missing_payment_method_param(settings: Any, param: str) -> str:
    """``trial_settings[end_behavior][missing_payment_method]`` (default create_invoice)."""
    behavior = "create_invoice"
    if isinstance(settings, dict) and isinstance(settings.get("end_behavior"), dict):
        behavior = str(settings["end_behavior"].get("missing_payment_method", behavior))
        if behavior not in ("create_invoice", "pause", "cancel"):
            raise StripeError.invalid(
                "Invalid missing_payment_method",
                param=f"{param}[end_behavior][missing_payment_method]",
            )
    return behavior
