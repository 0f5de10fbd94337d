"""Gateway settings, read once from environment variables.

Every setting is declared in ``SETTINGS`` so ``billing-gateway --help`` lists
exactly what is read::

    settings = GatewaySettings.from_env()
    settings.host, settings.port  # ("127.0.0.1", 8080) unless GATEWAY_ADDR is set
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from billing_service.settings import SettingsError, SettingSpec, comma_separated
from billing_service.settings import settings_help as shared_settings_help

__all__ = ["SETTINGS", "GatewaySettings", "SettingsError", "settings_help"]


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("GATEWAY_ADDR", "127.0.0.1:8080", "host:port to listen on (port 0: a free port)"),
    SettingSpec("BILLING_SERVICE_TARGET", "127.0.0.1:50051", "gRPC target of the billing service"),
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
    SettingSpec("GATEWAY_FORWARD_DEADLINE_SECONDS", "10", "deadline of one ApplyStripeEvent call"),
    SettingSpec(
        "DATABASE_URL",
        "sqlite:///billing.db",
        "the billing service's database, where dead letters are written",
    ),
    SettingSpec("GATEWAY_LOG_LEVEL", "INFO", "log level: DEBUG, INFO, WARNING, ERROR"),
    SettingSpec("GATEWAY_LOG_FORMAT", "json", "log format: json (one object per line) or text"),
)


def _default(name: str) -> str:
    return next(spec.default for spec in SETTINGS if spec.env == name)


def _number(env: Mapping[str, str], name: str, minimum: float) -> float:
    raw = env.get(name, "").strip() or _default(name)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def split_addr(addr: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SettingsError(f"GATEWAY_ADDR must be host:port, got {addr!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class GatewaySettings:
    """Resolved settings of one gateway process."""

    host: str = "127.0.0.1"
    port: int = 8080
    billing_target: str = "127.0.0.1:50051"
    billing_token: str = field(default="", repr=False)
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    signature_tolerance_seconds: int = 300
    max_body_bytes: int = 1024 * 1024
    forward_deadline_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    database_url: str = field(default="sqlite:///billing.db", repr=False)
    log_level: str = "INFO"
    log_format: str = "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        """Read every setting from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env

        def text(name: str) -> str:
            return env.get(name, "").strip() or _default(name)

        secrets = comma_separated(text("STRIPE_WEBHOOK_SECRETS"))
        if not secrets:
            raise SettingsError("STRIPE_WEBHOOK_SECRETS is empty: no delivery could be verified")
        host, port = split_addr(text("GATEWAY_ADDR"))
        cert, key = text("BILLING_SERVICE_TLS_CERT_FILE"), text("BILLING_SERVICE_TLS_KEY_FILE")
        if bool(cert) != bool(key):
            raise SettingsError(
                "BILLING_SERVICE_TLS_CERT_FILE and BILLING_SERVICE_TLS_KEY_FILE go together"
            )
        if cert and not text("BILLING_SERVICE_TLS_CA_FILE"):
            raise SettingsError("a client certificate needs BILLING_SERVICE_TLS_CA_FILE")
        log_format = text("GATEWAY_LOG_FORMAT").lower()
        if log_format not in ("json", "text"):
            raise SettingsError(f"GATEWAY_LOG_FORMAT must be json or text, got {log_format!r}")
        return cls(
            host=host,
            port=port,
            billing_target=text("BILLING_SERVICE_TARGET"),
            billing_token=text("BILLING_SERVICE_TOKEN"),
            tls_ca_file=text("BILLING_SERVICE_TLS_CA_FILE"),
            tls_cert_file=cert,
            tls_key_file=key,
            webhook_secrets=secrets,
            signature_tolerance_seconds=int(_number(env, "GATEWAY_SIGNATURE_TOLERANCE_SECONDS", 1)),
            max_body_bytes=int(_number(env, "GATEWAY_MAX_BODY_BYTES", 1024)),
            forward_deadline_seconds=_number(env, "GATEWAY_FORWARD_DEADLINE_SECONDS", 0.05),
            body_timeout_seconds=_number(env, "GATEWAY_BODY_TIMEOUT_SECONDS", 0.05),
            database_url=text("DATABASE_URL"),
            log_level=text("GATEWAY_LOG_LEVEL").upper(),
            log_format=log_format,
        )


def settings_help() -> str:
    """The gateway's settings table for ``--help``."""
    return shared_settings_help(SETTINGS)
