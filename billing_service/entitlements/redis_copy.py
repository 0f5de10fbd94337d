"""The shared Redis copy of each user's rows (L2), valid only under the tag it was written with.

A record is ``epoch:generation:body``. The tag (the global epoch and the
user's generation) is read *before* the database read the body came from, so
a change announced meanwhile (which bumps the generation) or an outage (which
bumps the epoch, ``redis_health.py``) makes the record unusable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from billing_service.entitlements.redis_health import RedisHealth
from billing_service.redis_client import Redis


@dataclass(frozen=True)
class L2Tag:
    """The epoch and per-user generations read before a database read."""

    epoch: str
    generations: dict[str, str] = field(default_factory=dict)


class RedisCopy:
    """Reads and writes L2 records; every Redis failure is reported to ``health``."""

    def __init__(self, redis: Redis, health: RedisHealth, *, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._health = health
        self._prefix = prefix
        self._epoch_key = f"{prefix}epoch"
        self._ttl = ttl_seconds

    def gen_key(self, user_id: str) -> str:
        """The key of ``user_id``'s generation (bumped by every announced change)."""
        return f"{self._prefix}gen:{user_id}"

    def _l2_key(self, user_id: str) -> str:
        # val2: records hold every row that can answer (several with a duplicate).
        return f"{self._prefix}val2:{user_id}"

    async def get(self, users: Sequence[str]) -> tuple[L2Tag, dict[str, str]] | None:
        """Current tags of ``users`` and the L2 records valid under them (None: Redis down)."""
        if not self._health.up:
            return None
        keys = [self._epoch_key, *map(self.gen_key, users), *map(self._l2_key, users)]
        try:
            raw_values = await self._redis.mget(keys)
        except (RedisError, OSError) as exc:
            self._health.mark_down(exc)
            return None
        values = [v if v is None else str(v) for v in raw_values]
        epoch = values[0] or "0"
        n = len(users)
        gens = {u: (values[1 + i] or "0") for i, u in enumerate(users)}
        found: dict[str, str] = {}
        for i, user in enumerate(users):
            raw = values[1 + n + i]
            if raw:
                rec_epoch, rec_gen, body = raw.split(":", 2)
                if rec_epoch == epoch and rec_gen == gens[user]:
                    found[user] = body
        return L2Tag(epoch, gens), found

    async def put(self, tag: L2Tag, records: dict[str, str]) -> None:
        """Store ``records`` tagged with what was read before the database read."""
        if not records or not self._health.up:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user, body in records.items():
                    value = f"{tag.epoch}:{tag.generations.get(user, '0')}:{body}"
                    pipe.set(self._l2_key(user), value, ex=self._ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._health.mark_down(exc)
