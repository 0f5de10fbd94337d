"""The budget of Stripe calls that applying events may spend: one token bucket for all replicas.

Stripe's API rate limit (about 100 requests/s live, 25 in test mode) is
shared with everything else the account does, Checkout included; a burst of
webhooks must never spend it. Events are applied from their own payloads,
and the few that cannot be (a same-second conflict, a subscription we never
saw) draw a token here first. With Redis the bucket lives in one key that
every replica draws from (a Lua script, atomic, on Redis's clock); without
Redis, or when Redis fails, each process keeps its own bucket. An empty
bucket answers UNAVAILABLE: Stripe retries the webhook later.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from billing_service import metrics
from billing_service.errors import Unavailable
from billing_service.redis_client import Redis

log = logging.getLogger(__name__)

BUCKET_KEY = "billing:stripe-event-fetch-bucket"

# KEYS[1] bucket; ARGV[1] rate per second, ARGV[2] capacity. Returns 1 when a token was taken.
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or t
tokens = math.min(capacity, tokens + math.max(0, t - at) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(t))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return taken
"""


class LocalBucket:
    """A token bucket for one process: ``rate`` tokens per second, at most ``capacity``."""

    def __init__(self, rate: float, capacity: float) -> None:
        self._rate = rate
        self._capacity = capacity
        self._tokens = capacity
        self._at = time.monotonic()

    def take(self) -> bool:
        """Take one token; False when the bucket is empty."""
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class FetchBudget:
    """Admits Stripe calls made for events at ``rate`` per second across all replicas."""

    def __init__(self, rate: float, redis: Redis | None = None, *, key: str = BUCKET_KEY) -> None:
        self._key = key
        self._rate = max(rate, 1e-6)
        # One second's worth of calls may go at once; never less than one.
        self._capacity = max(1.0, rate)
        self._local = LocalBucket(self._rate, self._capacity)
        self._redis = redis

    async def take(self, cause: str) -> None:
        """Spend one call for ``cause``; Unavailable when the budget is spent."""
        if not await self._take():
            metrics.EVENT_FETCHES.labels(cause, "over_budget").inc()
            raise Unavailable(
                f"Stripe fetch budget spent ({self._rate:g}/s, BILLING_STRIPE_EVENT_FETCH_RATE); "
                "retry later"
            )

    async def _take(self) -> bool:
        if self._redis is not None:
            try:
                taken = await self._redis.eval(
                    _TAKE, 1, self._key, repr(self._rate), repr(self._capacity)
                )
                return bool(taken)
            except (RedisError, OSError) as exc:
                log.warning("redis fetch budget failed (%s); using this process's budget", exc)
        return self._local.take()
