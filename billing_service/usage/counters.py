"""Usage counters in Redis: one Lua script checks and counts a whole batch atomically.

Keys (all under ``usage:``)::

    usage:generation         present while the counters below are trustworthy
    usage:c:<user>:<meter>:<period start, unix s>   units counted (kept 2 days past the period)
    usage:k:<idempotency key>                        the first answer (expires after ANSWER_TTL)
    usage:pending            hash: answer key -> answer, for answers not yet in the ledger

An answer is a JSON array: ``[user, meter, quantity, limit, unlimited,
period_start, period_end, occurred_at, created_at, stripe_customer_id,
event_name, allowed, counted, overage, used_after]`` (times in unix seconds);
it holds everything the ledger record needs, so any replica can write a
pending answer to the ledger (``fast.FastLedger.drain``).

A counter missing while ``usage:generation`` exists was never touched in this
generation, so the database's value (read by the caller under its lock, see
``fast``) is exact and seeds it. When ``usage:generation`` itself is missing
(Redis flushed or restarted) the script does nothing and answers ``lost``.

The client is synchronous on purpose: it is called on a database thread,
inside the transaction that holds the advisory locks (``fast``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

GENERATION = "usage:generation"
PENDING = "usage:pending"
# Retries within this answer from Redis; older ones from the ledger's unique key.
ANSWER_TTL_SECONDS = 3600
# Counters outlive their period by this much, so a late call of the old period still finds it.
COUNTER_GRACE_SECONDS = 2 * 86400

_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
local n = tonumber(ARGV[1])
local ttl = ARGV[2]
local out = {}
for i = 1, n do
  local a = 2 + (i - 1) * 7
  local counter, answer = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local prev = redis.call('GET', answer)
  if prev then
    if redis.call('HEXISTS', KEYS[2], answer) == 1 then out[i] = '!' .. prev else out[i] = prev end
  else
    local q, inc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local open, bill = ARGV[a + 3] == '1', ARGV[a + 4] == '1'
    local used = redis.call('GET', counter)
    if used then
      used = tonumber(used)
    else
      used = tonumber(ARGV[a + 6])
      redis.call('SET', counter, used, 'EX', ARGV[a + 7])
    end
    local allowed = open or used + q <= inc
    local counted = 0
    if allowed then counted = q end
    local overage = 0
    if bill and allowed then overage = math.max(0, used + q - math.max(inc, used)) end
    if counted > 0 then redis.call('INCRBY', counter, counted) end
    local value = '[' .. ARGV[a + 5] .. ',' .. (allowed and 'true' or 'false') .. ','
      .. counted .. ',' .. overage .. ',' .. (used + counted) .. ']'
    redis.call('SET', answer, value, 'EX', ttl)
    redis.call('HSET', KEYS[2], answer, value)
    out[i] = '+' .. value
  end
end
return out
"""

# Give back units counted for an answer the ledger did not take, and store the ledger's answer;
# only while the answer is still ours, so two batches settling the same key undo it once.
_UNDO = """
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(ARGV[1]) > 0 then
  redis.call('DECRBY', KEYS[1], ARGV[1])
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('HDEL', KEYS[3], KEYS[2])
return 1
"""

# A refund: give the units back when the counter is there (else the database value seeds it).
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECRBY', KEYS[1], ARGV[1]) end
return 1
"""


class CountersLost(Exception):
    """Redis lost its counters (flushed or restarted): the generation must be renewed."""


@dataclass(frozen=True)
class Reservation:
    """What the caller asks the script to check and count for one consumption."""

    counter: str
    answer: str
    quantity: int
    included: int
    open: bool  # unlimited or billed overage: always counted
    bills: bool
    static: str  # the answer's first 11 fields, JSON without brackets
    seed: int  # the database's value of the counter, used when Redis has none
    counter_ttl: int  # seconds, from the usage clock's now: the period's rest plus a grace


@dataclass(frozen=True)
class Reserved:
    """The script's answer for one consumption.

    ``new``: counted by this call; ``pending``: not known to be in the ledger yet
    (every new answer, and a replay of an answer whose batch has not committed).
    """

    fields: list[Any]
    raw: str
    new: bool
    pending: bool


def _reserved(raw: str) -> Reserved:
    if raw[0] == "+":
        return Reserved(json.loads(raw[1:]), raw[1:], new=True, pending=True)
    if raw[0] == "!":
        return Reserved(json.loads(raw[1:]), raw[1:], new=False, pending=True)
    return Reserved(json.loads(raw), raw, new=False, pending=False)


def counter_key(user_id: str, meter: str, period_start: int) -> str:
    """The Redis key of one counter (period start in unix seconds)."""
    return f"usage:c:{user_id}:{meter}:{period_start}"


def answer_key(idempotency_key: str) -> str:
    """The Redis key of the first answer given for ``idempotency_key``."""
    return f"usage:k:{idempotency_key}"


class RedisCounters:
    """The Lua scripts over one synchronous Redis client (built by the server, injected)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._reserve = client.register_script(_RESERVE)
        self._undo = client.register_script(_UNDO)
        self._release = client.register_script(_RELEASE)

    def reserve(self, items: Sequence[Reservation]) -> list[Reserved]:
        """Check and count every item in order, atomically; CountersLost when Redis was lost."""
        keys: list[str] = [GENERATION, PENDING]
        args: list[Any] = [len(items), ANSWER_TTL_SECONDS]
        for it in items:
            keys += (it.counter, it.answer)
            args += (
                it.quantity,
                it.included,
                int(it.open),
                int(it.bills),
                it.static,
                it.seed,
                it.counter_ttl,
            )
        out = self._reserve(keys=keys, args=args)
        if out and out[0] == b"lost":
            raise CountersLost
        return [_reserved(raw.decode()) for raw in out]

    def settle(self, answers: Sequence[str]) -> None:
        """The ledger holds these answers now: drop them from the pending hash."""
        if answers:
            self._client.hdel(PENDING, *answers)

    def undo(
        self, counter: str, counted: int, answer: str, ours: str, ledger_answer: list[Any]
    ) -> None:
        """While ``answer`` holds ``ours``: take back ``counted``, store the ledger's answer."""
        self._undo(
            keys=[counter, answer, PENDING],
            args=[counted, json.dumps(ledger_answer), ANSWER_TTL_SECONDS, ours],
        )

    def release(self, counter: str, units: int) -> None:
        """Give ``units`` back to ``counter`` (a refund), when Redis holds it."""
        self._release(keys=[counter], args=[units])

    def generation_exists(self) -> bool:
        """True while the counters are trustworthy (no flush or restart since they were set)."""
        return bool(self._client.exists(GENERATION))

    def forget_counters(self) -> None:
        """Delete every counter left (a partial loss): each is seeded again from the database."""
        batch: list[Any] = []
        for key in self._client.scan_iter(match="usage:c:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._client.delete(*batch)
                batch.clear()
        if batch:
            self._client.delete(*batch)

    def start_generation(self, name: str) -> None:
        """Mark the (empty) counters trustworthy; every counter is seeded from the database."""
        self._client.set(GENERATION, name)

    def close(self) -> None:
        """Close the client's connections (the service owns the client it was given)."""
        self._client.close()

    def pending(self) -> dict[str, str]:
        """Answers given but not (known to be) in the ledger: answer key -> answer JSON."""
        raw: dict[bytes, bytes] = self._client.hgetall(PENDING)  # type: ignore[assignment]
        return {key.decode(): value.decode() for key, value in raw.items()}
