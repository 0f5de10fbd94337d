"""The gateway authenticates to a billing service that requires credentials."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from billing_service.auth import token_hash
from billing_service.storage.database import migrate, open_database
from tests.gateway.support import GatewayProcess, deliver
from tests.support.certs import CertificateAuthority
from tests.support.processes import ServiceProcess

SECRET = "whsec_auth_test_secret_0123"
TOKEN = "gateway-token-" + "x" * 24


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, str]]:
    """A billing service whose policy lets the webhook-gateway caller (by token) apply events."""
    tmp = tmp_path_factory.mktemp("auth")
    policy = tmp / "auth.toml"
    policy.write_text(
        "[callers.webhook-gateway]\n"
        'rpcs = ["ApplyStripeEvent"]\n'
        f'token_sha256 = ["{token_hash(TOKEN)}"]\n'
    )
    database_url = f"sqlite:///{tmp / 'billing.db'}"
    db = open_database(database_url)
    migrate(db)
    db.close()
    env = {
        "DATABASE_URL": database_url,
        "BILLING_INSECURE_NO_AUTH": "false",
        "BILLING_AUTH_POLICY_FILE": str(policy),
        "STRIPE_SECRET_KEY": "sk_test_unused",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
    }
    with ServiceProcess(env) as service:
        yield service, database_url


def _gateway(secured: tuple[ServiceProcess, str], token: str) -> GatewayProcess:
    service, database_url = secured
    return GatewayProcess(
        {
            "BILLING_SERVICE_TARGET": service.target,
            "STRIPE_WEBHOOK_SECRETS": SECRET,
            "DATABASE_URL": database_url,
            "BILLING_SERVICE_TOKEN": token,
        }
    )


def _event() -> dict[str, object]:
    return {
        "id": f"evt_auth_{uuid.uuid4().hex[:12]}",
        "object": "event",
        "type": "customer.created",
        "created": int(time.time()),
        "data": {"object": {"id": "cus_auth", "object": "customer"}},
    }


def test_gateway_with_its_token_is_let_through(secured: tuple[ServiceProcess, str]) -> None:
    with _gateway(secured, TOKEN) as gateway:
        event = _event()
        answer = deliver(gateway, event, SECRET)
        assert answer.status == 200, answer
        assert answer.json == {"status": "ignored", "event_id": event["id"]}
        assert TOKEN not in gateway.log_text()


@pytest.mark.parametrize("token", ["", "not-the-token"])
def test_refused_credentials_answer_503_so_stripe_keeps_the_event(
    secured: tuple[ServiceProcess, str], token: str
) -> None:
    with _gateway(secured, token) as gateway:
        answer = deliver(gateway, _event(), SECRET)
        assert answer.status == 503
        assert answer.json["code"] == "UNAUTHENTICATED"


def test_gateway_over_mutual_tls_is_let_through_and_others_are_not(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("mtls")
    ca = CertificateAuthority(tmp)
    server = ca.issue("billing-service", server=True)
    policy = tmp / "auth.toml"
    policy.write_text(
        '[callers.webhook-gateway]\nrpcs = ["ApplyStripeEvent"]\n'
        '[callers.web-backend]\nrpcs = ["GetSubscription"]\n'
    )
    database_url = f"sqlite:///{tmp / 'billing.db'}"
    env = {
        "DATABASE_URL": database_url,
        "BILLING_INSECURE_NO_AUTH": "false",
        "BILLING_AUTH_POLICY_FILE": str(policy),
        "BILLING_TLS_CERT_FILE": str(server.cert),
        "BILLING_TLS_KEY_FILE": str(server.key),
        "BILLING_TLS_CLIENT_CA_FILE": str(ca.pair.cert),
        "STRIPE_SECRET_KEY": "sk_test_unused",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
    }
    with ServiceProcess(env) as service:
        for name, status in (("webhook-gateway", 200), ("web-backend", 503)):
            client = ca.issue(name)
            gateway_env = {
                "BILLING_SERVICE_TARGET": service.target,
                "STRIPE_WEBHOOK_SECRETS": SECRET,
                "DATABASE_URL": database_url,
                "BILLING_SERVICE_TLS_CA_FILE": str(ca.pair.cert),
                "BILLING_SERVICE_TLS_CERT_FILE": str(client.cert),
                "BILLING_SERVICE_TLS_KEY_FILE": str(client.key),
            }
            with GatewayProcess(gateway_env) as gateway:
                event = _event()
                answer = deliver(gateway, event, SECRET)
                assert answer.status == status, (name, answer)
                if status == 200:
                    assert answer.json == {"status": "ignored", "event_id": event["id"]}
                else:
                    assert answer.json["code"] == "PERMISSION_DENIED"
