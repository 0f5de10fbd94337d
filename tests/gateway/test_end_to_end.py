"""The whole flow over real processes: emulator -> signed webhooks -> gateway -> service."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from generated.billing.v1 import billing_pb2 as pb
from tests.gateway.system import System, new_user
from tests.support.processes import REPO_ROOT

DAY = 86400


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One emulator, one gateway, one billing service, shared by this module's tests."""
    with System(tmp_path_factory.mktemp("e2e")) as running:
        yield running


def assert_each_event_applied_once(system: System, user_id: str) -> list[pb.AuditEvent]:
    """No event recorded twice, no event audited twice; returns the user's audit records."""
    processed = system.processed()
    assert all(len(outcomes) == 1 for outcomes in processed.values())
    audit = system.audit(user_id)
    by_event = Counter(r.stripe_event_id for r in audit if r.stripe_event_id)
    assert all(count == 1 for count in by_event.values()), by_event
    assert set(by_event) <= set(processed)
    return audit


def test_make_demo_drives_the_whole_flow(system: System) -> None:
    gateway = system.gateways[0]
    env = {
        **os.environ,
        "BILLING_SERVICE_TARGET": system.service_addr,
        "GATEWAY_ADDR": f"{gateway.host}:{gateway.port}",
        "STRIPE_EMULATOR_URL": system.emulator.base_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "devtools.demo"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in (
        "CreateCheckout for user",
        "checkout.session.completed",
        "allowed=True tier=pro",
        "CancelSubscription at period end",
        "cancels at period end",
        "customer.subscription.deleted",
        "allowed=False tier=free",
        "REFUSED",
        "overage=2500",
        "meter event studio_tokens value=2500",
        "2500 \u00d7 studio_tokens",
        "demo complete",
    ):
        assert step in out, f"{step!r} missing from:\n{out}"
    user_id = re.search(r"CreateCheckout for user (\S+),", out).group(1)  # type: ignore[union-attr]
    audit = assert_each_event_applied_once(system, user_id)
    assert audit[0].tier_after == "free"
    assert audit[0].status_after == pb.SUBSCRIPTION_STATUS_CANCELED
    assert any(r.rpc == "CancelSubscription" for r in audit)
    assert any(r.tier_before != "pro" and r.tier_after == "pro" for r in audit)


def test_payment_failure_past_due_within_grace_then_unpaid_then_free(system: System) -> None:
    user_id = new_user()
    subscribed = system.subscribe(user_id, "pro")
    system.emulator.set_payment_failure(subscribed.stripe_customer_id, True)

    now = int(system.emulator.control("GET", "/clock")["now"])
    system.emulator.advance_clock(subscribed.current_period_end.seconds - now + 3600)
    past_due = system.wait_for(
        user_id, "past_due", lambda s: s.status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    )
    # Within grace: a failed renewal does not cost the paid tier yet.
    assert past_due.tier == "pro"
    assert system.entitlement(user_id, "priority_support").allowed

    # Stripe's payment retries all fail: unpaid, and access lapses.
    system.emulator.advance_clock(10 * DAY)
    unpaid = system.wait_for(user_id, "unpaid", lambda s: s.status == pb.SUBSCRIPTION_STATUS_UNPAID)
    assert unpaid.tier == "free"
    assert not system.entitlement(user_id, "priority_support").allowed
    audit = assert_each_event_applied_once(system, user_id)
    statuses = [r.status_after for r in reversed(audit)]
    assert pb.SUBSCRIPTION_STATUS_PAST_DUE in statuses
    assert statuses[-1] == pb.SUBSCRIPTION_STATUS_UNPAID


def test_plan_change_made_in_stripe_reaches_the_service(system: System) -> None:
    user_id = new_user()
    subscribed = system.subscribe(user_id, "pro")
    assert not system.entitlement(user_id, "api_access").allowed

    # What the customer portal does: swap the item's price.
    client = system.stripe()
    remote = client.v1.subscriptions.retrieve(subscribed.stripe_subscription_id)
    item_id = remote["items"]["data"][0]["id"]
    client.v1.subscriptions.update(
        subscribed.stripe_subscription_id,
        {"items": [{"id": item_id, "price": "price_studio_monthly"}]},
    )
    studio = system.wait_for(user_id, "studio", lambda s: s.tier == "studio")
    assert studio.plan == "studio"
    assert studio.stripe_price_id == "price_studio_monthly"
    assert system.entitlement(user_id, "api_access").allowed
    audit = assert_each_event_applied_once(system, user_id)
    assert audit[0].tier_before == "pro" and audit[0].tier_after == "studio"


def test_every_delivery_was_acknowledged(system: System) -> None:
    deliveries = system.wait_deliveries_idle()
    assert deliveries
    last = {}
    for delivery in deliveries:
        last[delivery["event_id"]] = delivery["status"]
    assert set(last.values()) == {200}
