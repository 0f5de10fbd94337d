"""Entitlements: CheckEntitlement, GetEntitlements and WatchEntitlements, served from memory.

See docs/entitlements.md for the cache design and its guarantees.
"""

from billing_service.entitlements.service import EntitlementService

__all__ = ["EntitlementService"]
