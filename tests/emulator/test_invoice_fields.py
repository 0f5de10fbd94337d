"""The emulator's invoices carry what the service keeps; its Date header is its own clock."""

from __future__ import annotations

import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any

from devtools.stripe_emulator.process import EmulatorProcess

from .conftest import checkout_subscription


async def test_a_paid_invoice_carries_every_kept_field(
    client: Any, emulator: EmulatorProcess
) -> None:
    _, sub = await checkout_subscription(client, emulator)
    invoice = (await client.v1.invoices.retrieve_async(sub.latest_invoice)).to_dict()
    assert invoice["parent"]["subscription_details"]["subscription"] == sub.id
    assert invoice["status"] == "paid"
    assert invoice["amount_due"] == invoice["amount_paid"] > 0
    assert invoice["currency"] == "usd"
    assert invoice["attempt_count"] == 1 and invoice["next_payment_attempt"] is None
    assert invoice["period_start"] <= invoice["period_end"]
    assert invoice["created"] > 0
    with urllib.request.urlopen(invoice["hosted_invoice_url"], timeout=5) as page:  # noqa: S310
        assert page.status == 200
    with urllib.request.urlopen(invoice["invoice_pdf"], timeout=5) as pdf:  # noqa: S310
        assert pdf.headers["Content-Type"] == "application/pdf"
        assert pdf.read().startswith(b"%PDF-")


async def test_the_date_header_follows_the_emulator_clock(
    client: Any, emulator: EmulatorProcess
) -> None:
    emulator.advance_clock(120)  # far enough from real time to tell the clocks apart
    listed = await client.v1.customers.list_async({"limit": 1})
    assert listed.last_response is not None
    date = {k.lower(): v for k, v in listed.last_response.headers.items()}["date"]
    stamped = int(parsedate_to_datetime(date).timestamp())
    assert abs(stamped - emulator.health()["now"]) <= 2
