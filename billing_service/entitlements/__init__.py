"""Entitlements: whether a user may use a feature now, answered from memory and kept coherent.

Serves CheckEntitlement, GetEntitlements and WatchEntitlements for one
process: an in-process cache of per-user entries (``cache``) filled by
batched loads (``loader``) and, in complete mode, by a full snapshot
(``warmer``, ``warmup``), kept coherent across replicas through Redis
(``coherence``, ``lease``, ``redis_copy``, ``redis_health``), with change
streams fanned out by ``watch``. The domain (``model``) is pure; billing.v1
messages are built only in ``wire``, the edge. ``EntitlementService`` wires
the parts together. See docs/entitlements.md for the design and guarantees.
"""

from billing_service.entitlements.service import EntitlementService
from billing_service.entitlements.warmer import WarmGate

__all__ = ["EntitlementService", "WarmGate"]
