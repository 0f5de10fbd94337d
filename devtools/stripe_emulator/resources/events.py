"""Events: the list endpoint (events are recorded by :meth:`~..account.Account.emit`)."""

from __future__ import annotations

from typing import Any

from ..account import Account
from ..listing import filter_list, matches_created, matches_type, paginate
from ..objects import JSON


def list_events(account: Account, params: dict[str, Any]) -> JSON:
    """GET /v1/events, newest first."""
    pattern = params.get("type")
    types = filter_list(params, "types")
    rows = [
        e
        for e in reversed(account.store.events.values())
        if matches_type(e, pattern, types) and matches_created(e, params.get("created"))
    ]
    return paginate(rows, params, "/v1/events")
