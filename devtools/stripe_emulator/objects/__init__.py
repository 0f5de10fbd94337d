"""Stripe objects built from Stripe's official sample objects (``fixtures3.json``).

Every builder deep-copies the fixture template and overwrites its values, so
each object carries every field of the current API version's shape, with the
fixture's placeholder values replaced by real or null ones. One module per
resource family; everything is re-exported here.
"""

from .catalog import new_price, new_product, plan_from_price
from .customers import new_customer
from .events import new_event
from .fixtures import API_VERSION, JSON, Fixtures, default_fixtures_path, list_object, new_id
from .invoices import new_invoice, new_invoice_line
from .sessions import customer_details, new_checkout_session, new_portal_session
from .subscriptions import new_subscription, new_subscription_item

__all__ = [
    "API_VERSION",
    "JSON",
    "Fixtures",
    "customer_details",
    "default_fixtures_path",
    "list_object",
    "new_checkout_session",
    "new_customer",
    "new_event",
    "new_id",
    "new_invoice",
    "new_invoice_line",
    "new_portal_session",
    "new_price",
    "new_product",
    "new_subscription",
    "new_subscription_item",
    "plan_from_price",
]
