"""Names the service and its callers share, read from the proto descriptor, never retyped.

::

    SERVICE_NAME                 # "billing.v1.BillingService"
    method_path("GetSubscription")  # "/billing.v1.BillingService/GetSubscription"
    OUTCOME_NAMES[pb.EVENT_OUTCOME_APPLIED]  # "applied"
    OUTCOME_VALUES["stale"]      # pb.EVENT_OUTCOME_STALE

Event outcomes are named by their ``EventOutcome`` value without the
``EVENT_OUTCOME_`` prefix, in lower case: the words the gateway answers
Stripe with, reconcile counts and the service's own ``Outcome`` uses.
``EVENT_OUTCOME_UNSPECIFIED`` is no outcome and has no name here, so a
lookup of it (or of a value newer than this client) finds nothing.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import cast

from billing_client.v1 import billing_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["BillingService"]
#: The service's full name: gRPC method paths, health checks and reflection use it.
SERVICE_NAME: str = SERVICE.full_name
#: Every RPC of the service, by its method name.
RPC_NAMES: frozenset[str] = frozenset(method.name for method in SERVICE.methods)
#: The most events one ApplyStripeEvents call may carry (billing.proto says so in prose).
MAX_EVENTS_PER_APPLY = 64

_OUTCOME_PREFIX = "EVENT_OUTCOME_"
_NO_OUTCOME = pb.EVENT_OUTCOME_UNSPECIFIED

#: Outcome name -> its ``EventOutcome`` value (the stubs type ``Value()`` as a plain int).
OUTCOME_VALUES: MappingProxyType[str, pb.EventOutcome] = MappingProxyType(
    {
        name.removeprefix(_OUTCOME_PREFIX).lower(): cast(
            pb.EventOutcome, pb.EventOutcome.Value(name)
        )
        for name in pb.EventOutcome.keys()  # noqa: SIM118 (the wrapper is not iterable)
        if name != pb.EventOutcome.Name(_NO_OUTCOME)
    }
)
#: ``EventOutcome`` value -> its name ("applied", "duplicate", ...).
OUTCOME_NAMES: MappingProxyType[int, str] = MappingProxyType(
    {value: name for name, value in OUTCOME_VALUES.items()}
)


def method_path(rpc: str) -> str:
    """The gRPC path of ``rpc`` (``/billing.v1.BillingService/<rpc>``); KeyError if unknown."""
    if rpc not in RPC_NAMES:
        raise KeyError(f"{SERVICE_NAME} has no RPC {rpc!r}")
    return f"/{SERVICE_NAME}/{rpc}"
