"""``billing-service``: serve, migrate, and operate the billing service."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from billing_client.names import SERVICE_NAME
from billing_service import audit, event_loop, logs
from billing_service.auth import AuthConfigError, token_hash
from billing_service.dead_letter_commands import add_events_parser, cmd_events
from billing_service.plans import CatalogError
from billing_service.plans_check import add_plans_parser, cmd_plans
from billing_service.reconcile_cli import add_reconcile_parser, cmd_reconcile
from billing_service.server import StartupError, serve
from billing_service.settings import Settings, SettingsError, settings_help
from billing_service.storage.database import Database, StorageUnavailable, redact_url
from billing_service.storage.database import migrate as run_migrations
from billing_service.usage.commands import add_usage_parser, cmd_usage


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    event_loop.run(serve(settings), settings.event_loop)
    return 0


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with contextlib.closing(Database(settings.database_url, workers=1)) as db:
        applied = run_migrations(db.db)
    target = redact_url(settings.database_url)
    print(f"applied {', '.join(applied)} to {target}" if applied else f"{target} is up to date")
    return 0


def _cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    with contextlib.closing(Database(settings.database_url, workers=1)) as db:
        report = db.call(audit.verify_chain)
    if report.ok:
        print(f"audit chain intact: {report.checked} records verified")
        return 0
    print(
        f"audit chain broken at record {report.first_bad_id}: {report.problem} "
        f"({report.checked} records before it verified)"
    )
    return 1


def _cmd_auth(settings: Settings, args: argparse.Namespace) -> int:
    # The token comes on stdin so it never lands in shell history or `ps`.
    token = sys.stdin.readline().strip()
    if not token:
        print("billing-service: give the token on standard input", file=sys.stderr)
        return 2
    print(token_hash(token))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (settings come from the environment, listed in --help)."""
    parser = argparse.ArgumentParser(
        prog="billing-service",
        description=f"gRPC billing service ({SERVICE_NAME}) over Stripe.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve gRPC on BILLING_GRPC_ADDR (the default command)")
    commands.add_parser("migrate", help="apply pending database migrations to DATABASE_URL")
    add_events_parser(commands)
    add_reconcile_parser(commands)
    add_usage_parser(commands)
    add_plans_parser(commands)
    audit_parser = commands.add_parser("audit", help="operate on the audit trail")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", metavar="ACTION")
    audit_commands.required = True
    audit_commands.add_parser(
        "verify",
        help="check the audit hash chain; exit 1 naming the first bad record when broken",
    )
    auth_parser = commands.add_parser("auth", help="internal authentication helpers")
    auth_commands = auth_parser.add_subparsers(dest="auth_command", metavar="ACTION")
    auth_commands.required = True
    auth_commands.add_parser(
        "hash-token",
        help="print the SHA-256 of a token read from stdin, for token_sha256 in the policy",
    )
    return parser


HANDLERS = {
    "serve": _cmd_serve,
    "migrate": _cmd_migrate,
    "audit": _cmd_audit,
    "events": cmd_events,
    "reconcile": cmd_reconcile,
    "auth": _cmd_auth,
    "usage": cmd_usage,
    "plans": cmd_plans,
    None: _cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``billing-service`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure(settings.log_level, settings.secrets, settings.log_format)
        return HANDLERS[args.command](settings, args)
    except (
        SettingsError,
        CatalogError,
        StartupError,
        StorageUnavailable,
        AuthConfigError,
    ) as exc:
        print(f"billing-service: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
