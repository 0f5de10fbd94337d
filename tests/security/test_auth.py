"""Authentication and per-method authorization over real TLS and bearer tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing_service.auth import token_hash
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.certs import CertificateAuthority, KeyPair
from tests.support.flows import expect_code
from tests.support.processes import ServiceProcess

GATEWAY_TOKEN = "gw-token-7a1c9e0b5d2f4a68"
BACKEND_TOKEN = "backend-token-3e8b1f6c0a9d2e47"
ROTATED_TOKEN = "backend-token-next-5c2a7e1d9b"


def _policy(directory: Path) -> Path:
    path = directory / "auth.toml"
    path.write_text(
        f"""
[callers.webhook-gateway]
rpcs = ["ApplyStripeEvent"]
token_sha256 = ["{token_hash(GATEWAY_TOKEN)}"]

[callers.web-backend]
rpcs = ["GetSubscription", "CheckEntitlement"]
token_sha256 = ["{token_hash(BACKEND_TOKEN)}", "{token_hash(ROTATED_TOKEN)}"]
""",
        encoding="utf-8",
    )
    return path


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def token_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    directory = tmp_path_factory.mktemp("auth")
    env = {
        "DATABASE_URL": f"sqlite:///{directory}/b.db",
        "BILLING_INSECURE_NO_AUTH": "false",
        "BILLING_AUTH_POLICY_FILE": str(_policy(directory)),
    }
    with ServiceProcess(env) as service:
        yield service


async def test_tokens_authenticate_and_policy_authorizes(token_service: ServiceProcess) -> None:
    async with grpc.aio.insecure_channel(token_service.target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        get = pb.GetSubscriptionRequest(user_id="u1")

        await expect_code(stub.GetSubscription(get), grpc.StatusCode.UNAUTHENTICATED)
        await expect_code(
            stub.GetSubscription(get, metadata=_bearer("wrong-token-0000")),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        for token in (BACKEND_TOKEN, ROTATED_TOKEN):
            answer = await stub.GetSubscription(get, metadata=_bearer(token))
            assert answer.subscription.tier == "free"

        details = await expect_code(
            stub.ApplyStripeEvent(
                pb.ApplyStripeEventRequest(payload=b"{}"), metadata=_bearer(BACKEND_TOKEN)
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert "web-backend" in details
        await expect_code(
            stub.GetSubscription(get, metadata=_bearer(GATEWAY_TOKEN)),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        # The gateway passes authorization and reaches ApplyStripeEvent's own validation.
        await expect_code(
            stub.ApplyStripeEvent(
                pb.ApplyStripeEventRequest(payload=b"{}"), metadata=_bearer(GATEWAY_TOKEN)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )

        # ApplyStripeEvents, the batch form, needs no policy entry of its own.
        batch = pb.ApplyStripeEventsRequest(events=[pb.ApplyStripeEventRequest(payload=b"{}")])
        answer = await stub.ApplyStripeEvents(batch, metadata=_bearer(GATEWAY_TOKEN))
        assert answer.results[0].error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        details = await expect_code(
            stub.ApplyStripeEvents(batch, metadata=_bearer(BACKEND_TOKEN)),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert "web-backend may not call ApplyStripeEvents" in details

        health = health_pb2_grpc.HealthStub(channel)
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == (
            health_pb2.HealthCheckResponse.SERVING
        )

    log = token_service.log_text()
    assert "unauthenticated call to /billing.v1.BillingService/GetSubscription" in log
    assert "web-backend may not call ApplyStripeEvent" in log
    for token in (GATEWAY_TOKEN, BACKEND_TOKEN, ROTATED_TOKEN, "wrong-token-0000"):
        assert token not in log


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateAuthority, KeyPair]:
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"))
    return ca, ca.issue("billing-service", server=True)


def _channel(target: str, ca: CertificateAuthority, client: KeyPair | None) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.pair.cert.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )
    return grpc.aio.secure_channel(target, credentials)


async def test_mutual_tls_names_the_caller(
    tmp_path: Path, pki: tuple[CertificateAuthority, KeyPair]
) -> None:
    ca, server = pki
    stranger_ca = CertificateAuthority(tmp_path, "stranger-ca")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        "BILLING_INSECURE_NO_AUTH": "false",
        "BILLING_AUTH_POLICY_FILE": str(_policy(tmp_path)),
        "BILLING_TLS_CERT_FILE": str(server.cert),
        "BILLING_TLS_KEY_FILE": str(server.key),
        "BILLING_TLS_CLIENT_CA_FILE": str(ca.pair.cert),
    }
    with ServiceProcess(env) as service:
        get = pb.GetSubscriptionRequest(user_id="u1")
        async with _channel(service.target, ca, ca.issue("web-backend")) as channel:
            answer = await pb_grpc.BillingServiceStub(channel).GetSubscription(get, timeout=5)
            assert answer.subscription.tier == "free"
        async with _channel(service.target, ca, ca.issue("webhook-gateway")) as channel:
            await expect_code(
                pb_grpc.BillingServiceStub(channel).GetSubscription(get, timeout=5),
                grpc.StatusCode.PERMISSION_DENIED,
            )
        async with _channel(service.target, ca, ca.issue("unknown-service")) as channel:
            await expect_code(
                pb_grpc.BillingServiceStub(channel).GetSubscription(get, timeout=5),
                grpc.StatusCode.UNAUTHENTICATED,
            )
        # No client certificate, or one from another CA: the TLS handshake fails.
        for client in (None, stranger_ca.issue("web-backend")):
            async with _channel(service.target, ca, client) as channel:
                await expect_code(
                    pb_grpc.BillingServiceStub(channel).GetSubscription(get, timeout=5),
                    grpc.StatusCode.UNAVAILABLE,
                )


def test_insecure_mode_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    service = ServiceProcess(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
            "BILLING_GRPC_ADDR": "0.0.0.0:0",
            "BILLING_INSECURE_NO_AUTH": "true",
        }
    )
    with pytest.raises(RuntimeError, match="BILLING_INSECURE_NO_AUTH"):
        service.start()


def test_no_policy_and_no_insecure_mode_refuses_to_start(tmp_path: Path) -> None:
    service = ServiceProcess(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/b.db", "BILLING_INSECURE_NO_AUTH": "false"}
    )
    with pytest.raises(RuntimeError, match="BILLING_AUTH_POLICY_FILE"):
        service.start()
