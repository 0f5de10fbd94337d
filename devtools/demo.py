"""`make demo`: drive the whole flow through the running system (`make run`) and print each step.

CreateCheckout for pro -> the session is completed in the Stripe emulator ->
the emulator posts signed webhooks -> the gateway verifies them and calls
ApplyStripeEvent -> CheckEntitlement says pro -> cancel at period end -> still
pro -> the emulator clock passes the period end -> free. Before that, usage
metering (devtools/usage_demo.py): a free user refused past the limit, a studio
user's overage reported to Stripe Billing Meters and billed on the renewal invoice.

Addresses come from the same defaults and variables as `make run`:
BILLING_SERVICE_TARGET (127.0.0.1:50051), GATEWAY_ADDR (127.0.0.1:8080) and
STRIPE_EMULATOR_URL (http://127.0.0.1:$STRIPE_EMULATOR_PORT, port 12111).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from devtools.usage_demo import run_usage
from devtools.waiting import WaitTimeout, wait_until
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

CALLER = (("x-billing-caller", "make-demo"),)
FEATURE = "priority_support"
WAIT_SECONDS = 30.0


class DemoError(RuntimeError):
    """A step did not reach the expected state."""


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


class Demo:
    """The flow, against the addresses of a running system."""

    def __init__(self, target: str, gateway: str, emulator: str) -> None:
        self.gateway = gateway
        self.emulator = emulator.rstrip("/")
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.BillingServiceStub(self.channel)
        self.user_id = f"demo-{uuid.uuid4().hex[:8]}"
        self.step = 0
        self.seen_deliveries = 0

    def say(self, text: str) -> None:
        """Print one numbered step."""
        self.step += 1
        print(f"\n[{self.step}] {text}", flush=True)

    def detail(self, text: str) -> None:
        """Print a detail of the current step."""
        print(f"    {text}", flush=True)

    def subscription(self) -> pb.Subscription:
        """The user's subscription as the billing service holds it."""
        answer = self.stub.GetSubscription(
            pb.GetSubscriptionRequest(user_id=self.user_id), timeout=10, metadata=CALLER
        )
        return answer.subscription

    def entitlement(self) -> pb.CheckEntitlementResponse:
        """CheckEntitlement for the demo feature."""
        return self.stub.CheckEntitlement(
            pb.CheckEntitlementRequest(user_id=self.user_id, feature=FEATURE),
            timeout=10,
            metadata=CALLER,
        )

    def wait_for(self, what: str, done: Callable[[pb.Subscription], bool]) -> pb.Subscription:
        """Poll GetSubscription until ``done``; the webhooks arrive asynchronously."""
        return self.wait_for_user(self.user_id, what, done)

    def wait_for_user(
        self, user_id: str, what: str, done: Callable[[pb.Subscription], bool]
    ) -> pb.Subscription:
        """Poll ``user_id``'s subscription until ``done``."""

        def current() -> pb.Subscription:
            return self.stub.GetSubscription(
                pb.GetSubscriptionRequest(user_id=user_id), timeout=10, metadata=CALLER
            ).subscription

        try:
            return wait_until(what, current, done, within=WAIT_SECONDS, interval=0.2)
        except WaitTimeout as exc:
            last = exc.last if isinstance(exc.last, pb.Subscription) else current()
            raise DemoError(f"timed out waiting for {what}; last state: {describe(last)}") from None

    def show_deliveries(self) -> None:
        """Print the webhook deliveries the emulator made since the last call."""
        url = f"{self.emulator}/_emulator/webhooks/deliveries"
        try:
            answer = wait_until(
                "the emulator's deliveries to finish",
                lambda: _http("GET", url),
                lambda listing: bool(listing["idle"]),
                within=WAIT_SECONDS,
                interval=0.2,
            )
        except WaitTimeout:
            answer = _http("GET", url)  # still delivering: show what arrived so far
        new = answer["data"][self.seen_deliveries :]
        self.seen_deliveries = len(answer["data"])
        for delivery in new:
            status = delivery["status"] or delivery["error"]
            self.detail(
                f"webhook {delivery['event_type']:<40} {delivery['event_id']} -> gateway {status}"
            )

    def run(self) -> None:
        """The whole flow: usage first, while the emulator clock still matches real time."""
        run_usage(self)
        self.say(f"CreateCheckout for user {self.user_id}, plan pro")
        self.seen_deliveries = len(
            _http("GET", f"{self.emulator}/_emulator/webhooks/deliveries")["data"]
        )
        session = self.stub.CreateCheckout(
            pb.CreateCheckoutRequest(
                user_id=self.user_id,
                email=f"{self.user_id}@example.com",
                plan="pro",
                success_url="https://app.example.com/billing/done",
                cancel_url="https://app.example.com/billing",
                request_id=uuid.uuid4().hex,
            ),
            timeout=10,
            metadata=CALLER,
        )
        self.detail(f"session {session.session_id}: {session.checkout_url}")

        self.say("The customer pays: the emulator completes the Checkout session")
        self.complete_checkout(session.session_id)
        self.say("Stripe (the emulator) posts signed webhooks -> gateway -> ApplyStripeEvent")
        current = self.wait_for("the pro subscription", lambda s: s.tier == "pro")
        self.show_deliveries()
        self.detail(f"GetSubscription: {describe(current)}")

        self.say(f"CheckEntitlement({FEATURE})")
        self.expect_entitlement(allowed=True, tier="pro")

        self.say("CancelSubscription at period end")
        self.stub.CancelSubscription(
            pb.CancelSubscriptionRequest(user_id=self.user_id, at_period_end=True),
            timeout=10,
            metadata=CALLER,
        )
        current = self.wait_for("cancel_at_period_end", lambda s: s.cancel_at_period_end)
        self.show_deliveries()
        self.detail(f"GetSubscription: {describe(current)}")
        self.say(f"Still inside the period: CheckEntitlement({FEATURE})")
        self.expect_entitlement(allowed=True, tier="pro")

        now = int(_http("GET", f"{self.emulator}/_emulator/clock")["now"])
        seconds = current.current_period_end.seconds - now + 3600
        self.say(f"The emulator clock advances {seconds // 86400} days, past the period end")
        self.advance_clock(seconds)
        current = self.wait_for("the end of the subscription", lambda s: s.tier == "free")
        self.show_deliveries()
        self.detail(f"GetSubscription: {describe(current)}")
        self.say(f"CheckEntitlement({FEATURE})")
        self.expect_entitlement(allowed=False, tier="free")
        self.gateway_summary()
        print(
            "\ndemo complete: pro -> canceled at period end -> free; "
            "usage refused at the limit, overage billed",
            flush=True,
        )

    def complete_checkout(self, session_id: str) -> None:
        """Pay a Checkout session in the emulator."""
        _http(
            "POST",
            f"{self.emulator}/_emulator/checkout/sessions/{session_id}/complete",
            {"payment": "succeed"},
        )

    def advance_clock(self, seconds: int) -> None:
        """Move the emulator clock forward."""
        _http("POST", f"{self.emulator}/_emulator/clock/advance", {"seconds": seconds})

    def expect_entitlement(self, allowed: bool, tier: str) -> None:
        """Print CheckEntitlement and fail unless it answers as expected."""
        answer = self.entitlement()
        self.detail(f"allowed={answer.allowed} tier={answer.tier} ({answer.reason})")
        if answer.allowed != allowed or answer.tier != tier:
            raise DemoError(f"expected allowed={allowed} tier={tier}")

    def gateway_summary(self) -> None:
        """Print what the gateway answered, from its /metrics."""
        try:
            with urllib.request.urlopen(f"http://{self.gateway}/metrics", timeout=10) as r:
                text = r.read().decode()
        except (urllib.error.URLError, OSError):
            return
        self.say(f"The gateway's answers so far (http://{self.gateway}/metrics)")
        for line in text.splitlines():
            if line.startswith("billing_gateway_responses_total{"):
                self.detail(line)


def describe(sub: pb.Subscription) -> str:
    """One line for a subscription."""
    status = pb.SubscriptionStatus.Name(sub.status).removeprefix("SUBSCRIPTION_STATUS_").lower()
    end = time.strftime("%Y-%m-%d", time.gmtime(sub.current_period_end.seconds))
    cancel = ", cancels at period end" if sub.cancel_at_period_end else ""
    return f"tier={sub.tier} status={status} plan={sub.plan or '-'} period_end={end}{cancel}"


def main() -> int:
    """Run the demo against the addresses in the environment."""
    port = os.environ.get("STRIPE_EMULATOR_PORT", "12111")
    demo = Demo(
        target=os.environ.get("BILLING_SERVICE_TARGET", "127.0.0.1:50051"),
        gateway=os.environ.get("GATEWAY_ADDR", "127.0.0.1:8080"),
        emulator=os.environ.get("STRIPE_EMULATOR_URL", f"http://127.0.0.1:{port}"),
    )
    try:
        demo.run()
    except grpc.RpcError as exc:
        print(f"\ndemo failed: {exc.code().name} {exc.details()}", file=sys.stderr)
        print("is `make run` running in another terminal?", file=sys.stderr)
        return 1
    except (DemoError, urllib.error.URLError, OSError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        demo.channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
