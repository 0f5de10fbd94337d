"""Stripe-Signature verification with the stripe SDK, against every configured secret.

Several secrets are accepted at once so a secret can be rotated without
losing deliveries signed with the old one. Only the signature's own
timestamp is checked against the tolerance; the event's ``created`` is
never looked at (Stripe re-signs retries, so a days-old event is legitimate).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import stripe


class Rejection(Enum):
    """Why a delivery was refused; the value is the ``error`` of the JSON answer."""

    MISSING_SIGNATURE = "missing_signature"
    INVALID_SIGNATURE = "invalid_signature"
    TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"


class VerificationError(Exception):
    """The delivery did not pass verification."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.value)
        self.rejection = rejection


def _passes(payload: str, header: str, secret: str, tolerance: int | None) -> bool:
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
    except stripe.SignatureVerificationError:
        return False
    return True


def verify_signature(
    payload: str, header: str | None, secrets: Sequence[str], tolerance: int
) -> None:
    """Raise VerificationError unless ``header`` signs ``payload`` with one of ``secrets``.

    ``payload`` is the raw body decoded as UTF-8 (the SDK signs text).
    """
    if not header:
        raise VerificationError(Rejection.MISSING_SIGNATURE)
    # The common case costs one HMAC per secret tried; the second pass only
    # runs for refused deliveries, to tell an old timestamp from a bad signature.
    if any(_passes(payload, header, secret, tolerance) for secret in secrets):
        return
    if any(_passes(payload, header, secret, None) for secret in secrets):
        raise VerificationError(Rejection.TIMESTAMP_OUTSIDE_TOLERANCE)
    raise VerificationError(Rejection.INVALID_SIGNATURE)
