"""Stripe-shaped HTTP bodies: JSON responses, error responses and bracket-notation params."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .errors import StripeError
from .forms import parse_pairs

#: An aiohttp request handler.
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response formatted like Stripe's."""
    return web.Response(
        body=json.dumps(body, indent=2).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(error: StripeError) -> web.Response:
    """A Stripe-shaped error response."""
    return json_response(error.body(), status=error.status)


async def request_params(request: web.Request) -> dict[str, Any]:
    """Query-string and form parameters in Stripe's bracket notation."""
    pairs = parse_qsl(request.query_string, keep_blank_values=True)
    if request.body_exists:
        pairs += parse_qsl((await request.read()).decode(), keep_blank_values=True)
    return parse_pairs(pairs)
