"""gRPC billing service: Stripe subscriptions behind internal APIs (package billing.v1).

Layers, each importing only those below it:

- ``servicer/`` and ``convert``: the gRPC edge, the only code that builds or
  reads protobuf messages; errors become status codes there, once (``errors``);
- operations: ``checkout``, ``subscriptions`` (Portal/Get/Cancel/Resume, the
  Stripe calls), ``plan_changes``, ``seat_changes``, ``resync``, ``invoices``,
  ``events/`` (ApplyStripeEvent), ``entitlements/``, ``usage/``;
- the domain rules, pure: ``lifecycle`` (the status table), ``access`` (that
  table applied to a stored row), ``best_subscription`` (which row answers),
  ``events/ordering``; ``stripe_shapes`` reads Stripe's objects;
- ``storage/``: rows only, through peewee; ``stripe_api`` is the only Stripe client.

``server`` wires them together; ``cli`` is the operator's entry point.
"""
