"""The aiohttp application: Stripe's ``/v1`` API, the hosted pages and the ``/_emulator`` controls.

Modules by job: ``middleware`` (``/v1`` auth, request ids, idempotency),
``api_routes`` (``/v1``), ``pages`` (hosted Checkout, portal and invoice
pages), ``control`` and ``meter_routes`` (``/_emulator``); all of them act on
the :class:`~.account.Account` held under ``appkeys.ACCOUNT``.
"""

from __future__ import annotations

from email.utils import formatdate

from aiohttp import web

from .account import Account
from .api_routes import api_routes
from .appkeys import ACCOUNT, DISPATCHER, IDEMPOTENCY
from .control import control_routes
from .meter_routes import install as install_meters
from .middleware import api_middleware
from .pages import page_routes
from .webhooks import WebhookDispatcher


def create_app(account: Account, dispatcher: WebhookDispatcher) -> web.Application:
    """The full application: ``/v1`` API, hosted pages and ``/_emulator`` control routes."""
    app = web.Application(middlewares=[api_middleware])
    app[ACCOUNT] = account
    app[DISPATCHER] = dispatcher
    app[IDEMPOTENCY] = {}
    account.listeners.append(dispatcher.on_event)
    account.pending_webhooks = dispatcher.pending_count
    app.add_routes(api_routes())
    app.add_routes(page_routes())
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
            response.headers["Date"] = formatdate(account.clock.now(), usegmt=True)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.on_response_prepare.append(stripe_date)
    return app
