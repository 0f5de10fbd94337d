"""The gRPC edge of billing.v1.BillingService: requests in, service calls, messages out.

Only this package (with ``convert``) knows protobuf: each handler turns a
request into plain values, calls one operation, and converts its answer.
``edge`` maps the service's errors to status codes once; the handlers are
grouped by RPC family (``subscriptions``, ``records``, ``entitlements``,
``usage``) and composed into one ``BillingServicer``.
"""

from billing_service.servicer.billing_servicer import BillingServicer

__all__ = ["BillingServicer"]
