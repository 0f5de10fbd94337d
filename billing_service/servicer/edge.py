"""What every handler shares: the caller's name and the one error-to-status mapping.

Expected failures (the BillingError tree) become their status codes; a
storage outage becomes UNAVAILABLE; anything else is a bug, logged with its
traceback and answered INTERNAL without detail.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc

from billing_client.credentials import CALLER_METADATA_KEY
from billing_service.auth import current_caller
from billing_service.errors import BillingError
from billing_service.storage.database import StorageUnavailable

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext


Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, Context], Awaitable[Resp]]


def caller_of(context: Context) -> str:
    """The authenticated caller; without authentication, the name the caller gives itself.

    The ``x-billing-caller`` metadata only counts in BILLING_INSECURE_NO_AUTH mode:
    an authenticated caller cannot claim another name.
    """
    authenticated = current_caller.get()
    if authenticated:
        return authenticated
    for key, value in context.invocation_metadata() or ():
        if key == CALLER_METADATA_KEY and isinstance(value, str) and value:
            return value[:128]
    return "unknown"


def status_for(rpc: str, exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status (code, details) ``exc`` stands for (see the module docstring); logs it."""
    if isinstance(exc, BillingError):
        log.info("%s -> %s: %s", rpc, exc.code.name, exc)
        return exc.code, str(exc)
    if isinstance(exc, StorageUnavailable):
        log.warning("%s -> UNAVAILABLE: %s", rpc, exc)
        return grpc.StatusCode.UNAVAILABLE, "storage unavailable; retry"
    log.error("%s failed with a bug", rpc, exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal error"


async def abort_for(rpc: str, exc: Exception, context: Context) -> NoReturn:
    """End the call with the status ``exc`` stands for (see the module docstring)."""
    await context.abort(*status_for(rpc, exc))
    raise AssertionError("unreachable: context.abort raises")


def rpc_errors(handler: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Map the service's errors to gRPC status codes for one unary handler."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Req, context: Context) -> Resp:
        try:
            return await handler(self, request, context)
        except Exception as exc:
            await abort_for(handler.__name__, exc, context)

    return wrapper
