"""JSON for the errors aiohttp answers itself, before any handler or middleware runs.

A request line or header over aiohttp's 8,190-byte limit, a malformed
request, a handler timeout: aiohttp answers these from its protocol class
with a plain-text body that quotes the offending bytes (a ``Stripe-Signature``
header, say). ``GatewayRunner`` serves the application with a protocol whose
``handle_error`` answers ``{"error": ..., "detail": ...}`` instead, never
quoting the request, and logs client mistakes at DEBUG.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

log = logging.getLogger(__name__)

Answered = Callable[[int, str], None]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_reason(status: int) -> str:
    """The ``error`` of an answer aiohttp makes itself with ``status``."""
    if status == 504:
        return "timeout"
    if status >= 500:
        return "internal_error"
    return "bad_http_request"


class JsonErrorRequestHandler(web.RequestHandler):
    """aiohttp's protocol, with JSON error answers that never echo the request."""

    __slots__ = ("answered",)
    answered: Answered

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer ``status`` as JSON; ``message`` (which quotes the request) is dropped."""
        reason = error_reason(status)
        # The exception's class says what was wrong; its text quotes the bytes, so it stays out.
        detail = _snake(type(exc).__name__) if exc is not None else reason
        if status >= 500:
            log.error("%s answered %d (%s)", request.path, status, detail)
        else:
            log.debug("refused a malformed HTTP request: %s", detail)
        answered: Answered | None = getattr(self, "answered", None)
        if answered is not None:
            answered(status, detail)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error answer")
        response = web.json_response({"error": reason, "detail": detail}, status=status)
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    """aiohttp's low-level server, making JsonErrorRequestHandler protocols."""

    def __init__(self, base: web.Server, answered: Answered) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        self._answered = answered

    def __call__(self) -> web.RequestHandler:
        """A protocol for one new connection."""
        handler = JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.answered = self._answered
        return handler


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer aiohttp's own errors as JSON."""

    def __init__(self, app: web.Application, answered: Answered, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._on_answer = answered

    async def _make_server(self) -> web.Server:
        # aiohttp builds the Server with the app's handler and our handler_args;
        # the same arguments go to the subclass, which only changes the protocol.
        return JsonErrorServer(await super()._make_server(), self._on_answer)
