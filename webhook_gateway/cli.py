"""``billing-gateway``: serve the Stripe webhook endpoint."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Sequence

from aiohttp import web

from billing_client.names import SERVICE_NAME
from billing_service import event_loop, logs
from billing_service.collector import settle_after_start_up
from billing_service.listen import describe_os_error
from billing_service.tracing import Tracing
from billing_service.tracing import from_env as tracing_from_env
from webhook_gateway.app import METRICS_KEY, WEBHOOK_PATH, build_app
from webhook_gateway.http_errors import GatewayRunner
from webhook_gateway.settings import GatewaySettings, SettingsError, settings_help

log = logging.getLogger("webhook_gateway.cli")  # not "__main__" under python -m


class ListenError(Exception):
    """GATEWAY_ADDR cannot be listened on; the message says why."""


def _bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        for sock in getattr(server, "sockets", None) or ():
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                return int(sock.getsockname()[1])
    raise RuntimeError("the gateway is not listening")


async def serve(settings: GatewaySettings, tracing: Tracing | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then finish in-flight requests and close."""
    app = build_app(settings, tracing)
    runner = GatewayRunner(
        app,
        app[METRICS_KEY].answered,
        access_log=None,
        handle_signals=False,
        # body.py decodes Content-Encoding itself, so a bad one is a 400 it can answer.
        auto_decompress=False,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, shutdown_timeout=10.0)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(
            f"cannot listen on {settings.host}:{settings.port}: {describe_os_error(exc)} "
            "(GATEWAY_ADDR)"
        ) from None
    port = _bound_port(runner)
    # Everything built so far lives as long as the process; the cyclic GC need not walk it.
    settle_after_start_up()
    loop = asyncio.get_running_loop()
    log.info(
        "webhook gateway on http://%s:%d%s -> %s (event loop: %s)",
        settings.host,
        port,
        WEBHOOK_PATH,
        settings.billing_target,
        type(loop).__module__.partition(".")[0],
    )
    # The line tests and tools wait for; it carries the real port when :0 was asked.
    print(f"BILLING_GATEWAY_LISTENING {settings.host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    log.info("stopped")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (settings come from the environment, listed in --help)."""
    parser = argparse.ArgumentParser(
        prog="billing-gateway",
        description=(
            f"Stripe webhook gateway: verifies POST {WEBHOOK_PATH} deliveries and forwards "
            f"them to {SERVICE_NAME}/ApplyStripeEvent."
        ),
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve HTTP on GATEWAY_ADDR (the default command)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``billing-gateway`` console script."""
    build_parser().parse_args(argv)
    try:
        settings = GatewaySettings.from_env()
    except SettingsError as exc:
        print(f"billing-gateway: {exc}", file=sys.stderr)
        return 2
    # The service's log formats, with the webhook secrets scrubbed as a second guard.
    logs.configure(
        settings.log_level,
        secrets=(*settings.webhook_secrets, settings.credentials.token),
        fmt=settings.log_format,
    )
    try:
        tracing = tracing_from_env("billing-gateway")
    except SettingsError as exc:
        print(f"billing-gateway: {exc}", file=sys.stderr)
        return 2
    try:
        event_loop.run(serve(settings, tracing), settings.event_loop)
    except ListenError as exc:
        print(f"billing-gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if tracing is not None:
            tracing.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
