"""The Stripe SDK clients and the one way a call goes through them (``StripeCaller``).

``StripeCaller`` builds the SDK's ``StripeClient`` twice (with the SDK's
retries, and with one short attempt for the event path) and runs every call
through ``_call``: the call's deadline is checked first and bounds the call,
Stripe's errors are translated (stripe_calls.py), and ``billing_stripe_calls``
counts the result. ``_every`` follows a list's ``starting_after`` cursor,
one ``_call`` per page. The calls themselves are ``stripe_api.StripeApi``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import stripe

from billing_service import deadlines, metrics
from billing_service.settings import Settings
from billing_service.stripe_calls import Answer, response_time, translate_error
from billing_service.stripe_shapes import as_dict

log = logging.getLogger(__name__)


class StripeCaller:
    """The SDK clients of one process and the plumbing of each call made through them."""

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

    async def _every(
        self,
        what: str,
        list_page: Callable[[Any], Awaitable[Any]],
        params: dict[str, Any],
        *,
        max_pages: int | None = None,
    ) -> list[dict[str, Any]]:
        """The items of a Stripe list, page by page along its ``starting_after`` cursor.

        Each page is one ``_call`` (deadline, error translation, metrics, the
        SDK's retries), not the SDK's auto-paging iterator, so a page started
        after the deadline is refused like any other call.
        """
        page_params: dict[str, Any] = {"limit": 100, **params}
        found: list[dict[str, Any]] = []
        pages = itertools.count() if max_pages is None else range(max_pages)
        for _ in pages:
            page = await self._call(what, list_page(page_params))
            data = [as_dict(item) for item in page.get("data") or [] if _is_object(item)]
            found.extend(data)
            if not page.get("has_more") or not data:
                break
            page_params = {**page_params, "starting_after": data[-1]["id"]}
        return found

    async def close(self) -> None:
        """Close the HTTP sessions."""
        await self._http.close_async()
        await self._single_attempt_http.close_async()
        if self._session is not None:
            await self._session.close()


def _is_object(item: Any) -> bool:
    return isinstance(item, Mapping) or callable(getattr(item, "to_dict", None))
