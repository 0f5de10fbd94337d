"""The ``/v1`` middleware: API-key auth, request ids, idempotent replays, Stripe error shapes."""

from __future__ import annotations

import secrets

from aiohttp import web

from .appkeys import IDEMPOTENCY
from .errors import StripeError
from .http_io import Handler, error_response, json_response


def _mask_key(key: str) -> str:
    return f"{key[:3]}****{key[-4:]}" if len(key) > 10 else "sk_****"


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth, request ids, idempotency and Stripe error shapes for ``/v1``."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    request_id = "req_" + secrets.token_hex(7)
    request["request_id"] = request_id
    auth = request.headers.get("Authorization", "")
    key = auth[7:] if auth.startswith("Bearer ") else ""
    if not key.startswith("sk_test_"):
        message = (
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            if not key
            else f"Invalid API Key provided: {_mask_key(key)}"
        )
        return json_response(
            {"error": {"type": "invalid_request_error", "message": message}}, status=401
        )
    idem_key = request.headers.get("Idempotency-Key")
    cache: dict[tuple[str, str], tuple[str, int, bytes]] = request.app[IDEMPOTENCY]
    fingerprint = ""
    if idem_key and request.method == "POST":
        body = await request.read()
        fingerprint = f"{request.method} {request.path}?{request.query_string}\n{body.decode()}"
        cached = cache.get((key, idem_key))
        if cached is not None:
            if cached[0] != fingerprint:
                return error_response(
                    StripeError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with. Try using a key other than "
                        f"'{idem_key}' if you meant to execute a different request.",
                        type_="idempotency_error",
                    )
                )
            return web.Response(
                body=cached[2],
                status=cached[1],
                content_type="application/json",
                headers={
                    "Idempotent-Replayed": "true",
                    "Idempotency-Key": idem_key,
                    "Request-Id": request_id,
                },
            )
    try:
        response = await handler(request)
    except StripeError as error:
        response = error_response(error)
    except web.HTTPMethodNotAllowed:
        response = error_response(
            StripeError(404, f"Unrecognized request URL ({request.method}: {request.path}).")
        )
    except web.HTTPNotFound:
        response = error_response(
            StripeError(404, f"Unrecognized request URL ({request.method}: {request.path}).")
        )
    response.headers["Request-Id"] = request_id
    if idem_key and request.method == "POST" and isinstance(response, web.Response):
        response.headers["Idempotency-Key"] = idem_key
        if response.status < 500 and response.body is not None:
            body_bytes = response.body if isinstance(response.body, bytes) else b""
            cache[(key, idem_key)] = (fingerprint, response.status, body_bytes)
    return response
