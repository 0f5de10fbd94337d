"""How a caller reaches and authenticates to the billing service: a bearer token, mTLS, or neither.

The service accepts a bearer token (``authorization: Bearer ...``, its SHA-256
listed in the service's policy file) or an mTLS client certificate (its
common name is the caller). Every call also names the caller in
``x-billing-caller``; only a service in insecure development mode trusts that
name by itself.

Every caller reads the same environment variables, the gateway's::

    BILLING_SERVICE_TARGET          host:port of the service (default 127.0.0.1:50051)
    BILLING_SERVICE_TOKEN           bearer token
    BILLING_SERVICE_TLS_CA_FILE     CA bundle to verify the service; set: TLS channel
    BILLING_SERVICE_TLS_CERT_FILE   client certificate for mTLS (its CN is the caller)
    BILLING_SERVICE_TLS_KEY_FILE    its private key
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

CALLER_METADATA_KEY = "x-billing-caller"
AUTHORIZATION_METADATA_KEY = "authorization"

ENV_TARGET = "BILLING_SERVICE_TARGET"
DEFAULT_TARGET = "127.0.0.1:50051"
ENV_TOKEN = "BILLING_SERVICE_TOKEN"  # noqa: S105 (the variable's name, not a token)
ENV_TLS_CA_FILE = "BILLING_SERVICE_TLS_CA_FILE"
ENV_TLS_CERT_FILE = "BILLING_SERVICE_TLS_CERT_FILE"
ENV_TLS_KEY_FILE = "BILLING_SERVICE_TLS_KEY_FILE"


class CredentialsError(ValueError):
    """Credentials that cannot work (half a key pair, a client certificate without TLS)."""


def target_from_env(env: Mapping[str, str] | None = None) -> str:
    """BILLING_SERVICE_TARGET, or 127.0.0.1:50051 when it is unset."""
    env = os.environ if env is None else env
    return env.get(ENV_TARGET, "").strip() or DEFAULT_TARGET


@dataclass(frozen=True)
class Credentials:
    """A caller's credentials; the empty default is a plaintext channel without a token."""

    token: str = field(default="", repr=False)
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise CredentialsError(
                f"a client certificate and its key go together ({ENV_TLS_CERT_FILE}, "
                f"{ENV_TLS_KEY_FILE})"
            )
        if self.tls_cert_file and not self.tls_ca_file:
            raise CredentialsError(f"a client certificate needs {ENV_TLS_CA_FILE}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """Read BILLING_SERVICE_TOKEN and BILLING_SERVICE_TLS_{CA,CERT,KEY}_FILE."""
        env = os.environ if env is None else env
        return cls(
            token=env.get(ENV_TOKEN, "").strip(),
            tls_ca_file=env.get(ENV_TLS_CA_FILE, "").strip(),
            tls_cert_file=env.get(ENV_TLS_CERT_FILE, "").strip(),
            tls_key_file=env.get(ENV_TLS_KEY_FILE, "").strip(),
        )

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials (mTLS with a client certificate); None for a plaintext channel."""
        if not self.tls_ca_file:
            return None
        cert = Path(self.tls_cert_file).read_bytes() if self.tls_cert_file else None
        key = Path(self.tls_key_file).read_bytes() if self.tls_key_file else None
        return grpc.ssl_channel_credentials(Path(self.tls_ca_file).read_bytes(), key, cert)

    def metadata(self, caller: str) -> tuple[tuple[str, str], ...]:
        """The metadata of every call: the caller's name, and the bearer token when set."""
        metadata: tuple[tuple[str, str], ...] = ((CALLER_METADATA_KEY, caller),)
        if self.token:
            metadata += ((AUTHORIZATION_METADATA_KEY, f"Bearer {self.token}"),)
        return metadata
