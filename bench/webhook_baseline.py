"""The webhook bench's baseline: an aiohttp endpoint that verifies the signature and answers 200.

It uses the gateway's own verification (the stripe SDK) and does nothing else,
so the ratio to it is what forwarding, applying and storing cost::

    STRIPE_WEBHOOK_SECRETS=whsec_... python -m bench.webhook_baseline 127.0.0.1 0
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

from aiohttp import web

from webhook_gateway.verify import VerificationError, verify_signature

SECRETS_KEY: web.AppKey[tuple[str, ...]] = web.AppKey("secrets")


async def receive(request: web.Request) -> web.Response:
    """Verify and answer 200; 400 when the signature does not verify."""
    text = (await request.read()).decode("utf-8", errors="replace")
    secrets: tuple[str, ...] = request.app[SECRETS_KEY]
    try:
        verify_signature(text, request.headers.get("Stripe-Signature"), secrets, 300)
    except VerificationError as exc:
        return web.json_response({"error": exc.rejection.value}, status=400)
    return web.json_response({"status": "ok"})


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT, printing ``BASELINE_LISTENING host:port``."""
    app = web.Application()
    app[SECRETS_KEY] = tuple(os.environ["STRIPE_WEBHOOK_SECRETS"].split(","))
    app.router.add_post("/webhooks/stripe", receive)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = [s for s in getattr(server, "sockets", ()) if s.family == socket.AF_INET]
    print(f"BASELINE_LISTENING {host}:{sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
