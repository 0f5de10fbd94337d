"""Server interceptors that run around every handler: authentication and metrics.

grpc.aio interceptors see only the method name and metadata, not the peer's
certificate, so both wrap the handler itself and do their work with the
handler's ServicerContext in hand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from billing_service import deadlines, metrics
from billing_service.auth import Authorizer, current_caller

log = logging.getLogger(__name__)

Around = Callable[[str, Any], Awaitable[None]]


def _finish(method: str, code: grpc.StatusCode, seconds: float) -> None:
    metrics.observe_rpc(method, code, seconds)
    level = logging.DEBUG if code is grpc.StatusCode.OK else logging.INFO
    if log.isEnabledFor(level):
        log.log(
            level,
            "%s -> %s",
            method,
            code.name,
            extra={
                "rpc": method.rsplit("/", 1)[-1],
                "caller": current_caller.get() or None,
                "code": code.name,
                "duration_ms": round(seconds * 1000, 3),
            },
        )


def _final_code(context: Any, error: BaseException | None) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _wrap(handler: Any, method: str, before: Around, default_deadline: float | None) -> Any:
    """``handler`` with ``before(method, context)`` run first and metrics recorded after.

    The call's deadline (the caller's, else ``default_deadline`` for unary
    calls; streams get none) is set for the work it starts (deadlines.py).
    """

    def measure_unary(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def unary(request: Any, context: Any) -> Any:
            started, error = time.perf_counter(), None
            deadlines.begin(context.time_remaining(), default_deadline)
            try:
                await before(method, context)
                return await fn(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                elapsed = time.perf_counter() - started
                _finish(method, _final_code(context, error), elapsed)

        return unary

    def measure_stream(fn: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            started, error = time.perf_counter(), None
            deadlines.begin(context.time_remaining(), None)
            try:
                await before(method, context)
                result = fn(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:  # a handler that writes with context.write()
                    await result
            except BaseException as exc:
                error = exc
                raise
            finally:
                elapsed = time.perf_counter() - started
                _finish(method, _final_code(context, error), elapsed)

        return stream

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            measure_unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            measure_stream(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            measure_unary(handler.stream_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.stream_stream_rpc_method_handler(
        measure_stream(handler.stream_stream),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates and authorizes each call, then records its metrics."""

    def __init__(self, authorizer: Authorizer, default_deadline: float | None = None) -> None:
        self._authorizer = authorizer
        self._default_deadline = default_deadline
        # Wrapped handlers by method: wrapping once keeps per-call cost to a dict lookup.
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Wrap the method's handler (unknown methods pass through to UNIMPLEMENTED)."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(handler, method, self._authorizer.check, self._default_deadline)
        self._wrapped[method] = (handler, wrapped)
        return wrapped
