"""Signed webhook delivery, in creation order per endpoint, with retries.

Each event body is serialized once when the event is created; every attempt
(first, retry or manual redelivery) sends those exact bytes with a fresh
``Stripe-Signature`` (``t=<now>,v1=<hmac>`` with one ``v1`` per secret).
Signature timestamps use real time, not the emulator clock, so that
``stripe.Webhook.construct_event``'s tolerance check passes after clock advances.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from .objects import JSON

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


def signature_header(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """Stripe's ``Stripe-Signature`` header value for ``body`` signed at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    for secret in secrets:
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


def serialize_event(event: JSON) -> bytes:
    """The webhook body of an event (pretty-printed like Stripe's)."""
    return json.dumps(event, indent=2).encode()


@dataclass
class Endpoint:
    """A webhook endpoint: where events go and the secrets that sign them."""

    url: str
    secrets: list[str]
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue, repr=False)
    unfinished: int = 0


@dataclass
class Delivery:
    """One delivery attempt, as listed by ``GET /_emulator/webhooks/deliveries``."""

    event_id: str
    event_type: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    timestamp: int
    signature: str
    manual: bool = False

    def to_json(self) -> JSON:
        """A JSON-ready dict."""
        return asdict(self)


class WebhookDispatcher:
    """Queues events per endpoint and delivers them in the background."""

    def __init__(
        self,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = 10.0,
        default_secrets: Sequence[str] = (),
    ) -> None:
        self.retry_delays = list(retry_delays)
        self.default_secrets = list(default_secrets)
        self.timeout = timeout
        self.endpoints: list[Endpoint] = []
        self.held = False
        self.deliveries: list[Delivery] = []
        self._bodies: dict[str, bytes] = {}
        self._events: dict[str, JSON] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._running = False

    def add_endpoint(self, url: str, secrets: Sequence[str]) -> Endpoint:
        """Register an endpoint (no secrets: the default ones); it gets events from now on."""
        endpoint = Endpoint(url=url, secrets=list(secrets) or list(self.default_secrets))
        self.endpoints.append(endpoint)
        if self._running:
            self._tasks.append(asyncio.create_task(self._worker(endpoint)))
        return endpoint

    def pending_count(self) -> int:
        """How many endpoints a new event will be sent to (its ``pending_webhooks``)."""
        return 0 if self.held else len(self.endpoints)

    def on_event(self, event: JSON) -> None:
        """Listener for new events: freeze the body and queue it unless held."""
        self._bodies[event["id"]] = serialize_event(event)
        self._events[event["id"]] = event
        if self.held:
            return
        for endpoint in self.endpoints:
            endpoint.unfinished += 1
            endpoint.queue.put_nowait(event["id"])

    async def start(self) -> None:
        """Open the HTTP client and start one worker per endpoint."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._running = True
        self._tasks = [asyncio.create_task(self._worker(e)) for e in self.endpoints]

    async def stop(self) -> None:
        """Stop the workers and close the HTTP client."""
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def idle(self) -> bool:
        """True when no endpoint has a queued or in-flight event."""
        return all(e.unfinished == 0 for e in self.endpoints)

    async def _worker(self, endpoint: Endpoint) -> None:
        while True:
            event_id = await endpoint.queue.get()
            try:
                await self._deliver_with_retries(endpoint, event_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # a dev tool keeps delivering whatever happens
                log.exception("webhook delivery of %s to %s crashed", event_id, endpoint.url)
            finally:
                endpoint.unfinished -= 1

    async def _deliver_with_retries(self, endpoint: Endpoint, event_id: str) -> None:
        for attempt in range(1, len(self.retry_delays) + 2):
            if self.held:
                return
            delivery = await self.send(endpoint, event_id, attempt)
            if delivery.status is not None and 200 <= delivery.status < 300:
                event = self._events.get(event_id)
                if event is not None and event["pending_webhooks"] > 0:
                    event["pending_webhooks"] -= 1
                return
            if attempt <= len(self.retry_delays):
                await asyncio.sleep(self.retry_delays[attempt - 1])
        log.warning("giving up on webhook %s to %s", event_id, endpoint.url)

    async def send(
        self, endpoint: Endpoint, event_id: str, attempt: int, *, manual: bool = False
    ) -> Delivery:
        """POST one event to one endpoint once, with a fresh signature."""
        body = self._bodies[event_id]
        event_type = str(self._events[event_id]["type"])
        timestamp = int(time.time())
        signature = signature_header(body, endpoint.secrets, timestamp)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        status: int | None = None
        error: str | None = None
        if self._session is None:
            raise RuntimeError("webhook dispatcher is not started")
        try:
            async with self._session.post(endpoint.url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(
            event_id=event_id,
            event_type=event_type,
            url=endpoint.url,
            attempt=attempt,
            status=status,
            error=error,
            timestamp=timestamp,
            signature=signature,
            manual=manual,
        )
        self.deliveries.append(delivery)
        return delivery

    async def redeliver(self, event_id: str) -> list[Delivery]:
        """Send one event to every endpoint now, once each (even while held)."""
        results = []
        for endpoint in self.endpoints:
            previous = sum(
                1 for d in self.deliveries if d.event_id == event_id and d.url == endpoint.url
            )
            results.append(await self.send(endpoint, event_id, previous + 1, manual=True))
        return results

    def knows(self, event_id: str) -> bool:
        """Whether the event exists (and so has a frozen body)."""
        return event_id in self._bodies

    def snapshot(self) -> list[Any]:
        """Every delivery attempt so far, oldest first."""
        return [d.to_json() for d in self.deliveries]
