"""Typed aiohttp application state shared by the API, control, meter and page routes."""

from __future__ import annotations

from aiohttp import web

from .account import Account
from .resources.meter_events import MeterEvents
from .webhooks import WebhookDispatcher

ACCOUNT = web.AppKey("account", Account)
DISPATCHER = web.AppKey("dispatcher", WebhookDispatcher)
#: (API key, Idempotency-Key) -> (request fingerprint, status, body) of the first answer.
IDEMPOTENCY = web.AppKey("idempotency", dict)
METERS = web.AppKey("meter_events", MeterEvents)
