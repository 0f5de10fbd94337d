"""Clock advances: renewals, period-end cancellation, failed payments, trials."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from devtools.stripe_emulator.process import EmulatorProcess

from .conftest import DAY, PLANS, checkout_subscription, make_client


def period(sub: Any) -> tuple[int, int]:
    item = sub["items"].data[0]
    return item.current_period_start, item.current_period_end


def advance_to(emulator: EmulatorProcess, when: int) -> dict[str, Any]:
    """Advance the emulator clock to ``when`` (unix seconds)."""
    return emulator.advance_clock(max(0, when - emulator.health()["now"]))


async def test_renewal(client: Any, emulator: EmulatorProcess) -> None:
    _, sub = await checkout_subscription(client, emulator)
    start, end = period(sub)
    result = emulator.advance_clock(32 * DAY)
    assert result["now"] >= start + 32 * DAY
    renewed = await client.v1.subscriptions.retrieve_async(sub.id)
    assert renewed.status == "active"
    assert period(renewed)[0] == end and period(renewed)[1] > end + 27 * DAY
    invoice = await client.v1.invoices.retrieve_async(renewed.latest_invoice)
    assert invoice.billing_reason == "subscription_cycle" and invoice.status == "paid"
    assert invoice.created == end
    invoices = await client.v1.invoices.list_async({"subscription": sub.id})
    assert len(invoices.data) == 2
    types = [e["type"] for e in result["events"]]
    assert "invoice.paid" in types and "customer.subscription.updated" in types
    updated = await client.v1.events.list_async(
        {"type": "customer.subscription.updated", "created": {"gte": end}, "limit": 100}
    )
    mine = [e for e in updated.data if e.data.object.id == sub.id]
    assert mine and "items" in mine[-1].data.previous_attributes


async def test_cancel_at_period_end(client: Any, emulator: EmulatorProcess) -> None:
    _, sub = await checkout_subscription(client, emulator)
    _, end = period(sub)
    await client.v1.subscriptions.update_async(sub.id, {"cancel_at_period_end": True})
    emulator.advance_clock(10 * DAY)
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "active"
    emulator.advance_clock(25 * DAY)
    ended = await client.v1.subscriptions.retrieve_async(sub.id)
    assert ended.status == "canceled" and ended.ended_at == end
    deleted = await client.v1.events.list_async({"type": "customer.subscription.deleted"})
    mine = [e for e in deleted.data if e.data.object.id == sub.id]
    assert len(mine) == 1 and mine[0].created == end
    assert len((await client.v1.invoices.list_async({"subscription": sub.id})).data) == 1


async def test_failed_payments_past_due_then_unpaid(client: Any, emulator: EmulatorProcess) -> None:
    _, sub = await checkout_subscription(client, emulator)
    emulator.set_payment_failure(sub.customer, True)
    advance_to(emulator, period(sub)[1] + 3600)
    sub = await client.v1.subscriptions.retrieve_async(sub.id)
    assert sub.status == "past_due"
    invoice = await client.v1.invoices.retrieve_async(sub.latest_invoice)
    assert invoice.status == "open" and invoice.attempt_count == 1
    assert invoice.next_payment_attempt == invoice.created + 3 * DAY
    for attempt in (2, 3):
        emulator.advance_clock(3 * DAY)
        assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "past_due"
        assert (await client.v1.invoices.retrieve_async(invoice.id)).attempt_count == attempt
    emulator.advance_clock(3 * DAY)
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "unpaid"
    failed = await client.v1.events.list_async({"type": "invoice.payment_failed", "limit": 100})
    assert len([e for e in failed.data if e.data.object.id == invoice.id]) == 4


async def test_retry_success_returns_to_active(client: Any, emulator: EmulatorProcess) -> None:
    _, sub = await checkout_subscription(client, emulator)
    emulator.set_payment_failure(sub.customer, True)
    advance_to(emulator, period(sub)[1] + 3600)
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "past_due"
    emulator.set_payment_failure(sub.customer, False)
    emulator.advance_clock(3 * DAY)
    sub = await client.v1.subscriptions.retrieve_async(sub.id)
    assert sub.status == "active"
    assert (await client.v1.invoices.retrieve_async(sub.latest_invoice)).status == "paid"


async def test_trial_will_end_then_active(client: Any, emulator: EmulatorProcess) -> None:
    session, sub = await checkout_subscription(client, emulator, trial_days=7)
    assert sub.status == "trialing" and session.payment_status == "no_payment_required"
    result = emulator.advance_clock(5 * DAY)
    ending = await client.v1.events.list_async({"type": "customer.subscription.trial_will_end"})
    mine = [e for e in ending.data if e.data.object.id == sub.id]
    assert len(mine) == 1 and mine[0].created == sub.trial_end - 3 * DAY
    assert any(e["id"] == mine[0].id for e in result["events"])
    emulator.advance_clock(3 * DAY)
    sub = await client.v1.subscriptions.retrieve_async(sub.id)
    assert sub.status == "active" and period(sub)[0] == sub.trial_end


async def test_after_failed_payments_canceled(http_client: stripe.AIOHTTPClient) -> None:
    with EmulatorProcess(PLANS, extra_args=["--after-failed-payments", "canceled"]) as emu:
        client = make_client(emu.base_url, http_client)
        _, sub = await checkout_subscription(client, emu)
        emu.set_payment_failure(sub.customer, True)
        advance_to(emu, period(sub)[1] + 3600)
        assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "past_due"
        emu.advance_clock(9 * DAY)
        sub = await client.v1.subscriptions.retrieve_async(sub.id)
        assert sub.status == "canceled"
        assert sub.cancellation_details.reason == "payment_failed"
    assert emu.returncode == 0


async def test_requires_action_and_expand(client: Any, emulator: EmulatorProcess) -> None:
    _, sub = await checkout_subscription(client, emulator)
    emulator.control(
        "POST", f"/customers/{sub.customer}/payment_behavior", {"mode": "requires_action"}
    )
    result = advance_to(emulator, period(sub)[1] + 60)
    types = [e["type"] for e in result["events"]]
    assert "invoice.payment_action_required" in types
    expanded = await client.v1.subscriptions.retrieve_async(
        sub.id, {"expand": ["latest_invoice", "customer"]}
    )
    assert expanded.status == "past_due"
    assert expanded.latest_invoice.object == "invoice"
    assert expanded.latest_invoice.status == "open"
    assert expanded.customer.id == sub.customer


async def test_meter_events_are_billed_on_the_renewal_invoice(
    client: Any, emulator: EmulatorProcess
) -> None:
    _, sub = await checkout_subscription(client, emulator, price="price_studio_monthly")
    _, end = period(sub)
    for identifier, value in (("mev-a", "30"), ("mev-b", "12"), ("mev-a", "30")):
        await client.v1.billing.meter_events.create_async(
            {
                "event_name": "studio_tokens",
                "identifier": f"{sub.id}-{identifier}",
                "payload": {"stripe_customer_id": sub.customer, "value": value},
            }
        )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.billing.meter_events.create_async(
            {
                "event_name": "studio_tokens",
                "timestamp": emulator.health()["now"] - 36 * DAY,
                "payload": {"stripe_customer_id": sub.customer, "value": "1"},
            }
        )
    assert caught.value.param == "timestamp"
    advance_to(emulator, end + 3600)
    renewed = await client.v1.subscriptions.retrieve_async(sub.id)
    invoice = await client.v1.invoices.retrieve_async(renewed.latest_invoice)
    metered = [line for line in invoice.lines.data if "studio_tokens" in line.description]
    # 30 + 12 units (the repeated identifier counted once) at 2 cents.
    assert [line.amount for line in metered] == [84]
    assert invoice.amount_due == 4900 + 84
