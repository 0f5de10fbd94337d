"""Fixtures of the gateway tests: the stand-in service, a migrated database, gateways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from billing_service.storage.database import migrate, open_database
from tests.gateway.standin import StandIn
from tests.gateway.support import GatewayProcess

OLD_SECRET = "whsec_test_old_secret"
NEW_SECRET = "whsec_test_new_secret"


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    """A programmable grpc.aio BillingService stand-in."""
    server = StandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database for dead letters."""
    path: Path = tmp_path_factory.mktemp("gateway") / "billing.db"
    url = f"sqlite:///{path}"
    db = open_database(url)
    migrate(db)
    db.close()
    return url


def gateway_env(target: str, database_url: str, **extra: str) -> dict[str, str]:
    """Environment of a gateway in front of ``target`` with both test secrets."""
    return {
        "BILLING_SERVICE_TARGET": target,
        "STRIPE_WEBHOOK_SECRETS": f"{OLD_SECRET},{NEW_SECRET}",
        "DATABASE_URL": database_url,
        "GATEWAY_FORWARD_DEADLINE_SECONDS": "2",
        **extra,
    }


@pytest.fixture(scope="module")
def gateway(standin: StandIn, gateway_db: str) -> Iterator[GatewayProcess]:
    """A gateway in front of the stand-in."""
    with GatewayProcess(gateway_env(standin.target, gateway_db)) as process:
        yield process
