"""Shared fixtures: backing databases, the Stripe emulator, and real service processes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest

from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.processes import PLANS_FILE, REPO_ROOT, ServiceProcess
from tests.support.services import fresh_postgres_database
from tests.support.tcp_proxy import TcpProxy

EMULATOR_KEY = "sk_test_emulator"


def migrate(database_url: str) -> None:
    """Apply migrations through the real CLI."""
    subprocess.run(
        [sys.executable, "-m", "billing_service.cli", "migrate"],
        env={"DATABASE_URL": database_url, "PATH": ""},
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )


@contextmanager
def migrated_database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a migrated, empty database: ``kind`` is "sqlite" or "postgresql"."""
    if kind == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "billing.db"
        url = f"sqlite:///{path}"
        migrate(url)
        yield url
        return
    with fresh_postgres_database() as url:
        migrate(url)
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database per module, on SQLite and on PostgreSQL."""
    with migrated_database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def shared_postgres() -> Iterator[str]:
    """A migrated PostgreSQL database that the several processes of one test module share."""
    with fresh_postgres_database() as url:
        migrate(url)
        yield url


@pytest.fixture(scope="module")
def proxied_postgres() -> Iterator[tuple[str, TcpProxy]]:
    """A migrated PostgreSQL database behind a TCP proxy the test can cut and restore."""
    with fresh_postgres_database() as url:
        migrate(url)
        parts = urlsplit(url)
        with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
            netloc = f"{parts.username}@127.0.0.1:{proxy.port}"
            yield parts._replace(netloc=netloc).geturl(), proxy


@pytest.fixture(scope="session")
def emulator() -> Iterator[object]:
    """The project's Stripe emulator, one per test session."""
    from devtools.stripe_emulator.process import EmulatorProcess

    with EmulatorProcess(PLANS_FILE) as process:
        yield process


@pytest.fixture(scope="module")
def service(database_url: str, emulator: object) -> Iterator[ServiceProcess]:
    """A billing-service process over ``database_url`` and the emulator."""
    env = {
        "DATABASE_URL": database_url,
        "STRIPE_API_BASE": emulator.base_url,  # type: ignore[attr-defined]
        "STRIPE_SECRET_KEY": EMULATOR_KEY,
    }
    with ServiceProcess(env) as process:
        yield process


@pytest.fixture
async def stub(service: ServiceProcess) -> AsyncIterator[pb_grpc.BillingServiceStub]:
    """An async BillingService stub on a fresh channel to ``service``."""
    async with grpc.aio.insecure_channel(service.target) as channel:
        yield pb_grpc.BillingServiceStub(channel)


@pytest.fixture
def user_id() -> str:
    """A user id no other test uses."""
    return f"user-{uuid.uuid4().hex[:10]}"
