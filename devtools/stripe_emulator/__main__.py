"""Command line: ``python -m devtools.stripe_emulator --plans plans.example.toml``.

Prints ``STRIPE_EMULATOR_LISTENING http://HOST:PORT`` once listening and exits
with status 0 on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from .account import Account
from .app import create_app
from .objects import Fixtures, default_fixtures_path
from .plans import load_meters, load_plans
from .resources.catalog import seed_meters, seed_plans
from .webhooks import DEFAULT_RETRY_DELAYS, WebhookDispatcher

LISTENING_PREFIX = "STRIPE_EMULATOR_LISTENING"


def _delays(text: str) -> list[float]:
    try:
        delays = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of seconds: {text}") from None
    if any(d < 0 for d in delays):
        raise argparse.ArgumentTypeError("retry delays must not be negative")
    return delays


def build_parser() -> argparse.ArgumentParser:
    """The emulator's command-line options."""
    parser = argparse.ArgumentParser(
        prog="stripe-emulator",
        description="Local Stripe emulator for development and tests (never production).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=12111, help="port (0 picks a free one)")
    parser.add_argument("--plans", type=Path, required=True, help="plans TOML file to seed prices")
    parser.add_argument(
        "--webhook-url", action="append", default=[], help="webhook endpoint (repeatable)"
    )
    parser.add_argument(
        "--webhook-secret",
        action="append",
        default=[],
        help="whsec_ signing secret for the --webhook-url endpoints (repeatable, for rotation)",
    )
    parser.add_argument(
        "--webhook-retry-delays",
        type=_delays,
        default=list(DEFAULT_RETRY_DELAYS),
        help="comma-separated seconds between delivery retries (default 0.2,0.5,1,2,5)",
    )
    parser.add_argument(
        "--after-failed-payments",
        choices=("unpaid", "canceled"),
        default="unpaid",
        help="status after the last failed payment retry",
    )
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=None,
        help="Stripe fixtures3.json (default: tests/fixtures)",
    )
    parser.add_argument("--log-level", default="WARNING", help="Python logging level")
    return parser


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGINT/SIGTERM."""
    fixtures = Fixtures(args.fixtures or default_fixtures_path())
    account = Account(fixtures, after_failed_payments=args.after_failed_payments)
    seed_plans(account, load_plans(args.plans))
    seed_meters(account, load_meters(args.plans))
    dispatcher = WebhookDispatcher(
        retry_delays=args.webhook_retry_delays, default_secrets=args.webhook_secret
    )
    for url in args.webhook_url:
        dispatcher.add_endpoint(url, args.webhook_secret)
    runner = web.AppRunner(create_app(account, dispatcher), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = args.port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            port = int(address[1])
            break
    host = "127.0.0.1" if args.host in ("0.0.0.0", "", "::") else args.host
    account.url_base = f"http://{host}:{port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"{LISTENING_PREFIX} {account.url_base}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point (``stripe-emulator``)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        plans_ok = args.plans.is_file()
    except OSError:
        plans_ok = False
    if not plans_ok:
        print(f"stripe-emulator: plans file not found: {args.plans}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
