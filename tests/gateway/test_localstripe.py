"""localstripe's own signed webhooks (legacy shapes) through the gateway into the service."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import stripe

from billing_service.storage.database import migrate, open_database
from devtools.waiting import wait_until
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.gateway.support import GatewayProcess, request
from tests.gateway.system import SECRET, SYSTEM_WAIT, new_user
from tests.support.localstripe import LocalStripeProcess
from tests.support.processes import ServiceProcess

KEY = "sk_test_localstripe"


def register_webhook(localstripe: LocalStripeProcess, url: str) -> None:
    """localstripe's /_config/webhooks API: sign every event with SECRET and POST it to url."""
    req = urllib.request.Request(  # noqa: S310 - localstripe on loopback
        f"{localstripe.base_url}/_config/webhooks/gateway",
        data=json.dumps({"url": url, "secret": SECRET}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10):  # noqa: S310
        pass


def legacy_subscription(client: stripe.StripeClient, user_id: str) -> Any:
    """A customer with a card and a pro subscription, made the legacy way (plans)."""
    card: Any = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    token = client.v1.tokens.create({"card": card})
    customer = client.v1.customers.create(
        {"email": f"{user_id}@example.com", "metadata": {"user_id": user_id}, "source": token.id}
    )
    with contextlib.suppress(stripe.InvalidRequestError):
        client.v1.plans.create(
            {
                "id": "price_pro_monthly",
                "amount": 1900,
                "currency": "usd",
                "interval": "month",
                "product": {"name": "Pro"},
            }
        )
    return client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"plan": "price_pro_monthly"}],
            "metadata": {"user_id": user_id},
        }
    )


def test_subscription_created_and_deleted_through_localstripe_webhooks(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'billing.db'}"
    db = open_database(database_url)
    migrate(db)
    db.close()
    with contextlib.ExitStack() as stack:
        localstripe = stack.enter_context(LocalStripeProcess())
        service = stack.enter_context(
            ServiceProcess(
                {
                    "DATABASE_URL": database_url,
                    "STRIPE_API_BASE": localstripe.base_url,
                    "STRIPE_SECRET_KEY": KEY,
                }
            )
        )
        gateway = stack.enter_context(
            GatewayProcess(
                {
                    "BILLING_SERVICE_TARGET": service.target,
                    "STRIPE_WEBHOOK_SECRETS": SECRET,
                    "DATABASE_URL": database_url,
                }
            )
        )
        register_webhook(localstripe, gateway.url)
        channel = stack.enter_context(grpc.insecure_channel(service.target))
        stub = pb_grpc.BillingServiceStub(channel)
        client = stripe.StripeClient(
            KEY, base_addresses={"api": localstripe.base_url}, max_network_retries=0
        )

        def subscription(user_id: str) -> pb.Subscription:
            return stub.GetSubscription(
                pb.GetSubscriptionRequest(user_id=user_id), timeout=10
            ).subscription

        user_id = new_user()
        created = legacy_subscription(client, user_id)
        active = wait_until(
            "the subscription from customer.subscription.created",
            lambda: subscription(user_id),
            lambda s: s.tier == "pro",
            within=SYSTEM_WAIT,
        )
        assert active.stripe_subscription_id == created.id
        assert active.status == pb.SUBSCRIPTION_STATUS_ACTIVE

        client.v1.subscriptions.cancel(created.id)
        ended = wait_until(
            "customer.subscription.deleted",
            lambda: subscription(user_id),
            lambda s: s.status == pb.SUBSCRIPTION_STATUS_CANCELED,
            within=SYSTEM_WAIT,
        )
        assert ended.tier == "free"

        audit = stub.ListAuditEvents(
            pb.ListAuditEventsRequest(user_id=user_id, page_size=500), timeout=10
        ).events
        by_type = Counter(r.stripe_event_type for r in audit if r.stripe_event_id)
        assert by_type["customer.subscription.created"] == 1
        assert by_type["customer.subscription.deleted"] == 1
        assert max(Counter(r.stripe_event_id for r in audit if r.stripe_event_id).values()) == 1
        assert "Traceback" not in gateway.log_text()
        # Every legacy-shaped event was understood: none retried, none dead-lettered.
        # Four are acted on: the two subscription events and the two invoice events
        # (legacy shape: top-level `subscription`), whose invoice is kept. Which of
        # the invoice's two events lands last decides whether the earlier one is
        # applied or stale, so both outcomes count.
        invoices = wait_until(
            "the invoice from the invoice events",
            lambda: stub.ListInvoices(pb.ListInvoicesRequest(user_id=user_id), timeout=10).invoices,
            within=SYSTEM_WAIT,
        )
        assert [i.stripe_subscription_id for i in invoices] == [created.id]

        def acted_on(text: str) -> float:
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("billing_gateway_responses_total{")
                and 'status="200"' in line
                and ('reason="applied"' in line or 'reason="stale"' in line)
            )

        metrics = wait_until(
            "every delivery answered",
            lambda: request(gateway.host, gateway.port, "GET", "/metrics").body.decode(),
            lambda text: acted_on(text) >= 4,
            within=SYSTEM_WAIT,
        )
        assert acted_on(metrics) == 4, metrics
        assert 'status="503"' not in metrics
        assert "dead_lettered" not in metrics
