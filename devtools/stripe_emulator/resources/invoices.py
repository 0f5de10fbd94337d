"""Subscription invoices: their lines, drafting, finalizing, charging and listing.

An invoice's life here is ``draft`` -> ``open`` (finalized, numbered) -> ``paid``
(or left open after a failed charge, for ``dunning`` to retry). Lines are the
subscription's items for a period, the prorations its changes caused and, on
renewals, the customer's metered usage of the period that ended.
"""

from __future__ import annotations

from typing import Any

from ..account import Account
from ..listing import matches_created, paginate
from ..objects import JSON, new_id, new_invoice, new_invoice_line
from .periods import current_period


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _item_line(
    account: Account, invoice_id: str, sub: JSON, item: JSON, start: int, end: int
) -> JSON:
    price = item["price"]
    amount = int(price["unit_amount"]) * int(item["quantity"])
    name = price["nickname"] or price["id"]
    return new_invoice_line(
        account.fx,
        invoice_id=invoice_id,
        amount=amount,
        description=f"{item['quantity']} \u00d7 {name} "
        f"(at {_money(int(price['unit_amount']))} / month)",
        period_start=start,
        period_end=end,
        subscription=sub["id"],
        item=item,
    )


def _proration_lines(
    account: Account, invoice_id: str, sub: JSON, specs: list[tuple[str, int, str]]
) -> list[JSON]:
    items = {item["id"]: item for item in sub["items"]["data"]}
    start, end = current_period(sub)
    lines = []
    for item_id, amount, description in specs:
        item = items.get(item_id) or sub["items"]["data"][0]
        lines.append(
            new_invoice_line(
                account.fx,
                invoice_id=invoice_id,
                amount=amount,
                description=description,
                period_start=start,
                period_end=end,
                subscription=sub["id"],
                item=item,
                proration=True,
            )
        )
    return lines


def _metered_lines(
    account: Account, invoice_id: str, sub: JSON, start: int, end: int
) -> list[JSON]:
    """Lines for the customer's meter events in [start, end), priced per unit."""
    lines = []
    for event_name, units in sorted(account.metered_usage(sub["customer"], start, end).items()):
        price = account.metered_prices.get(event_name)
        if price is None or units <= 0:
            continue
        item = {**sub["items"]["data"][0], "price": price, "quantity": units}
        lines.append(
            new_invoice_line(
                account.fx,
                invoice_id=invoice_id,
                amount=units * int(price["unit_amount"]),
                description=f"{units} \u00d7 {event_name} "
                f"(at {_money(int(price['unit_amount']))} per unit, metered)",
                period_start=start,
                period_end=end,
                subscription=sub["id"],
                item=item,
            )
        )
    return lines


def draft_invoice(
    account: Account,
    sub: JSON,
    reason: str,
    *,
    full_period: tuple[int, int] | None,
    prorations: list[tuple[str, int, str]] | None = None,
    period: tuple[int, int] | None = None,
    invoice_id: str | None = None,
    store: bool = True,
) -> JSON:
    """A draft invoice for ``sub``: items over ``full_period``, then prorations and usage.

    ``store=False`` builds a preview that is neither stored nor the subscription's
    ``latest_invoice``.
    """
    invoice_id = invoice_id or new_id("in_")
    lines: list[JSON] = []
    if full_period is not None:
        start, end = full_period
        lines = [
            _item_line(account, invoice_id, sub, item, start, end) for item in sub["items"]["data"]
        ]
        if reason == "subscription_create" and sub["status"] == "trialing":
            for line in lines:
                line["amount"] = line["subtotal"] = 0
                line["description"] = f"Trial period for {line['description'].split(' (at')[0]}"
    lines.extend(_proration_lines(account, invoice_id, sub, prorations or []))
    if reason == "subscription_cycle" and period is not None:
        lines.extend(_metered_lines(account, invoice_id, sub, *period))
    now = account.clock.now()
    start, end = period or (now, now)
    invoice = new_invoice(
        account.fx,
        invoice_id=invoice_id,
        customer=account.store.customers[sub["customer"]],
        subscription=sub,
        created=now,
        billing_reason=reason,
        lines=lines,
        period_start=start,
        period_end=end,
    )
    if store:
        account.store.invoices[invoice_id] = invoice
        sub["latest_invoice"] = invoice_id
    return invoice


def finalize(account: Account, invoice: JSON) -> None:
    """Number the invoice, give it its hosted URLs and open it (``invoice.finalized``)."""
    customer = account.store.customers[invoice["customer"]]
    now = account.clock.now()
    invoice.update(
        status="open",
        number=f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}",
        effective_at=now,
        hosted_invoice_url=f"{account.url_base}/invoice/{invoice['id']}",
        invoice_pdf=f"{account.url_base}/invoice/{invoice['id']}/pdf",
    )
    invoice["status_transitions"]["finalized_at"] = now
    customer["next_invoice_sequence"] += 1
    account.emit("invoice.finalized", invoice)


def attempt_payment(account: Account, invoice: JSON, outcome: str, retry_at: int | None) -> bool:
    """Charge the invoice; emits paid/payment_succeeded or payment_failed."""
    now = account.clock.now()
    if invoice["amount_due"] == 0 or outcome == "succeed":
        if invoice["amount_due"] > 0:
            invoice["attempt_count"] += 1
        invoice.update(
            status="paid",
            attempted=True,
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            next_payment_attempt=None,
        )
        invoice["status_transitions"]["paid_at"] = now
        account.emit("invoice.paid", invoice)
        account.emit("invoice.payment_succeeded", invoice)
        return True
    invoice["attempt_count"] += 1
    invoice.update(attempted=True, next_payment_attempt=retry_at)
    account.emit("invoice.payment_failed", invoice)
    if outcome == "requires_action":
        account.emit("invoice.payment_action_required", invoice)
    return False


def run_invoice(account: Account, invoice: JSON, outcome: str, retry_at: int | None) -> bool:
    """Announce, finalize and charge a draft invoice; True when it was paid."""
    account.emit("invoice.created", invoice)
    finalize(account, invoice)
    return attempt_payment(account, invoice, outcome, retry_at)


def list_invoices(account: Account, params: dict[str, Any]) -> JSON:
    """GET /v1/invoices (filters ``customer``, ``subscription``, ``status``)."""
    customer, sub, status = (
        params.get("customer"),
        params.get("subscription"),
        params.get("status"),
    )
    rows = [
        inv
        for inv in reversed(account.store.invoices.values())
        if (not customer or inv["customer"] == customer)
        and (not sub or inv["parent"]["subscription_details"]["subscription"] == sub)
        and (not status or inv["status"] == status)
        and matches_created(inv, params.get("created"))
    ]
    return paginate(rows, params, "/v1/invoices")
