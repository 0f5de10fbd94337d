"""Gateway settings, read once from environment variables.

Every setting is declared once in ``SETTINGS`` so ``billing-gateway --help``
lists exactly what is read; values are read and checked by
``billing_service.env_settings.EnvReader``, and a setting shared with the
service (its address, the database, log defaults) takes the service's default::

    settings = GatewaySettings.from_env()
    settings.host, settings.port  # ("127.0.0.1", 8080) unless GATEWAY_ADDR is set
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from billing_client import Credentials, CredentialsError
from billing_client.names import MAX_EVENTS_PER_APPLY
from billing_service import settings as service
from billing_service.env_settings import EnvReader, SettingsError, SettingSpec, default_of
from billing_service.env_settings import settings_help as table_help

__all__ = ["SETTINGS", "GatewaySettings", "SettingsError", "settings_help"]

# A forward that waits longer than this for company was surely meant in seconds.
MAX_FORWARD_LINGER_MS = 1000.0

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("GATEWAY_ADDR", "127.0.0.1:8080", "host:port to listen on (port 0: a free port)"),
    SettingSpec(
        "BILLING_SERVICE_TARGET",
        default_of(service.SETTINGS, "BILLING_GRPC_ADDR"),
        "gRPC target of the billing service",
    ),
    SettingSpec(
        "BILLING_SERVICE_TOKEN",
        "",
        "bearer token the gateway presents (caller webhook-gateway in the service's policy)",
    ),
    SettingSpec(
        "BILLING_SERVICE_TLS_CA_FILE", "", "CA bundle to verify the service; set: TLS channel"
    ),
    SettingSpec(
        "BILLING_SERVICE_TLS_CERT_FILE", "", "client certificate for mTLS (CN webhook-gateway)"
    ),
    SettingSpec("BILLING_SERVICE_TLS_KEY_FILE", "", "client private key for mTLS"),
    SettingSpec(
        "STRIPE_WEBHOOK_SECRETS",
        "",
        "comma-separated webhook signing secrets (whsec_...); any match passes (rotation)",
    ),
    SettingSpec(
        "GATEWAY_SIGNATURE_TOLERANCE_SECONDS",
        "300",
        "maximum age of the Stripe-Signature timestamp",
    ),
    SettingSpec("GATEWAY_MAX_BODY_BYTES", "1048576", "largest accepted body (larger: 413)"),
    SettingSpec(
        "GATEWAY_BODY_TIMEOUT_SECONDS",
        "10",
        "time a delivery's body gets to arrive; slower: 408 and the connection is closed",
    ),
    SettingSpec(
        "GATEWAY_FORWARD_DEADLINE_SECONDS",
        "10",
        "deadline of one forward call (ApplyStripeEvent, or ApplyStripeEvents for a batch)",
    ),
    SettingSpec(
        "GATEWAY_FORWARD_BATCH",
        "32",
        "most deliveries forwarded in one ApplyStripeEvents call"
        f" (1: one ApplyStripeEvent per delivery; at most {MAX_EVENTS_PER_APPLY})",
    ),
    SettingSpec(
        "GATEWAY_FORWARD_LINGER_MS",
        "2",
        "longest a delivery waits for others to share its forward call"
        f" (0: only those of the same event-loop turn; at most {MAX_FORWARD_LINGER_MS:g})",
    ),
    SettingSpec(
        "GATEWAY_SEEN_EVENTS",
        "50000",
        "event ids the service finished that this process remembers, to answer their"
        " redeliveries without a forward (0: forward every delivery)",
    ),
    SettingSpec(
        "REDIS_URL",
        default_of(service.SETTINGS, "REDIS_URL"),
        "the billing service's Redis; set: a redelivery whose processed marker is there is"
        " answered duplicate without a forward, on every replica",
    ),
    SettingSpec(
        "GATEWAY_MARKER_MIN_AGE_SECONDS",
        "60",
        "with REDIS_URL, ask for the marker only for events created at least this long ago"
        " (a first delivery arrives seconds after, a retry minutes to days after); 0: always",
    ),
    SettingSpec(
        "GATEWAY_REDIS_TIMEOUT_SECONDS",
        default_of(service.SETTINGS, "BILLING_REDIS_TIMEOUT_SECONDS"),
        "connect/read timeout of one marker read; on a failure the gateway forwards and"
        " stops asking Redis for 10 s",
    ),
    SettingSpec(
        "DATABASE_URL",
        default_of(service.SETTINGS, "DATABASE_URL"),
        "the billing service's database, where dead letters are written",
    ),
    SettingSpec(
        "GATEWAY_EVENT_LOOP",
        default_of(service.SETTINGS, "BILLING_EVENT_LOOP"),
        "event loop of `serve`: uvloop (less CPU per delivery) or asyncio (the standard library's)",
    ),
    SettingSpec(
        "GATEWAY_LOG_LEVEL",
        default_of(service.SETTINGS, "BILLING_LOG_LEVEL"),
        "log level: DEBUG, INFO, WARNING, ERROR",
    ),
    SettingSpec(
        "GATEWAY_LOG_FORMAT",
        default_of(service.SETTINGS, "BILLING_LOG_FORMAT"),
        "log format: json (one object per line) or text",
    ),
)


def split_addr(addr: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SettingsError(f"GATEWAY_ADDR must be host:port, got {addr!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class GatewaySettings:
    """Resolved settings of one gateway process; build it with ``from_env``."""

    host: str
    port: int
    billing_target: str
    credentials: Credentials
    webhook_secrets: tuple[str, ...] = field(repr=False)
    signature_tolerance_seconds: int
    max_body_bytes: int
    forward_deadline_seconds: float
    forward_batch: int
    forward_linger_seconds: float
    body_timeout_seconds: float
    seen_events: int
    redis_url: str = field(repr=False)
    marker_min_age_seconds: float
    redis_timeout_seconds: float
    database_url: str = field(repr=False)
    log_level: str
    log_format: str
    event_loop: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        """Read every setting from ``env`` (default: the process environment)."""
        read = EnvReader(SETTINGS, os.environ if env is None else env)
        secrets = read.items("STRIPE_WEBHOOK_SECRETS")
        if not secrets:
            raise SettingsError("STRIPE_WEBHOOK_SECRETS is empty: no delivery could be verified")
        host, port = split_addr(read.text("GATEWAY_ADDR"))
        try:
            # The client package's rules: a certificate needs its key and a CA.
            credentials = Credentials(
                token=read.text("BILLING_SERVICE_TOKEN"),
                tls_ca_file=read.text("BILLING_SERVICE_TLS_CA_FILE"),
                tls_cert_file=read.text("BILLING_SERVICE_TLS_CERT_FILE"),
                tls_key_file=read.text("BILLING_SERVICE_TLS_KEY_FILE"),
            )
        except CredentialsError as exc:
            raise SettingsError(str(exc)) from None
        seen_events = read.integer("GATEWAY_SEEN_EVENTS")
        if seen_events < 0:
            raise SettingsError(f"GATEWAY_SEEN_EVENTS must be at least 0, got {seen_events}")
        forward_batch = read.integer("GATEWAY_FORWARD_BATCH")
        if not 1 <= forward_batch <= MAX_EVENTS_PER_APPLY:
            raise SettingsError(
                f"GATEWAY_FORWARD_BATCH must be 1 to {MAX_EVENTS_PER_APPLY}, got {forward_batch}"
            )
        forward_linger_ms = read.at_least("GATEWAY_FORWARD_LINGER_MS", 0)
        if forward_linger_ms > MAX_FORWARD_LINGER_MS:
            raise SettingsError(
                f"GATEWAY_FORWARD_LINGER_MS must be at most {MAX_FORWARD_LINGER_MS:g},"
                f" got {forward_linger_ms:g}"
            )
        log_format = read.text("GATEWAY_LOG_FORMAT").lower()
        if log_format not in service.LOG_FORMATS:
            raise SettingsError(f"GATEWAY_LOG_FORMAT must be json or text, got {log_format!r}")
        return cls(
            host=host,
            port=port,
            billing_target=read.text("BILLING_SERVICE_TARGET"),
            credentials=credentials,
            webhook_secrets=secrets,
            signature_tolerance_seconds=int(
                read.at_least("GATEWAY_SIGNATURE_TOLERANCE_SECONDS", 1)
            ),
            max_body_bytes=int(read.at_least("GATEWAY_MAX_BODY_BYTES", 1024)),
            forward_deadline_seconds=read.at_least("GATEWAY_FORWARD_DEADLINE_SECONDS", 0.05),
            forward_batch=forward_batch,
            forward_linger_seconds=forward_linger_ms / 1000,
            body_timeout_seconds=read.at_least("GATEWAY_BODY_TIMEOUT_SECONDS", 0.05),
            seen_events=seen_events,
            redis_url=read.url("REDIS_URL", service.REDIS_URL_SCHEMES),
            marker_min_age_seconds=read.at_least("GATEWAY_MARKER_MIN_AGE_SECONDS", 0),
            redis_timeout_seconds=read.at_least("GATEWAY_REDIS_TIMEOUT_SECONDS", 0.01),
            database_url=read.text("DATABASE_URL"),
            log_level=read.text("GATEWAY_LOG_LEVEL").upper(),
            log_format=log_format,
            event_loop=read.choice("GATEWAY_EVENT_LOOP", service.EVENT_LOOPS),
        )


def settings_help() -> str:
    """The gateway's settings table for ``--help``."""
    return table_help(SETTINGS)
