"""ApplyStripeEvent: parse, resolve, order and apply Stripe events exactly once.

``parse`` turns the verified payload into a typed event, ``resolve`` ties it
to a user and a subscription snapshot, ``ordering`` decides whether it is
newer than what we hold, ``apply`` commits the outcome in one transaction,
and ``service`` runs them under a per-customer lock.
"""
