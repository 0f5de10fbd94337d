"""Conversions between the service's values and billing.v1 messages."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from billing_client.names import OUTCOME_VALUES
from billing_service.access import SubscriptionView
from billing_service.discounts import Discount
from billing_service.events.apply import Outcome
from billing_service.lifecycle import Status
from billing_service.plan_changes import PlanChangePreview
from billing_service.storage.models import AuditRecord, Invoice
from generated.billing.v1 import billing_pb2 as pb

# The domain names its outcomes as billing.v1 does: an Outcome without an
# EventOutcome of its name fails here, at import.
OUTCOME_TO_PROTO: dict[Outcome, pb.EventOutcome] = {
    outcome: OUTCOME_VALUES[outcome.value] for outcome in Outcome
}

STATUS_TO_PROTO: dict[Status, pb.SubscriptionStatus] = {
    Status.NONE: pb.SUBSCRIPTION_STATUS_NONE,
    Status.INCOMPLETE: pb.SUBSCRIPTION_STATUS_INCOMPLETE,
    Status.INCOMPLETE_EXPIRED: pb.SUBSCRIPTION_STATUS_INCOMPLETE_EXPIRED,
    Status.TRIALING: pb.SUBSCRIPTION_STATUS_TRIALING,
    Status.ACTIVE: pb.SUBSCRIPTION_STATUS_ACTIVE,
    Status.PAST_DUE: pb.SUBSCRIPTION_STATUS_PAST_DUE,
    Status.UNPAID: pb.SUBSCRIPTION_STATUS_UNPAID,
    Status.CANCELED: pb.SUBSCRIPTION_STATUS_CANCELED,
    Status.PAUSED: pb.SUBSCRIPTION_STATUS_PAUSED,
}


def status_to_proto(raw: str) -> pb.SubscriptionStatus:
    """The proto enum for a stored status string (UNSPECIFIED for unknown strings)."""
    try:
        return STATUS_TO_PROTO[Status(raw)]
    except ValueError:
        return pb.SUBSCRIPTION_STATUS_UNSPECIFIED


_INTERVALS = {
    pb.BILLING_INTERVAL_UNSPECIFIED: "",
    pb.BILLING_INTERVAL_MONTH: "month",
    pb.BILLING_INTERVAL_YEAR: "year",
}

_PRORATION_BEHAVIORS = {
    pb.PRORATION_BEHAVIOR_UNSPECIFIED: "create_prorations",
    pb.PRORATION_BEHAVIOR_CREATE_PRORATIONS: "create_prorations",
    pb.PRORATION_BEHAVIOR_NONE: "none",
    pb.PRORATION_BEHAVIOR_ALWAYS_INVOICE: "always_invoice",
}


def interval_choice(value: int) -> str:
    """The catalog interval a BillingInterval asks for ("" when unset; unknown numbers: as given).

    Unknown numbers pass through as text so the operation refuses them in its
    own validation order, naming the field.
    """
    return _INTERVALS.get(value, str(value))  # type: ignore[call-overload]


def interval_name(value: int) -> str:
    """The catalog interval of a BillingInterval (unset: month; unknown numbers: as given)."""
    return interval_choice(value) or "month"


def proration_name(value: int) -> str:
    """Stripe's proration_behavior for a ProrationBehavior (unknown numbers: as given)."""
    return _PRORATION_BEHAVIORS.get(value, str(value))  # type: ignore[call-overload]


def interval_to_proto(name: str) -> pb.BillingInterval:
    """The BillingInterval of a Stripe/catalog interval name ("" or unknown: UNSPECIFIED)."""
    return {"month": pb.BILLING_INTERVAL_MONTH, "year": pb.BILLING_INTERVAL_YEAR}.get(
        name, pb.BILLING_INTERVAL_UNSPECIFIED
    )


def timestamp(value: datetime | None) -> Timestamp | None:
    """A Timestamp from a naive-UTC datetime (None stays None)."""
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.replace(tzinfo=UTC))
    return ts


def subscription_to_proto(view: SubscriptionView) -> pb.Subscription:
    """The Subscription message for a user's view."""
    row = view.row
    message = pb.Subscription(
        user_id=view.user_id,
        stripe_customer_id=view.stripe_customer_id,
        tier=view.grant.tier,
        status=STATUS_TO_PROTO[view.status],
        other_live_subscription_ids=[str(row.stripe_subscription_id) for row in view.others],
    )
    if row is not None:
        message.stripe_subscription_id = row.stripe_subscription_id
        message.cancel_at_period_end = bool(row.cancel_at_period_end)
        message.plan = row.plan
        message.stripe_price_id = row.price_id
        message.interval = interval_to_proto(str(row.interval))
        message.quantity = int(row.quantity)
        message.unit_amount = int(row.unit_amount)
        message.currency = str(row.currency)
        discount = Discount.from_json(str(row.discount))
        if discount is not None:
            message.discount.CopyFrom(discount_to_proto(discount))
        for name, value in (
            ("current_period_start", row.current_period_start),
            ("current_period_end", row.current_period_end),
            ("access_until", view.grant.access_until),
            ("trial_end", row.trial_end),
        ):
            ts = timestamp(value)
            if ts is not None:
                getattr(message, name).CopyFrom(ts)
    return message


def discount_to_proto(discount: Discount) -> pb.SubscriptionDiscount:
    """The SubscriptionDiscount message of a stored discount."""
    message = pb.SubscriptionDiscount(
        name=discount.name,
        percent_off=discount.percent_off,
        amount_off=discount.amount_off,
        currency=discount.currency,
        promotion_code=discount.promotion_code,
        coupon_id=discount.coupon_id,
    )
    if discount.end:
        message.end.FromSeconds(discount.end)
    return message


def audit_to_proto(record: AuditRecord) -> pb.AuditEvent:
    """The AuditEvent message for a stored audit record."""
    message = pb.AuditEvent(
        id=int(record.id),
        user_id=record.user_id,
        stripe_subscription_id=record.stripe_subscription_id,
        stripe_event_id=record.stripe_event_id,
        stripe_event_type=record.stripe_event_type,
        caller=record.caller,
        rpc=record.rpc,
        status_before=status_to_proto(record.status_before),
        status_after=status_to_proto(record.status_after),
        tier_before=record.tier_before,
        tier_after=record.tier_after,
        detail=record.detail,
        hash=record.hash,
    )
    created = timestamp(record.created_at)
    if created is not None:
        message.created_at.CopyFrom(created)
    return message


def invoice_to_proto(row: Invoice) -> pb.Invoice:
    """The Invoice message for a kept invoice row."""
    message = pb.Invoice(
        stripe_invoice_id=row.stripe_invoice_id,
        user_id=row.user_id,
        stripe_customer_id=row.stripe_customer_id,
        stripe_subscription_id=row.stripe_subscription_id,
        status=row.status,
        amount_due=int(row.amount_due),
        amount_paid=int(row.amount_paid),
        currency=row.currency,
        hosted_invoice_url=row.hosted_invoice_url,
        invoice_pdf=row.invoice_pdf,
        attempt_count=int(row.attempt_count),
    )
    for name, value in (
        ("period_start", row.period_start),
        ("period_end", row.period_end),
        ("next_payment_attempt", row.next_payment_attempt),
    ):
        stamp = timestamp(value)
        if stamp is not None:
            getattr(message, name).CopyFrom(stamp)
    if row.stripe_created:
        message.created.FromSeconds(int(row.stripe_created))
    return message


def preview_to_proto(
    preview: PlanChangePreview,
    response: pb.PreviewPlanChangeResponse | pb.PreviewSeatChangeResponse,
) -> None:
    """Fill a preview answer (plan or seat change): amount, currency, proration time."""
    response.amount_due = preview.amount_due
    response.currency = preview.currency
    prorated_at = timestamp(preview.proration_date)
    if prorated_at is not None:
        response.proration_date.CopyFrom(prorated_at)
