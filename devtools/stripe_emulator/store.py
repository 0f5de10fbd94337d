"""In-memory tables of Stripe objects, by id in creation order (lists: ``listing.py``)."""

from __future__ import annotations

from .errors import StripeError
from .objects import JSON

_TABLES = {
    "cus": "customers",
    "prod": "products",
    "price": "prices",
    "cs": "checkout_sessions",
    "bps": "portal_sessions",
    "sub": "subscriptions",
    "si": "subscription_items",
    "in": "invoices",
    "evt": "events",
    "promo": "promotion_codes",
    "di": "discounts",
}


class Store:
    """Every object the emulator knows, by table and id, in creation order."""

    def __init__(self) -> None:
        self.customers: dict[str, JSON] = {}
        self.products: dict[str, JSON] = {}
        self.prices: dict[str, JSON] = {}
        self.checkout_sessions: dict[str, JSON] = {}
        self.portal_sessions: dict[str, JSON] = {}
        self.subscriptions: dict[str, JSON] = {}
        self.invoices: dict[str, JSON] = {}
        self.events: dict[str, JSON] = {}
        self.coupons: dict[str, JSON] = {}
        self.promotion_codes: dict[str, JSON] = {}
        self.discounts: dict[str, JSON] = {}

    def table(self, name: str) -> dict[str, JSON]:
        """The table called ``name`` (e.g. ``"customers"``)."""
        table = getattr(self, name)
        assert isinstance(table, dict)
        return table

    def get(self, table: str, object_id: str, *, param: str = "id", status: int = 404) -> JSON:
        """The object or a Stripe ``resource_missing`` error (404 for paths, 400 for params)."""
        found = self.table(table).get(object_id)
        if found is None:
            error = StripeError.no_such(object_id, param=param)
            error.status = status
            raise error
        return found

    def lookup(self, object_id: str) -> JSON | None:
        """Any object by id (used to expand references); subscription items included."""
        prefix = object_id.split("_", 1)[0]
        if prefix == "price":
            return self.prices.get(object_id)
        if prefix == "si":
            for sub in self.subscriptions.values():
                for item in sub["items"]["data"]:
                    if item["id"] == object_id:
                        found: JSON = item
                        return found
            return None
        table = _TABLES.get(prefix)
        if table is None:
            # Coupon ids are chosen freely (no prefix).
            return self.coupons.get(object_id)
        return self.table(table).get(object_id)
