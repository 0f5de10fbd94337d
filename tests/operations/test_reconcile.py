"""`billing-service reconcile` as a subprocess, healing events that were never delivered."""

from __future__ import annotations

import socket
import subprocess
import threading
from datetime import UTC, datetime

import stripe

from devtools.stripe_emulator.process import EmulatorProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.operations.support import (
    audit,
    emulator_now,
    pay_without_webhooks,
    run_cli,
    summary_counts,
)
from tests.support.processes import ServiceProcess


def iso(seconds: int) -> str:
    """Unix seconds as 2026-11-01T00:00:00Z."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_reconcile_heals_a_gap_of_undelivered_events_and_a_rerun_applies_nothing(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    service: ServiceProcess,
    database_url: str,
    user_id: str,
) -> None:
    since = emulator_now(emulator)
    await pay_without_webhooks(stub, emulator, user_id, "pro")
    gap = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert gap.status == pb.SUBSCRIPTION_STATUS_NONE  # the events never arrived

    first = run_cli(
        ["reconcile", "--since", iso(since)],
        database_url=database_url,
        stripe_base=emulator.base_url,
        service=service,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    counts = summary_counts(first.stdout)
    assert counts["seen"] >= 3  # subscription.created, invoice.paid, checkout.session.completed
    assert counts["applied"] >= 3
    assert counts["failed"] == 0
    assert "result: OK" in first.stdout

    healed = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert (healed.status, healed.tier, healed.plan) == (
        pb.SUBSCRIPTION_STATUS_ACTIVE,
        "pro",
        "pro",
    )
    records = await audit(stub, user_id)
    assert [r for r in records if r.tier_before == "free" and r.tier_after == "pro"]
    assert all(r.stripe_event_id for r in records)  # applied as the events themselves

    second = run_cli(
        ["reconcile", "--since", iso(since)],
        database_url=database_url,
        stripe_base=emulator.base_url,
        service=service,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    again = summary_counts(second.stdout)
    assert again["seen"] == counts["seen"]
    assert again["already processed"] == counts["seen"]
    assert again["applied"] == again["duplicate"] == again["failed"] == 0
    assert len(await audit(stub, user_id)) == len(records)


async def test_reconcile_accepts_a_relative_since(
    emulator: EmulatorProcess, service: ServiceProcess, database_url: str
) -> None:
    done = run_cli(
        ["reconcile", "--since", "1h"],
        database_url=database_url,
        stripe_base=emulator.base_url,
        service=service,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary_counts(done.stdout)["failed"] == 0


def reconcile_against_a_hang_up(
    service: ServiceProcess, database_url: str, retries: int
) -> tuple[subprocess.CompletedProcess[str], int]:
    """``reconcile --since 1d`` against a "Stripe" that accepts and hangs up; its connections."""
    with socket.socket() as hangs_up:
        hangs_up.bind(("127.0.0.1", 0))
        hangs_up.listen()
        accepted = 0

        def serve() -> None:
            nonlocal accepted
            while True:
                try:
                    conn, _ = hangs_up.accept()
                except OSError:
                    return
                accepted += 1
                conn.close()

        threading.Thread(target=serve, daemon=True).start()
        done = run_cli(
            ["reconcile", "--since", "1d"],
            database_url=database_url,
            stripe_base=f"http://127.0.0.1:{hangs_up.getsockname()[1]}",
            service=service,
            STRIPE_MAX_NETWORK_RETRIES=str(retries),
        )
    return done, accepted


async def test_reconcile_fails_loudly_when_stripe_is_unreachable(
    service: ServiceProcess, database_url: str
) -> None:
    done, once = reconcile_against_a_hang_up(service, database_url, retries=0)
    assert done.returncode == 1
    assert "could not list Stripe events" in done.stdout
    assert "nothing was applied" in done.stdout
    assert "result: INCOMPLETE" in done.stdout
    retried, twice = reconcile_against_a_hang_up(service, database_url, retries=1)
    assert retried.returncode == 1 and "result: INCOMPLETE" in retried.stdout
    # The SDK's own retries (STRIPE_MAX_NETWORK_RETRIES) tried the listing again first.
    assert once > 0 and twice == 2 * once


async def test_reconcile_reports_events_it_could_not_apply(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    database_url: str,
    user_id: str,
) -> None:
    since = emulator_now(emulator)
    await pay_without_webhooks(stub, emulator, user_id, "pro")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    done = run_cli(
        ["reconcile", "--since", iso(since)],
        database_url=database_url,
        stripe_base=emulator.base_url,
        BILLING_SERVICE_TARGET=f"127.0.0.1:{closed_port}",  # the service is down
    )
    assert done.returncode == 1
    counts = summary_counts(done.stdout)
    assert counts["failed"] == counts["seen"] - counts["already processed"] >= 3
    assert "not attempted" in done.stdout
    assert "result: INCOMPLETE" in done.stdout


async def test_reconcile_rejects_an_unreadable_since(
    emulator: EmulatorProcess, service: ServiceProcess, database_url: str
) -> None:
    for bad in ("yesterday", "2999-01-01T00:00:00Z"):
        done = run_cli(
            ["reconcile", "--since", bad],
            database_url=database_url,
            stripe_base=emulator.base_url,
            service=service,
        )
        assert done.returncode == 2
        assert "--since" in done.stderr


async def test_reconcile_user_resyncs_from_the_subscriptions_api(
    stub: pb_grpc.BillingServiceStub,
    emulator: EmulatorProcess,
    client: stripe.StripeClient,
    service: ServiceProcess,
    database_url: str,
    user_id: str,
) -> None:
    await pay_without_webhooks(stub, emulator, user_id, "studio")
    first = run_cli(
        ["reconcile", "--user", user_id],
        database_url=database_url,
        stripe_base=emulator.base_url,
        service=service,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 subscription(s) in Stripe, 1 changed" in first.stdout
    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert (got.status, got.tier, got.plan) == (pb.SUBSCRIPTION_STATUS_ACTIVE, "studio", "studio")
    records = await audit(stub, user_id)
    assert len(records) == 1
    assert (records[0].rpc, records[0].caller) == ("ReconcileUser", "billing-service-reconcile")
    assert records[0].detail.startswith("reconcile:")
    assert (records[0].tier_before, records[0].tier_after) == ("free", "studio")

    second = run_cli(
        ["reconcile", "--user", user_id],
        database_url=database_url,
        stripe_base=emulator.base_url,
        service=service,
    )
    assert second.returncode == 0
    assert "1 subscription(s) in Stripe, 0 changed" in second.stdout
    assert len(await audit(stub, user_id)) == 1

    # Canceled in Stripe behind our back: the resync brings it home.
    await client.v1.subscriptions.cancel_async(got.stripe_subscription_id)
    third = run_cli(
        ["reconcile", "--user", user_id],
        database_url=database_url,
        stripe_base=emulator.base_url,
        service=service,
    )
    assert "1 changed" in third.stdout
    got = (await stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id))).subscription
    assert (got.status, got.tier) == (pb.SUBSCRIPTION_STATUS_CANCELED, "free")
    assert len(await audit(stub, user_id)) == 2


async def test_reconcile_user_errors(
    emulator: EmulatorProcess, service: ServiceProcess, database_url: str, user_id: str
) -> None:
    unknown = run_cli(
        ["reconcile", "--user", user_id],
        database_url=database_url,
        stripe_base=emulator.base_url,
        service=service,
    )
    assert unknown.returncode == 1
    assert "NOT_FOUND" in unknown.stdout
