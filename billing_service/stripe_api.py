"""Stripe access through the official SDK's ``StripeClient`` and its async methods.

Every create carries an idempotency key, so the SDK's own network retries
(and our callers' retries, when they pass a request_id) never create twice.
Stripe's errors are translated here, once, into the service's error tree;
messages never contain the API key.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import ssl
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import stripe

from billing_service import deadlines, metrics
from billing_service.errors import (
    BillingError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from billing_service.settings import Settings
from billing_service.stripe_shapes import as_dict

log = logging.getLogger(__name__)

T = TypeVar("T")


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
        return FailedPrecondition("request_id was already used with different parameters")
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


class StripeApi:
    """The Stripe calls this service makes, returning plain dicts."""

    def __init__(self, settings: Settings, trace_config: aiohttp.TraceConfig | None = None) -> None:
        # With tracing on, our own session carries the trace hooks; it is built
        # like the SDK's own (TLS verified against Stripe's CA bundle).
        self._session: aiohttp.ClientSession | None = None
        if trace_config is not None:
            tls = ssl.create_default_context(cafile=stripe.ca_bundle_path)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls), trace_configs=[trace_config]
            )
        self._http = stripe.AIOHTTPClient(
            timeout=settings.stripe_timeout_seconds, session=self._session
        )
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self._client = stripe.StripeClient(
            settings.stripe_secret_key or "sk_test_unset",
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=settings.stripe_max_network_retries,
            http_client=self._http,
        )
        # Fetches made while applying an event run under the customer's lock:
        # one short attempt only, the webhook's own retry is the retry.
        self._single_attempt_http = stripe.AIOHTTPClient(
            timeout=settings.stripe_event_fetch_timeout_seconds, session=self._session
        )
        self._single_attempt = stripe.StripeClient(
            settings.stripe_secret_key or "sk_test_unset",
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=0,
            http_client=self._single_attempt_http,
        )

    async def _call(self, what: str, request: Awaitable[Any]) -> dict[str, Any]:
        return (await self._call_answer(what, request)).obj

    async def _call_answer(self, what: str, request: Awaitable[Any]) -> Answer:
        # Never start a Stripe request after the call's deadline; one in flight
        # (SDK retries included) gets only the time that remains.
        left = deadlines.remaining()
        if left is not None and left <= 0:
            if inspect.iscoroutine(request):
                request.close()
            metrics.STRIPE_CALLS.labels(what, "deadline_exceeded").inc()
            raise deadlines.DeadlineExceeded(f"deadline exceeded before Stripe {what} started")
        try:
            if left is not None:
                request = asyncio.wait_for(request, left)
            raw = await request
            answer = as_dict(raw)
        except TimeoutError:
            metrics.STRIPE_CALLS.labels(what, "deadline_exceeded").inc()
            raise deadlines.DeadlineExceeded(
                f"deadline exceeded during Stripe {what} (its idempotency key makes a retry safe)"
            ) from None
        except stripe.StripeError as exc:
            mapped = translate_error(exc)
            metrics.STRIPE_CALLS.labels(what, type(exc).__name__).inc()
            log.warning("stripe %s failed: %s (%s)", what, type(exc).__name__, mapped)
            raise mapped from None
        metrics.STRIPE_CALLS.labels(what, "ok").inc()
        response = getattr(raw, "last_response", None)
        return Answer(answer, response_time(getattr(response, "headers", None)))

    async def create_customer(self, user_id: str, email: str, request_id: str) -> dict[str, Any]:
        """Create the Stripe customer for ``user_id``."""
        params: dict[str, Any] = {"metadata": {"user_id": user_id}}
        if email:
            params["email"] = email
        key = idempotency_key("customer", user_id, request_id)
        return await self._call(
            "customers.create",
            self._client.v1.customers.create_async(params, {"idempotency_key": key}),  # type: ignore[arg-type]
        )

    async def create_checkout_session(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        """Create a Checkout session with the given parameters."""
        return await self._call(
            "checkout.sessions.create",
            self._client.v1.checkout.sessions.create_async(params, {"idempotency_key": key}),  # type: ignore[arg-type]
        )

    async def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """Fetch a Checkout session."""
        return await self._call(
            "checkout.sessions.retrieve",
            self._client.v1.checkout.sessions.retrieve_async(session_id),
        )

    async def create_portal_session(self, customer_id: str, return_url: str) -> dict[str, Any]:
        """Create a Customer Portal session."""
        params = {"customer": customer_id, "return_url": return_url}
        key = idempotency_key("portal", "")
        return await self._call(
            "billing_portal.sessions.create",
            self._client.v1.billing_portal.sessions.create_async(params, {"idempotency_key": key}),  # type: ignore[arg-type]
        )

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Fetch a subscription (the authority on its state)."""
        return await self._call(
            "subscriptions.retrieve",
            self._client.v1.subscriptions.retrieve_async(subscription_id),
        )

    async def retrieve_subscription_once(self, subscription_id: str) -> dict[str, Any]:
        """Fetch a subscription with one short attempt (no SDK retries), for the event path."""
        return await self._call(
            "subscriptions.retrieve",
            self._single_attempt.v1.subscriptions.retrieve_async(subscription_id),
        )

    def single_attempt(self) -> SingleAttemptFetcher:
        """This API as the event path's subscription fetcher (no SDK retries)."""
        return SingleAttemptFetcher(self)

    async def update_subscription(self, subscription_id: str, params: dict[str, Any]) -> Answer:
        """Update a subscription (e.g. ``cancel_at_period_end``)."""
        key = idempotency_key("subscription-update", "")
        return await self._call_answer(
            "subscriptions.update",
            self._client.v1.subscriptions.update_async(
                subscription_id,
                params,  # type: ignore[arg-type]
                {"idempotency_key": key},
            ),
        )

    async def cancel_subscription(self, subscription_id: str) -> Answer:
        """Cancel a subscription now."""
        return await self._call_answer(
            "subscriptions.cancel",
            self._client.v1.subscriptions.cancel_async(subscription_id),
        )

    async def resume_subscription(self, subscription_id: str) -> Answer:
        """Resume a paused subscription."""
        key = idempotency_key("subscription-resume", "")
        return await self._call_answer(
            "subscriptions.resume",
            self._client.v1.subscriptions.resume_async(
                subscription_id, {}, {"idempotency_key": key}
            ),
        )

    async def list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        """One page of ``GET /v1/events`` as raw JSON (each event as a webhook carries it)."""

        async def page() -> dict[str, Any]:
            listed = await self._client.v1.events.list_async(params)  # type: ignore[arg-type]
            response = listed.last_response
            body: dict[str, Any] = json.loads(response.body) if response else listed.to_dict()
            return body

        return await self._call("events.list", page())

    async def list_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        """Every subscription of ``customer_id``, whatever its status, newest first."""
        params: dict[str, Any] = {"customer": customer_id, "status": "all", "limit": 100}
        found: list[dict[str, Any]] = []
        while True:
            page = await self._call(
                "subscriptions.list",
                self._client.v1.subscriptions.list_async(params),  # type: ignore[arg-type]
            )
            data = [as_dict(sub) for sub in page.get("data") or []]
            found.extend(data)
            if not page.get("has_more") or not data:
                return found
            params["starting_after"] = data[-1]["id"]

    async def change_subscription_price(
        self,
        subscription_id: str,
        item_id: str,
        price_id: str,
        proration_behavior: str,
        *,
        proration_date: int | None,
        request_id: str,
    ) -> Answer:
        """Move the subscription's item ``item_id`` to ``price_id`` with ``proration_behavior``.

        The idempotency key derives from the arguments and the caller's request_id,
        so a retried ChangePlan changes once (a fresh key without request_id).
        """
        params: dict[str, Any] = {
            "items": [{"id": item_id, "price": price_id}],
            "proration_behavior": proration_behavior,
        }
        if proration_date is not None:
            params["proration_date"] = proration_date
        key = idempotency_key(
            "subscription-price",
            *((subscription_id, price_id, proration_behavior, request_id) if request_id else ()),
        )
        return await self._call_answer(
            "subscriptions.update",
            self._client.v1.subscriptions.update_async(
                subscription_id,
                params,  # type: ignore[arg-type]
                {"idempotency_key": key},
            ),
        )

    async def preview_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/invoices/create_preview``: what Stripe would invoice; nothing is stored."""
        return await self._call(
            "invoices.create_preview",
            self._client.v1.invoices.create_preview_async(params),  # type: ignore[arg-type]
        )

    async def create_meter_event(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        """Report usage to a Stripe billing meter (``POST /v1/billing/meter_events``)."""
        return await self._call(
            "billing.meter_events.create",
            self._client.v1.billing.meter_events.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": key},
            ),
        )

    async def close(self) -> None:
        """Close the HTTP sessions."""
        await self._http.close_async()
        await self._single_attempt_http.close_async()
        if self._session is not None:
            await self._session.close()


class SingleAttemptFetcher:
    """Fetches subscriptions for the event path with one attempt each."""

    def __init__(self, api: StripeApi) -> None:
        self._api = api

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe holds it now (one attempt)."""
        return await self._api.retrieve_subscription_once(subscription_id)
