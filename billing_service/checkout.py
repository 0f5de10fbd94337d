"""CreateCheckout: one open Checkout session per user, and request_ids decided locally.

::

    validate -> [request_id: claim it; used with other parameters -> FAILED_PRECONDITION;
                 already answered -> that session]
             -> per-user lock: live subscription? -> customer -> create session
                -> expire the user's other open subscription-mode sessions -> answer

Without request_id every call is new (a fresh Stripe idempotency key). With
one, its parameters are stored before Stripe is called, so a repeat with
other parameters is refused here, naming the field, instead of by Stripe's
idempotency error. Expiring the older sessions before answering means at
most one session per user can still be paid; a failed expiry answers
UNAVAILABLE (the caller's retry expires them again). Two sessions can only
both be paid through a race across replicas, which the duplicate
subscription handling covers (docs/events.md).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from billing_service import validation
from billing_service.deadlines import DeadlineExceeded
from billing_service.errors import BillingError, FailedPrecondition, InvalidArgument, Unavailable
from billing_service.lifecycle import LIVE_PAID, NEVER_STARTED
from billing_service.plan_options import CheckoutSettings, Interval
from billing_service.plans import Catalog, Plan
from billing_service.storage import checkout_requests, repository
from billing_service.storage.checkout_requests import CheckoutParams
from billing_service.storage.database import Database
from billing_service.stripe_api import StripeApi, idempotency_key
from billing_service.subscriptions import SubscriptionService

log = logging.getLogger(__name__)

_NEVER_STARTED = frozenset(status.value for status in NEVER_STARTED)


def started(subscription: dict[str, object]) -> bool:
    """Whether a Stripe subscription was a trial or went past its first payment."""
    return bool(subscription.get("trial_start")) or subscription.get("status") not in _NEVER_STARTED


@dataclass(frozen=True)
class CheckoutResult:
    """What CreateCheckout answers."""

    checkout_url: str
    session_id: str
    # Days of free trial the session starts with (0: none).
    trial_days: int = 0


@dataclass(frozen=True)
class _Offer:
    """What the session sells: a plan's price for an interval, seats, trial, promotion."""

    plan: Plan
    price_id: str
    quantity: int
    trial_days: int
    promotion_code_id: str


class CheckoutService:
    """The CreateCheckout operation behind the gRPC servicer."""

    def __init__(
        self,
        db: Database,
        stripe_api: StripeApi,
        catalog: Catalog,
        subscriptions: SubscriptionService,
        *,
        redirect_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self._db = db
        self._stripe = stripe_api
        self._catalog = catalog
        self._subscriptions = subscriptions
        self._redirect_hosts = redirect_hosts
        self._user_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._user_locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._user_locks[user_id] = lock
        return lock

    def _validate(self, params: CheckoutParams, request_id: str) -> tuple[Plan, str]:
        validation.user_id(params.user_id)
        validation.email(params.email)
        plan = self._catalog.requested(params.plan)
        validation.url(params.success_url, "success_url", self._redirect_hosts)
        validation.url(params.cancel_url, "cancel_url", self._redirect_hosts)
        validation.request_id(request_id)
        try:
            price_id = plan.price_for(Interval(params.interval))
        except ValueError:
            raise InvalidArgument("interval", "must be MONTH or YEAR") from None
        if price_id is None:
            raise InvalidArgument(
                "interval", f"plan {plan.name!r} has no {params.interval}ly price"
            )
        problem = plan.seats.check(params.quantity)
        if problem:
            raise InvalidArgument("quantity", problem)
        if len(params.promotion_code) > 255 or not params.promotion_code.isprintable():
            raise InvalidArgument("promotion_code", "must be at most 255 printable characters")
        return plan, price_id

    async def create(self, params: CheckoutParams, request_id: str) -> CheckoutResult:
        """A Checkout session for ``params.plan`` at ``params.interval``."""
        plan, price_id = self._validate(params, request_id)
        if request_id:
            claimed = await self._db.run(checkout_requests.claim, request_id, params)
            differing = checkout_requests.differing_fields(claimed, params)
            if differing:
                raise FailedPrecondition(
                    f"request_id {request_id!r} was already used with a different "
                    f"{', '.join(differing)}; use a new request_id for a new checkout"
                )
            if claimed.session_id:
                return CheckoutResult(
                    str(claimed.checkout_url), str(claimed.session_id), int(claimed.trial_days)
                )
        async with self._lock(params.user_id):
            view = await self._subscriptions.get(params.user_id)
            if view.row is not None and view.status in LIVE_PAID:
                raise FailedPrecondition(
                    f"user already has a {view.status.value} subscription; "
                    "change plans through the customer portal"
                )
            known_customer = view.stripe_customer_id
            customer_id = known_customer or await self._create_customer(params, request_id)
            offer = _Offer(
                plan=plan,
                price_id=price_id,
                quantity=params.quantity,
                trial_days=await self._trial_days(plan, params.user_id, known_customer),
                promotion_code_id=await self._promotion_code_id(params.promotion_code),
            )
            session = await self._stripe.create_checkout_session(
                _session_params(params, customer_id, offer, self._catalog.checkout),
                _checkout_key(params, request_id, offer.trial_days),
            )
            session_id, url = str(session["id"]), str(session.get("url") or "")
            await self._expire_other_sessions(customer_id, session_id)
        if request_id:
            await self._db.run(
                checkout_requests.record_session, request_id, session_id, url, offer.trial_days
            )
        return CheckoutResult(url, session_id, offer.trial_days)

    async def _trial_days(self, plan: Plan, user_id: str, customer_id: str) -> int:
        """The plan's trial, unless the policy says the user already had one."""
        if not plan.trial_days:
            return 0
        if not self._catalog.checkout.trial_once_per_user:
            return plan.trial_days
        if await self._db.run(repository.has_subscription_outside, user_id, _NEVER_STARTED):
            return 0
        # Stripe also knows subscriptions whose events we have not seen yet.
        if customer_id and any(
            started(sub) for sub in await self._stripe.list_subscriptions(customer_id)
        ):
            return 0
        return plan.trial_days

    async def _promotion_code_id(self, code: str) -> str:
        """The promo_... id of ``code`` (the code customers type, or already an id)."""
        if not code or code.startswith("promo_"):
            return code
        found = await self._stripe.find_promotion_code(code)
        if found is None:
            raise InvalidArgument("promotion_code", f"no active promotion code {code!r}")
        return str(found["id"])

    async def _create_customer(self, params: CheckoutParams, request_id: str) -> str:
        customer = await self._stripe.create_customer(params.user_id, params.email, request_id)
        linked = await self._db.run(
            repository.link_customer, params.user_id, customer["id"], params.email
        )
        if linked.stripe_customer_id != customer["id"]:
            log.warning("user already linked to another Stripe customer; using the first link")
        return str(linked.stripe_customer_id)

    async def _expire_other_sessions(self, customer_id: str, keep: str) -> None:
        """Expire every open subscription-mode session of the customer but ``keep``."""
        for session in await self._stripe.list_open_checkout_sessions(customer_id):
            if session.get("id") == keep or session.get("mode") != "subscription":
                continue
            try:
                await self._stripe.expire_checkout_session(str(session["id"]))
            except (Unavailable, DeadlineExceeded):
                raise
            except BillingError as exc:
                # Completed or expired since it was listed: a paid one shows up as a
                # subscription, which the duplicate detection reports.
                log.info("checkout session %s not expired: %s", session["id"], exc)
            else:
                log.info("expired older checkout session %s", session["id"])


def _session_params(
    params: CheckoutParams, customer_id: str, offer: _Offer, settings: CheckoutSettings
) -> dict[str, Any]:
    metadata = {"user_id": params.user_id, "plan": params.plan}
    subscription_data: dict[str, Any] = {"metadata": metadata}
    session: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer_id,
        "line_items": [{"price": offer.price_id, "quantity": offer.quantity}],
        "client_reference_id": params.user_id,
        "metadata": metadata,
        "subscription_data": subscription_data,
        "billing_address_collection": settings.billing_address_collection.value,
        "success_url": params.success_url,
        "cancel_url": params.cancel_url,
    }
    if offer.trial_days:
        subscription_data["trial_period_days"] = offer.trial_days
        behavior = offer.plan.trial_end_behavior
        if behavior is not None:
            subscription_data["trial_settings"] = {
                "end_behavior": {"missing_payment_method": behavior.value}
            }
            session["payment_method_collection"] = "if_required"
    # Stripe refuses allow_promotion_codes together with discounts.
    if offer.promotion_code_id:
        session["discounts"] = [{"promotion_code": offer.promotion_code_id}]
    elif settings.allow_promotion_codes:
        session["allow_promotion_codes"] = True
    if settings.automatic_tax:
        session["automatic_tax"] = {"enabled": True}
        # Stripe Tax needs the customer's address on the customer object.
        session["customer_update"] = {"address": "auto", "name": "auto"}
    if settings.tax_id_collection:
        session["tax_id_collection"] = {"enabled": True}
    return session


def _checkout_key(params: CheckoutParams, request_id: str, trial_days: int) -> str:
    """Stripe's idempotency key: from request_id and every parameter, fresh without one."""
    if not request_id:
        return idempotency_key("checkout")
    return idempotency_key(
        "checkout",
        request_id,
        params.user_id,
        params.email,
        params.plan,
        params.success_url,
        params.cancel_url,
        params.interval,
        str(params.quantity),
        params.promotion_code,
        str(trial_days),
    )
