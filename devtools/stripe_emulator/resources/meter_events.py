"""Billing meter events: validation, deduplication by ``identifier``, and usage per period.

Like Stripe: ``event_name`` and ``payload`` (``stripe_customer_id``, a numeric
``value``) are required, the customer must exist, ``timestamp`` must lie
within the past 35 days and at most 5 minutes ahead of the emulator clock,
and an ``identifier`` seen before is deduplicated (answered with the first
event, counted once). The routes are in ``meter_routes.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import StripeError

MAX_AGE = 35 * 86400
MAX_AHEAD = 5 * 60


@dataclass
class MeterEvents:
    """Accepted meter events by identifier, and the failures a test asked for."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    fail_next: int = 0
    failed: int = 0


def create_meter_event(
    meters: MeterEvents, now: int, customers: dict[str, Any], params: dict[str, Any]
) -> Any:
    """POST /v1/billing/meter_events: the accepted (or first, if repeated) event."""
    event_name = params.get("event_name")
    if not isinstance(event_name, str) or not event_name:
        raise StripeError.missing_param("event_name")
    payload = params.get("payload")
    if not isinstance(payload, dict):
        raise StripeError.missing_param("payload")
    customer = payload.get("stripe_customer_id")
    if not isinstance(customer, str) or not customer:
        raise StripeError.missing_param("payload[stripe_customer_id]")
    if customer not in customers:
        raise StripeError.no_such(customer, param="payload[stripe_customer_id]", kind="customer")
    try:
        float(str(payload.get("value")))
    except ValueError:
        raise StripeError.invalid(
            "payload[value] must be a number", param="payload[value]"
        ) from None
    raw_ts = params.get("timestamp", now)
    try:
        timestamp = int(raw_ts)
    except (TypeError, ValueError):
        raise StripeError.invalid("timestamp must be a unix timestamp", param="timestamp") from None
    if timestamp < now - MAX_AGE or timestamp > now + MAX_AHEAD:
        raise StripeError.invalid(
            "timestamp must be within the past 35 days and at most 5 minutes in the future",
            param="timestamp",
        )
    identifier = str(params.get("identifier") or f"mev_{secrets.token_hex(12)}")
    if len(identifier) > 100:
        raise StripeError.invalid("identifier is longer than 100 characters", param="identifier")
    if identifier in meters.events:
        meters.duplicates += 1
        return meters.events[identifier]
    event = {
        "object": "billing.meter_event",
        "created": now,
        "event_name": event_name,
        "identifier": identifier,
        "livemode": False,
        "payload": {k: str(v) for k, v in payload.items()},
        "timestamp": timestamp,
    }
    meters.events[identifier] = event
    return event


def usage_of(meters: MeterEvents) -> Callable[[str, int, int], dict[str, int]]:
    """The account's ``metered_usage`` hook: units per event name of a customer in [start, end)."""

    def usage(customer: str, start: int, end: int) -> dict[str, int]:
        totals: dict[str, int] = {}
        for event in meters.events.values():
            if event["payload"].get("stripe_customer_id") != customer:
                continue
            if start <= event["timestamp"] < end:
                value = int(float(event["payload"].get("value", "0")))
                totals[event["event_name"]] = totals.get(event["event_name"], 0) + value
        return totals

    return usage
