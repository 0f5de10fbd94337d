"""Billing portal sessions (the page itself is in ``pages.py``)."""

from __future__ import annotations

from typing import Any

from ..account import Account
from ..errors import StripeError
from ..forms import reject_unknown
from ..objects import JSON, new_portal_session


def create_portal_session(account: Account, params: dict[str, Any]) -> JSON:
    """POST /v1/billing_portal/sessions."""
    reject_unknown(params, {"customer", "return_url", "configuration", "locale", "flow_data"})
    customer_id = params.get("customer")
    if not customer_id:
        raise StripeError.missing_param("customer")
    account.store.get("customers", str(customer_id), param="customer", status=400)
    session = new_portal_session(
        account.fx,
        created=account.clock.now(),
        customer=str(customer_id),
        return_url=params.get("return_url") or None,
        url_base=account.url_base,
    )
    account.store.portal_sessions[session["id"]] = session
    return session
