"""The billing-client distribution, built as a wheel and installed into a clean venv.

The venv gets only the wheel and what it declares (grpcio, protobuf); a
script run there calls a real service with a bearer token through the
generated stubs and EntitlementClient. This is what a calling team installs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from billing_service.auth import token_hash
from tests.support.processes import REPO_ROOT, ServiceProcess

CLIENT_DIR = REPO_ROOT / "clients" / "python"
CHECK_SCRIPT = Path(__file__).with_name("installed_check.py")
TOKEN = "client-ci-token-7f3a91c5e2b84d06"


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{args[:4]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding the billing-client wheel and its dependencies only."""
    root = tmp_path_factory.mktemp("client")
    dist = root / "dist"
    # No build isolation: the wheel is built with this venv's setuptools, offline.
    wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    _run([*wheel, "-w", str(dist), str(CLIENT_DIR)])
    wheels = list(dist.glob("billing_client-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheels[0])])
    return python


@pytest.fixture(scope="module")
def token_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A service that authenticates callers by bearer token."""
    directory = tmp_path_factory.mktemp("client-auth")
    policy = directory / "auth.toml"
    policy.write_text(
        f"""
[callers.client-ci]
rpcs = ["GetSubscription", "GetEntitlements", "CheckEntitlement", "WatchEntitlements"]
token_sha256 = ["{token_hash(TOKEN)}"]
""",
        encoding="utf-8",
    )
    env = {
        "DATABASE_URL": f"sqlite:///{directory}/b.db",
        "BILLING_INSECURE_NO_AUTH": "false",
        "BILLING_AUTH_POLICY_FILE": str(policy),
    }
    with ServiceProcess(env) as service:
        yield service


def _check(python: Path, target: str, token: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "BILLING_SERVICE_TOKEN": token}
    # Run from outside the repository so nothing of the server can be imported by accident.
    return subprocess.run(
        [str(python), str(CHECK_SCRIPT), target, "user-client-ci"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=90,
        check=False,
    )


def test_the_installed_client_calls_the_service(
    client_python: Path, token_service: ServiceProcess, tmp_path: Path
) -> None:
    done = _check(client_python, token_service.target, TOKEN, tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["tier"] == "free"
    assert seen["live"] is True
    assert seen["first"] == [False, "free", "service"]
    assert seen["second_source"] == "cache"
    # The client venv holds none of the server's code or dependencies.
    assert seen["server_packages"] == []


def test_the_installed_client_presents_its_token(
    client_python: Path, token_service: ServiceProcess, tmp_path: Path
) -> None:
    done = _check(client_python, token_service.target, "not-the-token-0000000000", tmp_path)
    assert done.returncode != 0
    assert "UNAUTHENTICATED" in done.stderr
