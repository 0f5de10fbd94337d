"""The servicer edge maps billing.v1 enums to the operations' plain values (pure)."""

from __future__ import annotations

import pytest

from billing_service.convert import interval_choice, interval_name, proration_name
from billing_service.errors import InvalidArgument
from billing_service.plan_changes import PRORATION_BEHAVIORS, proration_behavior
from generated.billing.v1 import billing_pb2 as pb


def test_every_proration_behavior_maps_to_a_stripe_value() -> None:
    for value in pb.ProrationBehavior.values():
        assert proration_behavior(proration_name(value)) in PRORATION_BEHAVIORS
    assert proration_name(pb.PRORATION_BEHAVIOR_UNSPECIFIED) == "create_prorations"
    assert proration_name(pb.PRORATION_BEHAVIOR_NONE) == "none"
    assert proration_name(pb.PRORATION_BEHAVIOR_ALWAYS_INVOICE) == "always_invoice"


def test_an_unknown_proration_number_is_refused_by_the_operation_naming_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        proration_behavior(proration_name(42))
    assert caught.value.field == "proration"
    assert "unknown ProrationBehavior 42" in str(caught.value)


def test_intervals() -> None:
    assert interval_choice(pb.BILLING_INTERVAL_UNSPECIFIED) == ""
    assert interval_choice(pb.BILLING_INTERVAL_YEAR) == "year"
    assert interval_choice(7) == "7"
    # CreateCheckout's unset interval is monthly; ChangePlan's keeps the subscription's.
    assert interval_name(pb.BILLING_INTERVAL_UNSPECIFIED) == "month"
    assert interval_name(pb.BILLING_INTERVAL_MONTH) == "month"
    assert interval_name(7) == "7"
