"""Credentials the command-line tools present when they call the billing service.

The same variables as the gateway's (docs/gateway.md): BILLING_SERVICE_TOKEN
for a bearer token, BILLING_SERVICE_TLS_CA_FILE to verify the service over
TLS, and BILLING_SERVICE_TLS_CERT_FILE/_KEY_FILE for mTLS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import grpc

from billing_service.servicer import CALLER_METADATA_KEY


def channel_credentials(env: Mapping[str, str] | None = None) -> grpc.ChannelCredentials | None:
    """TLS credentials when BILLING_SERVICE_TLS_CA_FILE is set, else None (plaintext)."""
    env = os.environ if env is None else env
    ca = env.get("BILLING_SERVICE_TLS_CA_FILE", "").strip()
    if not ca:
        return None
    cert = env.get("BILLING_SERVICE_TLS_CERT_FILE", "").strip()
    key = env.get("BILLING_SERVICE_TLS_KEY_FILE", "").strip()
    return grpc.ssl_channel_credentials(
        Path(ca).read_bytes(),
        Path(key).read_bytes() if key else None,
        Path(cert).read_bytes() if cert else None,
    )


def call_metadata(caller: str, env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """The metadata of every call: our name, and the bearer token when one is set."""
    env = os.environ if env is None else env
    metadata: list[tuple[str, str]] = [(CALLER_METADATA_KEY, caller)]
    token = env.get("BILLING_SERVICE_TOKEN", "").strip()
    if token:
        metadata.append(("authorization", f"Bearer {token}"))
    return tuple(metadata)


def sync_channel(target: str) -> grpc.Channel:
    """A blocking channel to ``target`` with the configured transport security."""
    credentials = channel_credentials()
    if credentials is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, credentials)


def aio_channel(target: str) -> grpc.aio.Channel:
    """An asyncio channel to ``target`` with the configured transport security."""
    credentials = channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(target)
    return grpc.aio.secure_channel(target, credentials)
