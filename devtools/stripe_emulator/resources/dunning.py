"""Charging a renewal's invoice and retrying it when the payment fails.

A failed charge makes the subscription ``past_due`` and schedules a retry
every ``RETRY_INTERVAL`` of emulator time; after ``MAX_FAILED_RETRIES``
failed retries it becomes ``unpaid`` or ``canceled`` (the account's
``after_failed_payments``). A successful retry makes it ``active`` again.
"""

from __future__ import annotations

from ..account import Account
from ..bookkeeping import SubscriptionState
from ..clock import DAY
from ..objects import JSON
from .invoices import attempt_payment, run_invoice
from .subscriptions import end_subscription

RETRY_INTERVAL = 3 * DAY
MAX_FAILED_RETRIES = 3


def charge_cycle_invoice(account: Account, sub: JSON, invoice: JSON, outcome: str) -> None:
    """Finalize and charge a new period's invoice; on failure the subscription is past_due."""
    state = account.sub_state[sub["id"]]
    retry_at = account.clock.now() + RETRY_INTERVAL
    paid = run_invoice(account, invoice, outcome, retry_at)
    if paid:
        state.open_invoice, state.retry_at, state.failed_retries = None, None, 0
        return
    state.open_invoice, state.retry_at, state.failed_retries = invoice["id"], retry_at, 0
    if sub["status"] != "past_due":
        previous = {"status": sub["status"]}
        sub["status"] = "past_due"
        account.emit("customer.subscription.updated", sub, previous)


def retry_payment(account: Account, sub: JSON, state: SubscriptionState) -> None:
    """Charge the open invoice again; the last failure ends in unpaid or canceled."""
    invoice = account.store.invoices[state.open_invoice or ""]
    outcome = account.state_of_customer(sub["customer"]).payment
    last = state.failed_retries + 1 >= MAX_FAILED_RETRIES
    retry_at = None if last else account.clock.now() + RETRY_INTERVAL
    if attempt_payment(account, invoice, outcome, retry_at):
        state.open_invoice, state.retry_at, state.failed_retries = None, None, 0
        sub["status"] = "active"
        account.emit("customer.subscription.updated", sub, {"status": "past_due"})
        return
    state.failed_retries += 1
    state.retry_at = retry_at
    if not last:
        return
    if account.after_failed_payments == "canceled":
        end_subscription(account, sub, "payment_failed")
    else:
        sub["status"] = "unpaid"
        account.emit("customer.subscription.updated", sub, {"status": "past_due"})
