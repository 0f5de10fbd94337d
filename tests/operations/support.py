"""Helpers of the operations tests: emulator time, payments without webhooks, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.support.flows import apply_all_events, checkout
from tests.support.processes import PLANS_FILE, REPO_ROOT, ServiceProcess


def emulator_now(emulator: EmulatorProcess) -> int:
    """The emulator's clock (Stripe time), in unix seconds."""
    return int(emulator.control("GET", "/clock")["now"])


async def pay_without_webhooks(
    stub: pb_grpc.BillingServiceStub, emulator: EmulatorProcess, user_id: str, plan: str = "pro"
) -> str:
    """CreateCheckout and pay it in the emulator; no event reaches the service. Returns cs_..."""
    session = await checkout(stub, user_id, plan)
    emulator.complete_checkout(session.session_id)
    return session.session_id


async def subscribe_now(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    user_id: str,
    plan: str = "pro",
) -> pb.Subscription:
    """Checkout, pay, and apply the events of just this flow; returns the subscription."""
    since = emulator_now(emulator)
    await pay_without_webhooks(stub, emulator, user_id, plan)
    await apply_all_events(stub, client, since)
    got = await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=5)
    return got.subscription


async def audit(stub: pb_grpc.BillingServiceStub, user_id: str) -> list[pb.AuditEvent]:
    """Every audit record of ``user_id``, newest first."""
    answer = await stub.ListAuditEvents(
        pb.ListAuditEventsRequest(user_id=user_id, page_size=500), timeout=5
    )
    return list(answer.events)


def run_cli(
    args: list[str],
    *,
    database_url: str,
    stripe_base: str,
    service: ServiceProcess | None = None,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``billing-service ARGS`` as the operator would, with the test's settings."""
    env: dict[str, Any] = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        "STRIPE_API_BASE": stripe_base,
        "STRIPE_SECRET_KEY": "sk_test_emulator",
        "BILLING_PLANS_FILE": str(PLANS_FILE),
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "BILLING_RECONCILE_MAX_ATTEMPTS": "2",
        "BILLING_RECONCILE_BACKOFF_SECONDS": "0.05",
        "BILLING_LOG_LEVEL": "WARNING",
        **({"BILLING_SERVICE_TARGET": service.target} if service else {}),
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "billing_service.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def summary_counts(stdout: str) -> dict[str, int]:
    """The ``name: N`` lines of a reconcile report."""
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition(": ")
        if sep and value.strip().isdigit() and not line.startswith(" "):
            counts[name] = int(value)
    return counts
