"""What each CreateCheckout request_id was used for, so a repeat is decided locally.

A request_id is claimed (inserted) before Stripe is called; the unique index
makes two racing claims end with one row, which both then compare against.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from billing_service.storage.models import CheckoutRequest, utcnow


@dataclass(frozen=True)
class CheckoutParams:
    """The parameters a request_id stands for (compared field by field on a repeat)."""

    user_id: str
    email: str
    plan: str
    success_url: str
    cancel_url: str
    interval: str = "month"
    quantity: int = 1
    promotion_code: str = ""


def claim(request_id: str, params: CheckoutParams) -> CheckoutRequest:
    """The row for ``request_id``: inserted with ``params``, or the one already there."""
    CheckoutRequest.insert(
        request_id=request_id,
        user_id=params.user_id,
        email=params.email,
        plan=params.plan,
        success_url=params.success_url,
        cancel_url=params.cancel_url,
        interval=params.interval,
        quantity=params.quantity,
        promotion_code=params.promotion_code,
        created_at=utcnow(),
    ).on_conflict_ignore().execute()
    return CheckoutRequest.get(CheckoutRequest.request_id == request_id)


def differing_fields(row: CheckoutRequest, params: CheckoutParams) -> list[str]:
    """The names of the fields whose value differs between ``row`` and ``params``."""
    return [f.name for f in fields(params) if getattr(row, f.name) != getattr(params, f.name)]


def record_session(request_id: str, session_id: str, checkout_url: str, trial_days: int) -> None:
    """Remember the session Stripe created for ``request_id`` and the trial it grants."""
    CheckoutRequest.update(
        session_id=session_id, checkout_url=checkout_url, trial_days=trial_days
    ).where(CheckoutRequest.request_id == request_id).execute()
