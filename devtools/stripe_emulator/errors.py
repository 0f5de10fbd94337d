"""Stripe-shaped API errors: ``{"error": {"type", "code", "message", "param"}}``."""

from __future__ import annotations

from typing import Any

_RESOURCE_NAMES = {
    "cus": "customer",
    "sub": "subscription",
    "si": "subscription item",
    "cs": "checkout.session",
    "bps": "billing_portal.session",
    "in": "invoice",
    "evt": "event",
    "price": "price",
    "prod": "product",
}


class StripeError(Exception):
    """An error answered to the client in Stripe's JSON error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body Stripe answers with."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}

    @classmethod
    def invalid(
        cls, message: str, *, param: str | None = None, code: str | None = None
    ) -> StripeError:
        """A 400 ``invalid_request_error``."""
        if code is None and param is not None:
            code = "parameter_invalid"
        return cls(400, message, param=param, code=code)

    @classmethod
    def missing_param(cls, param: str) -> StripeError:
        """A 400 for a required parameter that was not sent."""
        return cls(400, f"Missing required param: {param}.", param=param, code="parameter_missing")

    @classmethod
    def no_such(cls, object_id: str, *, param: str = "id", kind: str | None = None) -> StripeError:
        """A 404 ``resource_missing`` for an unknown id."""
        if kind is None:
            prefix = object_id.split("_", 1)[0] if "_" in object_id else ""
            kind = _RESOURCE_NAMES.get(prefix, "object")
        return cls(404, f"No such {kind}: '{object_id}'", param=param, code="resource_missing")
