"""The usage part of `make demo`: a free user hits the limit and is refused, then a studio
user consumes past the included tokens and the overage reaches Stripe Billing Meters
(the emulator) and its renewal invoice.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

from devtools.waiting import WaitTimeout, wait_until
from generated.billing.v1 import billing_pb2 as pb

if TYPE_CHECKING:
    from devtools.demo import Demo

CALLER = (("x-billing-caller", "make-demo"),)
WAIT_SECONDS = 30.0
EMULATOR_KEY = "sk_test_make_demo"


def _get(url: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        url, headers={"Authorization": f"Bearer {EMULATOR_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def _consume(demo: Demo, user: str, meter: str, quantity: int) -> pb.ConsumeUsageResponse:
    answer: pb.ConsumeUsageResponse = demo.stub.ConsumeUsage(
        pb.ConsumeUsageRequest(
            user_id=user, meter=meter, quantity=quantity, idempotency_key=uuid.uuid4().hex
        ),
        timeout=10,
        metadata=CALLER,
    )
    state = "allowed" if answer.allowed else "REFUSED"
    demo.detail(
        f"ConsumeUsage({meter}, {quantity}) -> {state} used={answer.used}/{answer.limit} "
        f"remaining={answer.remaining} overage={answer.overage} ({answer.reason})"
    )
    return answer


def run_usage(demo: Demo) -> None:
    """Hit a hard limit, then bill overage; raises DemoError when a step goes wrong."""
    from devtools.demo import DemoError

    user = f"{demo.user_id}-usage"
    demo.say(f"ConsumeUsage(api_calls) for free user {user}: the free tier includes 20 a month")
    for _ in range(4):
        _consume(demo, user, "api_calls", 5)
    if _consume(demo, user, "api_calls", 1).allowed:
        raise DemoError("expected the 21st api call to be refused")

    demo.say(f"{user} subscribes to studio (tokens: 10000 included, overage billed)")
    session = demo.stub.CreateCheckout(
        pb.CreateCheckoutRequest(
            user_id=user,
            plan="studio",
            success_url="https://app.example.com/billing/done",
            cancel_url="https://app.example.com/billing",
            request_id=uuid.uuid4().hex,
        ),
        timeout=10,
        metadata=CALLER,
    )
    demo.complete_checkout(session.session_id)
    sub = demo.wait_for_user(user, "the studio subscription", lambda s: s.tier == "studio")
    _consume(demo, user, "tokens", 10000)
    over = _consume(demo, user, "tokens", 2500)
    if not over.allowed or over.overage != 2500:
        raise DemoError("expected 2500 tokens of overage")

    offset = float(_get(f"{demo.emulator}/_emulator/clock")["offset"])
    if offset > 30 * 86400:
        # Meter events carry the service's real time; Stripe (and the emulator) refuse
        # timestamps more than 35 days old, and this emulator's clock ran far ahead.
        demo.detail(
            f"(overage report skipped: the emulator clock is {offset / 86400:.0f} days ahead "
            "of real time; restart `make run` to see it reach Stripe)"
        )
        return
    demo.say("The service reports the overage to Stripe Billing Meters (outbox, background)")

    def reported() -> list[dict[str, Any]]:
        listing = _get(f"{demo.emulator}/_emulator/billing/meter_events")
        return [
            e
            for e in listing["data"]
            if e["payload"].get("stripe_customer_id") == sub.stripe_customer_id
        ]

    try:
        mine = wait_until("the overage's meter events", reported, within=WAIT_SECONDS, interval=0.2)
    except WaitTimeout:
        mine = []
    for event in mine:
        demo.detail(
            f"meter event {event['event_name']} value={event['payload']['value']} "
            f"identifier={event['identifier']}"
        )
    if not mine:
        raise DemoError("the overage never reached the emulator's meter events")

    now = int(_get(f"{demo.emulator}/_emulator/clock")["now"])
    seconds = sub.current_period_end.seconds - now + 3600
    demo.say(f"The emulator clock advances {seconds // 86400} days: the renewal invoice")
    demo.advance_clock(seconds)
    invoices = _get(f"{demo.emulator}/v1/invoices?customer={sub.stripe_customer_id}")
    renewal = [i for i in invoices["data"] if i["billing_reason"] == "subscription_cycle"]
    for invoice in renewal[:1]:
        for line in invoice["lines"]["data"]:
            demo.detail(f"{line['description']}: {line['amount'] / 100:.2f} USD")
        demo.detail(f"amount due {invoice['amount_due'] / 100:.2f} USD")
