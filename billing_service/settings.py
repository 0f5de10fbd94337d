"""Service settings, read once from environment variables.

Every setting is declared once in ``SETTINGS`` with its default and meaning,
so ``billing-service --help`` and the README list the same things; the
values are read and checked by ``env_settings.EnvReader``::

    settings = Settings.from_env()
    settings.grpc_addr  # "127.0.0.1:50051" unless BILLING_GRPC_ADDR is set
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from billing_service import validation
from billing_service.env_settings import (
    EnvReader,
    SettingsError,
    SettingSpec,
    comma_separated,
)
from billing_service.env_settings import settings_help as table_help

__all__ = ["SETTINGS", "SettingSpec", "Settings", "SettingsError", "settings_help"]


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("BILLING_GRPC_ADDR", "127.0.0.1:50051", "host:port the gRPC server listens on"),
    SettingSpec(
        "DATABASE_URL",
        "sqlite:///billing.db",
        "peewee database URL; sqlite:///FILE (embedded) or postgresql://user@host:port/db",
    ),
    SettingSpec("REDIS_URL", "", "redis://host:port/db for locks, dedupe and cache; unset: none"),
    SettingSpec(
        "STRIPE_SECRET_KEY", "", "Stripe secret key; unset: `make run` starts the emulator"
    ),
    SettingSpec("STRIPE_API_BASE", "", "base URL of a Stripe-compatible API (the emulator)"),
    SettingSpec(
        "STRIPE_WEBHOOK_SECRETS", "", "comma-separated webhook signing secrets (whsec_...)"
    ),
    SettingSpec(
        "BILLING_PLANS_FILE", "plans.example.toml", "TOML plans catalog (tiers, prices, features)"
    ),
    SettingSpec("STRIPE_MAX_NETWORK_RETRIES", "2", "retries of failed Stripe requests"),
    SettingSpec("STRIPE_TIMEOUT_SECONDS", "10", "timeout of one Stripe request"),
    SettingSpec(
        "BILLING_DEFAULT_DEADLINE_SECONDS",
        "60",
        "deadline of a unary call whose caller set none (no Stripe or database work starts after)",
    ),
    SettingSpec("BILLING_SHUTDOWN_GRACE_SECONDS", "10", "time in-flight calls get on SIGTERM"),
    SettingSpec("BILLING_DB_WORKERS", "8", "threads (and pooled connections) for database work"),
    SettingSpec("BILLING_LOG_LEVEL", "INFO", "log level: DEBUG, INFO, WARNING, ERROR"),
    SettingSpec("BILLING_LOG_FORMAT", "json", "log format: json (one object per line) or text"),
    SettingSpec(
        "BILLING_AUTH_POLICY_FILE", "", "TOML policy: callers, their token hashes and their RPCs"
    ),
    SettingSpec(
        "BILLING_INSECURE_NO_AUTH",
        "false",
        "true: no authentication at all (development only; loopback addresses only)",
    ),
    SettingSpec("BILLING_TLS_CERT_FILE", "", "server certificate (PEM); set with the key for TLS"),
    SettingSpec("BILLING_TLS_KEY_FILE", "", "server private key (PEM)"),
    SettingSpec(
        "BILLING_TLS_CLIENT_CA_FILE", "", "CA bundle for client certificates; set: mTLS required"
    ),
    SettingSpec("BILLING_METRICS_ADDR", "", "host:port serving Prometheus /metrics; unset: off"),
    SettingSpec(
        "BILLING_REDIRECT_HOSTS",
        "",
        "comma-separated hosts (or *.domain) allowed in success_url, cancel_url and "
        "return_url; unset: any host",
    ),
    SettingSpec(
        "BILLING_EVENT_LOCK_WAIT_SECONDS",
        "10",
        "longest ApplyStripeEvent waits for a customer's lock before answering UNAVAILABLE",
    ),
    SettingSpec(
        "BILLING_EVENT_LOCK_TTL_SECONDS",
        "30",
        "expiry of a Redis customer lock (frees it when its holder dies)",
    ),
    SettingSpec(
        "BILLING_EVENT_DEDUPE_TTL_SECONDS",
        "604800",
        "lifetime of Redis 'event already processed' markers (Stripe retries for 3 days)",
    ),
    SettingSpec("BILLING_REDIS_TIMEOUT_SECONDS", "1", "connect/read timeout of one Redis command"),
    SettingSpec(
        "BILLING_REDIS_BREAKER_SECONDS",
        "10",
        "after a Redis failure, events skip Redis this long (the health probe ends it early)",
    ),
    SettingSpec(
        "BILLING_WATCH_MAX_STREAMS_PER_CALLER",
        "64",
        "open WatchEntitlements streams one caller may hold; past it: RESOURCE_EXHAUSTED",
    ),
    SettingSpec(
        "BILLING_STRIPE_EVENT_FETCH_RATE",
        "5",
        "Stripe calls per second that applying events may make, shared by all replicas "
        "through Redis (else per process); past it: UNAVAILABLE",
    ),
    SettingSpec(
        "BILLING_STRIPE_EVENT_FETCH_TIMEOUT_SECONDS",
        "2",
        "timeout of one such Stripe call (one attempt, made under the customer's lock)",
    ),
    SettingSpec(
        "BILLING_EVENT_BATCH_MAX",
        "64",
        "most events one group-commit transaction applies (1: a transaction per event)",
    ),
    SettingSpec(
        "BILLING_EVENT_BATCH_WAIT_MS",
        "2",
        "longest a group commit waits for more events before it starts its transaction",
    ),
    SettingSpec(
        "BILLING_EVENT_WRITERS",
        "4",
        "group-commit writers on PostgreSQL, each one transaction at a time (SQLite: always 1)",
    ),
    SettingSpec(
        "BILLING_SERVICE_TARGET",
        "",
        "host:port of the service the CLI's `reconcile` and `events replay` call; "
        "unset: BILLING_GRPC_ADDR",
    ),
    SettingSpec(
        "BILLING_RECONCILE_MAX_ATTEMPTS",
        "5",
        "`reconcile`: tries per ApplyStripeEvent/ReconcileUser call when the service is "
        "unavailable (gRPC service-config retries, at most 5; listing Stripe retries "
        "STRIPE_MAX_NETWORK_RETRIES times)",
    ),
    SettingSpec(
        "BILLING_RECONCILE_BACKOFF_SECONDS",
        "1",
        "`reconcile`: first wait between those tries (doubling, at most 30 s)",
    ),
    SettingSpec(
        "BILLING_USAGE_REPORT_INTERVAL_SECONDS",
        "1",
        "how often each replica sends pending overage to Stripe Billing Meters",
    ),
    SettingSpec("BILLING_USAGE_REPORT_BATCH", "100", "overage reports claimed and sent per round"),
    SettingSpec(
        "BILLING_TEST_CLOCK_FILE",
        "",
        "test only: file holding unix seconds used as 'now' by usage metering; unset: real time",
    ),
    SettingSpec(
        "BILLING_EVENT_LOOP",
        "uvloop",
        "event loop of `serve`: uvloop (less CPU per call) or asyncio (the standard library's)",
    ),
)

EVENT_LOOPS = ("uvloop", "asyncio")
LOG_FORMATS = ("json", "text")
# What redis-py's from_url accepts; checked at start so a typo is one line, not a traceback.
REDIS_URL_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one service process; build it with ``from_env``."""

    grpc_addr: str
    database_url: str
    redis_url: str
    stripe_secret_key: str = field(repr=False)
    stripe_api_base: str
    stripe_webhook_secrets: tuple[str, ...] = field(repr=False)
    plans_file: Path
    stripe_max_network_retries: int
    stripe_timeout_seconds: float
    default_deadline_seconds: float
    shutdown_grace_seconds: float
    db_workers: int
    log_level: str
    event_lock_wait_seconds: float
    event_lock_ttl_seconds: float
    event_dedupe_ttl_seconds: int
    redis_timeout_seconds: float
    redis_breaker_seconds: float
    watch_max_streams_per_caller: int
    stripe_event_fetch_rate: float
    stripe_event_fetch_timeout_seconds: float
    event_batch_max: int
    event_batch_wait_ms: float
    event_writers: int
    service_target: str
    reconcile_max_attempts: int
    reconcile_backoff_seconds: float
    log_format: str
    auth_policy_file: str
    insecure_no_auth: bool
    tls_cert_file: str
    tls_key_file: str
    tls_client_ca_file: str
    metrics_addr: str
    event_loop: str
    test_clock_file: str
    usage_report_interval_seconds: float
    usage_report_batch: int
    redirect_hosts: frozenset[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``env`` (default: the process environment)."""
        read = EnvReader(SETTINGS, os.environ if env is None else env)
        return cls(
            grpc_addr=read.text("BILLING_GRPC_ADDR"),
            database_url=read.text("DATABASE_URL"),
            redis_url=read.url("REDIS_URL", REDIS_URL_SCHEMES),
            stripe_secret_key=read.text("STRIPE_SECRET_KEY"),
            stripe_api_base=read.text("STRIPE_API_BASE").rstrip("/"),
            stripe_webhook_secrets=read.items("STRIPE_WEBHOOK_SECRETS"),
            plans_file=Path(read.text("BILLING_PLANS_FILE")),
            stripe_max_network_retries=read.integer("STRIPE_MAX_NETWORK_RETRIES"),
            stripe_timeout_seconds=read.number("STRIPE_TIMEOUT_SECONDS"),
            default_deadline_seconds=read.number("BILLING_DEFAULT_DEADLINE_SECONDS"),
            shutdown_grace_seconds=read.number("BILLING_SHUTDOWN_GRACE_SECONDS"),
            db_workers=max(1, read.integer("BILLING_DB_WORKERS")),
            log_level=read.text("BILLING_LOG_LEVEL").upper(),
            event_lock_wait_seconds=read.number("BILLING_EVENT_LOCK_WAIT_SECONDS"),
            event_lock_ttl_seconds=read.number("BILLING_EVENT_LOCK_TTL_SECONDS"),
            event_dedupe_ttl_seconds=read.integer("BILLING_EVENT_DEDUPE_TTL_SECONDS"),
            redis_timeout_seconds=read.number("BILLING_REDIS_TIMEOUT_SECONDS"),
            redis_breaker_seconds=max(0.0, read.number("BILLING_REDIS_BREAKER_SECONDS")),
            watch_max_streams_per_caller=max(
                1, read.integer("BILLING_WATCH_MAX_STREAMS_PER_CALLER")
            ),
            stripe_event_fetch_rate=read.positive("BILLING_STRIPE_EVENT_FETCH_RATE"),
            stripe_event_fetch_timeout_seconds=read.positive(
                "BILLING_STRIPE_EVENT_FETCH_TIMEOUT_SECONDS"
            ),
            event_batch_max=max(1, read.integer("BILLING_EVENT_BATCH_MAX")),
            event_batch_wait_ms=max(0.0, read.number("BILLING_EVENT_BATCH_WAIT_MS")),
            event_writers=max(1, read.integer("BILLING_EVENT_WRITERS")),
            service_target=read.text("BILLING_SERVICE_TARGET") or read.text("BILLING_GRPC_ADDR"),
            reconcile_max_attempts=max(1, read.integer("BILLING_RECONCILE_MAX_ATTEMPTS")),
            reconcile_backoff_seconds=max(0.0, read.number("BILLING_RECONCILE_BACKOFF_SECONDS")),
            log_format=read.text("BILLING_LOG_FORMAT").lower(),
            auth_policy_file=read.text("BILLING_AUTH_POLICY_FILE"),
            insecure_no_auth=read.boolean("BILLING_INSECURE_NO_AUTH"),
            tls_cert_file=read.text("BILLING_TLS_CERT_FILE"),
            tls_key_file=read.text("BILLING_TLS_KEY_FILE"),
            tls_client_ca_file=read.text("BILLING_TLS_CLIENT_CA_FILE"),
            metrics_addr=read.text("BILLING_METRICS_ADDR"),
            event_loop=read.choice("BILLING_EVENT_LOOP", EVENT_LOOPS),
            test_clock_file=read.text("BILLING_TEST_CLOCK_FILE"),
            usage_report_interval_seconds=max(
                0.05, read.number("BILLING_USAGE_REPORT_INTERVAL_SECONDS")
            ),
            usage_report_batch=max(1, read.integer("BILLING_USAGE_REPORT_BATCH")),
            redirect_hosts=redirect_hosts(read.text("BILLING_REDIRECT_HOSTS")),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, for scrubbing from logs."""
        return tuple(s for s in (self.stripe_secret_key, *self.stripe_webhook_secrets) if s)


def redirect_hosts(raw: str) -> frozenset[str]:
    """BILLING_REDIRECT_HOSTS as lowercase hosts or ``*.domain``; SettingsError names a bad one."""
    hosts = frozenset(item.lower() for item in comma_separated(raw))
    for host in hosts:
        name = host[2:] if host.startswith("*.") else host
        if not validation.is_host(name):
            raise SettingsError(
                f"BILLING_REDIRECT_HOSTS entry {host!r} is not a host name (or *.domain)"
            )
    return hosts


def settings_help() -> str:
    """The service's settings table for ``--help``."""
    return table_help(SETTINGS)
