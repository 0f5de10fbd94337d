"""Gateway -> service with NO Stripe API reachable: checkout, subscription and invoice events apply.

The service's STRIPE_API_BASE points at a port where nothing listens, and
every event's payload decides on its own, so every delivery is answered 200
(never 503) and the state is what the events say: both API shapes, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.events import factory
from tests.gateway.support import GatewayProcess, deliver
from tests.support.processes import ServiceProcess

SECRET = "whsec_no_stripe_0123456789"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def chain(database_url: str) -> Iterator[tuple[GatewayProcess, pb_grpc.BillingServiceStub]]:
    """A gateway in front of a service whose Stripe is unreachable."""
    env = {
        "DATABASE_URL": database_url,
        "STRIPE_API_BASE": f"http://127.0.0.1:{closed_port()}",
        "STRIPE_SECRET_KEY": "sk_test_unreachable",
        "BILLING_LOG_LEVEL": "WARNING",
    }
    with ServiceProcess(env) as service:
        gateway_env = {
            "BILLING_SERVICE_TARGET": service.target,
            "STRIPE_WEBHOOK_SECRETS": SECRET,
            "DATABASE_URL": database_url,
        }
        with (
            GatewayProcess(gateway_env) as gateway,
            grpc.insecure_channel(service.target) as channel,
        ):
            yield gateway, pb_grpc.BillingServiceStub(channel)


def renewal_story(user_id: str, legacy: bool) -> list[dict[str, Any]]:
    """Checkout, subscription created, first invoice paid, renewal failed then paid; in order."""
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    t = factory.BASE_TIME
    session = factory.checkout_session(cus, sub_id, client_reference_id=user_id)
    active = factory.subscription(sub_id, cus, "active", user_id=user_id, legacy=legacy)
    past_due = factory.subscription(sub_id, cus, "past_due", user_id=user_id, legacy=legacy)
    first = factory.invoice(cus, sub_id, legacy=legacy, user_id=user_id)
    first.update(status="paid", amount_due=2000, amount_paid=2000, created=t)
    renewal = factory.invoice(cus, sub_id, legacy=legacy, user_id=user_id)
    renewal.update(status="open", amount_due=2000, amount_paid=0, attempt_count=1, created=t + 100)
    renewed = dict(renewal, status="paid", amount_paid=2000, attempt_count=2)
    return [
        factory.event("checkout.session.completed", session, created=t, legacy=legacy),
        factory.event("customer.subscription.created", active, created=t, legacy=legacy),
        factory.event("invoice.paid", first, created=t + 1, legacy=legacy),
        factory.event("invoice.payment_failed", renewal, created=t + 100, legacy=legacy),
        factory.event("customer.subscription.updated", past_due, created=t + 100, legacy=legacy),
        factory.event("invoice.paid", renewed, created=t + 200, legacy=legacy),
        factory.event(
            "customer.subscription.updated", dict(active), created=t + 200, legacy=legacy
        ),
    ]


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
@pytest.mark.parametrize("shuffled", [False, True], ids=["in-order", "reversed"])
def test_every_event_applies_without_stripe(
    chain: tuple[GatewayProcess, pb_grpc.BillingServiceStub],
    user_id: str,
    legacy: bool,
    shuffled: bool,
) -> None:
    gateway, stub = chain
    events = renewal_story(user_id, legacy)
    order = events[::-1] if shuffled else events
    answers = [deliver(gateway, event, SECRET) for event in order]
    assert [a.status for a in answers] == [200] * len(events), answers
    again = [deliver(gateway, event, SECRET) for event in order]  # Stripe's retries
    assert [a.status for a in again] == [200] * len(events), again

    # 200 is also the answer for a dead letter: ask the service what each event did.
    for index in (0, 2, 5):  # the checkout and both invoice.paid events
        redelivered = stub.ApplyStripeEvent(
            pb.ApplyStripeEventRequest(payload=factory.payload(events[index])), timeout=10
        )
        assert redelivered.outcome == pb.EVENT_OUTCOME_DUPLICATE
        assert "(applied)" in redelivered.reason, (events[index]["type"], redelivered.reason)

    current = stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=10)
    assert (current.subscription.status, current.subscription.tier) == (
        pb.SUBSCRIPTION_STATUS_ACTIVE,
        "pro",
    )
    listed = stub.ListInvoices(pb.ListInvoicesRequest(user_id=user_id), timeout=10).invoices
    first, renewal = events[2]["data"]["object"], events[3]["data"]["object"]
    assert [(i.stripe_invoice_id, i.status, i.amount_paid, i.attempt_count) for i in listed] == [
        (renewal["id"], "paid", 2000, 2),
        (first["id"], "paid", 2000, first["attempt_count"]),
    ]
