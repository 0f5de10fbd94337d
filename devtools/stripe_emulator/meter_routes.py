"""Billing meter event routes: ``POST /v1/billing/meter_events`` and its emulator-only controls.

``POST /_emulator/billing/meter_events/fail`` ``{"count": N}`` makes the next
N requests answer 503, so tests can check that reporters retry;
``GET /_emulator/billing/meter_events`` lists what was accepted. The rules
are in ``resources/meter_events.py``.
"""

from __future__ import annotations

from aiohttp import web

from .appkeys import ACCOUNT, METERS
from .errors import StripeError
from .http_io import error_response, json_response, request_params
from .resources.meter_events import MeterEvents, create_meter_event, usage_of


async def create(request: web.Request) -> web.StreamResponse:
    """``POST /v1/billing/meter_events``."""
    meters = request.app[METERS]
    if meters.fail_next > 0:
        meters.fail_next -= 1
        meters.failed += 1
        return error_response(
            StripeError(503, "The meter events endpoint is unavailable.", type_="api_error")
        )
    account = request.app[ACCOUNT]
    params = await request_params(request)
    try:
        event = create_meter_event(meters, account.clock.now(), account.store.customers, params)
    except StripeError as error:
        return error_response(error)
    return json_response(event)


async def fail(request: web.Request) -> web.StreamResponse:
    """``POST /_emulator/billing/meter_events/fail`` ``{"count": N}``."""
    body = await request.json() if request.body_exists else {}
    count = body.get("count", 1) if isinstance(body, dict) else 1
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return error_response(StripeError.invalid("count must be a non-negative integer"))
    request.app[METERS].fail_next = count
    return json_response({"fail_next": count})


async def listing(request: web.Request) -> web.StreamResponse:
    """``GET /_emulator/billing/meter_events``: accepted events and the counters."""
    meters = request.app[METERS]
    return json_response(
        {
            "data": list(meters.events.values()),
            "duplicates": meters.duplicates,
            "failed": meters.failed,
            "fail_next": meters.fail_next,
        }
    )


def install(app: web.Application) -> None:
    """Add the meter event routes and state to the emulator's application."""
    app[METERS] = MeterEvents()
    app[ACCOUNT].metered_usage = usage_of(app[METERS])
    app.add_routes(
        [
            web.post("/v1/billing/meter_events", create),
            web.post("/_emulator/billing/meter_events/fail", fail),
            web.get("/_emulator/billing/meter_events", listing),
        ]
    )
