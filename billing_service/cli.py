"""``billing-service``: serve, migrate, and operate the billing service."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from billing_service import logs
from billing_service.plans import CatalogError
from billing_service.server import StartupError, serve
from billing_service.settings import Settings, SettingsError, settings_help
from billing_service.storage.database import StorageUnavailable, open_database, redact_url
from billing_service.storage.database import migrate as run_migrations


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(serve(settings))
    return 0


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    db = open_database(settings.database_url)
    applied = run_migrations(db)
    target = redact_url(settings.database_url)
    print(f"applied {', '.join(applied)} to {target}" if applied else f"{target} is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (settings come from the environment, listed in --help)."""
    parser = argparse.ArgumentParser(
        prog="billing-service",
        description="gRPC billing service (billing.v1.BillingService) over Stripe.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve gRPC on BILLING_GRPC_ADDR (the default command)")
    commands.add_parser("migrate", help="apply pending database migrations to DATABASE_URL")
    return parser


HANDLERS = {"serve": _cmd_serve, "migrate": _cmd_migrate, None: _cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``billing-service`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure(settings.log_level)
        return HANDLERS[args.command](settings, args)
    except (SettingsError, CatalogError, StartupError, StorageUnavailable) as exc:
        print(f"billing-service: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
