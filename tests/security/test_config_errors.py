"""Configuration mistakes stop the service and the gateway at start: a message and exit 2.

Everything through the real CLIs (subprocesses), plus the one request-level
case (an out-of-range page token) through gRPC on both backends.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from billing_service.auth import token_hash
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.processes import PLANS_FILE, REPO_ROOT, ServiceProcess


def run_cli(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module serve`` until it exits (it must: these are start-up errors)."""
    return subprocess.run(
        [sys.executable, "-m", module, "serve"],
        env={"PATH": "", "BILLING_PLANS_FILE": str(PLANS_FILE), **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2 with every fragment in the message, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def service_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A service on a private SQLite file with authentication on."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path}/billing.db",
        "BILLING_GRPC_ADDR": "127.0.0.1:0",
        **extra,
    }


GATEWAY_HASH = token_hash("gateway-token")


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        ('[callers.web]\nrpc = ["GetSubscription"]\n', "unknown key callers.web.rpc"),
        (
            f'[callers.web]\nrpcs = ["GetSubscription"]\ntoken_sha = ["{GATEWAY_HASH}"]\n',
            "unknown key callers.web.token_sha",
        ),
        ('caller = "x"\n[callers.web]\nrpcs = []\n', "unknown key caller"),
        (
            f'[callers.a]\nrpcs = []\ntoken_sha256 = ["{GATEWAY_HASH}"]\n'
            f'[callers.b]\nrpcs = []\ntoken_sha256 = ["{GATEWAY_HASH}"]\n',
            "callers.a lists too",
        ),
    ],
    ids=["rpc", "token_sha", "top_level", "one_hash_two_callers"],
)
def test_policy_mistakes_are_named(tmp_path: Path, policy: str, named: str) -> None:
    path = tmp_path / "auth.toml"
    path.write_text(policy, encoding="utf-8")
    env = service_env(tmp_path, BILLING_AUTH_POLICY_FILE=str(path))
    assert_refused(run_cli("billing_service.cli", env), named)


def test_a_policy_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "auth.toml"
    path.write_bytes(b'[callers.web]\nrpcs = ["\xff\xfe"]\n')
    env = service_env(tmp_path, BILLING_AUTH_POLICY_FILE=str(path))
    assert_refused(run_cli("billing_service.cli", env), "is not UTF-8")


def test_a_policy_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    env = service_env(tmp_path, BILLING_AUTH_POLICY_FILE=str(tmp_path))
    assert_refused(run_cli("billing_service.cli", env), "is a directory")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other socket listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_the_service_says_its_address_is_in_use(tmp_path: Path, busy_port: int) -> None:
    addr = f"127.0.0.1:{busy_port}"
    env = service_env(tmp_path, BILLING_GRPC_ADDR=addr, BILLING_INSECURE_NO_AUTH="true")
    assert_refused(run_cli("billing_service.cli", env), f"cannot listen on {addr}: in use")


def test_the_service_says_its_metrics_address_is_in_use(tmp_path: Path, busy_port: int) -> None:
    addr = f"127.0.0.1:{busy_port}"
    env = service_env(tmp_path, BILLING_METRICS_ADDR=addr, BILLING_INSECURE_NO_AUTH="true")
    assert_refused(run_cli("billing_service.cli", env), f"cannot listen on {addr}: in use")


def test_the_gateway_says_its_address_is_in_use(tmp_path: Path, busy_port: int) -> None:
    addr = f"127.0.0.1:{busy_port}"
    env = {
        "GATEWAY_ADDR": addr,
        "STRIPE_WEBHOOK_SECRETS": "whsec_x",
        "DATABASE_URL": f"sqlite:///{tmp_path}/billing.db",
    }
    assert_refused(run_cli("webhook_gateway.cli", env), f"cannot listen on {addr}: in use")


@pytest.mark.parametrize("host", ["127.1.2.3.example", "0.0.0.0", "[::]"])
def test_insecure_mode_refuses_addresses_that_are_not_loopback(tmp_path: Path, host: str) -> None:
    env = service_env(tmp_path, BILLING_GRPC_ADDR=f"{host}:0", BILLING_INSECURE_NO_AUTH="true")
    assert_refused(run_cli("billing_service.cli", env), "BILLING_INSECURE_NO_AUTH=true refuses")


@pytest.fixture(scope="module")
def audit_service(database_url: str) -> Iterator[ServiceProcess]:
    """A service over both backends (no Stripe call is made)."""
    with ServiceProcess({"DATABASE_URL": database_url}) as process:
        yield process


@pytest.fixture
async def audit_stub(audit_service: ServiceProcess) -> AsyncIterator[pb_grpc.BillingServiceStub]:
    """A stub on a fresh channel."""
    async with grpc.aio.insecure_channel(audit_service.target) as channel:
        yield pb_grpc.BillingServiceStub(channel)


def _token(number: int | str) -> str:
    return base64.urlsafe_b64encode(f"audit:{number}".encode()).decode().rstrip("=")


@pytest.mark.parametrize("number", [2**63, 10**30, -(2**70), "9" * 5000])
async def test_a_page_token_with_an_out_of_range_number_is_invalid_argument(
    audit_stub: pb_grpc.BillingServiceStub, number: int | str
) -> None:
    request = pb.ListAuditEventsRequest(user_id="user-1", page_token=_token(number))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await audit_stub.ListAuditEvents(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (raised.value.details() or "")


async def test_the_largest_page_token_still_pages(audit_stub: pb_grpc.BillingServiceStub) -> None:
    request = pb.ListAuditEventsRequest(user_id="user-1", page_token=_token(2**63 - 1))
    answer = await audit_stub.ListAuditEvents(request, timeout=10)
    assert list(answer.events) == []
