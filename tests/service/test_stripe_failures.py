"""Stripe failures map to UNAVAILABLE and INTERNAL, and never leak the API key."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import grpc

from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import checkout, expect_code
from tests.support.processes import ServiceProcess


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_stripe_is_unavailable(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        "STRIPE_API_BASE": f"http://127.0.0.1:{_closed_port()}",
        "STRIPE_SECRET_KEY": "sk_test_unreachable",
    }
    with ServiceProcess(env) as service:
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            await expect_code(checkout(stub, "u-unreachable"), grpc.StatusCode.UNAVAILABLE)


async def test_rejected_key_is_internal_and_never_echoed(tmp_path: Path, emulator: Any) -> None:
    secret = "rk_live_do_not_leak_4f9a2c"
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        "STRIPE_API_BASE": emulator.base_url,
        "STRIPE_SECRET_KEY": secret,
    }
    with ServiceProcess(env) as service:
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            details = await expect_code(checkout(stub, "u-badkey"), grpc.StatusCode.INTERNAL)
        logged = service.log_text()
    assert "STRIPE_SECRET_KEY" in details
    assert secret not in details
    assert secret[-6:] not in details
    assert secret not in logged
