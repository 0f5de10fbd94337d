"""Stripe event payloads for tests, built from Stripe's official sample objects.

Every object starts as a deep copy of its template in
``tests/fixtures/stripe_fixtures3.json`` and only the fields a test cares
about are set. ``legacy=True`` renders the pre-2025-03-31 shape: periods on
the subscription itself and the invoice's subscription at its top level.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe_fixtures3.json"
CURRENT_API = "2025-03-31.basil"
LEGACY_API = "2024-06-20"
BASE_TIME = 1_760_000_000  # 2025-10-09: a fixed "now" for Stripe's clock in events
PERIOD = 30 * 24 * 3600

_counter = itertools.count(1)


@cache
def _templates() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    return data


def template(name: str) -> dict[str, Any]:
    """A deep copy of Stripe's sample object ``name``."""
    return copy.deepcopy(_templates()[name])


def new_id(prefix: str) -> str:
    """A fresh Stripe-style id (``sub_...``, ``cus_...``, ``evt_...``)."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def subscription(
    sub_id: str,
    customer: str,
    status: str,
    *,
    price: str = "price_pro_monthly",
    period_start: int | None = None,
    period_end: int | None = None,
    cancel_at_period_end: bool = False,
    user_id: str | None = None,
    legacy: bool = False,
    created: int = BASE_TIME - 60,
) -> dict[str, Any]:
    """A subscription object in the current or the legacy shape.

    The period defaults to one that started a day ago (real time), so access
    depends on status alone unless a test moves it.
    """
    if period_start is None:
        period_start = int(time.time()) - 24 * 3600
    if period_end is None:
        period_end = period_start + PERIOD
    sub = template("subscription")
    sub.update(
        id=sub_id,
        customer=customer,
        status=status,
        created=created,
        start_date=created,
        cancel_at_period_end=cancel_at_period_end,
        cancel_at=period_end if cancel_at_period_end else None,
        canceled_at=period_start if status == "canceled" else None,
        ended_at=period_start if status == "canceled" else None,
        trial_start=None,
        trial_end=None,
        pending_update=None,
        pause_collection=None,
        metadata={"user_id": user_id, "plan": "pro"} if user_id else {},
    )
    item = sub["items"]["data"][0]
    item["id"] = "si_" + sub_id.removeprefix("sub_")  # one item per subscription, as in Stripe
    item["subscription"] = sub_id
    item["price"]["id"] = price
    item["plan"]["id"] = price
    sub["items"]["url"] = f"/v1/subscription_items?subscription={sub_id}"
    if legacy:
        item.pop("current_period_start", None)
        item.pop("current_period_end", None)
        sub["current_period_start"] = period_start
        sub["current_period_end"] = period_end
    else:
        item["current_period_start"] = period_start
        item["current_period_end"] = period_end
        sub.pop("current_period_start", None)
        sub.pop("current_period_end", None)
    return sub


def checkout_session(
    customer: str,
    sub_id: str,
    *,
    client_reference_id: str | None = None,
    metadata_user_id: str | None = None,
    mode: str = "subscription",
) -> dict[str, Any]:
    """A completed Checkout session that created ``sub_id``."""
    session = template("checkout.session")
    session.update(
        id=new_id("cs_test"),
        mode=mode,
        customer=customer,
        subscription=sub_id if mode == "subscription" else None,
        client_reference_id=client_reference_id,
        metadata={"user_id": metadata_user_id} if metadata_user_id else {},
        status="complete",
        payment_status="paid",
    )
    return session


def invoice(
    customer: str,
    sub_id: str | None,
    *,
    legacy: bool = False,
    status: str = "paid",
    user_id: str | None = None,
) -> dict[str, Any]:
    """An invoice billing ``sub_id`` (None: a one-off invoice), in either shape."""
    inv = template("invoice")
    inv.update(id=new_id("in"), customer=customer, status=status)
    metadata = {"user_id": user_id} if user_id else None
    if legacy:
        inv["parent"] = None
        inv["subscription"] = sub_id
        inv["subscription_details"] = {"metadata": metadata}
    else:
        inv.pop("subscription", None)
        inv["parent"] = (
            {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": metadata, "subscription": sub_id},
            }
            if sub_id
            else None
        )
    return inv


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    event_id: str | None = None,
    legacy: bool = False,
) -> dict[str, Any]:
    """A Stripe event envelope around ``obj``."""
    ev = template("event")
    ev.update(
        id=event_id or new_id("evt"),
        type=event_type,
        created=created if created is not None else BASE_TIME + next(_counter),
        api_version=LEGACY_API if legacy else CURRENT_API,
        data={"object": obj},
        livemode=False,
    )
    return ev


def payload(ev: dict[str, Any]) -> bytes:
    """The event as the gateway would forward it."""
    return json.dumps(ev).encode()
