"""ApplyStripeEvent: parse, resolve, order and apply Stripe events exactly once.

``parse`` turns the verified payload (or an event Stripe's Events API listed)
into a typed event, ``resolve`` ties it to a user and a subscription snapshot
(reading ``known`` rows, asking Stripe through ``fetch`` only when the payload
cannot decide), ``ordering`` decides whether it is newer than what we hold,
``apply`` commits the outcome in one transaction (``transition`` for
subscription state, ``invoices`` for kept invoices), and ``service`` runs them
under a per-customer lock. ``writer`` stores Stripe's answers to the
subscription RPCs through the same ``transition``.
"""
