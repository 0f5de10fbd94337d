"""Names read from the proto, and the domain's outcomes mapped onto them once."""

from __future__ import annotations

import pytest

from billing_client.names import OUTCOME_NAMES, OUTCOME_VALUES, RPC_NAMES, SERVICE_NAME, method_path
from billing_service.convert import OUTCOME_TO_PROTO
from billing_service.events.apply import Outcome
from generated.billing.v1 import billing_pb2 as pb


def test_the_service_and_its_methods_come_from_the_descriptor() -> None:
    assert SERVICE_NAME == "billing.v1.BillingService"
    assert {"ApplyStripeEvent", "WatchEntitlements", "GetUsage"} <= RPC_NAMES
    assert method_path("CheckEntitlement") == "/billing.v1.BillingService/CheckEntitlement"
    with pytest.raises(KeyError, match="NoSuchMethod"):
        method_path("NoSuchMethod")


def test_outcome_names_cover_every_outcome_but_unspecified_both_ways() -> None:
    assert dict(OUTCOME_NAMES) == {
        pb.EVENT_OUTCOME_APPLIED: "applied",
        pb.EVENT_OUTCOME_DUPLICATE: "duplicate",
        pb.EVENT_OUTCOME_IGNORED: "ignored",
        pb.EVENT_OUTCOME_STALE: "stale",
    }
    assert {OUTCOME_NAMES[value]: value for value in OUTCOME_NAMES} == dict(OUTCOME_VALUES)
    assert pb.EVENT_OUTCOME_UNSPECIFIED not in OUTCOME_NAMES


def test_the_domains_outcomes_and_the_protos_are_the_same_set() -> None:
    assert {outcome.value for outcome in Outcome} == set(OUTCOME_VALUES)
    for outcome, value in OUTCOME_TO_PROTO.items():
        assert OUTCOME_NAMES[value] == outcome.value
