"""Entitlements: CheckEntitlement, the cache and its coherence across replicas, warm-up and
Watch streams.
"""
