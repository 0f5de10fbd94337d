"""One Stripe call's plumbing: idempotency keys, error translation, the answer's time.

Kept apart from ``stripe_api.StripeApi`` (which makes the calls) because
these are pure functions of their inputs, tested without Stripe:
``translate_error`` maps every Stripe SDK error into the service's error tree
once, and never lets a message quoting the API key through.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import stripe

from billing_service.errors import (
    BillingError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
)


def idempotency_key(operation: str, *parts: str) -> str:
    """A Stripe idempotency key derived from ``parts`` (a fresh one when parts are empty)."""
    if not any(parts):
        return f"{operation}-{uuid.uuid4()}"
    digest = hashlib.sha256("\x1f".join((operation, *parts)).encode()).hexdigest()
    return f"{operation}-{digest[:48]}"


def translate_error(exc: stripe.StripeError) -> BillingError:
    """Map a Stripe SDK error to the service's error tree."""
    if isinstance(exc, stripe.RateLimitError | stripe.APIConnectionError):
        return Unavailable("Stripe is unreachable or rate limiting; retry later")
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        # Stripe's message quotes part of the key: never pass it on.
        return Internal("Stripe rejected the service's API key (check STRIPE_SECRET_KEY)")
    if isinstance(exc, stripe.IdempotencyError):
        return FailedPrecondition(
            "Stripe refused a repeated idempotency key with different parameters"
        )
    if isinstance(exc, stripe.InvalidRequestError):
        message = exc.user_message or "Stripe rejected the request"
        if exc.code == "resource_missing":
            return NotFound(f"Stripe: {message}")
        if exc.param:
            return InvalidArgument(str(exc.param), f"Stripe: {message}")
        return FailedPrecondition(f"Stripe: {message}")
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500:
        return Unavailable("Stripe had an internal error; retry later")
    return FailedPrecondition(f"Stripe: {exc.user_message or type(exc).__name__}")


@dataclass(frozen=True)
class Answer:
    """A Stripe object Stripe answered with, and when (Stripe's clock, unix seconds).

    ``stripe_time`` is the response's ``Date`` header: the newest moment the
    object's state is known to hold. None when the response had no usable one.
    """

    obj: dict[str, Any]
    stripe_time: int | None


def response_time(headers: Mapping[str, str] | None) -> int | None:
    """Unix seconds of an HTTP ``Date`` header (None when absent or malformed)."""
    for name, value in (headers or {}).items():
        if name.lower() == "date":
            try:
                return int(parsedate_to_datetime(value).timestamp())
            except (TypeError, ValueError, IndexError):
                return None
    return None
