"""The emulator's state machine: customers, checkout, subscriptions, invoices, events.

Every operation is synchronous (no awaits), so one aiohttp event loop applies
them atomically. Each state change records an Event and hands it to the
listeners (the webhook dispatcher) without waiting for delivery.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .clock import DAY, Clock, add_months
from .errors import StripeError
from .forms import as_bool, as_int, as_list, as_metadata
from .objects import JSON, Fixtures, new_id
from .plans import MeterSeed, PlanSeed
from .store import Store, filter_list, matches_created, matches_type, paginate

PAYMENT_OUTCOMES = ("succeed", "fail", "requires_action")
PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
RETRY_INTERVAL = 3 * DAY
MAX_FAILED_RETRIES = 3
#: Statuses in which the emulator's clock does nothing more with a subscription.
INERT_STATUSES = ("canceled", "incomplete", "incomplete_expired", "unpaid", "paused")


@dataclass
class SubscriptionState:
    """Emulator-only bookkeeping for one subscription."""

    anchor: int
    cycle: int = 0
    trial_will_end_sent: bool = False
    open_invoice: str | None = None
    failed_retries: int = 0
    retry_at: int | None = None
    pending_lines: list[tuple[str, int, str]] = field(default_factory=list)


@dataclass
class CustomerState:
    """Emulator-only bookkeeping for one customer."""

    payment: str = "succeed"
    has_payment_method: bool = False


@dataclass
class CheckoutSpec:
    """What a Checkout Session will create when it is paid."""

    line_items: list[tuple[str, int]]
    subscription_metadata: dict[str, str]
    trial_period_days: int | None


def _allow(params: dict[str, Any], allowed: set[str]) -> None:
    for key in params:
        if key not in allowed and key != "expand":
            raise StripeError.invalid(f"Received unknown parameter: {key}", param=key)


def _merge_metadata(
    current: dict[str, str], update: Any, param: str = "metadata"
) -> dict[str, str]:
    """Stripe's metadata update: keys set to "" are removed, ``metadata=""`` clears."""
    if update == "":
        return {}
    merged = dict(current)
    for key, value in as_metadata(update, param).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _price_name(price: JSON) -> str:
    return str(price["nickname"] or price["id"])


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


class Emulator:
    """All state of one emulated Stripe account and its lifecycle rules."""

    def __init__(
        self,
        fixtures: Fixtures,
        plans: list[PlanSeed],
        *,
        url_base: str = "http://127.0.0.1",
        after_failed_payments: str = "unpaid",
        meters: list[MeterSeed] | None = None,
    ) -> None:
        if after_failed_payments not in ("unpaid", "canceled"):
            raise ValueError("after_failed_payments must be 'unpaid' or 'canceled'")
        self.fx = fixtures
        self.store = Store()
        self.clock = Clock()
        self.url_base = url_base
        self.after_failed_payments = after_failed_payments
        self.listeners: list[Callable[[JSON], None]] = []
        self.pending_webhooks: Callable[[], int] = lambda: 0
        self.sub_state: dict[str, SubscriptionState] = {}
        self.customer_state: dict[str, CustomerState] = {}
        self.checkout_specs: dict[str, CheckoutSpec] = {}
        self._request: tuple[str | None, str | None] = (None, None)
        for plan in plans:
            self._seed_plan(plan)
        # event_name -> its metered price; usage(customer, start, end) -> {event_name: units}
        self.metered_prices: dict[str, JSON] = {}
        self.metered_usage: Callable[[str, int, int], dict[str, int]] = lambda *_: {}
        for meter in meters or ():
            self._seed_meter(meter)

    # -- infrastructure -------------------------------------------------

    def _seed_plan(self, plan: PlanSeed) -> None:
        now = self.clock.now()
        product = self.fx.product(created=now, name=plan.name.replace("_", " ").title())
        price = self.fx.price(
            created=now,
            product=product["id"],
            unit_amount=plan.unit_amount,
            price_id=plan.price_id,
            nickname=plan.name,
        )
        product["default_price"] = price["id"]
        self.store.products[product["id"]] = product
        self.store.prices[price["id"]] = price

    def _seed_meter(self, meter: MeterSeed) -> None:
        now = self.clock.now()
        product = self.fx.product(created=now, name=meter.meter.replace("_", " ").title())
        price = self.fx.price(
            created=now,
            product=product["id"],
            unit_amount=meter.unit_amount,
            price_id=meter.price_id,
            nickname=meter.event_name,
        )
        price["recurring"]["usage_type"] = "metered"
        product["default_price"] = price["id"]
        self.store.products[product["id"]] = product
        self.store.prices[price["id"]] = price
        self.metered_prices[meter.event_name] = price

    def _metered_lines(self, invoice_id: str, sub: JSON, start: int, end: int) -> list[JSON]:
        """Lines for the customer's meter events in [start, end), priced per unit."""
        lines = []
        for event_name, units in sorted(self.metered_usage(sub["customer"], start, end).items()):
            price = self.metered_prices.get(event_name)
            if price is None or units <= 0:
                continue
            item = {**sub["items"]["data"][0], "price": price, "quantity": units}
            lines.append(
                self.fx.invoice_line(
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

    @contextlib.contextmanager
    def request_context(
        self, request_id: str | None, idempotency_key: str | None
    ) -> Iterator[None]:
        """Stamp events created inside the block with this API request's id and key."""
        previous = self._request
        self._request = (request_id, idempotency_key)
        try:
            yield
        finally:
            self._request = previous

    def emit(self, event_type: str, obj: JSON, previous: JSON | None = None) -> JSON:
        """Record an event with a snapshot of ``obj`` and notify the listeners."""
        request_id, key = self._request
        event = self.fx.event(
            event_type=event_type,
            created=self.clock.now(),
            obj=obj,
            previous_attributes=previous,
            pending_webhooks=self.pending_webhooks(),
            request_id=request_id,
            idempotency_key=key,
        )
        self.store.events[event["id"]] = event
        for listener in self.listeners:
            listener(event)
        return event

    def _customer_state(self, customer_id: str) -> CustomerState:
        return self.customer_state.setdefault(customer_id, CustomerState())

    def _price(self, price_id: Any, param: str) -> JSON:
        if not isinstance(price_id, str) or not price_id:
            raise StripeError.missing_param(param)
        return self.store.get("prices", price_id, param=param, status=400)

    # -- customers and prices --------------------------------------------

    def create_customer(self, params: dict[str, Any]) -> JSON:
        """POST /v1/customers."""
        _allow(
            params,
            {
                "email",
                "name",
                "description",
                "phone",
                "metadata",
                "payment_method",
                "invoice_settings",
                "address",
                "preferred_locales",
            },
        )
        customer = self.fx.customer(
            created=self.clock.now(),
            email=params.get("email") or None,
            name=params.get("name") or None,
            description=params.get("description") or None,
            phone=params.get("phone") or None,
            metadata=as_metadata(params.get("metadata")),
        )
        self.store.customers[customer["id"]] = customer
        state = self._customer_state(customer["id"])
        if params.get("payment_method"):
            state.has_payment_method = True
        self.emit("customer.created", customer)
        return customer

    def update_customer(self, customer_id: str, params: dict[str, Any]) -> JSON:
        """POST /v1/customers/{id}."""
        _allow(
            params,
            {
                "email",
                "name",
                "description",
                "phone",
                "metadata",
                "invoice_settings",
                "address",
                "preferred_locales",
            },
        )
        customer = self.store.get("customers", customer_id)
        previous: JSON = {}
        for key in ("email", "name", "description", "phone"):
            if key in params:
                value = params[key] or None
                if customer[key] != value:
                    previous[key] = customer[key]
                    customer[key] = value
        if "metadata" in params:
            merged = _merge_metadata(customer["metadata"], params["metadata"])
            if merged != customer["metadata"]:
                previous["metadata"] = customer["metadata"]
                customer["metadata"] = merged
        if previous:
            self.emit("customer.updated", customer, previous)
        return customer

    def list_customers(self, params: dict[str, Any]) -> JSON:
        """GET /v1/customers."""
        email = params.get("email")
        rows = [
            c
            for c in reversed(self.store.customers.values())
            if (not email or c["email"] == email) and matches_created(c, params.get("created"))
        ]
        return paginate(rows, params, "/v1/customers")

    def create_price(self, params: dict[str, Any]) -> JSON:
        """POST /v1/prices."""
        _allow(
            params,
            {
                "currency",
                "unit_amount",
                "product",
                "product_data",
                "recurring",
                "nickname",
                "lookup_key",
                "metadata",
                "active",
            },
        )
        currency = params.get("currency")
        if not currency:
            raise StripeError.missing_param("currency")
        if "unit_amount" not in params:
            raise StripeError.missing_param("unit_amount")
        amount = as_int(params["unit_amount"], "unit_amount", minimum=0)
        now = self.clock.now()
        if params.get("product"):
            product = self.store.get(
                "products", str(params["product"]), param="product", status=400
            )
        else:
            data = params.get("product_data")
            if not isinstance(data, dict) or not data.get("name"):
                raise StripeError.missing_param("product_data[name]")
            product = self.fx.product(created=now, name=str(data["name"]))
            self.store.products[product["id"]] = product
            self.emit("product.created", product)
        recurring = params.get("recurring")
        interval: str | None = None
        count = 1
        if isinstance(recurring, dict):
            interval = str(recurring.get("interval") or "")
            if interval not in ("day", "week", "month", "year"):
                raise StripeError.invalid("Invalid interval", param="recurring[interval]")
            count = as_int(
                recurring.get("interval_count", 1), "recurring[interval_count]", minimum=1
            )
        price = self.fx.price(
            created=now,
            product=product["id"],
            unit_amount=amount,
            currency=str(currency).lower(),
            interval=interval,
            interval_count=count,
            nickname=params.get("nickname") or None,
            lookup_key=params.get("lookup_key") or None,
            metadata=as_metadata(params.get("metadata")),
        )
        self.store.prices[price["id"]] = price
        self.emit("price.created", price)
        return price

    def list_prices(self, params: dict[str, Any]) -> JSON:
        """GET /v1/prices."""
        product = params.get("product")
        active = as_bool(params["active"], "active") if "active" in params else None
        kind = params.get("type")
        lookup_keys = filter_list(params, "lookup_keys")
        rows = [
            p
            for p in reversed(self.store.prices.values())
            if (not product or p["product"] == product)
            and (active is None or p["active"] == active)
            and (not kind or p["type"] == kind)
            and (not lookup_keys or p["lookup_key"] in lookup_keys)
        ]
        return paginate(rows, params, "/v1/prices")

    def list_products(self, params: dict[str, Any]) -> JSON:
        """GET /v1/products."""
        return paginate(list(reversed(self.store.products.values())), params, "/v1/products")

    # -- checkout and portal ---------------------------------------------

    def create_checkout_session(self, params: dict[str, Any]) -> JSON:
        """POST /v1/checkout/sessions (subscription mode only)."""
        _allow(
            params,
            {
                "mode",
                "customer",
                "customer_email",
                "line_items",
                "client_reference_id",
                "metadata",
                "subscription_data",
                "success_url",
                "cancel_url",
                "allow_promotion_codes",
                "billing_address_collection",
                "locale",
                "payment_method_types",
                "customer_update",
                "automatic_tax",
                "tax_id_collection",
                "ui_mode",
            },
        )
        mode = params.get("mode")
        if not mode:
            raise StripeError.missing_param("mode")
        if mode != "subscription":
            raise StripeError.invalid(
                "The emulator only supports Checkout Sessions with mode=subscription.", param="mode"
            )
        customer_id = params.get("customer") or None
        email = params.get("customer_email") or None
        if customer_id and email:
            raise StripeError.invalid(
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        if customer_id:
            self.store.get("customers", str(customer_id), param="customer", status=400)
        raw_items = as_list(params.get("line_items"), "line_items")
        if not raw_items:
            raise StripeError.missing_param("line_items")
        items: list[tuple[str, int]] = []
        amount = 0
        for index, raw in enumerate(raw_items):
            if not isinstance(raw, dict):
                raise StripeError.invalid("Invalid line item", param=f"line_items[{index}]")
            price = self._price(raw.get("price"), f"line_items[{index}][price]")
            if price["recurring"] is None:
                raise StripeError.invalid(
                    "You must specify at least one recurring price in `subscription` mode.",
                    param=f"line_items[{index}][price]",
                )
            quantity = as_int(raw.get("quantity", 1), f"line_items[{index}][quantity]", minimum=1)
            items.append((price["id"], quantity))
            amount += int(price["unit_amount"]) * quantity
        sub_data = params.get("subscription_data") or {}
        if not isinstance(sub_data, dict):
            raise StripeError.invalid("Invalid hash", param="subscription_data")
        trial_days = None
        if sub_data.get("trial_period_days") not in (None, ""):
            trial_days = as_int(
                sub_data["trial_period_days"], "subscription_data[trial_period_days]", minimum=1
            )
        promo = params.get("allow_promotion_codes")
        session = self.fx.checkout_session(
            created=self.clock.now(),
            url_base=self.url_base,
            customer=str(customer_id) if customer_id else None,
            customer_email=str(email) if email else None,
            amount=0 if trial_days else amount,
            success_url=params.get("success_url") or None,
            cancel_url=params.get("cancel_url") or None,
            client_reference_id=params.get("client_reference_id") or None,
            metadata=as_metadata(params.get("metadata")),
            allow_promotion_codes=None
            if promo is None
            else as_bool(promo, "allow_promotion_codes"),
            billing_address_collection=params.get("billing_address_collection") or None,
        )
        if params.get("locale"):
            session["locale"] = params["locale"]
        self.store.checkout_sessions[session["id"]] = session
        self.checkout_specs[session["id"]] = CheckoutSpec(
            line_items=items,
            subscription_metadata=as_metadata(
                sub_data.get("metadata"), "subscription_data[metadata]"
            ),
            trial_period_days=trial_days,
        )
        return session

    def complete_checkout(
        self, session_id: str, payment: str | None = None, email: str | None = None
    ) -> JSON:
        """What Stripe does when the customer pays a Checkout Session."""
        session = self.store.get("checkout_sessions", session_id)
        if session["status"] != "open":
            raise StripeError.invalid(
                f"Checkout Session {session_id} is not open (status {session['status']}).",
                param="id",
            )
        if payment is not None and payment not in PAYMENT_OUTCOMES:
            raise StripeError.invalid(f"payment must be one of {PAYMENT_OUTCOMES}", param="payment")
        spec = self.checkout_specs[session_id]
        with self.request_context(None, None):
            if session["customer"]:
                customer = self.store.customers[session["customer"]]
            else:
                customer = self.fx.customer(
                    created=self.clock.now(),
                    email=session["customer_email"] or email or "customer@example.com",
                )
                self.store.customers[customer["id"]] = customer
                self.emit("customer.created", customer)
            state = self._customer_state(customer["id"])
            state.has_payment_method = True
            outcome = payment or state.payment
            sub, invoice, paid = self._start_subscription(
                customer,
                spec.line_items,
                spec.subscription_metadata,
                trial_days=spec.trial_period_days,
                outcome=outcome,
            )
            session.update(
                status="complete",
                customer=customer["id"],
                subscription=sub["id"],
                invoice=invoice["id"],
                customer_details=self.fx.customer_details(customer["email"], customer["name"]),
                payment_status=(
                    "no_payment_required"
                    if paid and invoice["amount_due"] == 0
                    else "paid"
                    if paid
                    else "unpaid"
                ),
            )
            self.emit("checkout.session.completed", session)
        return session

    def create_portal_session(self, params: dict[str, Any]) -> JSON:
        """POST /v1/billing_portal/sessions."""
        _allow(params, {"customer", "return_url", "configuration", "locale", "flow_data"})
        customer_id = params.get("customer")
        if not customer_id:
            raise StripeError.missing_param("customer")
        self.store.get("customers", str(customer_id), param="customer", status=400)
        session = self.fx.portal_session(
            created=self.clock.now(),
            customer=str(customer_id),
            return_url=params.get("return_url") or None,
            url_base=self.url_base,
        )
        self.store.portal_sessions[session["id"]] = session
        return session

    # -- invoices ---------------------------------------------------------

    def _item_line(self, invoice_id: str, sub: JSON, item: JSON, start: int, end: int) -> JSON:
        price = item["price"]
        amount = int(price["unit_amount"]) * int(item["quantity"])
        name = price["nickname"] or price["id"]
        return self.fx.invoice_line(
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
        self, invoice_id: str, sub: JSON, specs: list[tuple[str, int, str]]
    ) -> list[JSON]:
        items = {item["id"]: item for item in sub["items"]["data"]}
        start, end = self._period(sub)
        lines = []
        for item_id, amount, description in specs:
            item = items.get(item_id) or sub["items"]["data"][0]
            lines.append(
                self.fx.invoice_line(
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

    def _new_invoice(
        self,
        sub: JSON,
        reason: str,
        *,
        full_period: tuple[int, int] | None,
        prorations: list[tuple[str, int, str]] | None = None,
        period: tuple[int, int] | None = None,
        invoice_id: str | None = None,
        store: bool = True,
    ) -> JSON:
        invoice_id = invoice_id or new_id("in_")
        lines: list[JSON] = []
        if full_period is not None:
            start, end = full_period
            lines = [
                self._item_line(invoice_id, sub, item, start, end) for item in sub["items"]["data"]
            ]
            if reason == "subscription_create" and sub["status"] == "trialing":
                for line in lines:
                    line["amount"] = line["subtotal"] = 0
                    line["description"] = f"Trial period for {line['description'].split(' (at')[0]}"
        lines.extend(self._proration_lines(invoice_id, sub, prorations or []))
        if reason == "subscription_cycle" and period is not None:
            lines.extend(self._metered_lines(invoice_id, sub, *period))
        now = self.clock.now()
        start, end = period or (now, now)
        invoice = self.fx.invoice(
            invoice_id=invoice_id,
            customer=self.store.customers[sub["customer"]],
            subscription=sub,
            created=now,
            billing_reason=reason,
            lines=lines,
            period_start=start,
            period_end=end,
        )
        if store:
            self.store.invoices[invoice_id] = invoice
            sub["latest_invoice"] = invoice_id
        return invoice

    def _finalize(self, invoice: JSON) -> None:
        customer = self.store.customers[invoice["customer"]]
        now = self.clock.now()
        invoice.update(
            status="open",
            number=f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}",
            effective_at=now,
            hosted_invoice_url=f"{self.url_base}/invoice/{invoice['id']}",
            invoice_pdf=f"{self.url_base}/invoice/{invoice['id']}/pdf",
        )
        invoice["status_transitions"]["finalized_at"] = now
        customer["next_invoice_sequence"] += 1
        self.emit("invoice.finalized", invoice)

    def _attempt_payment(self, invoice: JSON, outcome: str, retry_at: int | None) -> bool:
        """Charge the invoice; emits paid/payment_succeeded or payment_failed."""
        now = self.clock.now()
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
            self.emit("invoice.paid", invoice)
            self.emit("invoice.payment_succeeded", invoice)
            return True
        invoice["attempt_count"] += 1
        invoice.update(attempted=True, next_payment_attempt=retry_at)
        self.emit("invoice.payment_failed", invoice)
        if outcome == "requires_action":
            self.emit("invoice.payment_action_required", invoice)
        return False

    def _run_invoice(self, invoice: JSON, outcome: str, retry_at: int | None) -> bool:
        self.emit("invoice.created", invoice)
        self._finalize(invoice)
        return self._attempt_payment(invoice, outcome, retry_at)

    def list_invoices(self, params: dict[str, Any]) -> JSON:
        """GET /v1/invoices (filters ``customer``, ``subscription``, ``status``)."""
        customer, sub, status = (
            params.get("customer"),
            params.get("subscription"),
            params.get("status"),
        )
        rows = [
            inv
            for inv in reversed(self.store.invoices.values())
            if (not customer or inv["customer"] == customer)
            and (not sub or inv["parent"]["subscription_details"]["subscription"] == sub)
            and (not status or inv["status"] == status)
            and matches_created(inv, params.get("created"))
        ]
        return paginate(rows, params, "/v1/invoices")

    # -- subscriptions ------------------------------------------------------

    @staticmethod
    def _period(sub: JSON) -> tuple[int, int]:
        item = sub["items"]["data"][0]
        return int(item["current_period_start"]), int(item["current_period_end"])

    @staticmethod
    def _set_period(sub: JSON, start: int, end: int) -> None:
        for item in sub["items"]["data"]:
            item["current_period_start"] = start
            item["current_period_end"] = end

    def _start_subscription(
        self,
        customer: JSON,
        line_items: list[tuple[str, int]],
        metadata: dict[str, str],
        *,
        trial_days: int | None = None,
        trial_end: int | None = None,
        outcome: str,
        missing_payment_method: str = "create_invoice",
    ) -> tuple[JSON, JSON, bool]:
        now = self.clock.now()
        sub_id = new_id("sub_")
        if trial_days:
            trial_end = now + trial_days * DAY
        trialing = trial_end is not None
        anchor = trial_end if trial_end is not None else now
        end = anchor if trialing else add_months(anchor, 1)
        items = [
            self.fx.subscription_item(
                subscription=sub_id,
                price=self.store.prices[price_id],
                created=now,
                period_start=now,
                period_end=end,
                quantity=quantity,
            )
            for price_id, quantity in line_items
        ]
        paid_up = trialing or outcome == "succeed"
        sub = self.fx.subscription(
            sub_id=sub_id,
            customer=customer["id"],
            created=now,
            items=items,
            status="trialing" if trialing else ("active" if paid_up else "incomplete"),
            metadata=metadata,
            billing_cycle_anchor=anchor,
            trial_start=now if trialing else None,
            trial_end=trial_end,
            currency=items[0]["price"]["currency"],
            missing_payment_method=missing_payment_method,
        )
        self.store.subscriptions[sub_id] = sub
        state = SubscriptionState(anchor=anchor, cycle=-1 if trialing else 0)
        self.sub_state[sub_id] = state
        if customer["currency"] is None:
            customer["currency"] = sub["currency"]
        invoice = self._new_invoice(sub, "subscription_create", full_period=(now, end))
        self.emit("customer.subscription.created", sub)
        paid = self._run_invoice(invoice, outcome, None)
        if not paid:
            state.open_invoice = invoice["id"]
        return sub, invoice, paid

    def _sub_items_param(self, params: dict[str, Any]) -> list[tuple[str, int]]:
        raw_items = as_list(params.get("items"), "items")
        if not raw_items:
            raise StripeError.missing_param("items")
        result = []
        for index, raw in enumerate(raw_items):
            if not isinstance(raw, dict):
                raise StripeError.invalid("Invalid item", param=f"items[{index}]")
            price = self._price(raw.get("price"), f"items[{index}][price]")
            if price["recurring"] is None:
                raise StripeError.invalid(
                    "The price specified is not recurring.", param=f"items[{index}][price]"
                )
            quantity = as_int(raw.get("quantity", 1), f"items[{index}][quantity]", minimum=1)
            result.append((price["id"], quantity))
        return result

    def create_subscription(self, params: dict[str, Any]) -> JSON:
        """POST /v1/subscriptions (charges the customer at once unless trialing)."""
        _allow(
            params,
            {
                "customer",
                "items",
                "metadata",
                "trial_period_days",
                "trial_end",
                "trial_settings",
                "default_payment_method",
                "payment_behavior",
                "proration_behavior",
                "collection_method",
                "cancel_at_period_end",
                "description",
                "off_session",
            },
        )
        customer_id = params.get("customer")
        if not customer_id:
            raise StripeError.missing_param("customer")
        customer = self.store.get("customers", str(customer_id), param="customer", status=400)
        items = self._sub_items_param(params)
        trial_days = None
        if params.get("trial_period_days") not in (None, ""):
            trial_days = as_int(params["trial_period_days"], "trial_period_days", minimum=1)
        trial_end = None
        if params.get("trial_end") not in (None, "", "now"):
            trial_end = as_int(params["trial_end"], "trial_end")
            if trial_end <= self.clock.now():
                raise StripeError.invalid("trial_end must be in the future", param="trial_end")
        behavior = "create_invoice"
        settings = params.get("trial_settings")
        if isinstance(settings, dict) and isinstance(settings.get("end_behavior"), dict):
            behavior = str(settings["end_behavior"].get("missing_payment_method", behavior))
            if behavior not in ("create_invoice", "pause", "cancel"):
                raise StripeError.invalid(
                    "Invalid missing_payment_method",
                    param="trial_settings[end_behavior][missing_payment_method]",
                )
        state = self._customer_state(customer["id"])
        if params.get("default_payment_method"):
            state.has_payment_method = True
        sub, _, _ = self._start_subscription(
            customer,
            items,
            as_metadata(params.get("metadata")),
            trial_days=trial_days,
            trial_end=trial_end,
            outcome=state.payment,
            missing_payment_method=behavior,
        )
        if params.get("default_payment_method"):
            sub["default_payment_method"] = str(params["default_payment_method"])
        if "cancel_at_period_end" in params and as_bool(
            params["cancel_at_period_end"], "cancel_at_period_end"
        ):
            self._apply_cancel_at_period_end(sub, True)
        return sub

    def list_subscriptions(self, params: dict[str, Any]) -> JSON:
        """GET /v1/subscriptions (default: every status but canceled)."""
        customer, price = params.get("customer"), params.get("price")
        status = params.get("status")
        valid = (
            "active",
            "all",
            "canceled",
            "ended",
            "incomplete",
            "incomplete_expired",
            "past_due",
            "paused",
            "trialing",
            "unpaid",
        )
        if status and status not in valid:
            raise StripeError.invalid(
                f"Invalid status: must be one of {', '.join(valid)}", param="status"
            )

        def keep(sub: JSON) -> bool:
            if customer and sub["customer"] != customer:
                return False
            if price and all(i["price"]["id"] != price for i in sub["items"]["data"]):
                return False
            if status == "all":
                return True
            if status == "ended":
                return sub["status"] in ("canceled", "incomplete_expired")
            if status:
                return bool(sub["status"] == status)
            return bool(sub["status"] != "canceled")

        rows = [
            s
            for s in reversed(self.store.subscriptions.values())
            if keep(s) and matches_created(s, params.get("created"))
        ]
        return paginate(rows, params, "/v1/subscriptions")

    def _apply_cancel_at_period_end(self, sub: JSON, value: bool) -> JSON:
        previous: JSON = {}
        if sub["cancel_at_period_end"] == value:
            return previous
        for key in ("cancel_at_period_end", "cancel_at", "canceled_at", "cancellation_details"):
            previous[key] = copy.deepcopy(sub[key])
        sub["cancel_at_period_end"] = value
        if value:
            sub["cancel_at"] = self._period(sub)[1]
            sub["canceled_at"] = self.clock.now()
            sub["cancellation_details"]["reason"] = "cancellation_requested"
        else:
            sub["cancel_at"] = None
            sub["canceled_at"] = None
            sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        return previous

    def _change_items(
        self, sub: JSON, raw_items: list[Any], proration: str, proration_date: int | None
    ) -> list[tuple[str, int, str]]:
        """Apply ``items[]`` changes; returns the proration line specs they cause."""
        now = proration_date or self.clock.now()
        start, end = self._period(sub)
        fraction = max(0.0, min(1.0, (end - now) / (end - start))) if end > start else 0.0
        prorate = proration != "none" and sub["status"] != "trialing"
        by_id = {item["id"]: item for item in sub["items"]["data"]}
        specs: list[tuple[str, int, str]] = []
        for index, raw in enumerate(raw_items):
            if not isinstance(raw, dict):
                raise StripeError.invalid("Invalid item", param=f"items[{index}]")
            item_id = raw.get("id")
            if item_id:
                item = by_id.get(str(item_id))
                if item is None:
                    raise StripeError(
                        400,
                        f"No such subscription item: '{item_id}'",
                        param=f"items[{index}][id]",
                        code="resource_missing",
                    )
                old_amount = int(item["price"]["unit_amount"]) * int(item["quantity"])
                if raw.get("deleted") not in (None, "") and as_bool(
                    raw["deleted"], f"items[{index}][deleted]"
                ):
                    sub["items"]["data"].remove(item)
                    if prorate and old_amount:
                        specs.append(
                            (
                                item["id"],
                                -round(old_amount * fraction),
                                f"Unused time on {_price_name(item['price'])}",
                            )
                        )
                    continue
                old_name = item["price"]["nickname"] or item["price"]["id"]
                if raw.get("price"):
                    price = self._price(raw["price"], f"items[{index}][price]")
                    item["price"] = copy.deepcopy(price)
                    item["plan"] = self.fx.plan_from_price(price)
                if raw.get("quantity") not in (None, ""):
                    item["quantity"] = as_int(
                        raw["quantity"], f"items[{index}][quantity]", minimum=1
                    )
                new_amount = int(item["price"]["unit_amount"]) * int(item["quantity"])
                new_name = item["price"]["nickname"] or item["price"]["id"]
                if prorate and new_amount != old_amount:
                    specs.append(
                        (item["id"], -round(old_amount * fraction), f"Unused time on {old_name}")
                    )
                    specs.append(
                        (item["id"], round(new_amount * fraction), f"Remaining time on {new_name}")
                    )
            else:
                price = self._price(raw.get("price"), f"items[{index}][price]")
                quantity = as_int(raw.get("quantity", 1), f"items[{index}][quantity]", minimum=1)
                item = self.fx.subscription_item(
                    subscription=sub["id"],
                    price=price,
                    created=self.clock.now(),
                    period_start=start,
                    period_end=end,
                    quantity=quantity,
                )
                sub["items"]["data"].append(item)
                amount = int(price["unit_amount"]) * quantity
                if prorate and amount:
                    specs.append(
                        (
                            item["id"],
                            round(amount * fraction),
                            f"Remaining time on {price['nickname'] or price['id']}",
                        )
                    )
        if not sub["items"]["data"]:
            raise StripeError.invalid("A subscription must have at least one item.", param="items")
        return specs

    def update_subscription(self, sub_id: str, params: dict[str, Any]) -> JSON:
        """POST /v1/subscriptions/{id}."""
        _allow(
            params,
            {
                "cancel_at_period_end",
                "metadata",
                "items",
                "proration_behavior",
                "proration_date",
                "pause_collection",
                "cancellation_details",
                "default_payment_method",
                "payment_behavior",
                "description",
                "trial_settings",
                "off_session",
                "billing_cycle_anchor",
            },
        )
        sub = self.store.get("subscriptions", sub_id)
        if sub["status"] in ("canceled", "incomplete_expired") and set(params) - {
            "metadata",
            "cancellation_details",
            "expand",
        }:
            raise StripeError.invalid(
                "A canceled subscription can only update its cancellation_details and metadata."
            )
        proration = str(params.get("proration_behavior") or "create_prorations")
        if proration not in PRORATION_BEHAVIORS:
            raise StripeError.invalid(
                f"Invalid proration_behavior: must be one of {', '.join(PRORATION_BEHAVIORS)}",
                param="proration_behavior",
            )
        before = copy.deepcopy(sub)
        previous: JSON = {}
        if "metadata" in params:
            merged = _merge_metadata(sub["metadata"], params["metadata"])
            if merged != sub["metadata"]:
                previous["metadata"] = sub["metadata"]
                sub["metadata"] = merged
        if "cancel_at_period_end" in params:
            value = as_bool(params["cancel_at_period_end"], "cancel_at_period_end")
            previous.update(self._apply_cancel_at_period_end(sub, value))
        details = params.get("cancellation_details")
        if isinstance(details, dict):
            previous.setdefault("cancellation_details", copy.deepcopy(sub["cancellation_details"]))
            for key in ("comment", "feedback"):
                if key in details:
                    sub["cancellation_details"][key] = details[key] or None
        if "pause_collection" in params:
            previous["pause_collection"] = sub["pause_collection"]
            sub["pause_collection"] = self._pause_param(params["pause_collection"])
        if params.get("default_payment_method"):
            previous["default_payment_method"] = sub["default_payment_method"]
            sub["default_payment_method"] = str(params["default_payment_method"])
            self._customer_state(sub["customer"]).has_payment_method = True
        specs: list[tuple[str, int, str]] = []
        if "items" in params:
            proration_date = None
            if params.get("proration_date") not in (None, ""):
                proration_date = as_int(params["proration_date"], "proration_date")
            specs = self._change_items(
                sub, as_list(params["items"], "items"), proration, proration_date
            )
            if sub["items"] != before["items"]:
                previous["items"] = before["items"]
        previous = {k: v for k, v in previous.items() if before.get(k) != sub.get(k)}
        if specs and proration == "always_invoice":
            invoice = self._new_invoice(
                sub, "subscription_update", full_period=None, prorations=specs
            )
            previous["latest_invoice"] = before["latest_invoice"]
        elif specs:
            self.sub_state[sub_id].pending_lines.extend(specs)
            invoice = None
        else:
            invoice = None
        if previous:
            self.emit("customer.subscription.updated", sub, previous)
        if invoice is not None:
            self._run_invoice(invoice, self._customer_state(sub["customer"]).payment, None)
        return sub

    @staticmethod
    def _pause_param(value: Any) -> JSON | None:
        if value in ("", None):
            return None
        if not isinstance(value, dict):
            raise StripeError.invalid("Invalid pause_collection", param="pause_collection")
        behavior = value.get("behavior")
        if behavior not in PAUSE_BEHAVIORS:
            raise StripeError.invalid(
                f"Invalid behavior: must be one of {', '.join(PAUSE_BEHAVIORS)}",
                param="pause_collection[behavior]",
            )
        resumes_at = value.get("resumes_at")
        return {
            "behavior": behavior,
            "resumes_at": None
            if resumes_at in (None, "")
            else as_int(resumes_at, "pause_collection[resumes_at]"),
        }

    def cancel_subscription(
        self, sub_id: str, params: dict[str, Any], *, reason: str = "cancellation_requested"
    ) -> JSON:
        """DELETE /v1/subscriptions/{id}: cancel now."""
        _allow(params, {"cancellation_details", "invoice_now", "prorate"})
        sub = self.store.get("subscriptions", sub_id)
        if sub["status"] == "canceled":
            raise StripeError.invalid(
                f"This subscription has already been canceled: '{sub_id}'.", param="subscription"
            )
        details = params.get("cancellation_details")
        if isinstance(details, dict):
            for key in ("comment", "feedback"):
                if key in details:
                    sub["cancellation_details"][key] = details[key] or None
        self._end(sub, reason)
        return sub

    def _end(self, sub: JSON, reason: str) -> None:
        now = self.clock.now()
        sub["status"] = "canceled"
        sub["ended_at"] = now
        if (
            sub["canceled_at"] is None
            or reason != "cancellation_requested"
            or not sub["cancel_at_period_end"]
        ):
            sub["canceled_at"] = now
        sub["cancellation_details"]["reason"] = reason
        state = self.sub_state[sub["id"]]
        state.retry_at = None
        self.emit("customer.subscription.deleted", sub)

    def resume_subscription(self, sub_id: str, params: dict[str, Any]) -> JSON:
        """POST /v1/subscriptions/{id}/resume: a paused subscription starts a new period now."""
        _allow(params, {"billing_cycle_anchor", "proration_behavior", "proration_date"})
        sub = self.store.get("subscriptions", sub_id)
        if sub["status"] != "paused":
            raise StripeError.invalid(
                "Only a subscription with status `paused` can be resumed.", param="subscription"
            )
        now = self.clock.now()
        state = self.sub_state[sub_id]
        state.anchor, state.cycle = now, 0
        before = copy.deepcopy(sub)
        outcome = self._customer_state(sub["customer"]).payment
        sub["status"] = "active"
        sub["billing_cycle_anchor"] = now
        self._set_period(sub, now, add_months(now, 1))
        invoice = self._new_invoice(sub, "subscription_cycle", full_period=self._period(sub))
        self.emit("customer.subscription.resumed", sub)
        self.emit(
            "customer.subscription.updated",
            sub,
            {
                "status": "paused",
                "items": before["items"],
                "latest_invoice": before["latest_invoice"],
                "billing_cycle_anchor": before["billing_cycle_anchor"],
            },
        )
        self._charge_cycle_invoice(sub, invoice, outcome)
        return sub

    # -- previews -------------------------------------------------------------

    def preview_invoice(self, params: dict[str, Any]) -> JSON:
        """POST /v1/invoices/create_preview with simple linear proration."""
        _allow(params, {"customer", "subscription", "subscription_details", "automatic_tax"})
        customer_id = params.get("customer")
        sub_id = params.get("subscription")
        if not customer_id and not sub_id:
            raise StripeError.missing_param("customer")
        sub_source = None
        if sub_id:
            sub_source = self.store.get(
                "subscriptions", str(sub_id), param="subscription", status=400
            )
            customer_id = customer_id or sub_source["customer"]
            if sub_source["customer"] != customer_id:
                raise StripeError.invalid(
                    "The subscription does not belong to the customer.", param="subscription"
                )
        customer = self.store.get("customers", str(customer_id), param="customer", status=400)
        details = params.get("subscription_details") or {}
        if not isinstance(details, dict):
            raise StripeError.invalid("Invalid hash", param="subscription_details")
        proration = str(details.get("proration_behavior") or "create_prorations")
        if proration not in PRORATION_BEHAVIORS:
            raise StripeError.invalid(
                "Invalid proration_behavior", param="subscription_details[proration_behavior]"
            )
        now = self.clock.now()
        if sub_source is None:
            items = self._sub_items_param({"items": details.get("items")})
            sub = self.fx.subscription(
                sub_id=new_id("sub_"),
                customer=customer["id"],
                created=now,
                items=[
                    self.fx.subscription_item(
                        subscription="",
                        price=self.store.prices[p],
                        created=now,
                        period_start=now,
                        period_end=add_months(now, 1),
                        quantity=q,
                    )
                    for p, q in items
                ],
                status="active",
                metadata={},
                billing_cycle_anchor=now,
            )
            return self._new_invoice(
                sub,
                "subscription_create",
                full_period=(now, add_months(now, 1)),
                invoice_id=new_id("upcoming_in_"),
                store=False,
            )
        sub = copy.deepcopy(sub_source)
        specs = list(self.sub_state[sub["id"]].pending_lines)
        new_specs: list[tuple[str, int, str]] = []
        if details.get("items") not in (None, ""):
            proration_date = None
            if details.get("proration_date") not in (None, ""):
                proration_date = as_int(
                    details["proration_date"], "subscription_details[proration_date]"
                )
            try:
                new_specs = self._change_items(
                    sub, as_list(details["items"], "items"), proration, proration_date
                )
            except StripeError as error:
                if error.param and error.param.startswith("items"):
                    error.param = f"subscription_details[{error.param.replace('[', '][', 1)}"
                raise
        start, end = self._period(sub)
        if proration == "always_invoice":
            return self._new_invoice(
                sub,
                "subscription_update",
                full_period=None,
                prorations=new_specs,
                invoice_id=new_id("upcoming_in_"),
                store=False,
            )
        next_state = self.sub_state[sub["id"]]
        next_end = (
            add_months(next_state.anchor, next_state.cycle + 2)
            if sub["status"] != "trialing"
            else add_months(end, 1)
        )
        return self._new_invoice(
            sub,
            "upcoming",
            full_period=(end, next_end),
            prorations=specs + new_specs,
            period=(start, end),
            invoice_id=new_id("upcoming_in_"),
            store=False,
        )

    # -- payment behaviour and the clock -----------------------------------

    def set_payment_behavior(self, customer_id: str, fail: bool, mode: str | None = None) -> JSON:
        """Make the customer's future charges succeed, fail or require action."""
        self.store.get("customers", customer_id)
        outcome = mode or ("fail" if fail else "succeed")
        if outcome not in PAYMENT_OUTCOMES:
            raise StripeError.invalid(f"mode must be one of {PAYMENT_OUTCOMES}", param="mode")
        self._customer_state(customer_id).payment = outcome
        return {"customer": customer_id, "payment": outcome}

    def _next_due(self, sub: JSON) -> tuple[int, str] | None:
        if sub["status"] in INERT_STATUSES:
            return None
        state = self.sub_state[sub["id"]]
        start, end = self._period(sub)
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

    def advance_clock(self, seconds: int) -> JSON:
        """Move the clock forward, processing everything due in time order."""
        if seconds < 0:
            raise StripeError.invalid("seconds must not be negative", param="seconds")
        first_event = len(self.store.events)
        target = self.clock.now() + seconds
        with self.request_context(None, None):
            while True:
                due: list[tuple[int, int, str, str]] = []
                for order, sub in enumerate(self.store.subscriptions.values()):
                    found = self._next_due(sub)
                    if found is not None:
                        due.append((found[0], order, found[1], sub["id"]))
                if not due:
                    break
                at, _, kind, sub_id = min(due)
                if at > target:
                    break
                self.clock.freeze(max(at, self.clock.now()))
                self._process(self.store.subscriptions[sub_id], kind)
            self.clock.set(target)
        events = list(self.store.events.values())[first_event:]
        return {
            "now": self.clock.now(),
            "events": [{"id": e["id"], "type": e["type"]} for e in events],
        }

    def _process(self, sub: JSON, kind: str) -> None:
        state = self.sub_state[sub["id"]]
        if kind == "trial_will_end":
            state.trial_will_end_sent = True
            self.emit("customer.subscription.trial_will_end", sub)
        elif kind == "retry":
            self._retry(sub, state)
        elif sub["cancel_at_period_end"]:
            self._end(sub, "cancellation_requested")
        else:
            self._renew(sub, state)

    def _renew(self, sub: JSON, state: SubscriptionState) -> None:
        customer_state = self._customer_state(sub["customer"])
        before = copy.deepcopy(sub)
        if sub["status"] == "trialing" and not customer_state.has_payment_method:
            behavior = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
            if behavior == "cancel":
                self._end(sub, "missing_payment_method")
                return
            if behavior == "pause":
                sub["status"] = "paused"
                self.emit("customer.subscription.updated", sub, {"status": "trialing"})
                self.emit("customer.subscription.paused", sub)
                return
        state.cycle += 1
        start = self._period(sub)[1]
        self._set_period(sub, start, add_months(state.anchor, state.cycle + 1))
        pending, state.pending_lines = state.pending_lines, []
        invoice = self._new_invoice(
            sub,
            "subscription_cycle",
            full_period=self._period(sub),
            prorations=pending,
            period=self._period(before),
        )
        previous: JSON = {"items": before["items"], "latest_invoice": before["latest_invoice"]}
        if sub["status"] == "trialing":
            sub["status"] = "active"
            previous["status"] = "trialing"
        pause = sub["pause_collection"]
        self.emit("customer.subscription.updated", sub, previous)
        if pause is not None:
            self.emit("invoice.created", invoice)
            if pause["behavior"] == "void":
                invoice["status"] = "void"
                invoice["status_transitions"]["voided_at"] = self.clock.now()
                self.emit("invoice.voided", invoice)
            elif pause["behavior"] == "mark_uncollectible":
                self._finalize(invoice)
                invoice["status"] = "uncollectible"
                invoice["status_transitions"]["marked_uncollectible_at"] = self.clock.now()
                self.emit("invoice.marked_uncollectible", invoice)
            return
        self._charge_cycle_invoice(sub, invoice, customer_state.payment)

    def _charge_cycle_invoice(self, sub: JSON, invoice: JSON, outcome: str) -> None:
        state = self.sub_state[sub["id"]]
        retry_at = self.clock.now() + RETRY_INTERVAL
        paid = self._run_invoice(invoice, outcome, retry_at)
        if paid:
            state.open_invoice, state.retry_at, state.failed_retries = None, None, 0
            return
        state.open_invoice, state.retry_at, state.failed_retries = invoice["id"], retry_at, 0
        if sub["status"] != "past_due":
            previous = {"status": sub["status"]}
            sub["status"] = "past_due"
            self.emit("customer.subscription.updated", sub, previous)

    def _retry(self, sub: JSON, state: SubscriptionState) -> None:
        invoice = self.store.invoices[state.open_invoice or ""]
        outcome = self._customer_state(sub["customer"]).payment
        last = state.failed_retries + 1 >= MAX_FAILED_RETRIES
        retry_at = None if last else self.clock.now() + RETRY_INTERVAL
        if self._attempt_payment(invoice, outcome, retry_at):
            state.open_invoice, state.retry_at, state.failed_retries = None, None, 0
            sub["status"] = "active"
            self.emit("customer.subscription.updated", sub, {"status": "past_due"})
            return
        state.failed_retries += 1
        state.retry_at = retry_at
        if not last:
            return
        if self.after_failed_payments == "canceled":
            self._end(sub, "payment_failed")
        else:
            sub["status"] = "unpaid"
            self.emit("customer.subscription.updated", sub, {"status": "past_due"})

    # -- events ------------------------------------------------------------------

    def list_events(self, params: dict[str, Any]) -> JSON:
        """GET /v1/events, newest first."""
        pattern = params.get("type")
        types = filter_list(params, "types")
        rows = [
            e
            for e in reversed(self.store.events.values())
            if matches_type(e, pattern, types) and matches_created(e, params.get("created"))
        ]
        return paginate(rows, params, "/v1/events")
