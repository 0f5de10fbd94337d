"""The Stripe webhook gateway: verifies Stripe's signed deliveries and forwards them.

``billing-gateway serve`` answers POST /webhooks/stripe; see docs/gateway.md.
"""
