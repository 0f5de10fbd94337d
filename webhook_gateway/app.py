"""The gateway's aiohttp application: routes, typed state, and the webhook contract.

POST /webhooks/stripe answers (see docs/gateway.md for every body):

* 200 ``{status, event_id}`` once the billing service is done with the event
  (applied, duplicate, ignored, stale) or it is stored as a dead letter; a
  redelivery of an event this process saw finished (seen.py), or whose
  processed marker the service left in Redis (markers.py), is answered
  ``duplicate`` without a forward;
* 400/408/413 ``{error}`` when the delivery is refused: nothing is forwarded
  (408: the body did not arrive within GATEWAY_BODY_TIMEOUT_SECONDS, and the
  connection is closed);
* 503 ``{error}`` when the event may yet be applied: Stripe retries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from billing_service.tracing import Tracing
from webhook_gateway.body import BodyRefused, ClientGone, read_body
from webhook_gateway.dead_letters import DeadLetterStore, DeadLetterStoreError
from webhook_gateway.forward import Forwarder, Verdict
from webhook_gateway.markers import ProcessedMarkers
from webhook_gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from webhook_gateway.seen import SeenEvents
from webhook_gateway.settings import GatewaySettings
from webhook_gateway.verify import Rejection, VerificationError, verify_signature

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/stripe"
# nginx's "client closed request": only ever a metric label, never sent.
CLIENT_GONE_STATUS = 499

SETTINGS_KEY = web.AppKey("settings", GatewaySettings)
METRICS_KEY = web.AppKey("metrics", GatewayMetrics)
FORWARDER_KEY = web.AppKey("forwarder", Forwarder)
DEAD_LETTERS_KEY = web.AppKey("dead_letters", DeadLetterStore)
TRACING_KEY = web.AppKey[Tracing | None]("tracing")
SEEN_KEY = web.AppKey("seen", SeenEvents)
MARKERS_KEY = web.AppKey[ProcessedMarkers | None]("markers")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(request: web.Request, status: int, reason: str, body: dict[str, Any]) -> web.Response:
    request.app[METRICS_KEY].answered(status, reason)
    return web.json_response(body, status=status)


def _reject(request: web.Request, status: int, error: str) -> web.Response:
    return _answer(request, status, error, {"error": error})


async def _close_after(request: web.Request, response: web.Response) -> None:
    """Send ``response`` now, then close the connection: a slow body must not hold it."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    transport = request.transport
    if transport is not None:
        transport.close()


def _str_field(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    return value[:255] if isinstance(value, str) else ""


async def receive_webhook(request: web.Request) -> web.Response:
    """Verify one Stripe delivery, forward it, and answer so Stripe retries only what may pass."""
    settings = request.app[SETTINGS_KEY]
    try:
        raw = await read_body(request, settings.max_body_bytes, settings.body_timeout_seconds)
    except ClientGone:
        # A hang-up is the client's business: its own reason, never internal_error.
        log.debug("client disconnected before its body arrived")
        request.app[METRICS_KEY].answered(CLIENT_GONE_STATUS, "client_disconnected")
        return web.Response(status=CLIENT_GONE_STATUS)
    except BodyRefused as refused:
        log.info("refused delivery: %s", refused.reason)
        response = _reject(request, refused.status, refused.reason)
        if refused.status == 408:
            await _close_after(request, response)
        return response
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # The SDK signs text: a body that is not UTF-8 cannot carry a valid signature.
        return _reject(request, 400, Rejection.INVALID_SIGNATURE.value)
    try:
        verify_signature(
            text,
            request.headers.get("Stripe-Signature"),
            settings.webhook_secrets,
            settings.signature_tolerance_seconds,
        )
    except VerificationError as exc:
        log.info("refused delivery: %s", exc.rejection.value)
        return _reject(request, 400, exc.rejection.value)
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:  # also past orjson's nesting limit (1,024)
        event = None
    if not isinstance(event, dict):
        return _reject(request, 400, "malformed_json")
    delivered_id, event_type = _str_field(event, "id"), _str_field(event, "type")

    metrics = request.app[METRICS_KEY]
    seen = request.app[SEEN_KEY]
    if delivered_id in seen:
        metrics.seen_answers.inc()
        return _finished_before(request, delivered_id, event_type)
    markers = request.app[MARKERS_KEY]
    if (
        markers is not None
        and _may_be_redelivery(event, settings.marker_min_age_seconds)
        and await markers.processed(delivered_id)
    ):
        metrics.marker_answers.inc()
        seen.add(delivered_id)
        return _finished_before(request, delivered_id, event_type)
    started = time.perf_counter()
    result = await request.app[FORWARDER_KEY].apply(raw)
    metrics.forward_seconds.labels(result.verdict.value).observe(time.perf_counter() - started)
    event_id = result.event_id or delivered_id

    if result.verdict is Verdict.DONE:
        seen.add(delivered_id)
        log.info(
            "event %s (%s): %s",
            event_id,
            event_type,
            result.status,
            extra={"event_id": event_id, "event_type": event_type},
        )
        return _answer(request, 200, result.status, {"status": result.status, "event_id": event_id})
    if result.verdict is Verdict.RETRY:
        log.warning("event %s (%s): %s, answering 503", event_id, event_type, result.status)
        body = {"error": "billing_unavailable", "code": result.status, "event_id": event_id}
        return _answer(request, 503, "billing_unavailable", body)
    try:
        dead_letter_id = await request.app[DEAD_LETTERS_KEY].record(
            text, event_id, event_type, result.detail
        )
    except DeadLetterStoreError:
        body = {"error": "dead_letter_unavailable", "event_id": event_id}
        return _answer(request, 503, "dead_letter_unavailable", body)
    metrics.dead_letters.inc()
    log.warning(
        "event %s (%s) refused as invalid, stored as dead letter %d: %s",
        event_id,
        event_type,
        dead_letter_id,
        result.detail,
    )
    dead = {"status": "dead_lettered", "event_id": event_id, "dead_letter_id": dead_letter_id}
    return _answer(request, 200, "dead_lettered", dead)


def _may_be_redelivery(event: dict[str, Any], min_age_seconds: float) -> bool:
    """False for an event created moments ago: its first delivery, not worth a Redis read.

    Only this read depends on ``created``; acceptance never does (Stripe
    re-signs retries, so an old event is legitimate). Both answers are
    correct: a redelivery not asked about is forwarded and answered by the
    service.
    """
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        return True
    return time.time() - created >= min_age_seconds


def _finished_before(request: web.Request, event_id: str, event_type: str) -> web.Response:
    log.info("event %s (%s): duplicate, finished before", event_id, event_type)
    return _answer(request, 200, "duplicate", {"status": "duplicate", "event_id": event_id})


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the billing service answers its gRPC health check with SERVING."""
    if await request.app[FORWARDER_KEY].ready():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not_ready", "error": "billing_unavailable"}, status=503)


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    return web.Response(
        body=request.app[METRICS_KEY].render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer is JSON; a bug answers 503 (Stripe retries) and is logged."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = (exc.reason or "error").lower().replace(" ", "_")
        if exc.status == 413:
            error = "body_too_large"
        return web.json_response({"error": error}, status=exc.status)
    except Exception:
        log.exception("%s %s failed with a bug", request.method, request.path)
        if request.path == WEBHOOK_PATH:
            request.app[METRICS_KEY].answered(503, "internal_error")
        return web.json_response({"error": "internal_error"}, status=503)


async def _forwarder_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    tracing = app[TRACING_KEY]
    forwarder = Forwarder(
        settings.billing_target,
        settings.forward_deadline_seconds,
        settings.credentials,
        interceptors=tracing.grpc_client_interceptors() if tracing else (),
        max_batch=settings.forward_batch,
        linger=settings.forward_linger_seconds,
        on_batch=app[METRICS_KEY].forward_batch_size.observe,
    )
    app[FORWARDER_KEY] = forwarder
    yield
    await forwarder.close()


async def _dead_letters_ctx(app: web.Application) -> AsyncIterator[None]:
    store = DeadLetterStore(app[SETTINGS_KEY].database_url)
    app[DEAD_LETTERS_KEY] = store
    yield
    store.close()


async def _markers_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    markers = None
    if settings.redis_url:
        markers = ProcessedMarkers.connect(
            settings.redis_url, settings.redis_timeout_seconds, app[METRICS_KEY].redis_errors
        )
    app[MARKERS_KEY] = markers
    yield
    if markers is not None:
        await markers.close()


def build_app(settings: GatewaySettings, tracing: Tracing | None = None) -> web.Application:
    """The gateway application for ``settings``; resources open on startup.

    With ``tracing``, each request is a server span (continuing a caller's W3C
    trace context) and each forward a gRPC client span that carries it on.
    """
    middlewares: list[Any] = [json_errors]
    if tracing is not None:
        middlewares.insert(0, tracing.aiohttp_middleware())
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    app[SETTINGS_KEY] = settings
    app[TRACING_KEY] = tracing
    app[METRICS_KEY] = GatewayMetrics()
    app[SEEN_KEY] = SeenEvents(settings.seen_events)
    app.cleanup_ctx.append(_forwarder_ctx)
    app.cleanup_ctx.append(_dead_letters_ctx)
    app.cleanup_ctx.append(_markers_ctx)
    app.router.add_post(WEBHOOK_PATH, receive_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app
