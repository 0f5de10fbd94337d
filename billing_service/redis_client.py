"""The process's one Redis client, built from the settings and shared by every user.

Locks and dedupe (locks.py), the Stripe fetch budget, entitlement coherence,
usage announcements and the health probe all take this client, so the
process holds one connection pool and every command honours
``BILLING_REDIS_TIMEOUT_SECONDS``::

    client = connect(settings.redis_url, settings.redis_timeout_seconds)
    ...
    await client.aclose()

Replies are decoded to ``str``. A pub/sub subscription (``client.pubsub()``)
holds a dedicated connection from the same pool, with the same settings, for
as long as it is subscribed; its reads pass their own timeout
(``get_message(timeout=...)``), so the command timeout does not cut a quiet
subscription short.

One more client exists, on purpose: the usage fast path's synchronous one
(``connect_sync``), whose commands run on the database threads inside the
transaction that holds the usage locks (usage/fast.py), where an asyncio
client cannot be awaited. Same URL, same timeout.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

Redis = aioredis.Redis


def connect(url: str, timeout: float) -> Redis:
    """A client for ``url`` whose connects and commands time out after ``timeout`` seconds.

    No connection is made until the first command. Commands are not retried
    (redis-py's default for a URL-built client): callers fall back to the
    database at once (see redis_breaker.py).
    """
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
    )


def connect_sync(url: str, timeout: float) -> redis.Redis:
    """A synchronous client for ``url`` with the same timeouts (bytes replies)."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
