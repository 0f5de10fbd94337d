"""Storage: peewee models, the database connection, migrations, and row reads and writes.

Rows only: no module here reads a Stripe object or applies a lifecycle rule.
The callers (the events layer, the operations) turn Stripe's shapes into
column values (``repository.SubscriptionValues``, ``invoices.InvoiceValues``)
and pass the statuses a query is about.
"""
