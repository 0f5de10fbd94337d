"""The whole system as real processes: Stripe emulator -> gateway(s) -> billing service.

Everything listens on 127.0.0.1 free ports; the database is a private SQLite
file, so tests can count rows (processed events, audit records) directly.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import stripe

from billing_service.storage.database import migrate, open_database
from devtools.stripe_emulator.process import EmulatorProcess
from devtools.waiting import wait_until
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.gateway.support import GatewayProcess
from tests.support.processes import PLANS_FILE, ServiceProcess

SECRET = "whsec_e2e_secret_0123456789"
EMULATOR_KEY = "sk_test_emulator"
CALLER = (("x-billing-caller", "gateway-e2e"),)
# Long enough for a billing-service restart to fit inside the emulator's retries.
RETRY_DELAYS = ",".join(["0.5"] * 4 + ["1"] * 40)
# How long the whole system may take to settle (webhook retries span a restart).
SYSTEM_WAIT = 120.0


class System:
    """Emulator, one billing service, and ``gateways`` gateways; a context manager."""

    def __init__(self, tmp: Path, gateways: int = 1, gateway_env: dict[str, str] | None = None):
        self.db_path = tmp / "billing.db"
        self.database_url = f"sqlite:///{self.db_path}"
        self._gateway_count = gateways
        self._gateway_env = gateway_env or {}
        self._stack = ExitStack()
        self.emulator: EmulatorProcess
        self.service: ServiceProcess
        self.gateways: list[GatewayProcess] = []
        self.service_addr = ""
        self._channel: grpc.Channel | None = None

    def __enter__(self) -> System:
        db = open_database(self.database_url)
        migrate(db)
        db.close()
        self.emulator = self._stack.enter_context(
            EmulatorProcess(PLANS_FILE, extra_args=["--webhook-retry-delays", RETRY_DELAYS])
        )
        self.start_service()
        for _ in range(self._gateway_count):
            gateway = GatewayProcess(
                {
                    "BILLING_SERVICE_TARGET": self.service_addr,
                    "STRIPE_WEBHOOK_SECRETS": SECRET,
                    "DATABASE_URL": self.database_url,
                    **self._gateway_env,
                }
            )
            self.gateways.append(self._stack.enter_context(gateway))
            self.emulator.add_webhook(gateway.url, [SECRET])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._channel is not None:
            self._channel.close()
        self.service.stop()
        self._stack.close()

    # -- the billing service -------------------------------------------------

    def start_service(self) -> None:
        """Start the billing service (again on the same address after a stop)."""
        env = {
            "DATABASE_URL": self.database_url,
            "STRIPE_API_BASE": self.emulator.base_url,
            "STRIPE_SECRET_KEY": EMULATOR_KEY,
        }
        if self.service_addr:
            env["BILLING_GRPC_ADDR"] = self.service_addr
        self.service = ServiceProcess(env).start()
        self.service_addr = self.service.target

    def stop_service(self) -> None:
        """Stop the billing service (SIGTERM)."""
        self.service.stop()

    @property
    def stub(self) -> pb_grpc.BillingServiceStub:
        """A BillingService stub on one channel to the service's address."""
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.service_addr)
        return pb_grpc.BillingServiceStub(self._channel)

    def stripe(self) -> stripe.StripeClient:
        """An SDK client on the emulator."""
        return stripe.StripeClient(
            EMULATOR_KEY, base_addresses={"api": self.emulator.base_url}, max_network_retries=0
        )

    # -- flows ---------------------------------------------------------------

    def checkout(self, user_id: str, plan: str = "pro") -> str:
        """CreateCheckout; returns the session id."""
        answer = self.stub.CreateCheckout(
            pb.CreateCheckoutRequest(
                user_id=user_id,
                email=f"{user_id}@example.com",
                plan=plan,
                success_url="https://app.example.com/ok",
                cancel_url="https://app.example.com/back",
                request_id=uuid.uuid4().hex,
            ),
            metadata=CALLER,
            timeout=10,
        )
        return str(answer.session_id)

    def subscription(self, user_id: str) -> pb.Subscription:
        """GetSubscription."""
        answer = self.stub.GetSubscription(pb.GetSubscriptionRequest(user_id=user_id), timeout=10)
        return answer.subscription

    def entitlement(self, user_id: str, feature: str) -> pb.CheckEntitlementResponse:
        """CheckEntitlement."""
        return self.stub.CheckEntitlement(
            pb.CheckEntitlementRequest(user_id=user_id, feature=feature), timeout=10
        )

    def wait_for(
        self, user_id: str, what: str, done: Callable[[pb.Subscription], bool]
    ) -> pb.Subscription:
        """Poll GetSubscription until ``done``, then until every delivery was answered.

        GetSubscription sees a change once its transaction commits; the
        entitlement guarantee starts when ApplyStripeEvent returns (the gateway's
        answer), a moment later. Waiting for the emulator's deliveries to be
        answered puts the test's next CheckEntitlement after that point.
        """
        wait_until(what, lambda: self.subscription(user_id), done, within=SYSTEM_WAIT)
        self.wait_deliveries_idle()
        return self.subscription(user_id)

    def subscribe(self, user_id: str, plan: str = "pro") -> pb.Subscription:
        """Checkout, pay in the emulator, wait for the webhooks to give the plan's tier."""
        self.emulator.complete_checkout(self.checkout(user_id, plan))
        return self.wait_for(user_id, f"tier {plan}", lambda s: s.tier == plan)

    def wait_deliveries_idle(self) -> list[dict[str, Any]]:
        """Wait until the emulator has no queued or in-flight delivery; returns all attempts."""
        wait_until(
            "webhook deliveries to finish",
            self.emulator.deliveries_idle,
            within=SYSTEM_WAIT,
        )
        return self.emulator.deliveries()

    # -- counting ------------------------------------------------------------

    def processed(self) -> dict[str, list[str]]:
        """event id -> outcomes recorded in processed_event (one entry per row)."""
        conn = sqlite3.connect(self.db_path)
        try:
            rows = conn.execute("SELECT event_id, outcome FROM processed_event").fetchall()
        finally:
            conn.close()
        result: dict[str, list[str]] = {}
        for event_id, outcome in rows:
            result.setdefault(event_id, []).append(outcome)
        return result

    def audit(self, user_id: str) -> list[pb.AuditEvent]:
        """Every audit record of ``user_id`` through ListAuditEvents, newest first."""
        records: list[pb.AuditEvent] = []
        token = ""
        while True:
            page = self.stub.ListAuditEvents(
                pb.ListAuditEventsRequest(user_id=user_id, page_size=500, page_token=token),
                timeout=10,
            )
            records.extend(page.events)
            token = page.next_page_token
            if not token:
                return records


def new_user() -> str:
    """A fresh user id."""
    return f"e2e-{uuid.uuid4().hex[:10]}"
