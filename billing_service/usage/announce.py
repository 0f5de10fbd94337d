"""Usage changes for WatchEntitlements on every replica, through one Redis pub/sub channel.

A replica that sees a meter reach its limit, go back under it or reset hands
the change to its own watchers at once and publishes it; the others hand it to
theirs. Best effort, like the stream itself: a change published while Redis is
down, or while a replica is reconnecting, reaches only the local watchers
(clients resubscribe and read GetUsage for the truth).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections.abc import Callable

from redis.exceptions import RedisError

from billing_service.redis_client import Redis
from generated.billing.v1 import billing_pb2 as pb

log = logging.getLogger(__name__)

CHANNEL = "billing:usage-changes"
RECONNECT_SECONDS = 1.0

Deliver = Callable[[str, pb.MeterUsage], None]


class UsageAnnouncer:
    """Delivers usage changes locally and to the other replicas."""

    def __init__(self, redis: Redis, deliver: Deliver) -> None:
        self._deliver = deliver
        self._origin = uuid.uuid4().hex
        self._redis = redis
        self._listener: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start listening to the other replicas (returns without waiting for Redis)."""
        self._listener = asyncio.create_task(self._listen(), name="usage-announce-listen")

    def announce(self, user_id: str, usage: pb.MeterUsage) -> None:
        """Deliver to this replica's watchers now, and publish for the others."""
        self._deliver(user_id, usage)
        body = base64.b64encode(usage.SerializeToString()).decode()
        task = asyncio.create_task(self._publish(f"{self._origin} {body} {user_id}"))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _publish(self, message: str) -> None:
        try:
            await self._redis.publish(CHANNEL, message)
        except (RedisError, OSError) as exc:
            log.debug("usage change not published: %s", exc)

    def _receive(self, data: str) -> None:
        origin, body, user_id = data.split(" ", 2)
        if origin == self._origin:
            return
        self._deliver(user_id, pb.MeterUsage.FromString(base64.b64decode(body)))

    async def _listen(self) -> None:
        while True:
            # The subscription holds its own connection from the process's pool.
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message["type"] == "message":
                        try:
                            self._receive(message["data"])
                        except ValueError:
                            log.warning("malformed usage change on %s ignored", CHANNEL)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("usage change listener: %s; reconnecting", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def close(self) -> None:
        """Stop listening; drop unsent publications."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for task in list(self._sends):
            task.cancel()
