"""Stripe access through the official SDK's ``StripeClient`` and its async methods.

Every create carries an idempotency key, so the SDK's own network retries
(and our callers' retries, when they pass a request_id) never create twice.
Each call goes through ``StripeCaller._call`` (stripe_client.py): deadline,
error translation into the service's error tree (messages never contain the
API key), metrics. Lists follow their cursor in one place, ``_every``.
"""

from __future__ import annotations

import json
from typing import Any

from billing_service.stripe_calls import Answer, idempotency_key
from billing_service.stripe_client import StripeCaller
from billing_service.stripe_shapes import as_dict

__all__ = ["Answer", "SingleAttemptFetcher", "StripeApi", "idempotency_key"]


class StripeApi(StripeCaller):
    """The Stripe calls this service makes, returning plain dicts."""

    async def create_customer(self, user_id: str, email: str, request_id: str) -> dict[str, Any]:
        """Create the Stripe customer for ``user_id``."""
        params: dict[str, Any] = {"metadata": {"user_id": user_id}}
        if email:
            params["email"] = email
        # The email is part of the key: a retry with another email must not hit
        # Stripe's "same key, different parameters" error.
        key = idempotency_key("customer", user_id, email, request_id)
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

    async def find_promotion_code(self, code: str) -> dict[str, Any] | None:
        """The active promotion code customers type as ``code``, if Stripe has one."""
        page = await self._call(
            "promotion_codes.list",
            self._client.v1.promotion_codes.list_async({"code": code, "active": True, "limit": 1}),
        )
        data = page.get("data") or []
        return as_dict(data[0]) if data else None

    async def list_open_checkout_sessions(self, customer_id: str) -> list[dict[str, Any]]:
        """Every open Checkout session of ``customer_id``, newest first."""
        return await self._every(
            "checkout.sessions.list",
            self._client.v1.checkout.sessions.list_async,
            {"customer": customer_id, "status": "open"},
        )

    async def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        """Expire an open Checkout session: it can no longer be paid."""
        return await self._call(
            "checkout.sessions.expire",
            self._client.v1.checkout.sessions.expire_async(session_id),
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

    async def retrieve_price(self, price_id: str) -> dict[str, Any]:
        """Fetch a price (``plans check``)."""
        return await self._call("prices.retrieve", self._client.v1.prices.retrieve_async(price_id))

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Fetch a subscription (the authority on its state)."""
        return await self._call(
            "subscriptions.retrieve",
            self._client.v1.subscriptions.retrieve_async(subscription_id),
        )

    async def retrieve_subscription_discounts(
        self, subscription_id: str, *, single_attempt: bool = False
    ) -> dict[str, Any]:
        """A subscription with its discounts, their coupons and promotion codes expanded."""
        expand = ["discounts", "discounts.source.coupon", "discounts.promotion_code"]
        client = self._single_attempt if single_attempt else self._client
        return await self._call(
            "subscriptions.retrieve",
            client.v1.subscriptions.retrieve_async(subscription_id, {"expand": expand}),
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

    async def cancel_subscription(self, subscription_id: str, *, prorate: bool = False) -> Answer:
        """Cancel a subscription now; ``prorate`` credits the unused time and invoices it now."""
        params: dict[str, Any] = {"prorate": True, "invoice_now": True} if prorate else {}
        return await self._call_answer(
            "subscriptions.cancel",
            self._client.v1.subscriptions.cancel_async(subscription_id, params),  # type: ignore[arg-type]
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

    async def list_events(
        self, params: dict[str, Any], *, max_pages: int | None = None
    ) -> list[dict[str, Any]]:
        """``GET /v1/events`` matching ``params``, newest first, each as a webhook carries it.

        ``max_pages`` bounds the search (None: every page).
        """

        async def raw_page(page_params: dict[str, Any]) -> dict[str, Any]:
            listed = await self._client.v1.events.list_async(page_params)  # type: ignore[arg-type]
            response = listed.last_response
            body: dict[str, Any] = json.loads(response.body) if response else listed.to_dict()
            return body

        return await self._every("events.list", raw_page, params, max_pages=max_pages)

    async def list_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        """Every subscription of ``customer_id``, whatever its status, newest first."""
        return await self._every(
            "subscriptions.list",
            self._client.v1.subscriptions.list_async,
            {"customer": customer_id, "status": "all"},
        )

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
        return await self.change_subscription_item(
            subscription_id,
            {"id": item_id, "price": price_id},
            proration_behavior,
            proration_date=proration_date,
            request_id=request_id,
            operation="subscription-price",
        )

    async def change_subscription_item(
        self,
        subscription_id: str,
        item: dict[str, Any],
        proration_behavior: str,
        *,
        proration_date: int | None,
        request_id: str,
        operation: str,
    ) -> Answer:
        """Update one item (its ``price`` and/or ``quantity``) with ``proration_behavior``.

        The idempotency key derives from the change and the caller's request_id
        (a fresh one without request_id).
        """
        params: dict[str, Any] = {"items": [item], "proration_behavior": proration_behavior}
        if proration_date is not None:
            params["proration_date"] = proration_date
        change = [str(item[name]) for name in ("price", "quantity") if name in item]
        key = idempotency_key(
            operation,
            *((subscription_id, *change, proration_behavior, request_id) if request_id else ()),
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


class SingleAttemptFetcher:
    """Fetches subscriptions for the event path with one attempt each."""

    def __init__(self, api: StripeApi) -> None:
        self._api = api

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe holds it now (one attempt)."""
        return await self._api.retrieve_subscription_once(subscription_id)

    async def retrieve_subscription_discounts(self, subscription_id: str) -> dict[str, Any]:
        """The subscription with its discounts expanded (one attempt)."""
        return await self._api.retrieve_subscription_discounts(subscription_id, single_attempt=True)
