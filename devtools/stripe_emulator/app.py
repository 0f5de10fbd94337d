"""The aiohttp application: Stripe's ``/v1`` API plus the hosted Checkout and portal pages."""

from __future__ import annotations

import copy
import html
import json
import secrets
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .errors import StripeError
from .forms import as_list, parse_pairs
from .objects import JSON
from .state import Emulator
from .store import Store
from .webhooks import WebhookDispatcher

EMULATOR = web.AppKey("emulator", Emulator)
DISPATCHER = web.AppKey("dispatcher", WebhookDispatcher)
IDEMPOTENCY = web.AppKey("idempotency", dict)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Operation = Callable[[Emulator, dict[str, Any], dict[str, str]], JSON]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response formatted like Stripe's."""
    return web.Response(
        body=json.dumps(body, indent=2).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(error: StripeError) -> web.Response:
    """A Stripe-shaped error response."""
    return json_response(error.body(), status=error.status)


def _mask_key(key: str) -> str:
    return f"{key[:3]}****{key[-4:]}" if len(key) > 10 else "sk_****"


def expand(obj: Any, paths: list[str], store: Store) -> Any:
    """Replace referenced ids on ``paths`` (``a.b``, ``data.a`` for lists) by their objects."""
    for path in paths:
        _expand_path(obj, path.split("."), store)
    return obj


def _expand_path(obj: Any, parts: list[str], store: Store) -> None:
    if not parts or not isinstance(obj, dict):
        return
    head, rest = parts[0], parts[1:]
    if obj.get("object") == "list" and head == "data":
        for item in obj["data"]:
            _expand_path(item, rest, store)
        return
    value = obj.get(head)
    if isinstance(value, str):
        found = store.lookup(value)
        if found is None:
            return
        obj[head] = value = copy.deepcopy(found)
    if isinstance(value, dict):
        _expand_path(value, rest, store)


async def request_params(request: web.Request) -> dict[str, Any]:
    """Query-string and form parameters in Stripe's bracket notation."""
    pairs = parse_qsl(request.query_string, keep_blank_values=True)
    if request.body_exists:
        pairs += parse_qsl((await request.read()).decode(), keep_blank_values=True)
    return parse_pairs(pairs)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth, request ids, idempotency and Stripe error shapes for ``/v1``."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    request_id = "req_" + secrets.token_hex(7)
    request["request_id"] = request_id
    auth = request.headers.get("Authorization", "")
    key = auth[7:] if auth.startswith("Bearer ") else ""
    if not key.startswith("sk_test_"):
        message = (
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            if not key
            else f"Invalid API Key provided: {_mask_key(key)}"
        )
        return json_response(
            {"error": {"type": "invalid_request_error", "message": message}}, status=401
        )
    idem_key = request.headers.get("Idempotency-Key")
    cache: dict[tuple[str, str], tuple[str, int, bytes]] = request.app[IDEMPOTENCY]
    fingerprint = ""
    if idem_key and request.method == "POST":
        body = await request.read()
        fingerprint = f"{request.method} {request.path}?{request.query_string}\n{body.decode()}"
        cached = cache.get((key, idem_key))
        if cached is not None:
            if cached[0] != fingerprint:
                return error_response(
                    StripeError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with. Try using a key other than "
                        f"'{idem_key}' if you meant to execute a different request.",
                        type_="idempotency_error",
                    )
                )
            return web.Response(
                body=cached[2],
                status=cached[1],
                content_type="application/json",
                headers={
                    "Idempotent-Replayed": "true",
                    "Idempotency-Key": idem_key,
                    "Request-Id": request_id,
                },
            )
    try:
        response = await handler(request)
    except StripeError as error:
        response = error_response(error)
    except web.HTTPMethodNotAllowed:
        response = error_response(
            StripeError(404, f"Unrecognized request URL ({request.method}: {request.path}).")
        )
    except web.HTTPNotFound:
        response = error_response(
            StripeError(404, f"Unrecognized request URL ({request.method}: {request.path}).")
        )
    response.headers["Request-Id"] = request_id
    if idem_key and request.method == "POST" and isinstance(response, web.Response):
        response.headers["Idempotency-Key"] = idem_key
        if response.status < 500 and response.body is not None:
            body_bytes = response.body if isinstance(response.body, bytes) else b""
            cache[(key, idem_key)] = (fingerprint, response.status, body_bytes)
    return response


def api(operation: Operation) -> Handler:
    """An aiohttp handler running one synchronous emulator operation."""

    async def handler(request: web.Request) -> web.StreamResponse:
        params = await request_params(request)
        emulator = request.app[EMULATOR]
        with emulator.request_context(
            request["request_id"], request.headers.get("Idempotency-Key")
        ):
            result = operation(emulator, params, dict(request.match_info))
        paths = [str(p) for p in as_list(params.get("expand"), "expand")]
        return json_response(expand(copy.deepcopy(result), paths, emulator.store))

    return handler


def _get(table: str) -> Operation:
    def operation(emulator: Emulator, params: dict[str, Any], match: dict[str, str]) -> JSON:
        return emulator.store.get(table, match["id"])

    return operation


def _routes() -> list[web.RouteDef]:
    e = Emulator
    return [
        web.post("/v1/customers", api(lambda m, p, _: e.create_customer(m, p))),
        web.get("/v1/customers", api(lambda m, p, _: e.list_customers(m, p))),
        web.get("/v1/customers/{id}", api(_get("customers"))),
        web.post("/v1/customers/{id}", api(lambda m, p, r: e.update_customer(m, r["id"], p))),
        web.get("/v1/products", api(lambda m, p, _: e.list_products(m, p))),
        web.get("/v1/products/{id}", api(_get("products"))),
        web.post("/v1/prices", api(lambda m, p, _: e.create_price(m, p))),
        web.get("/v1/prices", api(lambda m, p, _: e.list_prices(m, p))),
        web.get("/v1/prices/{id}", api(_get("prices"))),
        web.post("/v1/checkout/sessions", api(lambda m, p, _: e.create_checkout_session(m, p))),
        web.get("/v1/checkout/sessions/{id}", api(_get("checkout_sessions"))),
        web.post("/v1/billing_portal/sessions", api(lambda m, p, _: e.create_portal_session(m, p))),
        web.post("/v1/subscriptions", api(lambda m, p, _: e.create_subscription(m, p))),
        web.get("/v1/subscriptions", api(lambda m, p, _: e.list_subscriptions(m, p))),
        web.get("/v1/subscriptions/{id}", api(_get("subscriptions"))),
        web.post(
            "/v1/subscriptions/{id}", api(lambda m, p, r: e.update_subscription(m, r["id"], p))
        ),
        web.delete(
            "/v1/subscriptions/{id}", api(lambda m, p, r: e.cancel_subscription(m, r["id"], p))
        ),
        web.post(
            "/v1/subscriptions/{id}/resume",
            api(lambda m, p, r: e.resume_subscription(m, r["id"], p)),
        ),
        web.post("/v1/invoices/create_preview", api(lambda m, p, _: e.preview_invoice(m, p))),
        web.get("/v1/invoices", api(lambda m, p, _: e.list_invoices(m, p))),
        web.get("/v1/invoices/{id}", api(_get("invoices"))),
        web.get("/v1/events", api(lambda m, p, _: e.list_events(m, p))),
        web.get("/v1/events/{id}", api(_get("events"))),
        web.get("/checkout/{id}", checkout_page),
        web.post("/checkout/{id}/pay", checkout_pay),
        web.get("/billing_portal/{id}", portal_page),
        web.get("/invoice/{id}", invoice_page),
        web.get("/invoice/{id}/pdf", invoice_pdf),
    ]


def _page(title: str, body: str) -> web.Response:
    return web.Response(
        text=f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
        f"<p><small>Stripe emulator (test mode)</small></p>{body}</body></html>",
        content_type="text/html",
    )


def _lookup_page_object(request: web.Request, table: str) -> JSON:
    found = request.app[EMULATOR].store.table(table).get(request.match_info["id"])
    if found is None:
        raise web.HTTPNotFound(text="No such object")
    return found


async def checkout_page(request: web.Request) -> web.StreamResponse:
    """The hosted Checkout page: a Pay button (and a declined-card button)."""
    session = _lookup_page_object(request, "checkout_sessions")
    sid = html.escape(session["id"])
    amount = f"${(session['amount_total'] or 0) / 100:,.2f}"
    if session["status"] != "open":
        return _page("Checkout", f"<h1>Session {sid} is {html.escape(session['status'])}</h1>")
    cancel = session["cancel_url"]
    cancel_link = f"<p><a href='{html.escape(cancel)}'>Cancel</a></p>" if cancel else ""
    return _page(
        "Checkout",
        f"<h1>Subscribe</h1><p>Session <code>{sid}</code>: {amount} due today.</p>"
        f"<form method='post' action='/checkout/{sid}/pay'>"
        "<button name='payment' value='succeed'>Pay</button> "
        "<button name='payment' value='fail'>Pay with a declined card</button></form>"
        f"{cancel_link}",
    )


async def checkout_pay(request: web.Request) -> web.StreamResponse:
    """Completes the session like a customer paying, then redirects to ``success_url``."""
    session = _lookup_page_object(request, "checkout_sessions")
    form = await request.post()
    payment = str(form.get("payment") or "succeed")
    try:
        request.app[EMULATOR].complete_checkout(session["id"], payment)
    except StripeError as error:
        return _page("Checkout", f"<h1>Error</h1><p>{html.escape(error.message)}</p>")
    success = session["success_url"]
    if success:
        raise web.HTTPSeeOther(success.replace("{CHECKOUT_SESSION_ID}", session["id"]))
    return _page("Checkout", "<h1>Thanks, payment complete.</h1>")


async def portal_page(request: web.Request) -> web.StreamResponse:
    """The billing portal page: the customer's subscriptions and a way back."""
    session = _lookup_page_object(request, "portal_sessions")
    emulator = request.app[EMULATOR]
    rows = "".join(
        f"<li><code>{html.escape(s['id'])}</code>: {html.escape(s['status'])}"
        f"{' (cancels at period end)' if s['cancel_at_period_end'] else ''}</li>"
        for s in emulator.store.subscriptions.values()
        if s["customer"] == session["customer"]
    )
    back = session["return_url"]
    link = f"<p><a href='{html.escape(back)}'>Return</a></p>" if back else ""
    return _page("Billing portal", f"<h1>Your subscriptions</h1><ul>{rows}</ul>{link}")


async def invoice_page(request: web.Request) -> web.StreamResponse:
    """The hosted invoice page."""
    invoice = _lookup_page_object(request, "invoices")
    return _page(
        "Invoice",
        f"<h1>Invoice {html.escape(str(invoice['number'] or invoice['id']))}</h1>"
        f"<p>Status: {html.escape(invoice['status'])}; amount due "
        f"${invoice['amount_due'] / 100:,.2f}</p>",
    )


async def invoice_pdf(request: web.Request) -> web.StreamResponse:
    """The invoice PDF: a one-page placeholder document naming the invoice."""
    invoice = _lookup_page_object(request, "invoices")
    title = str(invoice["number"] or invoice["id"]).encode()
    body = b"%PDF-1.4\n% Stripe emulator invoice " + title + b"\n%%EOF\n"
    return web.Response(body=body, content_type="application/pdf")


def create_app(emulator: Emulator, dispatcher: WebhookDispatcher) -> web.Application:
    """The full application: ``/v1`` API, hosted pages and ``/_emulator`` control routes."""
    from .control import control_routes
    from .meters import install as install_meters

    app = web.Application(middlewares=[api_middleware])
    app[EMULATOR] = emulator
    app[DISPATCHER] = dispatcher
    app[IDEMPOTENCY] = {}
    emulator.listeners.append(dispatcher.on_event)
    emulator.pending_webhooks = dispatcher.pending_count
    app.add_routes(_routes())
    app.add_routes(control_routes())
    install_meters(app)

    async def on_startup(_: web.Application) -> None:
        await dispatcher.start()

    async def on_cleanup(_: web.Application) -> None:
        await dispatcher.stop()

    async def stripe_date(request: web.Request, response: web.StreamResponse) -> None:
        # Stripe's Date header is Stripe's clock, the clock of its events' `created`;
        # here that is the emulator's (movable) clock.
        if request.path.startswith("/v1/"):
            response.headers["Date"] = formatdate(emulator.clock.now(), usegmt=True)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.on_response_prepare.append(stripe_date)
    return app
