"""Stripe's ``/v1`` API: the route table, each route one resource function.

Every operation is synchronous and runs inside the account's request context,
so the events it records carry this request's id and idempotency key.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .account import Account
from .appkeys import ACCOUNT
from .expand import expand
from .forms import as_list
from .http_io import Handler, json_response, request_params
from .objects import JSON
from .resources import (
    catalog,
    checkout,
    customers,
    discounts,
    events,
    invoices,
    portal,
    previews,
    subscription_updates,
    subscriptions,
)

#: A resource function bound to (account, params, path match).
Operation = Callable[[Account, dict[str, Any], dict[str, str]], JSON]


def api(operation: Operation) -> Handler:
    """An aiohttp handler running one synchronous resource operation."""

    async def handler(request: web.Request) -> web.StreamResponse:
        params = await request_params(request)
        account = request.app[ACCOUNT]
        with account.request_context(request["request_id"], request.headers.get("Idempotency-Key")):
            result = operation(account, params, dict(request.match_info))
        paths = [str(p) for p in as_list(params.get("expand"), "expand")]
        return json_response(expand(copy.deepcopy(result), paths, account.store))

    return handler


def _get(table: str) -> Operation:
    def operation(account: Account, params: dict[str, Any], match: dict[str, str]) -> JSON:
        return account.store.get(table, match["id"])

    return operation


def api_routes() -> list[web.RouteDef]:
    """The ``/v1`` routes."""
    return [
        web.post("/v1/customers", api(lambda a, p, _: customers.create_customer(a, p))),
        web.get("/v1/customers", api(lambda a, p, _: customers.list_customers(a, p))),
        web.get("/v1/customers/{id}", api(_get("customers"))),
        web.post(
            "/v1/customers/{id}", api(lambda a, p, r: customers.update_customer(a, r["id"], p))
        ),
        web.get("/v1/products", api(lambda a, p, _: catalog.list_products(a, p))),
        web.get("/v1/products/{id}", api(_get("products"))),
        web.post("/v1/prices", api(lambda a, p, _: catalog.create_price(a, p))),
        web.get("/v1/prices", api(lambda a, p, _: catalog.list_prices(a, p))),
        web.get("/v1/prices/{id}", api(_get("prices"))),
        web.post(
            "/v1/checkout/sessions",
            api(lambda a, p, _: checkout.create_checkout_session(a, p)),
        ),
        web.get("/v1/checkout/sessions/{id}", api(_get("checkout_sessions"))),
        web.get(
            "/v1/checkout/sessions", api(lambda a, p, _: checkout.list_checkout_sessions(a, p))
        ),
        web.post(
            "/v1/checkout/sessions/{id}/expire",
            api(lambda a, p, r: checkout.expire_checkout_session(a, r["id"], p)),
        ),
        web.post(
            "/v1/billing_portal/sessions", api(lambda a, p, _: portal.create_portal_session(a, p))
        ),
        web.post("/v1/subscriptions", api(lambda a, p, _: subscriptions.create_subscription(a, p))),
        web.get("/v1/subscriptions", api(lambda a, p, _: subscriptions.list_subscriptions(a, p))),
        web.get("/v1/subscriptions/{id}", api(_get("subscriptions"))),
        web.post(
            "/v1/subscriptions/{id}",
            api(lambda a, p, r: subscription_updates.update_subscription(a, r["id"], p)),
        ),
        web.delete(
            "/v1/subscriptions/{id}",
            api(lambda a, p, r: subscriptions.cancel_subscription(a, r["id"], p)),
        ),
        web.post(
            "/v1/subscriptions/{id}/resume",
            api(lambda a, p, r: subscription_updates.resume_subscription(a, r["id"], p)),
        ),
        web.post(
            "/v1/invoices/create_preview", api(lambda a, p, _: previews.preview_invoice(a, p))
        ),
        web.get("/v1/invoices", api(lambda a, p, _: invoices.list_invoices(a, p))),
        web.get("/v1/invoices/{id}", api(_get("invoices"))),
        web.get("/v1/events", api(lambda a, p, _: events.list_events(a, p))),
        web.post(
            "/v1/coupons",
            api(lambda a, p, _: discounts.create_coupon(a, p)),
        ),
        web.get("/v1/coupons/{id}", api(_get("coupons"))),
        web.post(
            "/v1/promotion_codes",
            api(lambda a, p, _: discounts.create_promotion_code(a, p)),
        ),
        web.get("/v1/promotion_codes", api(lambda a, p, _: discounts.list_promotion_codes(a, p))),
        web.get("/v1/promotion_codes/{id}", api(_get("promotion_codes"))),
        web.get("/v1/events/{id}", api(_get("events"))),
    ]
