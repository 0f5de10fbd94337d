"""The hosted pages (no auth): Checkout, the billing portal, the invoice page and its PDF."""

from __future__ import annotations

import html

from aiohttp import web

from .appkeys import ACCOUNT
from .errors import StripeError
from .objects import JSON
from .resources.checkout import complete_checkout


def _page(title: str, body: str) -> web.Response:
    return web.Response(
        text=f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
        f"<p><small>Stripe emulator (test mode)</small></p>{body}</body></html>",
        content_type="text/html",
    )


def _lookup_page_object(request: web.Request, table: str) -> JSON:
    found = request.app[ACCOUNT].store.table(table).get(request.match_info["id"])
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
        complete_checkout(request.app[ACCOUNT], session["id"], payment)
    except StripeError as error:
        return _page("Checkout", f"<h1>Error</h1><p>{html.escape(error.message)}</p>")
    success = session["success_url"]
    if success:
        raise web.HTTPSeeOther(success.replace("{CHECKOUT_SESSION_ID}", session["id"]))
    return _page("Checkout", "<h1>Thanks, payment complete.</h1>")


async def portal_page(request: web.Request) -> web.StreamResponse:
    """The billing portal page: the customer's subscriptions and a way back."""
    session = _lookup_page_object(request, "portal_sessions")
    account = request.app[ACCOUNT]
    rows = "".join(
        f"<li><code>{html.escape(s['id'])}</code>: {html.escape(s['status'])}"
        f"{' (cancels at period end)' if s['cancel_at_period_end'] else ''}</li>"
        for s in account.store.subscriptions.values()
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


def page_routes() -> list[web.RouteDef]:
    """The hosted pages' routes."""
    return [
        web.get("/checkout/{id}", checkout_page),
        web.post("/checkout/{id}/pay", checkout_pay),
        web.get("/billing_portal/{id}", portal_page),
        web.get("/invoice/{id}", invoice_page),
        web.get("/invoice/{id}/pdf", invoice_pdf),
    ]
