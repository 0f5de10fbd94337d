"""EntitlementClient authenticates like the gateway: bearer token or mTLS, from the same variables.

Each service here has authentication on (a policy file, no insecure mode), as
in production, where ``x-billing-caller`` alone gets a caller nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc
import pytest

from billing_client import CredentialsError, EntitlementClient
from billing_service.auth import token_hash
from tests.support.certs import CertificateAuthority, KeyPair
from tests.support.processes import ServiceProcess

TOKEN = "search-token-4b7e2c9a1f6d3e80"
CALLER = "search"
USER = "user-client-auth"
# These tests are about who may call, not how fast: a first call (a TLS
# handshake, a loaded CI machine) may take longer than the client's 0.5 s
# default, which would answer fail-closed instead of the status under test.
PATIENT = 10.0

# The RPCs EntitlementClient calls; the policy grants nothing else.
POLICY = f"""
[callers.{CALLER}]
rpcs = ["GetEntitlements", "WatchEntitlements"]
token_sha256 = ["{token_hash(TOKEN)}"]

[callers.reporting]
rpcs = ["GetSubscription"]
"""


def _service_env(directory: Path) -> dict[str, str]:
    policy = directory / "auth.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return {
        "DATABASE_URL": f"sqlite:///{directory}/b.db",
        "BILLING_INSECURE_NO_AUTH": "false",
        "BILLING_AUTH_POLICY_FILE": str(policy),
    }


@pytest.fixture(scope="module")
def token_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A service that knows ``search`` by its bearer token."""
    with ServiceProcess(_service_env(tmp_path_factory.mktemp("client-token"))) as service:
        yield service


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateAuthority, KeyPair]:
    """A CA and the service's certificate (for 127.0.0.1)."""
    ca = CertificateAuthority(tmp_path_factory.mktemp("client-pki"))
    return ca, ca.issue("billing-service", server=True)


@pytest.fixture(scope="module")
def mtls_service(
    tmp_path_factory: pytest.TempPathFactory, pki: tuple[CertificateAuthority, KeyPair]
) -> Iterator[ServiceProcess]:
    """A service that requires a client certificate from ``pki``'s CA."""
    ca, server = pki
    env = {
        **_service_env(tmp_path_factory.mktemp("client-mtls")),
        "BILLING_TLS_CERT_FILE": str(server.cert),
        "BILLING_TLS_KEY_FILE": str(server.key),
        "BILLING_TLS_CLIENT_CA_FILE": str(ca.pair.cert),
    }
    with ServiceProcess(env) as service:
        yield service


async def _checks_are_answered_and_cached(env: Mapping[str, str]) -> None:
    async with EntitlementClient.from_env(caller=CALLER, env=env, timeout=PATIENT) as client:
        assert await client.wait_live(30), "the watch stream never connected"
        first = await client.check(USER, "priority_support")
        assert (first.allowed, first.tier, first.source) == (False, "free", "service")
        # Served from the cache: only while the (authenticated) watch stream is live.
        again = await client.check(USER, "priority_support")
        assert again.source == "cache"


async def test_bearer_token_from_the_gateways_variables(token_service: ServiceProcess) -> None:
    await _checks_are_answered_and_cached(
        {"BILLING_SERVICE_TARGET": token_service.target, "BILLING_SERVICE_TOKEN": TOKEN}
    )


@pytest.mark.parametrize("token", ["", "not-the-token-00000000"])
async def test_without_a_known_token_checks_are_refused_not_failed_closed(
    token_service: ServiceProcess, token: str
) -> None:
    env = {"BILLING_SERVICE_TARGET": token_service.target, "BILLING_SERVICE_TOKEN": token}
    async with EntitlementClient.from_env(
        caller=CALLER, env=env, timeout=PATIENT, watch=False
    ) as client:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.check(USER, "priority_support")
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_client_certificate_from_the_gateways_variables(
    mtls_service: ServiceProcess, pki: tuple[CertificateAuthority, KeyPair]
) -> None:
    ca, _ = pki
    client = ca.issue(CALLER)
    await _checks_are_answered_and_cached(
        {
            "BILLING_SERVICE_TARGET": mtls_service.target,
            "BILLING_SERVICE_TLS_CA_FILE": str(ca.pair.cert),
            "BILLING_SERVICE_TLS_CERT_FILE": str(client.cert),
            "BILLING_SERVICE_TLS_KEY_FILE": str(client.key),
        }
    )


async def test_a_certificate_of_a_caller_without_the_rpcs_is_denied(
    mtls_service: ServiceProcess, pki: tuple[CertificateAuthority, KeyPair]
) -> None:
    ca, _ = pki
    other = ca.issue("reporting")
    env = {
        "BILLING_SERVICE_TARGET": mtls_service.target,
        "BILLING_SERVICE_TLS_CA_FILE": str(ca.pair.cert),
        "BILLING_SERVICE_TLS_CERT_FILE": str(other.cert),
        "BILLING_SERVICE_TLS_KEY_FILE": str(other.key),
    }
    async with EntitlementClient.from_env(
        caller=CALLER, env=env, timeout=PATIENT, watch=False
    ) as client:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.check(USER, "priority_support")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_half_a_key_pair_is_refused_before_any_call(tmp_path: Path) -> None:
    env = {
        "BILLING_SERVICE_TLS_CA_FILE": str(tmp_path / "ca.crt"),
        "BILLING_SERVICE_TLS_CERT_FILE": str(tmp_path / "client.crt"),
    }
    with pytest.raises(CredentialsError, match="BILLING_SERVICE_TLS_KEY_FILE"):
        EntitlementClient.from_env(caller=CALLER, env=env, timeout=PATIENT)
