"""Emulator-only control routes under ``/_emulator/`` (JSON in, JSON out, no auth).

They act on the account through the resource functions and on the webhook
dispatcher; they do not depend on the ``/v1`` application (``app.py``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .appkeys import ACCOUNT, DISPATCHER
from .errors import StripeError
from .http_io import Handler, error_response, json_response
from .resources.checkout import complete_checkout as pay_checkout_session
from .resources.customers import set_payment_behavior
from .resources.renewals import advance_clock as advance_account_clock

ControlHandler = Callable[[web.Request, dict[str, Any]], Awaitable[Any]]


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise StripeError.invalid("Request body must be JSON.") from None
    if not isinstance(body, dict):
        raise StripeError.invalid("Request body must be a JSON object.")
    return body


def _control(handler: ControlHandler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return json_response(await handler(request, await _json_body(request)))
        except StripeError as error:
            return error_response(error)

    return wrapped


async def health(request: web.Request, _: dict[str, Any]) -> Any:
    """``GET /_emulator/health``."""
    account = request.app[ACCOUNT]
    return {"status": "ok", "now": account.clock.now(), "url": account.url_base}


async def complete_checkout(request: web.Request, body: dict[str, Any]) -> Any:
    """``POST /_emulator/checkout/sessions/{id}/complete`` ``{"payment": "succeed"|"fail"}``.

    ``"without_payment_method": true`` completes a trial session without a card
    (only when the session was created with payment_method_collection=if_required).
    """
    payment = body.get("payment")
    email = body.get("email")
    return pay_checkout_session(
        request.app[ACCOUNT],
        request.match_info["id"],
        None if payment is None else str(payment),
        None if email is None else str(email),
        without_payment_method=bool(body.get("without_payment_method")),
    )


async def payment_behavior(request: web.Request, body: dict[str, Any]) -> Any:
    """``POST /_emulator/customers/{id}/payment_behavior`` ``{"fail": bool}``."""
    mode = body.get("mode")
    return set_payment_behavior(
        request.app[ACCOUNT],
        request.match_info["id"],
        bool(body.get("fail")),
        None if mode is None else str(mode),
    )


async def clock(request: web.Request, _: dict[str, Any]) -> Any:
    """``GET /_emulator/clock``: the emulator time and its offset from real time."""
    account = request.app[ACCOUNT]
    return {"now": account.clock.now(), "offset": account.clock.offset}


async def advance_clock(request: web.Request, body: dict[str, Any]) -> Any:
    """``POST /_emulator/clock/advance`` ``{"seconds": N}``."""
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise StripeError.invalid("seconds must be a number", param="seconds")
    return advance_account_clock(request.app[ACCOUNT], int(seconds))


async def add_webhook(request: web.Request, body: dict[str, Any]) -> Any:
    """``POST /_emulator/webhooks`` ``{"url": ..., "secrets": [...]}``."""
    url = body.get("url")
    secrets = body.get("secrets") or []
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise StripeError.invalid("url must be an http(s) URL", param="url")
    if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
        raise StripeError.invalid("secrets must be a list of strings", param="secrets")
    endpoint = request.app[DISPATCHER].add_endpoint(url, secrets)
    return {"url": endpoint.url, "secrets": len(endpoint.secrets)}


async def list_webhooks(request: web.Request, _: dict[str, Any]) -> Any:
    """``GET /_emulator/webhooks``: endpoints (secrets not shown) and the hold flag."""
    dispatcher = request.app[DISPATCHER]
    return {
        "held": dispatcher.held,
        "idle": dispatcher.idle(),
        "endpoints": [{"url": e.url, "secrets": len(e.secrets)} for e in dispatcher.endpoints],
    }


async def deliveries(request: web.Request, _: dict[str, Any]) -> Any:
    """``GET /_emulator/webhooks/deliveries``: every attempt, oldest first."""
    dispatcher = request.app[DISPATCHER]
    return {"idle": dispatcher.idle(), "data": dispatcher.snapshot()}


async def hold(request: web.Request, body: dict[str, Any]) -> Any:
    """``POST /_emulator/webhooks/hold`` ``{"hold": bool}``."""
    dispatcher = request.app[DISPATCHER]
    dispatcher.held = bool(body.get("hold", True))
    return {"held": dispatcher.held}


async def deliver(request: web.Request, _: dict[str, Any]) -> Any:
    """``POST /_emulator/events/{id}/deliver``: send one event to every endpoint now."""
    event_id = request.match_info["id"]
    dispatcher = request.app[DISPATCHER]
    if not dispatcher.knows(event_id):
        raise StripeError.no_such(event_id)
    return {"data": [d.to_json() for d in await dispatcher.redeliver(event_id)]}


def control_routes() -> list[web.RouteDef]:
    """The ``/_emulator`` routes."""
    return [
        web.get("/_emulator/health", _control(health)),
        web.post("/_emulator/checkout/sessions/{id}/complete", _control(complete_checkout)),
        web.post("/_emulator/customers/{id}/payment_behavior", _control(payment_behavior)),
        web.get("/_emulator/clock", _control(clock)),
        web.post("/_emulator/clock/advance", _control(advance_clock)),
        web.post("/_emulator/webhooks", _control(add_webhook)),
        web.get("/_emulator/webhooks", _control(list_webhooks)),
        web.get("/_emulator/webhooks/deliveries", _control(deliveries)),
        web.post("/_emulator/webhooks/hold", _control(hold)),
        web.post("/_emulator/events/{id}/deliver", _control(deliver)),
    ]
