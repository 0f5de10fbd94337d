"""A small typed client for internal services: entitlement checks with a local cache.

::

    # BILLING_SERVICE_TARGET, and BILLING_SERVICE_TOKEN or BILLING_SERVICE_TLS_*_FILE
    async with EntitlementClient.from_env(caller="search", fail_mode=FailMode.CLOSED) as c:
        decision = await c.check("user-42", "api_access")
        if decision.allowed:
            ...

A service with authentication on (any production one) only answers a
caller with credentials: a bearer token listed for the caller in its policy
file, or an mTLS client certificate whose common name is the caller. The
caller's policy must allow GetEntitlements and WatchEntitlements.
``from_env`` reads the same variables as the webhook gateway; pass
``credentials=Credentials(...)`` to the constructor to set them in code.

How the local cache stays fresh: the client keeps one WatchEntitlements
stream open. Entries are only served while that stream is connected; the
cache is emptied whenever it (re)connects, so nothing fetched while changes
could have been missed survives. An entry is never served past its
``access_until`` (when the tier ends without any change). A lookup that
races with a change of the same user is not cached.

When the service cannot be asked (unreachable, deadline exceeded after the
retries) ``check`` does not raise: it answers per ``fail_mode``:
``FailMode.CLOSED`` (the default) denies, ``FailMode.OPEN`` allows. Choose
OPEN only for features whose misuse costs less than an outage of the caller.
Invalid arguments (an empty user id or feature) raise ``ValueError``.
Refused credentials (UNAUTHENTICATED, PERMISSION_DENIED) raise
``grpc.aio.AioRpcError``: a misconfigured caller, not an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import grpc

from billing_client.channel import aio_channel
from billing_client.credentials import Credentials, target_from_env
from billing_client.v1 import billing_pb2 as pb
from billing_client.v1 import billing_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

_UNREACHABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


class FailMode(enum.Enum):
    """What ``check`` answers when the billing service cannot be asked."""

    CLOSED = "closed"
    """Deny: the safe default for paid features."""
    OPEN = "open"
    """Allow: for features where an outage of the caller costs more than misuse."""


@dataclass(frozen=True)
class Entitlements:
    """Everything a user is entitled to, as the service answered."""

    user_id: str
    tier: str
    status: int
    features: frozenset[str]
    monthly_limit: int
    access_until: datetime | None

    @classmethod
    def from_proto(cls, message: pb.GetEntitlementsResponse) -> Entitlements:
        """Read a GetEntitlementsResponse."""
        until = (
            message.access_until.ToDatetime(tzinfo=UTC)
            if message.HasField("access_until")
            else None
        )
        return cls(
            user_id=message.user_id,
            tier=message.tier,
            status=message.status,
            features=frozenset(message.features),
            monthly_limit=message.monthly_limit,
            access_until=until,
        )

    def valid_at(self, now: float) -> bool:
        """False once ``access_until`` has passed: the answer may have changed by itself."""
        return self.access_until is None or now < self.access_until.timestamp()


@dataclass(frozen=True)
class Decision:
    """The answer to one check, and where it came from."""

    allowed: bool
    tier: str
    reason: str
    source: str  # "cache", "service" or "fail-open"/"fail-closed"


class _Fetch:
    """A lookup in flight; ``stale`` once a change of the same user arrived meanwhile."""

    __slots__ = ("stale",)

    def __init__(self) -> None:
        self.stale = False


class EntitlementClient:
    """Entitlement checks with a local cache kept fresh by WatchEntitlements.

    ``timeout`` bounds each lookup including its retries (up to three attempts
    on UNAVAILABLE). ``watch=False`` disables the stream and with it the cache:
    every check asks the service. ``credentials`` (bearer token or mTLS) apply
    to the channel the client opens; a ``channel`` passed in is used as is.
    """

    def __init__(
        self,
        target: str,
        *,
        caller: str = "unknown",
        fail_mode: FailMode = FailMode.CLOSED,
        timeout: float = 0.5,
        watch: bool = True,
        max_entries: int = 100_000,
        channel: grpc.aio.Channel | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.fail_mode = fail_mode
        self.timeout = timeout
        self._own_channel = channel is None
        credentials = credentials or Credentials()
        self._channel = channel or aio_channel(target, credentials)
        self._stub = pb_grpc.BillingServiceStub(self._channel)
        self._metadata = credentials.metadata(caller)
        self._watch = watch
        self._max_entries = max_entries
        self._cache: dict[str, Entitlements] = {}
        self._fetching: dict[str, _Fetch] = {}
        self._stream_gen = 0
        self._live = False
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()

    @classmethod
    def from_env(
        cls,
        *,
        caller: str,
        env: Mapping[str, str] | None = None,
        fail_mode: FailMode = FailMode.CLOSED,
        timeout: float = 0.5,
        watch: bool = True,
        max_entries: int = 100_000,
    ) -> EntitlementClient:
        """A client of BILLING_SERVICE_TARGET with the credentials of BILLING_SERVICE_TOKEN/_TLS_*.

        Raises ``CredentialsError`` for half a key pair or a certificate without a CA.
        """
        return cls(
            target_from_env(env),
            caller=caller,
            fail_mode=fail_mode,
            timeout=timeout,
            watch=watch,
            max_entries=max_entries,
            credentials=Credentials.from_env(env),
        )

    @property
    def live(self) -> bool:
        """True while the watch stream is connected and the cache may be used."""
        return self._live

    async def start(self) -> None:
        """Open the watch stream in the background (idempotent)."""
        if self._watch and self._task is None:
            self._task = asyncio.create_task(self._watch_loop(), name="entitlements-watch")

    async def wait_live(self, seconds: float) -> bool:
        """Wait until the watch stream is connected; False when it is not within ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), seconds)
        return self._live

    async def close(self) -> None:
        """Stop the stream and close the channel (when the client opened it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_channel:
            await self._channel.close(None)

    async def __aenter__(self) -> EntitlementClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def check(self, user_id: str, feature: str) -> Decision:
        """May ``user_id`` use ``feature`` now? Never raises for an unreachable service."""
        if not user_id or not feature:
            raise ValueError("user_id and feature are required")
        cached = self._cached(user_id)
        if cached is not None:
            return self._decide(cached, feature, "cache")
        try:
            found = await self._fetch(user_id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _UNREACHABLE:
                raise
            source = f"fail-{self.fail_mode.value}"
            log.warning("billing service unreachable (%s); answering %s", exc.code().name, source)
            return Decision(
                allowed=self.fail_mode is FailMode.OPEN,
                tier="",
                reason=f"billing service unreachable ({exc.code().name}); {source}",
                source=source,
            )
        return self._decide(found, feature, "service")

    async def entitlements(self, user_id: str) -> Entitlements:
        """Everything ``user_id`` is entitled to; raises grpc.aio.AioRpcError when unreachable."""
        if not user_id:
            raise ValueError("user_id is required")
        return self._cached(user_id) or await self._fetch(user_id)

    @staticmethod
    def _decide(ent: Entitlements, feature: str, source: str) -> Decision:
        allowed = feature in ent.features
        verb = "includes" if allowed else "does not include"
        return Decision(allowed, ent.tier, f"tier {ent.tier!r} {verb} {feature!r}", source)

    def _cached(self, user_id: str) -> Entitlements | None:
        if not self._live:
            return None
        ent = self._cache.get(user_id)
        if ent is None or not ent.valid_at(time.time()):
            return None
        return ent

    async def _fetch(self, user_id: str) -> Entitlements:
        fetch = _Fetch()
        self._fetching[user_id] = fetch
        gen = self._stream_gen
        try:
            message = await self._stub.GetEntitlements(
                pb.GetEntitlementsRequest(user_id=user_id),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise ValueError(exc.details()) from exc
            raise
        finally:
            if self._fetching.get(user_id) is fetch:
                del self._fetching[user_id]
        ent = Entitlements.from_proto(message)
        if self._live and gen == self._stream_gen and not fetch.stale:
            self._put(ent)
        return ent

    def _put(self, ent: Entitlements) -> None:
        if len(self._cache) >= self._max_entries and ent.user_id not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[ent.user_id] = ent

    def _apply(self, message: pb.WatchEntitlementsResponse) -> None:
        user_id = message.entitlements.user_id
        fetch = self._fetching.get(user_id)
        if fetch is not None:
            fetch.stale = True
        if message.snapshot and user_id not in self._cache:
            return  # only users this process asked about are kept
        if message.snapshot or user_id in self._cache:
            self._put(Entitlements.from_proto(message.entitlements))

    def _lose_stream(self) -> None:
        self._live = False
        self._stream_gen += 1
        self._cache.clear()
        for fetch in self._fetching.values():
            fetch.stale = True

    async def _watch_loop(self) -> None:
        # Not the channel's retry policy: gRPC retries a call only until its first
        # answer arrives, and this stream must be reopened whenever it ends, for ever.
        backoff = 0.05
        while True:
            call = self._stub.WatchEntitlements(
                pb.WatchEntitlementsRequest(), metadata=self._metadata
            )
            try:
                await call.initial_metadata()
                if call.done():
                    # Ended before it started (unreachable, shutting down): retry later.
                    log.info("entitlement watch stream failed: %s", (await call.code()).name)
                else:
                    self._lose_stream()  # a fresh generation: nothing from before is trusted
                    self._live = True
                    self._synced.set()
                    backoff = 0.05
                    async for message in call:
                        self._apply(message)
            except grpc.aio.AioRpcError as exc:
                log.info("entitlement watch stream ended: %s %s", exc.code().name, exc.details())
            except Exception:
                log.exception("entitlement watch stream failed; reconnecting")
            finally:
                call.cancel()
                self._lose_stream()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
