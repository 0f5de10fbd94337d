"""Authentication and metrics around every handler, wrapped once when the handler is added.

A ``grpc.aio`` server interceptor runs per call: grpc looks the handler up
through a chain of coroutines before the call starts, and an interceptor
sees only the method name and metadata, not the peer's certificate.
``GuardedServer`` instead wraps each method handler when a servicer is added
to the server (generated ``add_*_to_server`` functions call
``add_generic_rpc_handlers`` and ``add_registered_method_handlers``), so a
call costs what the bare server's costs plus the wrapper itself: a
synchronous policy check, two clock reads and two metric updates on children
resolved at wrap time (docs/performance.md).

Everything else is delegated to the real server, and the server is only
ever used through the wrapper, so no servicer can be added unguarded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import grpc

from billing_service import deadlines, metrics
from billing_service.auth import Authorizer, current_caller

log = logging.getLogger(__name__)

Refusal = Callable[[str, Any], tuple[grpc.StatusCode, str] | None]
FastPath = Callable[[Any], Any]


def _log_finish(method: str, code: grpc.StatusCode, seconds: float) -> None:
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


class _Finish:
    """Records one finished call of one method; its stats are resolved up front."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.stats = metrics.RPC_METRICS.method(method)
        # Read once: the level is configured before the server starts.
        self.log_ok = log.isEnabledFor(logging.DEBUG)

    def __call__(self, code: grpc.StatusCode, seconds: float) -> None:
        if code is grpc.StatusCode.OK:
            self.stats.observe("OK", seconds)
            if self.log_ok:
                _log_finish(self.method, code, seconds)
            return
        self.stats.observe(code.name, seconds)
        _log_finish(self.method, code, seconds)


def wrap_handler(
    handler: Any,
    method: str,
    refusal: Refusal,
    fast: FastPath | None = None,
    default_deadline: float | None = None,
) -> Any:
    """``handler`` with the policy checked first and its metrics recorded after.

    ``fast(request)``, when given, is tried first: its answer (not None) is the
    response, without the handler's own coroutine. Otherwise the call's
    deadline (the caller's, else ``default_deadline`` for unary calls; streams
    get none) is set for the work it starts (deadlines.py).
    """
    finish = _Finish(method)
    perf_counter = time.perf_counter
    OK = grpc.StatusCode.OK  # noqa: N806 - a local for the hot path

    def measure_unary(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def unary(request: Any, context: Any) -> Any:
            started = perf_counter()
            try:
                refused = refusal(method, context)
                if refused is not None:
                    await context.abort(*refused)
                response = None if fast is None else fast(request)
                if response is None:
                    deadlines.begin(context.time_remaining(), default_deadline)
                    response = await fn(request, context)
            except BaseException as exc:
                finish(_final_code(context, exc), perf_counter() - started)
                raise
            code = context.code()
            finish(code if isinstance(code, grpc.StatusCode) else OK, perf_counter() - started)
            return response

        return unary

    def measure_stream(fn: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            started, error = perf_counter(), None
            deadlines.begin(context.time_remaining(), None)
            try:
                refused = refusal(method, context)
                if refused is not None:
                    await context.abort(*refused)
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
                finish(_final_code(context, error), perf_counter() - started)

        return stream

    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            measure_unary(handler.unary_unary), **serializers
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            measure_stream(handler.unary_stream), **serializers
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            measure_unary(handler.stream_unary), **serializers
        )
    return grpc.stream_stream_rpc_method_handler(
        measure_stream(handler.stream_stream), **serializers
    )


class _GuardedGeneric(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """A generic handler whose method handlers come out wrapped (once per method)."""

    def __init__(
        self,
        inner: grpc.GenericRpcHandler[Any, Any],
        refusal: Refusal,
        fast_paths: Mapping[str, FastPath],
        default_deadline: float | None = None,
    ) -> None:
        self._inner = inner
        self._refusal = refusal
        self._fast_paths = fast_paths
        self._default_deadline = default_deadline
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        """The inner handler's method handler, wrapped; None for methods it does not serve."""
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = wrap_handler(
            handler,
            method,
            self._refusal,
            self._fast_paths.get(method),
            self._default_deadline,
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class GuardedServer:
    """A ``grpc.aio.Server`` whose every added method handler is guarded and measured."""

    def __init__(
        self,
        server: grpc.aio.Server,
        authorizer: Authorizer,
        *,
        default_deadline: float | None = None,
    ) -> None:
        self._server = server
        self._refusal: Refusal = authorizer.refusal
        self._default_deadline = default_deadline
        self._fast_paths: dict[str, FastPath] = {}

    def answer_first(self, method: str, fast: FastPath) -> None:
        """Try ``fast(request)`` before ``method``'s handler (call before adding the servicer)."""
        self._fast_paths[method] = fast

    def add_generic_rpc_handlers(
        self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]
    ) -> None:
        """Add ``handlers``, each wrapped."""
        self._server.add_generic_rpc_handlers(
            tuple(
                _GuardedGeneric(handler, self._refusal, self._fast_paths, self._default_deadline)
                for handler in handlers
            )
        )

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Any]
    ) -> None:
        """Add a service's registered methods, each handler wrapped."""
        self._server.add_registered_method_handlers(  # type: ignore[attr-defined]
            service_name,
            {
                name: wrap_handler(
                    handler,
                    f"/{service_name}/{name}",
                    self._refusal,
                    self._fast_paths.get(f"/{service_name}/{name}"),
                    self._default_deadline,
                )
                for name, handler in method_handlers.items()
            },
        )

    @property
    def server(self) -> grpc.aio.Server:
        """The real server (to start, stop and add ports to)."""
        return self._server

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


# Libraries choose their asyncio variant by ``isinstance(server, grpc.aio.Server)``
# (grpc_reflection does); the guard forwards everything else, so it is one.
cast(Any, grpc.aio.Server).register(GuardedServer)
