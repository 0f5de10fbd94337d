"""Stripe's resources, one module per family, as functions over an :class:`~..account.Account`.

The HTTP routes (``api_routes.py``, ``control.py``, ``pages.py``) call these
functions directly; each takes the account first and the request parameters
(Stripe's bracket notation, already parsed) after it. Layers, lowest first:

* ``periods``, ``catalog``, ``customers``, ``events``, ``discounts``, ``portal``,
  ``meter_events``: leaves;
* ``invoices``: building, finalizing and charging invoices;
* ``subscription_items``: the ``items[]`` parameter and the prorations it causes;
* ``subscriptions``: create, list, cancel (and the shared end of a subscription);
* ``dunning``: charging a cycle invoice and retrying failed payments;
* ``subscription_updates``: update and resume; ``previews``: invoice previews;
* ``checkout``: sessions and what paying one creates;
* ``renewals``: what moving the clock does (trial reminders, renewals, retries).
"""
