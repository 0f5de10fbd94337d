"""The service's error tree, mapped to gRPC status codes in one place.

::

    BillingError
    ├── InvalidArgument      INVALID_ARGUMENT   (names the offending field)
    ├── NotFound             NOT_FOUND
    ├── FailedPrecondition   FAILED_PRECONDITION
    ├── Unavailable          UNAVAILABLE        (transient: retry)
    └── Internal             INTERNAL           (our configuration, never a secret)

Anything else raised by a handler is a bug: it is logged with its traceback
and the caller gets INTERNAL with no detail.
"""

from __future__ import annotations

import grpc


class BillingError(Exception):
    """An expected failure with a message fit for the caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(BillingError):
    """A request field is missing or malformed."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(BillingError):
    """The thing the request names does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(BillingError):
    """The request is valid but the current state does not allow it."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(BillingError):
    """A dependency failed transiently; the caller should retry."""

    code = grpc.StatusCode.UNAVAILABLE


class Internal(BillingError):
    """Our own setup is wrong (e.g. a rejected Stripe key); retrying will not help."""

    code = grpc.StatusCode.INTERNAL
