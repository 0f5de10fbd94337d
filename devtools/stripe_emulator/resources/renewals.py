"""What moving the emulator clock does: trial reminders, period ends, payment retries.

:func:`advance_clock` processes everything that falls due before the target
time in time order, each at its own timestamp (the clock is frozen there
meanwhile), then lets the clock run on from the target.
"""

from __future__ import annotations

import copy

from ..account import Account
from ..bookkeeping import SubscriptionState
from ..clock import DAY, add_months
from ..errors import StripeError
from ..objects import JSON
from .dunning import charge_cycle_invoice, retry_payment
from .invoices import draft_invoice, finalize
from .periods import current_period, set_period, subscription_months
from .subscriptions import end_subscription

#: Statuses in which the emulator's clock does nothing more with a subscription.
INERT_STATUSES = ("canceled", "incomplete", "incomplete_expired", "unpaid", "paused")


def advance_clock(account: Account, seconds: int) -> JSON:
    """Move the clock forward, processing everything due in time order."""
    if seconds < 0:
        raise StripeError.invalid("seconds must not be negative", param="seconds")
    first_event = len(account.store.events)
    target = account.clock.now() + seconds
    with account.request_context(None, None):
        while True:
            due: list[tuple[int, int, str, str]] = []
            for order, sub in enumerate(account.store.subscriptions.values()):
                found = _next_due(account, sub)
                if found is not None:
                    due.append((found[0], order, found[1], sub["id"]))
            if not due:
                break
            at, _, kind, sub_id = min(due)
            if at > target:
                break
            account.clock.freeze(max(at, account.clock.now()))
            _process(account, account.store.subscriptions[sub_id], kind)
        account.clock.set(target)
    events = list(account.store.events.values())[first_event:]
    return {
        "now": account.clock.now(),
        "events": [{"id": e["id"], "type": e["type"]} for e in events],
    }


def _next_due(account: Account, sub: JSON) -> tuple[int, str] | None:
    if sub["status"] in INERT_STATUSES:
        return None
    state = account.sub_state[sub["id"]]
    start, end = current_period(sub)
    candidates = [(end, "period_end")]
    if sub["status"] == "trialing" and not state.trial_will_end_sent and sub["trial_end"]:
        candidates.append(
            (
                max(int(sub["trial_start"] or start), int(sub["trial_end"]) - 3 * DAY),
                "trial_will_end",
            )
        )
    if sub["status"] == "past_due" and state.retry_at is not None:
        candidates.append((state.retry_at, "retry"))
    return min(candidates)


def _process(account: Account, sub: JSON, kind: str) -> None:
    state = account.sub_state[sub["id"]]
    if kind == "trial_will_end":
        state.trial_will_end_sent = True
        account.emit("customer.subscription.trial_will_end", sub)
    elif kind == "retry":
        retry_payment(account, sub, state)
    elif sub["cancel_at_period_end"]:
        end_subscription(account, sub, "cancellation_requested")
    else:
        _renew(account, sub, state)


def _renew(account: Account, sub: JSON, state: SubscriptionState) -> None:
    customer_state = account.state_of_customer(sub["customer"])
    before = copy.deepcopy(sub)
    if sub["status"] == "trialing" and not customer_state.has_payment_method:
        behavior = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
        if behavior == "cancel":
            end_subscription(account, sub, "missing_payment_method")
            return
        if behavior == "pause":
            sub["status"] = "paused"
            account.emit("customer.subscription.updated", sub, {"status": "trialing"})
            account.emit("customer.subscription.paused", sub)
            return
    state.cycle += 1
    start = current_period(sub)[1]
    set_period(sub, start, add_months(state.anchor, (state.cycle + 1) * subscription_months(sub)))
    pending, state.pending_lines = state.pending_lines, []
    invoice = draft_invoice(
        account,
        sub,
        "subscription_cycle",
        full_period=current_period(sub),
        prorations=pending,
        period=current_period(before),
    )
    previous: JSON = {"items": before["items"], "latest_invoice": before["latest_invoice"]}
    if sub["status"] == "trialing":
        sub["status"] = "active"
        previous["status"] = "trialing"
    pause = sub["pause_collection"]
    account.emit("customer.subscription.updated", sub, previous)
    if pause is not None:
        _skip_paused_collection(account, invoice, pause["behavior"])
        return
    charge_cycle_invoice(account, sub, invoice, customer_state.payment)


def _skip_paused_collection(account: Account, invoice: JSON, behavior: str) -> None:
    """A renewal under ``pause_collection``: void, uncollectible or left a draft, never charged."""
    account.emit("invoice.created", invoice)
    if behavior == "void":
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = account.clock.now()
        account.emit("invoice.voided", invoice)
    elif behavior == "mark_uncollectible":
        finalize(account, invoice)
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = account.clock.now()
        account.emit("invoice.marked_uncollectible", invoice)
