"""The entitlement client now lives in the billing-client package (``billing_client``).

Kept so existing imports of ``billing_service.client`` go on working.
"""

from billing_client.entitlements import Decision, EntitlementClient, Entitlements, FailMode

__all__ = ["Decision", "EntitlementClient", "Entitlements", "FailMode"]
