"""A tiny local HTTP server that answers ``GET /v1/subscriptions/{id}`` like Stripe.

The service reaches it through the real Stripe SDK (``STRIPE_API_BASE``), so
the "ask Stripe, the authority" paths run end to end without the network.
Tests put subscriptions into ``subscriptions`` and can make it fail with 503.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


class StripeStandIn:
    """Serves subscriptions from a dict on a background thread; use as a context manager."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.fetches: list[str] = []
        self.down = False
        # Seconds every answer waits before it is sent (a hanging Stripe).
        self.delay = 0.0
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _subscription(self, request: web.Request) -> web.Response:
        sub_id = request.match_info["sub_id"]
        self.fetches.append(sub_id)
        if self.delay:
            await asyncio.sleep(self.delay)  # a hanging Stripe, not an assertion
        if self.down:
            error = {"error": {"type": "api_error", "message": "stand-in is down"}}
            return web.json_response(error, status=503)
        found = self.subscriptions.get(sub_id)
        if found is None:
            error = {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "param": "id",
                    "message": f"No such subscription: '{sub_id}'",
                }
            }
            return web.json_response(error, status=404)
        return web.json_response(found)

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_get("/v1/subscriptions/{sub_id}", self._subscription)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StripeStandIn:
        self._thread.start()
        self.base_url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
