"""Credentials the command-line tools present when they call the billing service.

The same variables as the gateway's (docs/gateway.md): BILLING_SERVICE_TOKEN
for a bearer token, BILLING_SERVICE_TLS_CA_FILE to verify the service over
TLS, and BILLING_SERVICE_TLS_CERT_FILE/_KEY_FILE for mTLS. The work is the
billing-client package's (``billing_client.Credentials``); the tools keep
their own retry loops, so the channel does not retry as well.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

import billing_client
from billing_client import Credentials


def channel_credentials(env: Mapping[str, str] | None = None) -> grpc.ChannelCredentials | None:
    """TLS credentials when BILLING_SERVICE_TLS_CA_FILE is set, else None (plaintext)."""
    return Credentials.from_env(env).channel_credentials()


def call_metadata(caller: str, env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """The metadata of every call: our name, and the bearer token when one is set."""
    return Credentials.from_env(env).metadata(caller)


def sync_channel(target: str) -> grpc.Channel:
    """A blocking channel to ``target`` with the configured transport security."""
    return billing_client.sync_channel(target, Credentials.from_env(), retries=False)


def aio_channel(target: str) -> grpc.aio.Channel:
    """An asyncio channel to ``target`` with the configured transport security."""
    return billing_client.aio_channel(target, Credentials.from_env(), retries=False)
